//! THE decision pipeline. Every service operation asks it before acting:
//! scope gate → workspace limit → Cedar (base role policies) → [`Decision`].
//! Deny wins at every step; an evaluation error is a deny (fail closed).

mod action;
mod caller;
pub mod cedar;
mod decision;
mod scope;

pub use action::Action;
pub use caller::{Caller, CredentialKind, Grant, Transport};
pub use decision::{Decision, Layer};
pub use scope::{Scope, ScopeSet};

use std::time::{Instant, SystemTime};

use crate::identity::{OrgId, OrgRole, Role, WorkspaceId};
use cedar::{CedarContext, CedarEngine, CedarResource};

/// Where an action applies, with the caller's role there (looked up by the service).
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// An organisation-level action.
    Org {
        /// The organisation.
        org: &'a OrgId,
        /// The caller's role in it, if any.
        role: Option<OrgRole>,
    },
    /// An action inside a workspace.
    Workspace {
        /// The owning organisation.
        org: &'a OrgId,
        /// The workspace.
        workspace: &'a WorkspaceId,
        /// The caller's role in it.
        role: Role,
        /// A file path, a folder path ending in `/`, or None for the workspace itself.
        path: Option<&'a str>,
    },
}

/// The pipeline, shared by every transport.
pub struct Authz {
    cedar: CedarEngine,
}

impl Authz {
    /// Builds the pipeline with the built-in schema and role policies.
    pub fn new() -> Result<Self, cedar::CedarTextError> {
        Ok(Authz {
            cedar: CedarEngine::builtin()?,
        })
    }

    /// The Cedar engine (schema and base policies).
    pub fn cedar(&self) -> &CedarEngine {
        &self.cedar
    }

    /// Decides whether `caller` may perform `action` on `target`.
    pub fn decide(&self, caller: &Caller, action: Action, target: Target<'_>) -> Decision {
        let started = Instant::now();
        let mut decision = self.decide_stages(caller, action, target);
        decision.elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        decision
    }

    fn decide_stages(&self, caller: &Caller, action: Action, target: Target<'_>) -> Decision {
        let needed = action.required_scope();
        if !caller.grant.scopes.allows(needed) {
            let mut d = Decision::deny(
                Layer::Scope,
                format!("the credential lacks the scope `{needed}`"),
            );
            d.required_scope = Some(needed.as_str());
            return d;
        }
        let (resource, role) = match target {
            Target::Org { org, role } => (
                CedarResource::Org { org: org.as_str() },
                role.map_or("", OrgRole::as_str),
            ),
            Target::Workspace {
                org,
                workspace,
                role,
                path,
            } => {
                if !caller.grant.covers_workspace(workspace) {
                    return Decision::deny(
                        Layer::Workspace,
                        format!("the credential is not valid for workspace {workspace}"),
                    );
                }
                (
                    CedarResource::Workspace {
                        org: org.as_str(),
                        workspace: workspace.as_str(),
                        path,
                    },
                    role.as_str(),
                )
            }
        };
        let context = CedarContext {
            role,
            scopes: caller.grant.scopes.names(),
            token_kind: caller.grant.kind.as_str(),
            principal_kind: caller.principal.kind.as_str(),
            transport: caller.transport.as_str(),
            client_ip: caller.client_addr,
            time: SystemTime::now(),
        };
        let outcome = self.cedar.evaluate(
            caller.principal.kind,
            caller.principal.id.as_str(),
            action,
            resource,
            &context,
        );
        if outcome.allowed {
            return Decision {
                allowed: true,
                layer: None,
                reasons: Vec::new(),
                policy_ids: outcome.policy_ids,
                required_scope: None,
                elapsed_us: 0,
            };
        }
        let reason = if !outcome.errors.is_empty() {
            format!(
                "a policy failed to evaluate, so the request is refused: {}",
                outcome.errors.join("; ")
            )
        } else if outcome.policy_ids.is_empty() {
            format!(
                "no policy permits `{}` for role `{}`",
                action.cedar_id(),
                if role.is_empty() { "none" } else { role }
            )
        } else {
            format!("forbidden by {}", outcome.policy_ids.join(", "))
        };
        Decision {
            allowed: false,
            layer: Some(Layer::Policy),
            reasons: vec![reason],
            policy_ids: outcome.policy_ids,
            required_scope: None,
            elapsed_us: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Principal, PrincipalId, PrincipalKind};

    fn caller(scopes: &[&str], workspaces: Option<Vec<WorkspaceId>>) -> Caller {
        Caller {
            principal: Principal {
                id: PrincipalId("agt_1".into()),
                kind: PrincipalKind::Agent,
                name: "bot".into(),
                email: None,
                org_id: OrgId("org_1".into()),
                created_by: None,
                created_at: 0,
            },
            grant: Grant {
                kind: CredentialKind::Pat,
                credential_id: "tok_1".into(),
                scopes: ScopeSet::parse(scopes.iter().copied()).unwrap(),
                workspaces,
            },
            client_addr: Some("127.0.0.1".parse().unwrap()),
            transport: Transport::Rest,
        }
    }

    fn in_ws<'a>(org: &'a OrgId, ws: &'a WorkspaceId, role: Role, path: &'a str) -> Target<'a> {
        Target::Workspace {
            org,
            workspace: ws,
            role,
            path: Some(path),
        }
    }

    #[test]
    fn viewer_reads_but_cannot_write() {
        let authz = Authz::new().unwrap();
        let (org, ws) = (OrgId("org_1".into()), WorkspaceId("ws_1".into()));
        let c = caller(&["files:read", "files:write"], None);
        let read = authz.decide(&c, Action::ReadFile, in_ws(&org, &ws, Role::Viewer, "a/b.txt"));
        assert!(read.allowed, "{read:?}");
        assert_eq!(read.policy_ids, vec!["base/viewer-reads"]);
        let write = authz.decide(&c, Action::WriteFile, in_ws(&org, &ws, Role::Viewer, "a/b.txt"));
        assert!(!write.allowed);
        assert_eq!(write.layer, Some(Layer::Policy));
    }

    #[test]
    fn missing_scope_is_refused_before_cedar() {
        let authz = Authz::new().unwrap();
        let (org, ws) = (OrgId("org_1".into()), WorkspaceId("ws_1".into()));
        let c = caller(&["files:read"], None);
        let d = authz.decide(&c, Action::WriteFile, in_ws(&org, &ws, Role::Owner, "x"));
        assert_eq!(d.layer, Some(Layer::Scope));
        assert_eq!(d.required_scope, Some("files:write"));
    }

    #[test]
    fn workspace_limited_credential_is_refused_elsewhere() {
        let authz = Authz::new().unwrap();
        let (org, ws) = (OrgId("org_1".into()), WorkspaceId("ws_1".into()));
        let c = caller(&["files:read"], Some(vec![WorkspaceId("ws_2".into())]));
        let d = authz.decide(&c, Action::ReadFile, in_ws(&org, &ws, Role::Owner, "x"));
        assert_eq!(d.layer, Some(Layer::Workspace));
    }
}
