//! THE decision pipeline. Every service operation asks it before acting:
//! scope gate → workspace limit → Cedar (base role policies + the workspace's tenant set)
//! → the workspace's Wasm plugins, in order → [`Decision`]. Deny wins at every step; an evaluation error is a deny (fail closed).
//! A candidate tenant set in shadow mode is evaluated beside the enforced one and only logged.

mod action;
mod caller;
pub mod cedar;
mod decision;
pub mod decision_log;
pub mod fixtures;
mod mode;
pub mod plugins;
pub mod policy_cache;
mod scope;

pub use action::Action;
pub use caller::{Assumed, Caller, CredentialKind, Grant, Transport};
pub use decision::{Decision, Layer, ShadowOutcome};
pub use mode::Mode;
pub use scope::{Scope, ScopeSet};

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::identity::{OrgId, OrgRole, Role, WorkspaceId};
use cedar::{CedarContext, CedarEngine, CedarPrincipal, CedarResource, CompiledSet};
use plugins::{AttachedPlugin, PluginRequest, PluginRuntime};

/// The policy sets in force in one workspace: the enforced one and a shadow candidate.
#[derive(Clone)]
pub struct WorkspacePolicies {
    /// Base role policies plus the enforced tenant version.
    pub enforced: Arc<CompiledSet>,
    /// Base plus a candidate version, evaluated and logged but never enforced.
    pub shadow: Option<Arc<CompiledSet>>,
    /// The plugins attached to the workspace, in order.
    pub plugins: Arc<[AttachedPlugin]>,
}

/// What is known about the resource beyond its path.
#[derive(Debug, Clone, Default)]
pub struct ResourceFacts {
    /// The body size of a write, when declared.
    pub size: Option<u64>,
    /// The file's tags (for a write: its current tags and the requested ones).
    pub tags: Vec<String>,
    /// The content type of a write, when declared.
    pub content_type: Option<String>,
}

/// Where an action applies, with the caller's role there (looked up by the service).
#[derive(Clone, Copy)]
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
        /// The caller's role in it (None only for hypothetical what-if requests).
        role: Option<Role>,
        /// A file path, a folder path ending in `/`, or None for the workspace itself.
        path: Option<&'a str>,
        /// The workspace's policy sets.
        policies: &'a WorkspacePolicies,
        /// Size and tags.
        facts: &'a ResourceFacts,
    },
}

/// A decision with the context Cedar saw, for the what-if endpoint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// The Cedar context the request was evaluated with (None if Cedar was not reached).
    pub context: Option<serde_json::Value>,
}

impl Explanation {
    /// A decision made before Cedar saw a context to show.
    fn before_cedar(decision: Decision) -> Self {
        Explanation {
            decision,
            context: None,
        }
    }
}

/// Where and when the plugin stage runs.
struct PluginPlace<'a> {
    workspace: &'a WorkspaceId,
    path: Option<&'a str>,
    facts: &'a ResourceFacts,
    at: SystemTime,
    dry_run: bool,
}

/// The pipeline, shared by every transport.
pub struct Authz {
    cedar: CedarEngine,
    plugins: Option<Arc<PluginRuntime>>,
    /// Cedar's outcomes of this second, by request (see [`cedar::memo`]).
    outcomes: Option<cedar::memo::OutcomeMemo>,
}

impl Authz {
    /// Builds the pipeline with the built-in schema and role policies, without a plugin
    /// runtime (a workspace with plugins attached is then refused: fail closed).
    pub fn new() -> Result<Self, cedar::CedarTextError> {
        Ok(Authz {
            cedar: CedarEngine::builtin()?,
            plugins: None,
            outcomes: Some(cedar::memo::OutcomeMemo::default()),
        })
    }

    /// The same pipeline evaluating Cedar for every request, even one repeated within the
    /// same second (the benchmarks measure the evaluation itself).
    pub fn without_outcome_memo(mut self) -> Self {
        self.outcomes = None;
        self
    }

    /// The same pipeline, running attached plugins on `runtime`.
    pub fn with_plugins(mut self, runtime: Arc<PluginRuntime>) -> Self {
        self.plugins = Some(runtime);
        self
    }

    /// The plugin runtime, if there is one.
    pub fn plugin_runtime(&self) -> Option<&Arc<PluginRuntime>> {
        self.plugins.as_ref()
    }

    /// The Cedar engine (schema and base policies).
    pub fn cedar(&self) -> &CedarEngine {
        &self.cedar
    }

    /// Decides whether `caller` may perform `action` on `target`.
    pub fn decide(&self, caller: &Caller, action: Action, target: Target<'_>) -> Decision {
        self.run(caller, action, target, SystemTime::now(), false)
            .decision
    }

    /// Runs the same pipeline as [`Authz::decide`] for a hypothetical request and also
    /// returns the context used. Nothing is spent: plugin counters are only read.
    pub fn explain(
        &self,
        caller: &Caller,
        action: Action,
        target: Target<'_>,
        at: SystemTime,
    ) -> Explanation {
        self.run(caller, action, target, at, true)
    }

    fn run(
        &self,
        caller: &Caller,
        action: Action,
        target: Target<'_>,
        at: SystemTime,
        dry_run: bool,
    ) -> Explanation {
        let started = Instant::now();
        let mut explanation = self.stages(caller, action, target, at, dry_run);
        explanation.decision.elapsed_us =
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        explanation
    }

    fn stages(
        &self,
        caller: &Caller,
        action: Action,
        target: Target<'_>,
        at: SystemTime,
        dry_run: bool,
    ) -> Explanation {
        let needed = action.required_scope();
        if !caller.grant.scopes.allows(needed) {
            let mut d = Decision::deny(
                Layer::Scope,
                format!("the credential lacks the scope `{needed}`"),
            );
            d.required_scope = Some(needed.as_str());
            return Explanation::before_cedar(d);
        }
        let empty = ResourceFacts::default();
        let base = self.cedar.base_compiled();
        let mut place = None;
        let (resource, role, policies, facts) = match target {
            Target::Org { org, role } => (
                CedarResource::Org { org: org.as_str() },
                role.map_or("", OrgRole::as_str),
                None,
                &empty,
            ),
            Target::Workspace {
                org,
                workspace,
                role,
                path,
                policies,
                facts,
            } => {
                if !caller.grant.covers_workspace(workspace) {
                    return Explanation::before_cedar(Decision::deny(
                        Layer::Workspace,
                        format!("the credential is not valid for workspace {workspace}"),
                    ));
                }
                place = Some((workspace, path));
                (
                    CedarResource::Workspace {
                        org: org.as_str(),
                        workspace: workspace.as_str(),
                        path,
                    },
                    role.map_or("", Role::as_str),
                    Some(policies),
                    facts,
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
            time: at,
            size: facts.size,
            tags: &facts.tags,
            explain: dry_run,
        };
        let principal = CedarPrincipal {
            kind: caller.principal.kind,
            id: caller.principal.id.as_str(),
            groups: &caller.principal.groups,
        };
        let enforced = policies.map_or(&base, |p| &p.enforced);
        let shadow = policies.and_then(|p| p.shadow.as_deref());
        // A what-if shows the context as evaluated: it is always evaluated.
        let memo = self.outcomes.as_ref().filter(|_| !dry_run).map(|memo| {
            let key = cedar::memo::key(enforced, shadow, &principal, action, &resource, &context);
            (memo, cedar::memo::second_of(at), key)
        });
        let remembered = memo
            .as_ref()
            .and_then(|(memo, second, key)| memo.get(*second, key));
        let ((outcome, shadow_outcome), context_json) = match remembered {
            Some(outcomes) => (outcomes, None),
            None => {
                let query = match self.cedar.query(principal, action, resource, &context) {
                    Ok(q) => q,
                    Err(e) => {
                        return Explanation::before_cedar(Decision::deny(
                            Layer::Policy,
                            format!("the request could not be evaluated, so it is refused: {e}"),
                        ));
                    }
                };
                let outcomes = (
                    self.cedar.authorize(enforced, action, &query),
                    shadow.map(|s| self.cedar.authorize(s, action, &query)),
                );
                if let Some((memo, second, key)) = memo {
                    memo.put(second, key, outcomes.clone());
                }
                (outcomes, query.context_json)
            }
        };
        let mut decision = if outcome.allowed {
            Decision::allow(outcome.policy_ids)
        } else {
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
            let mut d = Decision::deny(Layer::Policy, reason);
            d.policy_ids = outcome.policy_ids;
            d.errors = outcome.errors;
            d
        };
        decision.policy_version = enforced.version;
        if let (Some(shadow), Some(s)) = (shadow, shadow_outcome) {
            decision.shadow = Some(ShadowOutcome {
                version: shadow.version,
                allowed: s.allowed,
                policy_ids: s.policy_ids,
                errors: s.errors,
            });
        }
        // Plugins never judge the management of plugins: a broken or hostile plugin must not
        // be able to lock the workspace's admins out of detaching it.
        if decision.allowed
            && action != Action::AttachPlugins
            && let (Some(p), Some((workspace, path))) = (policies, place)
        {
            let place = PluginPlace {
                workspace,
                path,
                facts,
                at,
                dry_run,
            };
            self.run_plugins(&mut decision, caller, action, place, &p.plugins);
        }
        Explanation {
            decision,
            context: context_json,
        }
    }

    /// The last stage: the workspace's plugins, after every other stage allowed.
    fn run_plugins(
        &self,
        decision: &mut Decision,
        caller: &Caller,
        action: Action,
        place: PluginPlace<'_>,
        attached: &[AttachedPlugin],
    ) {
        let PluginPlace {
            workspace,
            path,
            facts,
            at,
            dry_run,
        } = place;
        if attached.is_empty() {
            return;
        }
        let Some(runtime) = &self.plugins else {
            *decision = Decision::deny(
                Layer::Plugin,
                "plugins are attached to this workspace but this process cannot run them, so the request is refused".into(),
            );
            return;
        };
        let time_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let p = &caller.principal;
        let request = PluginRequest {
            principal: (p.id.as_str(), p.kind.as_str(), &p.name, &p.groups),
            credential: (
                caller.grant.kind.as_str(),
                &caller.grant.credential_id,
                caller.grant.scopes,
            ),
            action: action.cedar_id(),
            workspace: workspace.as_str(),
            path: path.unwrap_or(""),
            size: facts.size,
            content_type: facts.content_type.as_deref(),
            transport: caller.transport.as_str(),
            client_address: caller.client_addr,
            time_ms,
            dry_run,
        };
        let verdicts = runtime.run_all(attached, &request);
        if let Some(refusal) = verdicts.iter().find(|v| v.refuses()) {
            decision.allowed = false;
            decision.layer = Some(Layer::Plugin);
            decision.reasons = vec![format!(
                "plugin `{}`: {}",
                refusal.name,
                refusal.reason.as_deref().unwrap_or("denied")
            )];
        }
        decision.plugins = verdicts;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Principal, PrincipalId, PrincipalKind};

    fn caller(scopes: &[&str], workspaces: Option<Vec<WorkspaceId>>) -> Caller {
        Caller {
            principal: Arc::new(Principal {
                id: PrincipalId("agt_1".into()),
                kind: PrincipalKind::Agent,
                name: "bot".into(),
                email: None,
                org_id: OrgId("org_1".into()),
                created_by: None,
                created_at: 0,
                groups: vec!["contractor".into()],
            }),
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

    struct Fixture {
        org: OrgId,
        ws: WorkspaceId,
        policies: WorkspacePolicies,
        facts: ResourceFacts,
    }

    impl Fixture {
        fn new(authz: &Authz, tenant: Option<&str>) -> Self {
            let enforced = match tenant {
                Some(src) => Arc::new(authz.cedar().compile_tenant(src, 1, false).unwrap()),
                None => authz.cedar().base_compiled(),
            };
            Fixture {
                org: OrgId("org_1".into()),
                ws: WorkspaceId("ws_1".into()),
                policies: WorkspacePolicies {
                    enforced,
                    shadow: None,
                    plugins: Arc::new([]),
                },
                facts: ResourceFacts::default(),
            }
        }

        fn target<'a>(&'a self, role: Role, path: &'a str) -> Target<'a> {
            Target::Workspace {
                org: &self.org,
                workspace: &self.ws,
                role: Some(role),
                path: Some(path),
                policies: &self.policies,
                facts: &self.facts,
            }
        }
    }

    #[test]
    fn viewer_reads_but_cannot_write() {
        let authz = Authz::new().unwrap();
        let f = Fixture::new(&authz, None);
        let c = caller(&["files:read", "files:write"], None);
        let read = authz.decide(&c, Action::ReadFile, f.target(Role::Viewer, "a/b.txt"));
        assert!(read.allowed, "{read:?}");
        assert_eq!(read.policy_ids, vec!["base/viewer-reads"]);
        let write = authz.decide(&c, Action::WriteFile, f.target(Role::Viewer, "a/b.txt"));
        assert!(!write.allowed);
        assert_eq!(write.layer, Some(Layer::Policy));
    }

    #[test]
    fn a_remembered_outcome_is_the_one_cedar_gave_for_that_set() {
        // The same request twice within a second: the second is given Cedar's outcome again;
        // against another set (a tenant forbid pushed in between), it is evaluated afresh.
        let authz = Authz::new().unwrap();
        let open = Fixture::new(&authz, None);
        let closed = Fixture::new(
            &authz,
            Some(r#"@id("no-agents") forbid (principal is Agent, action, resource);"#),
        );
        let c = caller(&["files:read"], None);
        let at = SystemTime::now();
        let decide = |f: &Fixture| {
            authz
                .run(
                    &c,
                    Action::ReadFile,
                    f.target(Role::Viewer, "a/b.txt"),
                    at,
                    false,
                )
                .decision
        };
        for _ in 0..2 {
            let d = decide(&open);
            assert!(d.allowed, "{d:?}");
            assert_eq!(d.policy_ids, vec!["base/viewer-reads"]);
            let d = decide(&closed);
            assert!(!d.allowed, "{d:?}");
            assert_eq!(d.policy_ids, vec!["no-agents"]);
        }
        let remembered = authz.outcomes.as_ref().unwrap();
        let second = cedar::memo::second_of(at);
        assert_eq!(
            remembered.inner_len_for_tests(second),
            2,
            "one outcome per set"
        );
    }

    #[test]
    fn missing_scope_is_refused_before_cedar() {
        let authz = Authz::new().unwrap();
        let f = Fixture::new(&authz, None);
        let c = caller(&["files:read"], None);
        let d = authz.decide(&c, Action::WriteFile, f.target(Role::Owner, "x"));
        assert_eq!(d.layer, Some(Layer::Scope));
        assert_eq!(d.required_scope, Some("files:write"));
    }

    #[test]
    fn workspace_limited_credential_is_refused_elsewhere() {
        let authz = Authz::new().unwrap();
        let f = Fixture::new(&authz, None);
        let c = caller(&["files:read"], Some(vec![WorkspaceId("ws_2".into())]));
        let d = authz.decide(&c, Action::ReadFile, f.target(Role::Owner, "x"));
        assert_eq!(d.layer, Some(Layer::Workspace));
    }

    #[test]
    fn tenant_forbid_narrows_the_base_and_names_its_id() {
        let authz = Authz::new().unwrap();
        let f = Fixture::new(
            &authz,
            Some(
                r#"@id("agents-read-only") forbid (principal is Agent, action in [Action::"files:write", Action::"files:delete"], resource);"#,
            ),
        );
        let c = caller(&["files:read", "files:write"], None);
        let d = authz.decide(&c, Action::WriteFile, f.target(Role::Editor, "a.txt"));
        assert!(!d.allowed);
        assert_eq!(d.policy_ids, vec!["agents-read-only"]);
        assert!(
            authz
                .decide(&c, Action::ReadFile, f.target(Role::Editor, "a.txt"))
                .allowed
        );
    }

    #[test]
    fn groups_and_extensions_reach_cedar() {
        let authz = Authz::new().unwrap();
        let f = Fixture::new(
            &authz,
            Some(
                r#"@id("no-archives") forbid (principal in Group::"contractor", action == Action::"files:read", resource) when { ["zip", "tar"].contains(context.extension) };"#,
            ),
        );
        let c = caller(&["files:read"], None);
        assert!(
            !authz
                .decide(&c, Action::ReadFile, f.target(Role::Viewer, "x/data.ZIP"))
                .allowed
        );
        assert!(
            authz
                .decide(&c, Action::ReadFile, f.target(Role::Viewer, "x/data.txt"))
                .allowed
        );
    }

    #[test]
    fn an_erroring_policy_fails_closed() {
        let authz = Authz::new().unwrap();
        // `size` is optional: reading it without `has` validates only with a guard, so build
        // an error at run time instead: an overflow in arithmetic.
        let f = Fixture::new(
            &authz,
            Some(
                r#"@id("overflow") forbid (principal, action == Action::"files:read", resource) when { 9223372036854775807 + 1 > 0 };"#,
            ),
        );
        let c = caller(&["files:read"], None);
        let d = authz.decide(&c, Action::ReadFile, f.target(Role::Viewer, "a.txt"));
        assert!(!d.allowed, "{d:?}");
        assert!(!d.errors.is_empty());
    }

    #[test]
    fn shadow_set_is_evaluated_but_not_enforced() {
        let authz = Authz::new().unwrap();
        let mut f = Fixture::new(&authz, None);
        f.policies.shadow = Some(Arc::new(
            authz
                .cedar()
                .compile_tenant(r#"@id("no-reads") forbid (principal, action == Action::"files:read", resource);"#, 2, false)
                .unwrap(),
        ));
        let c = caller(&["files:read"], None);
        let d = authz.decide(&c, Action::ReadFile, f.target(Role::Viewer, "a.txt"));
        assert!(d.allowed);
        let shadow = d.shadow.unwrap();
        assert!(!shadow.allowed);
        assert_eq!(shadow.version, Some(2));
    }

    #[test]
    fn cached_entity_sets_never_mix_paths_or_groups() {
        let authz = Authz::new().unwrap();
        let f = Fixture::new(
            &authz,
            Some(
                r#"@id("no-secret") forbid (principal in Group::"contractor", action, resource in Folder::"ws_1/secret/");"#,
            ),
        );
        let contractor = caller(&["files:read"], None);
        let mut staff = caller(&["files:read"], None);
        Arc::make_mut(&mut staff.principal).groups = vec!["staff".into()];
        for _ in 0..2 {
            let read = |c: &Caller, path| {
                authz
                    .decide(c, Action::ReadFile, f.target(Role::Viewer, path))
                    .allowed
            };
            assert!(!read(&contractor, "secret/a.txt"));
            assert!(read(&contractor, "public/a.txt"));
            assert!(
                read(&staff, "secret/a.txt"),
                "same principal id, other groups"
            );
            assert!(!read(&contractor, "secret/deeper/b.txt"));
        }
    }
}
