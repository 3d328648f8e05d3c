//! Who is asking, with what credential, from where: the input of every decision.

use std::net::IpAddr;

use super::scope::ScopeSet;
use crate::identity::{Principal, WorkspaceId};

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A personal access token (`wrt_pat_…`).
    Pat,
    /// An OAuth access token (JWT).
    OAuth,
    /// A dashboard session cookie.
    Session,
    /// The operator, on the command line with direct database access.
    Operator,
}

impl CredentialKind {
    /// The name used in Cedar context and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pat => "pat",
            Self::OAuth => "oauth",
            Self::Session => "session",
            Self::Operator => "operator",
        }
    }
}

/// The transport a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The REST API.
    Rest,
    /// The MCP server.
    Mcp,
    /// A hypothetical request evaluated by the what-if endpoint.
    WhatIf,
}

impl Transport {
    /// The name used in Cedar context and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Mcp => "mcp",
            Self::WhatIf => "what-if",
        }
    }
}

/// What a credential grants, independent of the principal's roles.
#[derive(Debug, Clone)]
pub struct Grant {
    /// How the caller authenticated.
    pub kind: CredentialKind,
    /// The credential's id (never its secret), for logs and audit.
    pub credential_id: String,
    /// The scopes the credential carries.
    pub scopes: ScopeSet,
    /// The workspaces the credential is limited to; `None` means all the principal's workspaces.
    pub workspaces: Option<Vec<WorkspaceId>>,
}

impl Grant {
    /// True when the credential may be used in `workspace`.
    pub fn covers_workspace(&self, workspace: &WorkspaceId) -> bool {
        self.workspaces
            .as_ref()
            .is_none_or(|list| list.iter().any(|w| w == workspace))
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The identity acting.
    pub principal: Principal,
    /// What its credential allows.
    pub grant: Grant,
    /// The client's address, when known.
    pub client_addr: Option<IpAddr>,
    /// Where the request came in.
    pub transport: Transport,
}
