//! The operations of Warrant. Each one authorizes through [`crate::authz`] first, then acts on
//! the store and the files; transports (REST, MCP, the CLI) call only this layer.

mod agents;
mod authn;
mod bootstrap;
mod files;
mod imports;
pub mod invitations;
pub mod locks;
pub mod oauth;
pub mod orgs;
pub mod plugins;
pub mod policies;
mod tokens;
pub mod workspaces;

pub use bootstrap::{BootstrapOutput, IssuedToken};
pub use files::{FileBody, PutOutcome, WriteConditions, WriteRequest};
pub use imports::ImportOutcome;
pub use tokens::{NewToken, TokenView, rfc3339};

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::authz::decision_log::DecisionLog;
use crate::authz::plugins::PluginVerdict;
use crate::authz::policy_cache::{PolicyCache, Slot};
use crate::authz::{Action, Authz, Caller, Decision, ResourceFacts, Target, WorkspacePolicies};
use crate::files::BlobStore;
use crate::identity::{OrgId, OrgRole, Role, Workspace, WorkspaceId};
use crate::ratelimit::RateLimits;
use crate::store::audit::AuditEntry;
use crate::store::decisions::DecisionRecord;
use crate::store::{self, Store};
use crate::{Error, Result};

/// The default storage quota of an organisation: 50 GB.
pub const DEFAULT_STORAGE_QUOTA: i64 = 50_000_000_000;

/// Limits and defaults the operations need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The largest file body accepted, in bytes.
    pub max_upload_bytes: u64,
    /// How long decisions are kept, in days.
    pub decision_retention_days: i64,
    /// How many decisions may wait to be written before new ones are dropped.
    pub decision_queue: usize,
    /// Rate limits.
    pub rate: crate::ratelimit::RateConfig,
    /// URL import: the allow-list, the time cap, the redirect cap.
    pub import: crate::files::import::ImportSettings,
    /// The storage quota of an organisation that sets none, in bytes.
    pub storage_quota_default: i64,
    /// The largest quota an organisation's owner may set, in bytes.
    pub storage_quota_max: i64,
    /// Plugin memory cap, deadline and pool size (the artefact cache goes under the data dir).
    pub plugins: crate::authz::plugins::PluginSettings,
    /// The life of an OAuth access token, in seconds (at most 900).
    pub oauth_access_token_ttl: i64,
    /// How many bytes of small blobs are kept in memory (0: none).
    pub blob_cache_bytes: usize,
}

/// The default memory for small blobs: 32 MiB.
pub const DEFAULT_BLOB_CACHE_BYTES: usize = 32 << 20;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_upload_bytes: 100 * 1024 * 1024,
            decision_retention_days: 30,
            decision_queue: 65_536,
            rate: crate::ratelimit::RateConfig::default(),
            import: crate::files::import::ImportSettings::default(),
            storage_quota_default: DEFAULT_STORAGE_QUOTA,
            storage_quota_max: DEFAULT_STORAGE_QUOTA,
            plugins: crate::authz::plugins::PluginSettings::default(),
            oauth_access_token_ttl: crate::oauth::MAX_ACCESS_TOKEN_TTL,
            blob_cache_bytes: DEFAULT_BLOB_CACHE_BYTES,
        }
    }
}

/// The service layer: everything an operation needs, shared by every transport.
pub struct Warrant {
    store: Store,
    authz: Authz,
    policies: PolicyCache,
    plugin_lists: plugins::PluginLists,
    decision_log: DecisionLog,
    limits: Arc<RateLimits>,
    blobs: BlobStore,
    settings: Settings,
    /// When each token's last use was last written, so it is written at most once a minute.
    last_use_written: Mutex<HashMap<String, i64>>,
    /// PATs recently looked up (see `authn`).
    pats: crate::credentials::cache::CredentialCache<Arc<authn::ResolvedPat>>,
    /// The OAuth authorization server's keys, token cache and deny-list.
    oauth: Arc<oauth::OAuthState>,
}

/// A workspace the caller may act in, with what the decision needed.
pub(crate) struct Access {
    /// The workspace.
    pub workspace: Workspace,
    /// The caller's role in it.
    pub role: Role,
}

impl Warrant {
    /// Opens the database (running migrations); blobs live under `data_dir`.
    pub async fn open(database_url: &str, data_dir: &Path, settings: Settings) -> Result<Self> {
        let store = Store::open(database_url).await?;
        // The database holds the OAuth signing keys: only the server's user may read it.
        oauth::restrict_sqlite_file(database_url);
        let blobs = BlobStore::new(data_dir, settings.blob_cache_bytes);
        let mut plugin_settings = settings.plugins.clone();
        if plugin_settings.cache_dir.is_none() {
            plugin_settings.cache_dir = Some(data_dir.join("plugin-cache"));
        }
        let runtime = crate::authz::plugins::PluginRuntime::new(plugin_settings)
            .map_err(|e| Error::Internal(format!("plugin runtime: {e:#}")))?;
        let authz = Authz::new()
            .map_err(|e| Error::Internal(format!("built-in policies: {e}")))?
            .with_plugins(Arc::new(runtime));
        let decision_log = DecisionLog::start(
            store.clone(),
            settings.decision_queue,
            settings.decision_retention_days,
        );
        let limits = RateLimits::new(settings.rate.clone());
        let oauth = oauth::OAuthState::start(&store, settings.oauth_access_token_ttl).await?;
        Ok(Warrant {
            store,
            authz,
            policies: PolicyCache::default(),
            plugin_lists: plugins::PluginLists::default(),
            decision_log,
            limits,
            blobs,
            settings,
            last_use_written: Mutex::new(HashMap::new()),
            pats: crate::credentials::cache::CredentialCache::new(authn::PAT_CACHE_CAPACITY),
            oauth,
        })
    }

    /// Creates the blob folders (before serving files).
    pub async fn prepare_storage(&self) -> Result<()> {
        self.blobs.prepare().await
    }

    /// The store (for readiness checks and shutdown).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The rate limiters (the transports count requests per address with them).
    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> Vec<(&'static str, &'static str, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.decision_log.stats();
        vec![
            (
                "warrant_decision_log_written_total",
                "decisions written to the log",
                s.written.load(Relaxed),
            ),
            (
                "warrant_decision_log_dropped_total",
                "decisions dropped because the log queue was full",
                s.dropped.load(Relaxed),
            ),
            (
                "warrant_decision_log_failed_total",
                "decisions lost to database errors",
                s.failed.load(Relaxed),
            ),
        ]
    }

    /// Flushes the decision log and closes the database.
    pub async fn shutdown(&self) {
        self.decision_log.close().await;
        self.store.close().await;
    }

    /// Runs the pipeline and logs the decision; a refusal becomes [`Error::Forbidden`]. An
    /// allowed decision goes to the log whole (no caller needs it), a refusal is also the
    /// error's.
    fn authorize(&self, caller: &Caller, action: Action, target: Target<'_>) -> Result<()> {
        let decision = self.authz.decide(caller, action, target);
        if decision.allowed {
            self.decision_log
                .record(record_of(caller, action, target, decision));
            Ok(())
        } else {
            self.decision_log
                .record(record_of(caller, action, target, decision.clone()));
            Err(Error::Forbidden(Box::new(decision)))
        }
    }

    /// The compiled policy sets in force in a workspace (cached by version).
    async fn policies_of(&self, ws: &Workspace) -> Result<WorkspacePolicies> {
        let enforced = match ws.policy_version {
            None => self.authz.cedar().base_compiled(),
            Some(v) => self.compiled(&ws.id, Slot::Enforced, v).await?,
        };
        let shadow = match ws.shadow_version {
            None => None,
            Some(v) => Some(self.compiled(&ws.id, Slot::Shadow, v).await?),
        };
        let plugins = self.attached_plugins(ws).await?;
        Ok(WorkspacePolicies {
            enforced,
            shadow,
            plugins,
        })
    }

    async fn compiled(
        &self,
        ws: &WorkspaceId,
        slot: Slot,
        version: i64,
    ) -> Result<Arc<crate::authz::cedar::CompiledSet>> {
        if let Some(set) = self.policies.get(ws, slot, version) {
            return Ok(set);
        }
        let stored = store::policies::get(self.store.pool(), ws, version)
            .await?
            .ok_or_else(|| {
                Error::Internal(format!("policy version {version} of {ws} is missing"))
            })?;
        // It was validated when stored; permits were allowed then if it holds any.
        let set = self
            .authz
            .cedar()
            .compile_tenant(&stored.source, version, true)
            .map_err(|e| {
                Error::Internal(format!(
                    "stored policy version {version} of {ws} no longer compiles: {e}"
                ))
            })?;
        let set = Arc::new(set);
        self.policies.put(ws, slot, set.clone());
        Ok(set)
    }

    /// Loads a workspace the caller holds a role in (404 otherwise, so its existence is not
    /// revealed) and authorizes `action` on `path` inside it.
    async fn workspace_access(
        &self,
        caller: &Caller,
        ws: &WorkspaceId,
        action: Action,
        path: Option<&str>,
        facts: &ResourceFacts,
    ) -> Result<Access> {
        let (workspace, role) =
            store::workspaces::get_with_role(self.store.pool(), ws, &caller.principal.id)
                .await?
                .and_then(|(w, role)| role.map(|r| (w, r)))
                .ok_or(Error::NotFound("workspace"))?;
        self.authorize_in(caller, &workspace, role, action, path, facts)
            .await?;
        Ok(Access { workspace, role })
    }

    /// [`Warrant::workspace_access`] once the workspace and the caller's role are loaded.
    async fn authorize_in(
        &self,
        caller: &Caller,
        workspace: &Workspace,
        role: Role,
        action: Action,
        path: Option<&str>,
        facts: &ResourceFacts,
    ) -> Result<()> {
        let policies = self.policies_of(workspace).await?;
        self.authorize(
            caller,
            action,
            Target::Workspace {
                org: &workspace.org_id,
                workspace: &workspace.id,
                role: Some(role),
                path,
                policies: &policies,
                facts,
            },
        )?;
        Ok(())
    }

    /// [`Warrant::workspace_access`] for an action on the workspace as a whole.
    async fn workspace_admin(&self, caller: &Caller, ws: &str, action: Action) -> Result<Access> {
        let ws = WorkspaceId(ws.to_string());
        self.workspace_access(caller, &ws, action, None, &ResourceFacts::default())
            .await
    }

    /// Authorizes an organisation-level action; an org the caller does not belong to is a 404.
    async fn org_access(&self, caller: &Caller, org: &OrgId, action: Action) -> Result<OrgRole> {
        let role = store::orgs::member_role(self.store.pool(), org, &caller.principal.id)
            .await?
            .ok_or(Error::NotFound("organisation"))?;
        self.authorize(
            caller,
            action,
            Target::Org {
                org,
                role: Some(role),
            },
        )?;
        Ok(role)
    }

    /// Appends to the audit log; a failure is logged, never hidden.
    async fn audit(&self, caller: &Caller, action: &str, target: &str, detail: Option<String>) {
        let entry = AuditEntry {
            principal_id: Some(caller.principal.id.as_str()),
            credential_id: Some(caller.grant.credential_id.as_str()),
            action,
            target,
            detail,
            client_addr: caller.client_addr.map(|a| a.to_string()),
        };
        if let Err(e) = store::audit::record(self.store.pool(), &entry).await {
            tracing::error!(error = %e, action, target, "could not write the audit log");
        }
    }
}

/// The decision log record of one decision.
fn record_of(caller: &Caller, action: Action, target: Target<'_>, d: Decision) -> DecisionRecord {
    let (workspace_id, resource) = match target {
        Target::Org { org, .. } => (None, org.0.clone()),
        Target::Workspace {
            workspace, path, ..
        } => (Some(workspace.0.clone()), path.unwrap_or("").to_string()),
    };
    let mut reasons = d.reasons;
    reasons.extend(d.errors);
    DecisionRecord {
        id: crate::identity::new_ordered_id(store::decisions::ID_PREFIX),
        at_ms: store::now_ms(),
        workspace_id,
        principal_id: caller.principal.id.0.clone(),
        principal_kind: caller.principal.kind.as_str().into(),
        credential_id: caller.grant.credential_id.clone(),
        action: action.cedar_id().into(),
        resource,
        transport: caller.transport.as_str().into(),
        allowed: d.allowed,
        layer: d.layer.map(|l| l.as_str().into()),
        policy_ids: d.policy_ids,
        reasons,
        elapsed_us: i64::try_from(d.elapsed_us).unwrap_or(i64::MAX),
        policy_version: d.policy_version,
        shadow_version: d.shadow.as_ref().and_then(|s| s.version),
        shadow_allowed: d.shadow.as_ref().map(|s| s.allowed),
        shadow_policy_ids: d.shadow.map(|s| s.policy_ids),
        plugins: store::verdicts::stored(d.plugins.iter().map(PluginVerdict::logged)),
    }
}

/// Checks a display name: 1–100 characters, no control characters.
fn check_name(what: &str, name: &str) -> Result<()> {
    let trimmed = name.trim();
    if trimmed.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::Unprocessable(format!(
            "{what} must have 1 to 100 characters and no control characters"
        )));
    }
    Ok(())
}
