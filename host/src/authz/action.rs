//! The actions Warrant authorizes. Each names its Cedar action and the scope a credential needs.

use super::scope::Scope;

/// Something a principal asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Download a file or read its metadata.
    ReadFile,
    /// List files under a prefix.
    ListFiles,
    /// Create or replace a file.
    WriteFile,
    /// Delete a file.
    DeleteFile,
    /// Move or rename a file (checked on both paths).
    MoveFile,
    /// Have the server fetch a URL into a file (also checked as a write of that file).
    ImportUrl,
    /// See a workspace.
    ReadWorkspace,
    /// Delete a workspace.
    DeleteWorkspace,
    /// List a workspace's members.
    ListMembers,
    /// Add, change or remove a member.
    ManageMembers,
    /// Name or remove an owner of a workspace.
    ManageOwners,
    /// Create an organisation (the caller becomes its owner).
    CreateOrg,
    /// See an organisation.
    ReadOrg,
    /// Create a workspace in an organisation.
    CreateWorkspace,
    /// Create users in an organisation.
    ManageUsers,
    /// Create or remove agents, and mint their tokens.
    ManageAgents,
    /// Create or revoke one's own tokens.
    ManageOwnTokens,
    /// Change an organisation's settings.
    ManageOrg,
    /// Read a workspace's policies, their history, the decision log, and ask what-if.
    ReadPolicies,
    /// Change, roll back, promote or discard a workspace's policies.
    ManagePolicies,
    /// Take, renew or release one's own lock on a file or folder.
    LockFile,
    /// Release a lock someone else holds.
    BreakLock,
    /// Upload, list or remove an organisation's Wasm policy plugins.
    ManagePlugins,
    /// Attach, re-configure, detach or list the plugins of a workspace.
    AttachPlugins,
    /// Hand the organisation to a human member (the owner only).
    TransferOwnership,
}

impl Action {
    /// The Cedar action id (`Action::"<id>"`).
    pub fn cedar_id(self) -> &'static str {
        match self {
            Action::ReadFile => "files:read",
            Action::ListFiles => "files:list",
            Action::WriteFile => "files:write",
            Action::DeleteFile => "files:delete",
            Action::MoveFile => "files:move",
            Action::ImportUrl => "files:import",
            Action::ReadWorkspace => "workspace:read",
            Action::DeleteWorkspace => "workspace:delete",
            Action::ListMembers => "members:list",
            Action::ManageMembers => "members:manage",
            Action::ManageOwners => "members:owners",
            Action::CreateOrg => "org:create",
            Action::ReadOrg => "org:read",
            Action::CreateWorkspace => "workspace:create",
            Action::ManageUsers => "users:manage",
            Action::ManageAgents => "agents:manage",
            Action::ManageOwnTokens => "tokens:manage",
            Action::ManageOrg => "org:manage",
            Action::ReadPolicies => "policies:read",
            Action::ManagePolicies => "policies:manage",
            Action::LockFile => "locks:write",
            Action::BreakLock => "locks:break",
            Action::ManagePlugins => "plugins:manage",
            Action::AttachPlugins => "plugins:attach",
            Action::TransferOwnership => "org:transfer",
        }
    }

    /// The scope a credential must carry for this action (the scope gate).
    pub fn required_scope(self) -> Scope {
        match self {
            Action::ReadFile | Action::ListFiles => Scope::FilesRead,
            Action::WriteFile | Action::MoveFile | Action::ImportUrl => Scope::FilesWrite,
            Action::DeleteFile => Scope::FilesDelete,
            Action::ReadWorkspace | Action::ListMembers | Action::ReadOrg => Scope::WorkspacesRead,
            Action::DeleteWorkspace | Action::CreateWorkspace => Scope::WorkspacesAdmin,
            Action::ManageMembers | Action::ManageOwners => Scope::MembersAdmin,
            Action::ManageUsers
            | Action::CreateOrg
            | Action::ManageOrg
            | Action::TransferOwnership => Scope::OrgAdmin,
            Action::ReadPolicies | Action::ManagePolicies => Scope::PoliciesAdmin,
            Action::LockFile | Action::BreakLock => Scope::LocksWrite,
            Action::ManageAgents => Scope::AgentsAdmin,
            Action::ManageOwnTokens => Scope::TokensWrite,
            Action::ManagePlugins | Action::AttachPlugins => Scope::PluginsAdmin,
        }
    }

    /// Every action, for schema checks and docs.
    pub const ALL: [Action; 25] = [
        Action::ReadFile,
        Action::ListFiles,
        Action::WriteFile,
        Action::DeleteFile,
        Action::MoveFile,
        Action::ImportUrl,
        Action::ReadWorkspace,
        Action::DeleteWorkspace,
        Action::ListMembers,
        Action::ManageMembers,
        Action::ManageOwners,
        Action::CreateOrg,
        Action::ReadOrg,
        Action::CreateWorkspace,
        Action::ManageUsers,
        Action::ManageAgents,
        Action::ManageOwnTokens,
        Action::ManageOrg,
        Action::ReadPolicies,
        Action::ManagePolicies,
        Action::LockFile,
        Action::BreakLock,
        Action::ManagePlugins,
        Action::AttachPlugins,
        Action::TransferOwnership,
    ];
}
