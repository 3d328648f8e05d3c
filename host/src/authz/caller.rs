//! Who is asking, with what credential, from where: the input of every decision.

use std::net::IpAddr;
use std::sync::Arc;

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
    /// The identity acting (shared with the credential caches: a request does not copy it).
    pub principal: Arc<Principal>,
    /// What its credential allows.
    pub grant: Grant,
    /// The client's address, when known.
    pub client_addr: Option<IpAddr>,
    /// Where the request came in.
    pub transport: Transport,
}

/// What a hypothetical request assumes about its credential and circumstances: the what-if
/// endpoint and the policy fixtures both describe callers this way, as text.
#[derive(Debug, Clone)]
pub struct Assumed {
    /// The credential's scopes (default: every scope).
    pub scopes: ScopeSet,
    /// pat | oauth | session (default pat).
    pub kind: CredentialKind,
    /// rest | mcp (default rest).
    pub transport: Transport,
    /// The client's address.
    pub client_addr: Option<IpAddr>,
    /// The time of the request (default now).
    pub at: std::time::SystemTime,
}

impl Assumed {
    /// Parses the textual assumptions; the error names the bad value.
    pub fn parse(
        scopes: Option<&[String]>,
        token_kind: Option<&str>,
        transport: Option<&str>,
        client_ip: Option<&str>,
        time: Option<&str>,
    ) -> Result<Assumed, String> {
        let scopes = match scopes {
            Some(names) => ScopeSet::parse(names.iter().map(String::as_str))
                .map_err(|s| format!("unknown scope `{s}`"))?,
            None => ScopeSet::all(),
        };
        let kind = match token_kind.unwrap_or("pat") {
            "pat" => CredentialKind::Pat,
            "oauth" => CredentialKind::OAuth,
            "session" => CredentialKind::Session,
            other => return Err(format!("unknown token_kind `{other}`")),
        };
        let transport = match transport.unwrap_or("rest") {
            "rest" => Transport::Rest,
            "mcp" => Transport::Mcp,
            other => return Err(format!("unknown transport `{other}`")),
        };
        let client_addr = client_ip
            .map(|ip| {
                ip.parse()
                    .map_err(|_| format!("`{ip}` is not an IP address"))
            })
            .transpose()?;
        let at = match time {
            Some(t) => {
                humantime::parse_rfc3339(t).map_err(|_| format!("`{t}` is not an RFC 3339 time"))?
            }
            None => std::time::SystemTime::now(),
        };
        Ok(Assumed {
            scopes,
            kind,
            transport,
            client_addr,
            at,
        })
    }
}
