//! OAuth-style scopes: what a credential may be used for, whatever roles its principal holds.

use std::fmt;

/// One scope of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Scope {
    /// Read and list files.
    FilesRead = 0,
    /// Create, replace and move files.
    FilesWrite,
    /// Delete files.
    FilesDelete,
    /// Take, renew and release file locks.
    LocksWrite,
    /// Share files.
    SharesWrite,
    /// See workspaces and their members.
    WorkspacesRead,
    /// Everything inside a workspace.
    WorkspacesAdmin,
    /// Change workspace membership.
    MembersAdmin,
    /// Create and revoke tokens.
    TokensWrite,
    /// Create and remove agents, and mint their tokens.
    AgentsAdmin,
    /// Change a workspace's Cedar policies.
    PoliciesAdmin,
    /// Upload and attach Wasm policy plugins.
    PluginsAdmin,
    /// Administer an organisation.
    OrgAdmin,
}

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Scope; 13] = [
        Scope::FilesRead,
        Scope::FilesWrite,
        Scope::FilesDelete,
        Scope::LocksWrite,
        Scope::SharesWrite,
        Scope::WorkspacesRead,
        Scope::WorkspacesAdmin,
        Scope::MembersAdmin,
        Scope::TokensWrite,
        Scope::AgentsAdmin,
        Scope::PoliciesAdmin,
        Scope::PluginsAdmin,
        Scope::OrgAdmin,
    ];

    /// The scopes that `workspaces:admin` implies: everything that happens inside a workspace.
    const IN_WORKSPACE: [Scope; 9] = [
        Scope::FilesRead,
        Scope::FilesWrite,
        Scope::FilesDelete,
        Scope::LocksWrite,
        Scope::SharesWrite,
        Scope::WorkspacesRead,
        Scope::MembersAdmin,
        Scope::PoliciesAdmin,
        Scope::PluginsAdmin,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::FilesRead => "files:read",
            Scope::FilesWrite => "files:write",
            Scope::FilesDelete => "files:delete",
            Scope::LocksWrite => "locks:write",
            Scope::SharesWrite => "shares:write",
            Scope::WorkspacesRead => "workspaces:read",
            Scope::WorkspacesAdmin => "workspaces:admin",
            Scope::MembersAdmin => "members:admin",
            Scope::TokensWrite => "tokens:write",
            Scope::AgentsAdmin => "agents:admin",
            Scope::PoliciesAdmin => "policies:admin",
            Scope::PluginsAdmin => "plugins:admin",
            Scope::OrgAdmin => "org:admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    fn bit(self) -> u16 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes as a bit set: checking a scope on the hot path is one AND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeSet(u16);

impl ScopeSet {
    /// Every scope.
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    /// True when the set holds `scope` directly or through `workspaces:admin`.
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
            || (self.0 & Scope::WorkspacesAdmin.bit() != 0 && Scope::IN_WORKSPACE.contains(&scope))
    }

    /// True when every scope of `other` is allowed by this set (no escalation).
    pub fn covers(self, other: ScopeSet) -> bool {
        other.iter().all(|s| self.allows(s))
    }

    /// The first scope of `other` this set does not allow.
    pub fn first_missing(self, other: ScopeSet) -> Option<Scope> {
        other.iter().find(|s| !self.allows(*s))
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    /// True when empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes held, in stable order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |s| self.0 & s.bit() != 0)
    }

    /// Parses a list of wire names; the first unknown one is returned as the error.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = ScopeSet::default();
        for name in names {
            set.insert(Scope::parse(name).ok_or_else(|| name.to_string())?);
        }
        Ok(set)
    }

    /// The stored form: names separated by single spaces (as in OAuth's `scope`).
    pub fn to_space_separated(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }

    /// The names, in stable order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut set = ScopeSet::default();
        for s in iter {
            set.insert(s);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspaces_admin_implies_in_workspace_scopes_only() {
        let set: ScopeSet = [Scope::WorkspacesAdmin].into_iter().collect();
        assert!(set.allows(Scope::FilesDelete));
        assert!(set.allows(Scope::MembersAdmin));
        assert!(!set.allows(Scope::TokensWrite));
        assert!(!set.allows(Scope::OrgAdmin));
    }

    #[test]
    fn parse_refuses_unknown_scope() {
        assert_eq!(
            ScopeSet::parse(["files:read", "root"]),
            Err("root".to_string())
        );
    }

    #[test]
    fn covers_detects_escalation() {
        let held = ScopeSet::parse(["files:read"]).unwrap();
        let asked = ScopeSet::parse(["files:read", "files:write"]).unwrap();
        assert!(!held.covers(asked));
        assert_eq!(held.first_missing(asked), Some(Scope::FilesWrite));
    }
}
