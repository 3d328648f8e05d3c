//! Wasm policy plugins: upload (checked and compiled before anything is stored), list,
//! remove, and attach to workspaces with a configuration the plugin itself validates.
//! Attaching, detaching and new versions take effect on the next request, on every replica.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Warrant, rfc3339};
use crate::authz::plugins::{
    AttachedPlugin, CompiledPlugin, PluginInterest, PluginMode, PluginRuntime, RefusedComponent,
};
use crate::authz::{Action, Caller};
use crate::identity::{Workspace, WorkspaceId, new_id};
use crate::store::{self, plugins::NewVersion};
use crate::{Error, Result};

/// The largest component accepted, in bytes.
pub const MAX_PLUGIN_BYTES: usize = 10 * 1024 * 1024;
/// The largest attached configuration, in bytes of JSON.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// The most plugins one workspace may run.
pub const MAX_PLUGINS_PER_WORKSPACE: usize = 16;

/// Evaluation counters of a plugin in this process.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginStatsView {
    /// Evaluations since the process started.
    pub evaluations: u64,
    /// Deny verdicts.
    pub denies: u64,
    /// Failures (trap, deadline, memory), each a deny.
    pub failures: u64,
    /// Mean evaluation time, microseconds.
    pub mean_us: u64,
    /// Verdicts given again without evaluating (the plugin declared on what they depend);
    /// not among `evaluations`.
    pub reused: u64,
}

/// An uploaded plugin.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginView {
    /// `plg_…`
    pub id: String,
    /// Unique in the organisation; uploading the same name again adds a version.
    pub name: String,
    /// The version in force.
    pub version: i64,
    /// SHA-256 of that version's component, hex.
    pub digest: String,
    /// Its size in bytes.
    pub size_bytes: i64,
    /// The organisation.
    pub org_id: String,
    /// Who created the plugin.
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// When the version in force was uploaded, RFC 3339.
    pub updated_at: String,
    /// Workspaces it is attached to.
    pub attached_to: Vec<String>,
    /// Counters of this server process.
    pub stats: PluginStatsView,
}

/// How to attach a plugin to a workspace.
#[derive(Debug, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachRequest {
    /// The plugin's configuration for this workspace (checked by its `configure`).
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// `enforce` (default) or `shadow`.
    #[serde(default = "enforce")]
    pub mode: PluginMode,
    /// Evaluation order, lower first (default 0; ties by name).
    #[serde(default)]
    pub order: i64,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn enforce() -> PluginMode {
    PluginMode::Enforce
}

/// A plugin attached to a workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttachmentView {
    /// The plugin.
    pub plugin_id: String,
    /// Its name.
    pub name: String,
    /// The version in force.
    pub version: i64,
    /// `enforce` or `shadow`.
    pub mode: PluginMode,
    /// Evaluation order.
    pub order: i64,
    /// The configuration.
    pub config: serde_json::Value,
    /// The requests it is asked about, as the plugin declared them for this configuration
    /// (empty lists: all); it is skipped for the others.
    pub judges: PluginInterest,
    /// Who attached it.
    pub attached_by: String,
    /// RFC 3339.
    pub attached_at: String,
}

/// Checks a plugin name: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit.
fn check_plugin_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Unprocessable(
            "a plugin name has 1 to 64 characters from a-z, 0-9, `-`, `_` and `.`, and starts with a letter or digit".into(),
        ))
    }
}

impl Warrant {
    fn runtime(&self) -> Result<&Arc<PluginRuntime>> {
        self.authz
            .plugin_runtime()
            .ok_or_else(|| Error::Internal("this process has no plugin runtime".into()))
    }

    /// Compiles a component off the async runtime (or takes it from the cache).
    async fn compile_plugin(
        &self,
        digest: String,
        bytes: Arc<[u8]>,
    ) -> Result<Arc<CompiledPlugin>> {
        let runtime = self.runtime()?.clone();
        tokio::task::spawn_blocking(move || runtime.compile(&digest, &bytes))
            .await
            .map_err(|e| Error::Internal(format!("plugin compilation stopped: {e}")))?
            .map_err(|e| match e {
                RefusedComponent::NotAComponent(m) => Error::BadRequest(m),
                RefusedComponent::ForbiddenImports(m) | RefusedComponent::WrongWorld(m) => {
                    Error::Unprocessable(m)
                }
            })
    }

    /// Uploads a component as plugin `name` of the caller's organisation: its first version,
    /// or the next one. It is checked and compiled before anything is stored. Returns the
    /// plugin and whether it was created.
    pub async fn upload_plugin(
        &self,
        caller: &Caller,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(PluginView, bool)> {
        let org = caller.principal.org_id.clone();
        self.org_access(caller, &org, Action::ManagePlugins).await?;
        check_plugin_name(name)?;
        if bytes.len() > MAX_PLUGIN_BYTES {
            return Err(Error::PayloadTooLarge {
                limit: MAX_PLUGIN_BYTES as u64,
            });
        }
        if bytes.is_empty() {
            return Err(Error::BadRequest(
                "the body is empty: send the component's bytes".into(),
            ));
        }
        let digest = hex::encode(Sha256::digest(&bytes));
        let bytes: Arc<[u8]> = bytes.into();
        let compiled = self.compile_plugin(digest.clone(), bytes.clone()).await?;
        // A new version must accept every configuration it will run with: otherwise the
        // workspaces using it would refuse everything from their next request on.
        if let Some((id, _)) = store::plugins::find_by_name(self.store.pool(), &org, name).await? {
            for (ws, config) in store::plugins::configs_of(self.store.pool(), &id).await? {
                self.check_config(&id, name, &compiled, &config)
                    .await
                    .map_err(|why| {
                        Error::Unprocessable(format!(
                            "this version of `{name}` refuses the configuration it is attached with in workspace {ws}: {why}; change that configuration first"
                        ))
                    })?;
            }
        }
        let by = caller.principal.id.as_str();
        let mut created = false;
        let mut stored = None;
        for _ in 0..16 {
            let mut tx = self.store.pool().begin().await?;
            let (id, version) = match store::plugins::take_next_version(&mut *tx, &org, name)
                .await?
            {
                Some(next) => next,
                None => {
                    let id = new_id("plg");
                    if let Err(e) = store::plugins::insert(&mut *tx, &id, &org, name, by).await {
                        if store::is_unique_violation(&e) {
                            // Created concurrently under the same name: take its next version.
                            continue;
                        }
                        return Err(e.into());
                    }
                    created = true;
                    (id, 1)
                }
            };
            let new = NewVersion {
                plugin_id: &id,
                version,
                digest: &digest,
                wasm: &bytes,
                by,
            };
            store::plugins::insert_version(&mut *tx, &new).await?;
            store::plugins::touch_workspaces_of(&mut *tx, &id).await?;
            tx.commit().await?;
            stored = Some(id);
            break;
        }
        let id = stored.ok_or_else(|| {
            Error::Conflict(format!(
                "plugin `{name}` is being changed concurrently; try again"
            ))
        })?;
        self.audit(
            caller,
            "plugin.upload",
            &id,
            Some(format!("{name} sha256:{digest}")),
        )
        .await;
        let view = self.plugin_view(&id).await?;
        Ok((view, created))
    }

    async fn plugin_view(&self, id: &str) -> Result<PluginView> {
        let row = store::plugins::get(self.store.pool(), id)
            .await?
            .ok_or(Error::NotFound("plugin"))?;
        let attached_to = store::plugins::attached_to(self.store.pool(), id).await?;
        let stats = self.runtime()?.stats_of(id);
        let evaluations = stats.evaluations.load(Relaxed);
        Ok(PluginView {
            id: row.id,
            name: row.name,
            version: row.latest_version,
            digest: row.digest,
            size_bytes: row.size_bytes,
            org_id: row.org_id,
            created_by: row.created_by,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
            attached_to,
            stats: PluginStatsView {
                evaluations,
                denies: stats.denies.load(Relaxed),
                failures: stats.failures.load(Relaxed),
                mean_us: stats
                    .total_us
                    .load(Relaxed)
                    .checked_div(evaluations)
                    .unwrap_or(0),
                reused: stats.reused.load(Relaxed),
            },
        })
    }

    /// A plugin of the caller's organisation (404 for any other).
    async fn own_plugin(&self, caller: &Caller, id: &str) -> Result<store::plugins::PluginRow> {
        let org = caller.principal.org_id.clone();
        self.org_access(caller, &org, Action::ManagePlugins).await?;
        store::plugins::get(self.store.pool(), id)
            .await?
            .filter(|p| p.org_id == org.0)
            .ok_or(Error::NotFound("plugin"))
    }

    /// The plugins of the caller's organisation.
    pub async fn list_plugins(&self, caller: &Caller) -> Result<Vec<PluginView>> {
        let org = caller.principal.org_id.clone();
        self.org_access(caller, &org, Action::ManagePlugins).await?;
        let mut out = Vec::new();
        for row in store::plugins::list(self.store.pool(), &org).await? {
            out.push(self.plugin_view(&row.id).await?);
        }
        Ok(out)
    }

    /// One plugin.
    pub async fn get_plugin(&self, caller: &Caller, id: &str) -> Result<PluginView> {
        let row = self.own_plugin(caller, id).await?;
        self.plugin_view(&row.id).await
    }

    /// Removes a plugin and every version. A plugin still attached somewhere is not removed
    /// (409): silently dropping a guardrail would widen access.
    pub async fn delete_plugin(&self, caller: &Caller, id: &str) -> Result<()> {
        let row = self.own_plugin(caller, id).await?;
        if !store::plugins::delete_unattached(self.store.pool(), &row.id).await? {
            let ws = store::plugins::attached_to(self.store.pool(), &row.id).await?;
            return Err(Error::Conflict(format!(
                "plugin `{}` is attached to {}; detach it first",
                row.name,
                ws.join(", ")
            )));
        }
        self.audit(caller, "plugin.delete", &row.id, Some(row.name))
            .await;
        Ok(())
    }

    /// Attaches a plugin to a workspace (or changes its config, mode or order). The plugin's
    /// own `configure` checks the config first; a refusal is a 422 with its explanation.
    pub async fn attach_plugin(
        &self,
        caller: &Caller,
        ws: &str,
        plugin_id: &str,
        req: AttachRequest,
    ) -> Result<AttachmentView> {
        let access = self
            .workspace_admin(caller, ws, Action::AttachPlugins)
            .await?;
        let ws = access.workspace.id.clone();
        let row = store::plugins::get(self.store.pool(), plugin_id)
            .await?
            .filter(|p| p.org_id == access.workspace.org_id.0)
            .ok_or(Error::NotFound("plugin"))?;
        let config = serde_json::to_string(&req.config)
            .map_err(|e| Error::Internal(format!("config: {e}")))?;
        if config.len() > MAX_CONFIG_BYTES {
            return Err(Error::Unprocessable(format!(
                "the configuration is over {MAX_CONFIG_BYTES} bytes"
            )));
        }
        let attached = store::plugins::attachments(self.store.pool(), &ws).await?;
        if attached.len() >= MAX_PLUGINS_PER_WORKSPACE
            && !attached.iter().any(|a| a.plugin_id == row.id)
        {
            return Err(Error::Conflict(format!(
                "a workspace runs at most {MAX_PLUGINS_PER_WORKSPACE} plugins"
            )));
        }
        let compiled = self
            .compiled_version(&row.id, row.latest_version, &row.digest)
            .await?;
        let judges = self
            .check_config(&row.id, &row.name, &compiled, &config)
            .await
            .map_err(|why| {
                Error::Unprocessable(format!(
                    "plugin `{}` refused the configuration: {why}",
                    row.name
                ))
            })?;
        let mut tx = self.store.pool().begin().await?;
        store::plugins::attach(
            &mut *tx,
            &ws,
            &row.id,
            &config,
            req.mode.as_str(),
            req.order,
            caller.principal.id.as_str(),
        )
        .await?;
        store::plugins::touch_workspace(&mut *tx, &ws).await?;
        tx.commit().await?;
        self.audit(
            caller,
            "plugin.attach",
            ws.as_str(),
            Some(format!(
                "{} ({}) mode={} order={}",
                row.name,
                row.id,
                req.mode.as_str(),
                req.order
            )),
        )
        .await;
        Ok(AttachmentView {
            plugin_id: row.id,
            name: row.name,
            version: row.latest_version,
            mode: req.mode,
            order: req.order,
            config: req.config,
            judges,
            attached_by: caller.principal.id.0.clone(),
            attached_at: rfc3339(store::now()),
        })
    }

    /// Detaches a plugin; it stops running at once.
    pub async fn detach_plugin(&self, caller: &Caller, ws: &str, plugin_id: &str) -> Result<()> {
        let access = self
            .workspace_admin(caller, ws, Action::AttachPlugins)
            .await?;
        let ws = access.workspace.id;
        let mut tx = self.store.pool().begin().await?;
        if !store::plugins::detach(&mut *tx, &ws, plugin_id).await? {
            return Err(Error::NotFound("plugin attachment"));
        }
        store::plugins::touch_workspace(&mut *tx, &ws).await?;
        tx.commit().await?;
        self.audit(
            caller,
            "plugin.detach",
            ws.as_str(),
            Some(plugin_id.to_string()),
        )
        .await;
        Ok(())
    }

    /// The plugins a workspace runs, in order.
    pub async fn workspace_plugins(
        &self,
        caller: &Caller,
        ws: &str,
    ) -> Result<Vec<AttachmentView>> {
        let access = self
            .workspace_admin(caller, ws, Action::AttachPlugins)
            .await?;
        let ws = &access.workspace.id;
        let mut views = Vec::new();
        for a in store::plugins::attachments(self.store.pool(), ws).await? {
            let (_, judges) = self.loaded(ws, &a).await?;
            views.push(AttachmentView {
                mode: PluginMode::parse(&a.mode)
                    .ok_or_else(|| Error::Internal(format!("stored plugin mode {}", a.mode)))?,
                config: serde_json::from_str(&a.config)
                    .map_err(|e| Error::Internal(format!("stored plugin config: {e}")))?,
                judges,
                plugin_id: a.plugin_id,
                name: a.name,
                version: a.version,
                order: a.position,
                attached_by: a.attached_by,
                attached_at: rfc3339(a.attached_at),
            });
        }
        Ok(views)
    }

    /// An attachment's compiled version and the requests it judges. Asked when a workspace's
    /// list is loaded, never per request. The config was accepted when attached, so a failure
    /// here is transient (e.g. every instance slot busy): the plugin is then asked about every
    /// request, which is always safe.
    async fn loaded(
        &self,
        ws: &WorkspaceId,
        a: &store::plugins::Attachment,
    ) -> Result<(Arc<CompiledPlugin>, PluginInterest)> {
        let compiled = self
            .compiled_version(&a.plugin_id, a.version, &a.digest)
            .await?;
        let interest = self
            .check_config(&a.plugin_id, &a.name, &compiled, &a.config)
            .await
            .unwrap_or_else(|why| {
                tracing::warn!(plugin = %a.name, workspace = %ws, reason = %why, "could not learn which requests the plugin judges; it is asked about every request");
                PluginInterest::everything()
            });
        Ok((compiled, interest))
    }

    /// Runs the plugin's `configure` on `config` off the async runtime, and learns which
    /// requests it judges with it; Err is its reason for refusing, or what went wrong.
    async fn check_config(
        &self,
        plugin_id: &str,
        name: &str,
        compiled: &Arc<CompiledPlugin>,
        config: &str,
    ) -> Result<PluginInterest, String> {
        let runtime = self.runtime().map_err(|e| e.to_string())?.clone();
        let (id, name): (Arc<str>, Arc<str>) = (plugin_id.into(), name.into());
        let (compiled, config) = (compiled.clone(), config.to_string());
        tokio::task::spawn_blocking(move || runtime.configure(&id, &name, &compiled, &config))
            .await
            .map_err(|e| format!("the check stopped: {e}"))?
    }

    /// A compiled plugin version: from memory, else compiled from the stored bytes (e.g. on a
    /// replica that did not receive the upload, or after a restart).
    async fn compiled_version(
        &self,
        plugin_id: &str,
        version: i64,
        digest: &str,
    ) -> Result<Arc<CompiledPlugin>> {
        if let Some(c) = self.runtime()?.cached(digest) {
            return Ok(c);
        }
        let bytes = store::plugins::wasm(self.store.pool(), plugin_id, version)
            .await?
            .ok_or_else(|| {
                Error::Internal(format!("plugin {plugin_id} v{version} has no stored bytes"))
            })?;
        self.compile_plugin(digest.to_string(), bytes.into())
            .await
            .map_err(|e| {
                Error::Internal(format!(
                    "stored plugin {plugin_id} v{version} no longer loads: {e}"
                ))
            })
    }

    /// The plugins a workspace runs, as the pipeline needs them (cached by the workspace's
    /// `plugins_version`).
    pub(super) async fn attached_plugins(&self, ws: &Workspace) -> Result<Arc<[AttachedPlugin]>> {
        if let Some(list) = self.plugin_lists.get(&ws.id, ws.plugins_version) {
            return Ok(list);
        }
        let runtime = self.runtime()?.clone();
        let mut list = Vec::new();
        for a in store::plugins::attachments(self.store.pool(), &ws.id).await? {
            let (compiled, interest) = self.loaded(&ws.id, &a).await?;
            list.push(AttachedPlugin {
                memo: runtime.verdict_memo(&interest),
                interest,
                stats: runtime.stats_of(&a.plugin_id),
                plugin_id: a.plugin_id.into(),
                name: a.name.into(),
                version: a.version,
                mode: PluginMode::parse(&a.mode)
                    .ok_or_else(|| Error::Internal(format!("stored plugin mode {}", a.mode)))?,
                config: a.config.into(),
                compiled,
            });
        }
        let list: Arc<[AttachedPlugin]> = list.into();
        self.plugin_lists
            .put(&ws.id, ws.plugins_version, list.clone());
        Ok(list)
    }
}

/// A workspace's plugin list and the `plugins_version` it was loaded at.
type VersionedList = (i64, Arc<[AttachedPlugin]>);

/// The plugin lists of workspaces, keyed by their `plugins_version`.
#[derive(Default)]
pub(super) struct PluginLists {
    lists: std::sync::RwLock<std::collections::HashMap<WorkspaceId, VersionedList>>,
}

impl PluginLists {
    fn get(&self, ws: &WorkspaceId, version: i64) -> Option<Arc<[AttachedPlugin]>> {
        let lists = self.lists.read().ok()?;
        lists
            .get(ws)
            .filter(|(v, _)| *v == version)
            .map(|(_, l)| l.clone())
    }

    fn put(&self, ws: &WorkspaceId, version: i64, list: Arc<[AttachedPlugin]>) {
        if let Ok(mut lists) = self.lists.write() {
            lists.insert(ws.clone(), (version, list));
        }
    }
}
