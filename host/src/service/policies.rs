//! Tenant Cedar policies: store (validated, versioned, atomic), read, roll back, try in shadow
//! mode, ask what-if, and read the decision log.

use serde::{Deserialize, Serialize};

use super::{Warrant, rfc3339};
use crate::authz::{Action, Assumed, Caller, Explanation, Grant, ResourceFacts, Target};
use crate::identity::{PrincipalId, WorkspaceId};
use crate::store::decisions::{DecisionFilter, DecisionRecord, DisagreementCount};
use crate::store::{self};
use crate::{Error, Result};

/// The largest policy set accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 256 * 1024;

/// Whether a stored set is enforced or tried in shadow mode.
pub use crate::authz::Mode as PolicyMode;

/// The state of a workspace's policies after a change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyState {
    /// The workspace.
    pub workspace_id: String,
    /// The version this change created (None when none was created).
    pub version: Option<i64>,
    /// The enforced version (None: base role policies only).
    pub enforced_version: Option<i64>,
    /// The shadow candidate, if any.
    pub shadow_version: Option<i64>,
}

/// The enforced policy text.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyText {
    /// The enforced version (None: base role policies only).
    pub version: Option<i64>,
    /// Its Cedar text ("" when none).
    pub source: String,
    /// The shadow candidate, if any.
    pub shadow_version: Option<i64>,
}

/// One version in the history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    /// The number.
    pub version: i64,
    /// Who stored it.
    pub author: String,
    /// RFC 3339.
    pub created_at: String,
    /// Why (e.g. "rollback to v2").
    pub note: Option<String>,
    /// Whether it is enforced now.
    pub enforced: bool,
    /// Whether it is the shadow candidate now.
    pub shadow: bool,
}

/// How a shadow candidate compares with the enforced set on real traffic.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShadowReport {
    /// The candidate (None when there is none).
    pub shadow_version: Option<i64>,
    /// Decisions evaluated with it (as far as the decision log holds them).
    pub evaluated: i64,
    /// Of those, how many it would have decided differently.
    pub disagreements: i64,
    /// Disagreements by action and principal kind.
    #[schema(value_type = Vec<Object>)]
    pub groups: Vec<DisagreementCount>,
    /// A few recent disagreeing decisions.
    #[schema(value_type = Vec<Object>)]
    pub samples: Vec<DecisionRecord>,
}

/// A hypothetical request for the what-if endpoint.
#[derive(Debug, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatIf {
    /// The principal id (a user, agent or client of the workspace's organisation).
    pub principal: String,
    /// The Cedar action id, e.g. `files:write`.
    pub action: String,
    /// A file path, a folder ending in `/`, or "" for the workspace itself.
    #[serde(default)]
    pub resource: String,
    /// Context to assume; anything left out takes the value a real request would have.
    #[serde(default)]
    pub context: WhatIfContext,
}

/// The assumed context of a what-if request.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatIfContext {
    /// Scopes of the credential (default: every scope).
    pub scopes: Option<Vec<String>>,
    /// Workspaces the credential is limited to (default: none).
    pub workspaces: Option<Vec<String>>,
    /// pat | oauth | session (default pat).
    pub token_kind: Option<String>,
    /// rest | mcp (default rest).
    pub transport: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
    /// The time, RFC 3339 (default now).
    pub time: Option<String>,
    /// The body size of a write.
    pub size: Option<u64>,
    /// The file's tags (default: its current tags).
    pub tags: Option<Vec<String>>,
}

/// The answer of the what-if endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhatIfAnswer {
    /// The principal evaluated.
    pub principal: String,
    /// Its role in the workspace, if any.
    pub role: Option<&'static str>,
    /// The action.
    pub action: String,
    /// The resource path.
    pub resource: String,
    /// The decision, reasons, policy ids, errors and the context used.
    #[schema(value_type = Object)]
    pub decision: Explanation,
}

/// A page of the decision log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionPage {
    /// Decisions, newest first.
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<DecisionRecord>,
    /// Pass as `before` for the next page (None at the end).
    pub next: Option<String>,
}

/// Filters of a decision log query, as given over the API.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams, schemars::JsonSchema)]
pub struct DecisionQuery {
    /// At most this many (1–1000, default 50).
    pub limit: Option<i64>,
    /// Only this principal.
    pub principal: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
    /// Only this Cedar action id.
    pub action: Option<String>,
    /// The `next` cursor of the previous page.
    pub before: Option<String>,
    /// Only decisions where the shadow candidate disagreed.
    pub disagreements: Option<bool>,
}

impl Warrant {
    /// Validates and stores a new version of a workspace's policy set, enforced at once or
    /// tried in shadow mode. Nothing is stored unless the whole set validates.
    pub async fn put_policies(
        &self,
        caller: &Caller,
        ws: &str,
        source: &str,
        mode: PolicyMode,
    ) -> Result<PolicyState> {
        let ws = WorkspaceId(ws.to_string());
        let access = self
            .workspace_admin(caller, ws.as_str(), Action::ManagePolicies)
            .await?;
        if source.len() > MAX_POLICY_BYTES {
            return Err(Error::PayloadTooLarge {
                limit: MAX_POLICY_BYTES as u64,
            });
        }
        let org = store::orgs::get(self.store.pool(), &access.workspace.org_id)
            .await?
            .ok_or(Error::NotFound("organisation"))?;
        // Compile before storing: a set that does not validate is never stored.
        self.authz
            .cedar()
            .compile_tenant(source, 0, org.allow_tenant_permits)
            .map_err(|e| Error::InvalidPolicy(e.0))?;
        let version = self.store_version(caller, &ws, source, None, mode).await?;
        self.audit(
            caller,
            "policies.put",
            ws.as_str(),
            Some(format!("v{version} {mode:?}")),
        )
        .await;
        self.policy_state(&ws, Some(version)).await
    }

    /// Stores a version and points the workspace at it, in one transaction: a crash leaves
    /// the previous version in force, never a mix.
    async fn store_version(
        &self,
        caller: &Caller,
        ws: &WorkspaceId,
        source: &str,
        note: Option<&str>,
        mode: PolicyMode,
    ) -> Result<i64> {
        let mut last_err = None;
        for _ in 0..8 {
            let attempt = async {
                let mut tx = self.store.pool().begin().await?;
                let v = store::policies::insert_next(
                    &mut *tx,
                    ws,
                    source,
                    caller.principal.id.as_str(),
                    note,
                )
                .await?;
                match mode {
                    PolicyMode::Enforce => {
                        store::policies::set_enforced(&mut *tx, ws, Some(v)).await?
                    }
                    PolicyMode::Shadow => {
                        store::policies::set_shadow(&mut *tx, ws, Some(v)).await?
                    }
                }
                tx.commit().await?;
                Ok::<i64, sqlx::Error>(v)
            };
            match attempt.await {
                Ok(v) => return Ok(v),
                Err(e) if store::is_unique_violation(&e) => last_err = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last_err.map_or_else(
            || Error::Conflict("concurrent policy changes".into()),
            Error::Database,
        ))
    }

    async fn policy_state(&self, ws: &WorkspaceId, version: Option<i64>) -> Result<PolicyState> {
        let w = self.workspace_row(ws).await?;
        Ok(PolicyState {
            workspace_id: ws.0.clone(),
            version,
            enforced_version: w.policy_version,
            shadow_version: w.shadow_version,
        })
    }

    async fn workspace_row(&self, ws: &WorkspaceId) -> Result<crate::identity::Workspace> {
        store::workspaces::get_with_role(self.store.pool(), ws, &PrincipalId(String::new()))
            .await?
            .map(|(w, _)| w)
            .ok_or(Error::NotFound("workspace"))
    }

    /// The enforced policy text.
    pub async fn get_policies(&self, caller: &Caller, ws: &str) -> Result<PolicyText> {
        let ws = WorkspaceId(ws.to_string());
        let w = self
            .workspace_admin(caller, ws.as_str(), Action::ReadPolicies)
            .await?
            .workspace;
        let source = match w.policy_version {
            Some(v) => store::policies::get(self.store.pool(), &ws, v)
                .await?
                .map(|p| p.source)
                .unwrap_or_default(),
            None => String::new(),
        };
        Ok(PolicyText {
            version: w.policy_version,
            source,
            shadow_version: w.shadow_version,
        })
    }

    /// Every stored version, newest first.
    pub async fn policy_versions(&self, caller: &Caller, ws: &str) -> Result<Vec<VersionView>> {
        let ws = WorkspaceId(ws.to_string());
        let w = self
            .workspace_admin(caller, ws.as_str(), Action::ReadPolicies)
            .await?
            .workspace;
        let versions = store::policies::list(self.store.pool(), &ws).await?;
        Ok(versions
            .into_iter()
            .map(|v| VersionView {
                enforced: w.policy_version == Some(v.version),
                shadow: w.shadow_version == Some(v.version),
                version: v.version,
                author: v.author,
                created_at: rfc3339(v.created_at),
                note: v.note,
            })
            .collect())
    }

    /// Enforces an earlier version again, as a new version (history stays linear and
    /// immutable). Version 0 returns to the base role policies alone.
    pub async fn rollback_policies(
        &self,
        caller: &Caller,
        ws: &str,
        version: i64,
    ) -> Result<PolicyState> {
        let ws = WorkspaceId(ws.to_string());
        self.workspace_admin(caller, ws.as_str(), Action::ManagePolicies)
            .await?;
        if version == 0 {
            store::policies::set_enforced(self.store.pool(), &ws, None).await?;
            self.audit(
                caller,
                "policies.rollback",
                ws.as_str(),
                Some("to base".into()),
            )
            .await;
            return self.policy_state(&ws, None).await;
        }
        let old = store::policies::get(self.store.pool(), &ws, version)
            .await?
            .ok_or(Error::NotFound("policy version"))?;
        let note = format!("rollback to v{version}");
        let v = self
            .store_version(caller, &ws, &old.source, Some(&note), PolicyMode::Enforce)
            .await?;
        self.audit(caller, "policies.rollback", ws.as_str(), Some(note))
            .await;
        self.policy_state(&ws, Some(v)).await
    }

    /// Enforces the shadow candidate.
    pub async fn promote_shadow(&self, caller: &Caller, ws: &str) -> Result<PolicyState> {
        let ws = WorkspaceId(ws.to_string());
        let w = self
            .workspace_admin(caller, ws.as_str(), Action::ManagePolicies)
            .await?
            .workspace;
        let candidate = w
            .shadow_version
            .ok_or(Error::NotFound("shadow policy set"))?;
        let mut tx = self.store.pool().begin().await?;
        store::policies::set_enforced(&mut *tx, &ws, Some(candidate)).await?;
        store::policies::set_shadow(&mut *tx, &ws, None).await?;
        tx.commit().await?;
        self.audit(
            caller,
            "policies.promote",
            ws.as_str(),
            Some(format!("v{candidate}")),
        )
        .await;
        self.policy_state(&ws, None).await
    }

    /// Stops trying the shadow candidate.
    pub async fn discard_shadow(&self, caller: &Caller, ws: &str) -> Result<PolicyState> {
        let ws = WorkspaceId(ws.to_string());
        let w = self
            .workspace_admin(caller, ws.as_str(), Action::ManagePolicies)
            .await?
            .workspace;
        let candidate = w
            .shadow_version
            .ok_or(Error::NotFound("shadow policy set"))?;
        store::policies::set_shadow(self.store.pool(), &ws, None).await?;
        self.audit(
            caller,
            "policies.discard",
            ws.as_str(),
            Some(format!("v{candidate}")),
        )
        .await;
        self.policy_state(&ws, None).await
    }

    /// How the shadow candidate compares with the enforced set.
    pub async fn shadow_report(&self, caller: &Caller, ws: &str) -> Result<ShadowReport> {
        let ws = WorkspaceId(ws.to_string());
        let w = self
            .workspace_admin(caller, ws.as_str(), Action::ReadPolicies)
            .await?
            .workspace;
        let Some(candidate) = w.shadow_version else {
            return Ok(ShadowReport {
                shadow_version: None,
                evaluated: 0,
                disagreements: 0,
                groups: Vec::new(),
                samples: Vec::new(),
            });
        };
        let (evaluated, groups) =
            store::decisions::shadow_counts(self.store.pool(), ws.as_str(), candidate).await?;
        let filter = DecisionFilter {
            shadow_disagreements: true,
            limit: 5,
            ..DecisionFilter::default()
        };
        let samples = store::decisions::query(self.store.pool(), ws.as_str(), &filter)
            .await?
            .into_iter()
            .filter(|d| d.shadow_version == Some(candidate))
            .collect();
        Ok(ShadowReport {
            shadow_version: Some(candidate),
            evaluated,
            disagreements: groups.iter().map(|g| g.count).sum(),
            groups,
            samples,
        })
    }

    /// Runs the production pipeline on a hypothetical request, enforcing and logging nothing.
    pub async fn what_if(&self, caller: &Caller, ws: &str, req: WhatIf) -> Result<WhatIfAnswer> {
        let ws = WorkspaceId(ws.to_string());
        let w = self
            .workspace_admin(caller, ws.as_str(), Action::ReadPolicies)
            .await?
            .workspace;
        let action = Action::ALL
            .into_iter()
            .find(|a| a.cedar_id() == req.action)
            .ok_or_else(|| Error::Unprocessable(format!("unknown action `{}`", req.action)))?;
        let principal =
            store::principals::get(self.store.pool(), &PrincipalId(req.principal.clone()))
                .await?
                .ok_or(Error::NotFound("principal"))?;
        if store::orgs::member_role(self.store.pool(), &w.org_id, &principal.id)
            .await?
            .is_none()
        {
            return Err(Error::NotFound("principal"));
        }
        let role = store::workspaces::member_role(self.store.pool(), &ws, &principal.id).await?;
        let ctx = req.context;
        let Assumed {
            scopes,
            kind,
            transport,
            client_addr,
            at,
        } = Assumed::parse(
            ctx.scopes.as_deref(),
            ctx.token_kind.as_deref(),
            ctx.transport.as_deref(),
            ctx.client_ip.as_deref(),
            ctx.time.as_deref(),
        )
        .map_err(Error::Unprocessable)?;
        let path = req.resource.as_str();
        if !path.is_empty() {
            if path.ends_with('/') {
                crate::files::FolderPrefix::parse(path)?;
            } else {
                crate::files::FilePath::parse(path)?;
            }
        }
        let tags = match ctx.tags {
            Some(t) => super::orgs::check_labels("tag", t)?,
            None if !path.is_empty() && !path.ends_with('/') => {
                self.current_tags(&ws, path).await?
            }
            None => Vec::new(),
        };
        let facts = ResourceFacts {
            size: ctx.size,
            tags,
            content_type: None,
        };
        let hypothetical = Caller {
            principal: std::sync::Arc::new(principal.clone()),
            grant: Grant {
                kind,
                credential_id: "what-if".into(),
                scopes,
                workspaces: ctx
                    .workspaces
                    .map(|ws| ws.into_iter().map(WorkspaceId).collect()),
            },
            client_addr,
            transport,
        };
        let policies = self.policies_of(&w).await?;
        let target = Target::Workspace {
            org: &w.org_id,
            workspace: &w.id,
            role,
            path: Some(path).filter(|p| !p.is_empty()),
            policies: &policies,
            facts: &facts,
        };
        let decision = self.authz.explain(&hypothetical, action, target, at);
        Ok(WhatIfAnswer {
            principal: principal.id.0,
            role: role.map(|r| r.as_str()),
            action: req.action,
            resource: req.resource,
            decision,
        })
    }

    /// A page of a workspace's decision log.
    pub async fn decisions(
        &self,
        caller: &Caller,
        ws: &str,
        q: DecisionQuery,
    ) -> Result<DecisionPage> {
        let ws = WorkspaceId(ws.to_string());
        self.workspace_admin(caller, ws.as_str(), Action::ReadPolicies)
            .await?;
        let limit = q.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(Error::Unprocessable(
                "limit must be between 1 and 1000".into(),
            ));
        }
        let allowed = match q.decision.as_deref() {
            None => None,
            Some("allow") => Some(true),
            Some("deny") => Some(false),
            Some(other) => {
                return Err(Error::Unprocessable(format!(
                    "decision must be allow or deny, not `{other}`"
                )));
            }
        };
        let before = q
            .before
            .map(|c| {
                c.split_once('_')
                    .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                    .ok_or_else(|| {
                        Error::Unprocessable("before is not a cursor from `next`".into())
                    })
            })
            .transpose()?;
        let filter = DecisionFilter {
            principal: q.principal,
            allowed,
            action: q.action,
            before,
            shadow_disagreements: q.disagreements.unwrap_or(false),
            limit,
        };
        let decisions = store::decisions::query(self.store.pool(), ws.as_str(), &filter).await?;
        let next = (decisions.len() as i64 == limit)
            .then(|| decisions.last().map(|d| format!("{}_{}", d.at_ms, d.id)))
            .flatten();
        Ok(DecisionPage { decisions, next })
    }
}
