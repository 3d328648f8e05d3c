//! Agents: non-human principals owned by an organisation, administered by its admins.

use super::orgs::PrincipalView;
use super::{Warrant, check_name};
use crate::authz::{Action, Caller, Target};
use crate::identity::{OrgId, OrgRole, Principal, PrincipalId, PrincipalKind};
use crate::store;
use crate::{Error, Result};

impl Warrant {
    /// Creates an agent in an organisation the caller administers.
    pub async fn create_agent(
        &self,
        caller: &Caller,
        org_id: &str,
        name: &str,
        groups: Vec<String>,
    ) -> Result<PrincipalView> {
        let org = OrgId(org_id.to_string());
        self.org_access(caller, &org, Action::ManageAgents).await?;
        check_name("an agent name", name)?;
        let agent = Principal {
            id: PrincipalId(crate::identity::new_id("agt")),
            kind: PrincipalKind::Agent,
            name: name.trim().to_string(),
            email: None,
            org_id: org.clone(),
            created_by: Some(caller.principal.id.clone()),
            created_at: store::now(),
            groups: super::orgs::check_labels("group", groups)?,
        };
        let mut tx = self.store.pool().begin().await?;
        store::principals::insert(&mut *tx, &agent, None).await?;
        store::orgs::set_member(&mut *tx, &org, &agent.id, OrgRole::Member).await?;
        tx.commit().await?;
        self.audit(
            caller,
            "agent.create",
            agent.id.as_str(),
            Some(format!("in {org}")),
        )
        .await;
        Ok(PrincipalView::from(&agent))
    }

    /// The agents of the organisations the caller may see.
    pub async fn list_agents(&self, caller: &Caller) -> Result<Vec<PrincipalView>> {
        let agents =
            store::principals::list_agents_visible_to(self.store.pool(), &caller.principal.id)
                .await?;
        let mut visible = Vec::with_capacity(agents.len());
        for agent in &agents {
            let role =
                store::orgs::member_role(self.store.pool(), &agent.org_id, &caller.principal.id)
                    .await?;
            let target = Target::Org {
                org: &agent.org_id,
                role,
            };
            if self.authorize(caller, Action::ReadOrg, target).is_ok() {
                visible.push(PrincipalView::from(agent));
            }
        }
        Ok(visible)
    }

    /// Removes an agent; its tokens and roles go with it.
    pub async fn delete_agent(&self, caller: &Caller, id: &str) -> Result<()> {
        let agent = store::principals::get(self.store.pool(), &PrincipalId(id.to_string()))
            .await?
            .filter(|p| p.kind == PrincipalKind::Agent)
            .ok_or(Error::NotFound("agent"))?;
        self.org_access(caller, &agent.org_id, Action::ManageAgents)
            .await?;
        store::principals::delete(self.store.pool(), &agent.id).await?;
        self.credentials_changed().await;
        self.audit(caller, "agent.delete", agent.id.as_str(), None)
            .await;
        Ok(())
    }
}
