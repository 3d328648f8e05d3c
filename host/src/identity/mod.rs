//! Principals, organisations, workspaces and roles: who can act, and where.

mod ids;
mod roles;

pub use ids::{OrgId, PrincipalId, TokenId, WorkspaceId, new_id, new_ordered_id};
pub use roles::{OrgRole, Role};

use serde::Serialize;

/// The kind of identity behind a request: a human, an agent, or an OAuth client acting for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// A human, who can sign in.
    User,
    /// A non-human identity owned by an organisation.
    Agent,
    /// An OAuth application's own identity (client credentials).
    Client,
}

impl PrincipalKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Agent => "agent",
            Self::Client => "client",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "agent" => Some(Self::Agent),
            "client" => Some(Self::Client),
            _ => None,
        }
    }

    /// The Cedar entity type of this kind of principal.
    pub fn cedar_type(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Agent => "Agent",
            Self::Client => "Client",
        }
    }
}

/// An identity that can hold credentials and roles.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    /// Stable id (`usr_…`, `agt_…`, `cli_…`).
    pub id: PrincipalId,
    /// Human, agent or client.
    pub kind: PrincipalKind,
    /// Display name.
    pub name: String,
    /// E-mail address (users only).
    pub email: Option<String>,
    /// The organisation the principal belongs to (an agent's owner; a user's home org).
    pub org_id: OrgId,
    /// Who created it (for agents: the user who administers it).
    pub created_by: Option<PrincipalId>,
    /// Unix seconds.
    pub created_at: i64,
    /// Labels the organisation gives it (`contractor`), seen by Cedar as `Group` parents.
    pub groups: Vec<String>,
}

/// An organisation: owns principals and workspaces and sets the token expiry cap.
#[derive(Debug, Clone, Serialize)]
pub struct Org {
    /// `org_…`
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// The longest lifetime, in days, of a personal access token in this org.
    pub max_token_days: i64,
    /// Whether workspace policy sets may contain `permit` (by default they may only forbid).
    pub allow_tenant_permits: bool,
    /// Requests per minute per token (None: the server default).
    pub rate_limit_per_minute: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A workspace: the unit of sharing, roles and policies.
#[derive(Debug, Clone, Serialize)]
pub struct Workspace {
    /// `ws_…`
    pub id: WorkspaceId,
    /// The owning organisation.
    pub org_id: OrgId,
    /// Display name, unique in its org.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The enforced tenant policy version (None: the base role policies alone).
    pub policy_version: Option<i64>,
    /// A candidate policy version evaluated in shadow mode, if any.
    pub shadow_version: Option<i64>,
    /// Bumped whenever the plugins the workspace runs change.
    #[serde(skip)]
    pub plugins_version: i64,
}

/// A principal's role in one workspace.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// Who.
    pub principal_id: PrincipalId,
    /// Human, agent or client.
    pub kind: PrincipalKind,
    /// Display name.
    pub name: String,
    /// The role held.
    pub role: Role,
}
