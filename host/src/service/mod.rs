//! The operations of Warrant. Each one authorizes through [`crate::authz`] first, then acts on
//! the store and the files; transports (REST, MCP, the CLI) call only this layer.

mod agents;
mod authn;
mod bootstrap;
mod files;
pub mod orgs;
mod tokens;
pub mod workspaces;

pub use bootstrap::{BootstrapOutput, IssuedToken};
pub use files::{FileBody, PutOutcome, WriteConditions};
pub use tokens::{NewToken, TokenView, rfc3339};

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use crate::authz::{Action, Authz, Caller, Decision, Target};
use crate::files::BlobStore;
use crate::identity::{OrgId, OrgRole, Role, Workspace, WorkspaceId};
use crate::store::audit::AuditEntry;
use crate::store::{self, Store};
use crate::{Error, Result};

/// Limits and defaults the operations need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The largest file body accepted, in bytes.
    pub max_upload_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_upload_bytes: 100 * 1024 * 1024,
        }
    }
}

/// The service layer: everything an operation needs, shared by every transport.
pub struct Warrant {
    store: Store,
    authz: Authz,
    blobs: BlobStore,
    settings: Settings,
    /// When each token's last use was last written, so it is written at most once a minute.
    last_use_written: Mutex<HashMap<String, i64>>,
}

impl Warrant {
    /// Opens the database (running migrations); blobs live under `data_dir`.
    pub async fn open(database_url: &str, data_dir: &Path, settings: Settings) -> Result<Self> {
        let store = Store::open(database_url).await?;
        let blobs = BlobStore::new(data_dir);
        let authz = Authz::new().map_err(|e| Error::Internal(format!("built-in policies: {e}")))?;
        Ok(Warrant {
            store,
            authz,
            blobs,
            settings,
            last_use_written: Mutex::new(HashMap::new()),
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

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs the pipeline; a refusal becomes [`Error::Forbidden`] carrying the decision.
    fn authorize(&self, caller: &Caller, action: Action, target: Target<'_>) -> Result<Decision> {
        let decision = self.authz.decide(caller, action, target);
        tracing::debug!(
            principal = %caller.principal.id,
            credential = %caller.grant.credential_id,
            action = action.cedar_id(),
            allowed = decision.allowed,
            layer = decision.layer.map(|l| l.as_str()),
            policies = ?decision.policy_ids,
            elapsed_us = decision.elapsed_us,
            "decision"
        );
        if decision.allowed {
            Ok(decision)
        } else {
            Err(Error::Forbidden(Box::new(decision)))
        }
    }

    /// Loads a workspace the caller holds a role in (404 otherwise, so its existence is not
    /// revealed) and authorizes `action` on `path` inside it.
    async fn workspace_access(
        &self,
        caller: &Caller,
        ws: &WorkspaceId,
        action: Action,
        path: Option<&str>,
    ) -> Result<(Workspace, Role)> {
        let (workspace, role) =
            store::workspaces::get_with_role(self.store.pool(), ws, &caller.principal.id)
                .await?
                .and_then(|(w, role)| role.map(|r| (w, r)))
                .ok_or(Error::NotFound("workspace"))?;
        self.authorize(
            caller,
            action,
            Target::Workspace {
                org: &workspace.org_id,
                workspace: &workspace.id,
                role,
                path,
            },
        )?;
        Ok((workspace, role))
    }

    /// Authorizes an organisation-level action; an org the caller does not belong to is a 404.
    async fn org_access(&self, caller: &Caller, org: &OrgId, action: Action) -> Result<OrgRole> {
        let role = store::orgs::member_role(self.store.pool(), org, &caller.principal.id)
            .await?
            .ok_or(Error::NotFound("organisation"))?;
        self.authorize(caller, action, Target::Org { org, role: Some(role) })?;
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
