//! Workspaces and membership.

use serde::Serialize;

use super::tokens::{conflict_on_unique, rfc3339};
use super::{Warrant, check_name};
use crate::authz::{Action, Caller, ResourceFacts, Target};
use crate::identity::{Member, OrgId, PrincipalId, Role, Workspace, WorkspaceId};
use crate::store;
use crate::{Error, Result};

/// A workspace as shown over the API, with the caller's role in it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspaceView {
    /// `ws_…`
    pub id: String,
    /// The owning organisation.
    pub org_id: String,
    /// Display name.
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    /// The caller's role.
    pub role: &'static str,
}

fn view(w: &Workspace, role: Role) -> WorkspaceView {
    WorkspaceView {
        id: w.id.0.clone(),
        org_id: w.org_id.0.clone(),
        name: w.name.clone(),
        created_at: rfc3339(w.created_at),
        role: role.as_str(),
    }
}

/// A membership as confirmed over the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MembershipView {
    /// The workspace.
    pub workspace_id: String,
    /// The member.
    pub principal_id: String,
    /// The role now held.
    pub role: &'static str,
}

impl Warrant {
    /// Creates a workspace in an organisation; the caller becomes its owner.
    pub async fn create_workspace(
        &self,
        caller: &Caller,
        org_id: &str,
        name: &str,
    ) -> Result<WorkspaceView> {
        let org = OrgId(org_id.to_string());
        self.org_access(caller, &org, Action::CreateWorkspace)
            .await?;
        check_name("a workspace name", name)?;
        let ws = Workspace {
            id: WorkspaceId::generate(),
            org_id: org,
            name: name.trim().to_string(),
            created_at: store::now(),
            policy_version: None,
            shadow_version: None,
            plugins_version: 0,
        };
        let mut tx = self.store.pool().begin().await?;
        store::workspaces::insert(&mut *tx, &ws, &caller.principal.id)
            .await
            .map_err(conflict_on_unique("a workspace with this name"))?;
        store::workspaces::set_member(&mut *tx, &ws.id, &caller.principal.id, Role::Owner).await?;
        tx.commit().await?;
        self.audit(caller, "workspace.create", ws.id.as_str(), None)
            .await;
        Ok(view(&ws, Role::Owner))
    }

    /// The workspaces the caller holds a role in and its credential may see.
    pub async fn list_workspaces(&self, caller: &Caller) -> Result<Vec<WorkspaceView>> {
        let all =
            store::workspaces::list_for_principal(self.store.pool(), &caller.principal.id).await?;
        let mut out = Vec::with_capacity(all.len());
        let facts = ResourceFacts::default();
        for (ws, role) in &all {
            let policies = self.policies_of(ws).await?;
            let target = Target::Workspace {
                org: &ws.org_id,
                workspace: &ws.id,
                role: Some(*role),
                path: None,
                policies: &policies,
                facts: &facts,
            };
            match self.authorize(caller, Action::ReadWorkspace, target) {
                Ok(_) => out.push(view(ws, *role)),
                // Without the scope nothing is visible: say so instead of an empty list.
                Err(Error::Forbidden(d)) if d.layer == Some(crate::authz::Layer::Scope) => {
                    return Err(Error::Forbidden(d));
                }
                Err(_) => {}
            }
        }
        Ok(out)
    }

    /// One workspace.
    pub async fn get_workspace(&self, caller: &Caller, ws: &str) -> Result<WorkspaceView> {
        let a = self
            .workspace_access(
                caller,
                &WorkspaceId(ws.to_string()),
                Action::ReadWorkspace,
                None,
                &ResourceFacts::default(),
            )
            .await?;
        Ok(view(&a.workspace, a.role))
    }

    /// Deletes a workspace with its files.
    pub async fn delete_workspace(&self, caller: &Caller, ws: &str) -> Result<()> {
        let w = self
            .workspace_access(
                caller,
                &WorkspaceId(ws.to_string()),
                Action::DeleteWorkspace,
                None,
                &ResourceFacts::default(),
            )
            .await?
            .workspace;
        let blobs = store::files::blob_ids(self.store.pool(), &w.id).await?;
        // Its files leave the organisation's storage count in the same transaction.
        let mut tx = self.store.pool().begin().await?;
        store::quotas::lock(&mut *tx, &w.org_id).await?;
        store::quotas::release_workspace(&mut *tx, &w.org_id, &w.id).await?;
        store::workspaces::delete(&mut *tx, &w.id).await?;
        tx.commit().await?;
        for blob in blobs {
            self.blobs.remove(&blob).await;
        }
        self.audit(caller, "workspace.delete", w.id.as_str(), None)
            .await;
        Ok(())
    }

    /// The members of a workspace.
    pub async fn list_members(&self, caller: &Caller, ws: &str) -> Result<Vec<Member>> {
        let w = self
            .workspace_access(
                caller,
                &WorkspaceId(ws.to_string()),
                Action::ListMembers,
                None,
                &ResourceFacts::default(),
            )
            .await?
            .workspace;
        Ok(store::workspaces::members(self.store.pool(), &w.id).await?)
    }

    /// Gives a principal of the workspace's organisation a role in it. Naming or changing an
    /// owner needs the owner-only action; the last owner cannot be demoted.
    pub async fn set_member(
        &self,
        caller: &Caller,
        ws: &str,
        principal: &str,
        role: &str,
    ) -> Result<MembershipView> {
        let role = Role::parse(role).ok_or_else(|| {
            Error::Unprocessable(format!(
                "unknown role `{role}`; use owner, admin, editor or viewer"
            ))
        })?;
        let ws = WorkspaceId(ws.to_string());
        let principal = PrincipalId(principal.to_string());
        let w = self
            .workspace_admin(caller, ws.as_str(), Action::ManageMembers)
            .await?
            .workspace;
        if store::orgs::member_role(self.store.pool(), &w.org_id, &principal)
            .await?
            .is_none()
        {
            return Err(Error::NotFound("principal"));
        }
        let current = store::workspaces::member_role(self.store.pool(), &ws, &principal).await?;
        self.check_owner_change(caller, &w, current, Some(role))
            .await?;
        store::workspaces::set_member(self.store.pool(), &ws, &principal, role).await?;
        self.audit(
            caller,
            "member.set",
            ws.as_str(),
            Some(format!("{principal} as {}", role.as_str())),
        )
        .await;
        Ok(MembershipView {
            workspace_id: ws.0,
            principal_id: principal.0,
            role: role.as_str(),
        })
    }

    /// Removes a member.
    pub async fn remove_member(&self, caller: &Caller, ws: &str, principal: &str) -> Result<()> {
        let ws = WorkspaceId(ws.to_string());
        let principal = PrincipalId(principal.to_string());
        let w = self
            .workspace_admin(caller, ws.as_str(), Action::ManageMembers)
            .await?
            .workspace;
        let current = store::workspaces::member_role(self.store.pool(), &ws, &principal)
            .await?
            .ok_or(Error::NotFound("member"))?;
        self.check_owner_change(caller, &w, Some(current), None)
            .await?;
        store::workspaces::remove_member(self.store.pool(), &ws, &principal).await?;
        self.audit(caller, "member.remove", ws.as_str(), Some(principal.0))
            .await;
        Ok(())
    }

    /// Owners are named and removed only by owners, and a workspace keeps at least one.
    async fn check_owner_change(
        &self,
        caller: &Caller,
        w: &Workspace,
        current: Option<Role>,
        next: Option<Role>,
    ) -> Result<()> {
        let touches_owner = current == Some(Role::Owner) || next == Some(Role::Owner);
        if !touches_owner {
            return Ok(());
        }
        let role = store::workspaces::member_role(self.store.pool(), &w.id, &caller.principal.id)
            .await?
            .ok_or(Error::NotFound("workspace"))?;
        let policies = self.policies_of(w).await?;
        let facts = ResourceFacts::default();
        let target = Target::Workspace {
            org: &w.org_id,
            workspace: &w.id,
            role: Some(role),
            path: None,
            policies: &policies,
            facts: &facts,
        };
        self.authorize(caller, Action::ManageOwners, target)?;
        if current == Some(Role::Owner)
            && next != Some(Role::Owner)
            && store::workspaces::owner_count(self.store.pool(), &w.id).await? <= 1
        {
            return Err(Error::Conflict(
                "a workspace must keep at least one owner".into(),
            ));
        }
        Ok(())
    }
}
