//! Roles in a workspace and in an organisation. What each may do is written in Cedar
//! (`policies/base.cedar`), not here: these types only name them.

use serde::{Deserialize, Serialize};

/// A principal's role in a workspace, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including deleting the workspace and naming other owners.
    Owner,
    /// Manages members, policies and plugins.
    Admin,
    /// Reads and changes files.
    Editor,
    /// Reads files.
    Viewer,
}

impl Role {
    /// The stored and Cedar name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Editor => "editor",
            Self::Viewer => "viewer",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "editor" => Some(Self::Editor),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

/// A principal's role in an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    /// Full control of the organisation.
    Owner,
    /// Creates workspaces, users and agents.
    Admin,
    /// Belongs to the organisation; reads it.
    Member,
    /// A former owner kept for backend upkeep after an ownership hand-over.
    Maintainer,
}

impl OrgRole {
    /// The stored and Cedar name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Maintainer => "maintainer",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            "maintainer" => Some(Self::Maintainer),
            _ => None,
        }
    }
}
