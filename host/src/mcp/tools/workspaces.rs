//! Workspaces and membership.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::identity::Nothing;
use super::{Kind, ToolSpec, add, done, structured};
use crate::api::bodies::{NewWorkspace, RoleBody};
use crate::authz::Scope;

/// A workspace.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ws {
    /// The workspace id (`ws_…`); list_workspaces shows them.
    pub workspace: String,
}

/// A member of a workspace and the role to give.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct SetRole {
    /// The workspace id.
    pub workspace: String,
    /// The principal (user or agent) id.
    pub principal_id: String,
    #[serde(flatten)]
    pub body: RoleBody,
}

/// A member of a workspace.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberRef {
    /// The workspace id.
    pub workspace: String,
    /// The principal (user or agent) id.
    pub principal_id: String,
}

pub(super) fn register(tools: &mut Vec<ToolSpec>) {
    add(
        tools,
        "list_workspaces",
        "Lists the workspaces the caller holds a role in, within its token's limits, with the \
         caller's role in each.",
        Some(Scope::WorkspacesRead),
        Kind::Read,
        |w, caller, _: Nothing| async move {
            structured(&json!({ "workspaces": w.list_workspaces(&caller).await? }))
        },
    );
    add(
        tools,
        "create_workspace",
        "Creates a workspace in an organisation; the caller becomes its owner. Names are unique \
         within the organisation.",
        Some(Scope::WorkspacesAdmin),
        Kind::Write,
        |w, caller, req: NewWorkspace| async move {
            structured(&w.create_workspace(&caller, &req.org_id, &req.name).await?)
        },
    );
    add(
        tools,
        "get_workspace",
        "One workspace: name, organisation, the caller's role, policy versions.",
        Some(Scope::WorkspacesRead),
        Kind::Read,
        |w, caller, req: Ws| async move { structured(&w.get_workspace(&caller, &req.workspace).await?) },
    );
    add(
        tools,
        "delete_workspace",
        "Deletes a workspace and every file in it, for good (owners only).",
        Some(Scope::WorkspacesAdmin),
        Kind::Destructive,
        |w, caller, req: Ws| async move {
            w.delete_workspace(&caller, &req.workspace).await?;
            done(format!("workspace {} deleted", req.workspace))
        },
    );
    add(
        tools,
        "list_members",
        "Lists a workspace's members and their roles (owner, admin, editor, viewer).",
        Some(Scope::WorkspacesRead),
        Kind::Read,
        |w, caller, req: Ws| async move {
            structured(&json!({ "members": w.list_members(&caller, &req.workspace).await? }))
        },
    );
    add(
        tools,
        "set_member_role",
        "Adds a principal to a workspace or changes its role (owner, admin, editor, viewer). \
         Only owners make or unmake owners; the last owner cannot be demoted.",
        Some(Scope::MembersAdmin),
        Kind::Idempotent,
        |w, caller, req: SetRole| async move {
            structured(
                &w.set_member(&caller, &req.workspace, &req.principal_id, &req.body.role)
                    .await?,
            )
        },
    );
    add(
        tools,
        "remove_member",
        "Removes a principal from a workspace.",
        Some(Scope::MembersAdmin),
        Kind::Destructive,
        |w, caller, req: MemberRef| async move {
            w.remove_member(&caller, &req.workspace, &req.principal_id)
                .await?;
            done(format!(
                "{} removed from {}",
                req.principal_id, req.workspace
            ))
        },
    );
}
