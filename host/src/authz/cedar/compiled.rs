//! Policy sets compiled for evaluation: split by action, and each policy's condition built
//! once.
//!
//! Cedar's `Authorizer` rebuilds every policy's condition expression (scope constraints
//! `&&` body, a deep clone) on every request and then assembles a response of hash sets and
//! annotations; on a workspace's set that was a third of the decision. Here the conditions
//! are built when the set is compiled and evaluated with Cedar's own evaluator; what is left
//! of the authorizer is its rule, which is short and fixed by the language: allowed when
//! some permit is satisfied, no forbid is, and (Warrant's fail-closed addition) no policy
//! failed to evaluate. `tests::agrees_with_cedars_authorizer` checks the two agree.

use std::collections::HashMap;
use std::sync::Arc;

use cedar_policy::{ActionConstraint, EntityUid, Policy, PolicySet};
use cedar_policy_core::ast::{self, Effect, Expr, Literal, SlotEnv, ValueKind};
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

use super::{CedarOutcome, CedarQuery};
use crate::authz::Action;

/// One policy, ready to evaluate; shared by every action it applies to, and a base policy by
/// every workspace's set (a condition is a deep expression: a copy per action per workspace
/// added tens of MiB for a hundred workspaces).
pub(super) struct CompiledPolicy {
    /// Its id, as decisions name it.
    id: String,
    effect: Effect,
    /// Scope constraints and body as one expression, built once.
    condition: Expr,
    /// Template slots (always empty: tenant sets hold static policies only).
    slots: SlotEnv,
}

impl CompiledPolicy {
    fn of(policy: &Policy) -> Arc<Self> {
        let core: &ast::Policy = policy.as_ref();
        Arc::new(CompiledPolicy {
            id: core.id().to_string(),
            effect: core.effect(),
            condition: core.condition(),
            slots: core.env().clone(),
        })
    }
}

/// A policy set ready for evaluation: the base role policies plus a tenant's set, split by
/// action once at compile time, because the cost grows with every policy in the set, even
/// those whose action can never match.
pub struct CompiledSet {
    /// The tenant version compiled in (None: base policies only).
    pub version: Option<i64>,
    /// Tells this set apart from every other one made in the process (versions repeat across
    /// workspaces), for [`super::memo`].
    pub(super) instance: u64,
    by_action: HashMap<Action, Vec<Arc<CompiledPolicy>>>,
    /// How many tenant policies it holds.
    pub tenant_policies: usize,
}

/// Compiled policies by id.
pub(super) type CompiledPolicies = HashMap<String, Arc<CompiledPolicy>>;

/// Builds each policy's condition once.
pub(super) fn compile_policies(set: &PolicySet) -> CompiledPolicies {
    set.policies()
        .map(|p| (p.id().to_string(), CompiledPolicy::of(p)))
        .collect()
}

impl CompiledSet {
    /// Merges base and tenant policies and splits them by the actions each can apply to;
    /// `base_compiled` is [`compile_policies`] of `base`, made once per process.
    pub(super) fn new(
        actions: &HashMap<Action, EntityUid>,
        base: &PolicySet,
        base_compiled: &CompiledPolicies,
        tenant: Option<&PolicySet>,
        version: Option<i64>,
    ) -> Self {
        let mut by_action: HashMap<Action, Vec<Arc<CompiledPolicy>>> =
            actions.keys().map(|a| (*a, Vec::new())).collect();
        let all = base
            .policies()
            .chain(tenant.into_iter().flat_map(|t| t.policies()));
        for policy in all {
            let compiled = base_compiled
                .get(&policy.id().to_string())
                .cloned()
                .unwrap_or_else(|| CompiledPolicy::of(policy));
            let applies = |uid: &EntityUid| match policy.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(a) => &a == uid,
                ActionConstraint::In(list) => list.contains(uid),
            };
            for (action, uid) in actions {
                if applies(uid)
                    && let Some(list) = by_action.get_mut(action)
                {
                    list.push(compiled.clone());
                }
            }
        }
        static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        CompiledSet {
            version,
            instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            by_action,
            tenant_policies: tenant.map_or(0, |t| t.policies().count()),
        }
    }

    /// The ids of the policies that can apply to `action`, in evaluation order.
    #[cfg(test)]
    pub(super) fn policy_ids(&self, action: Action) -> Vec<&str> {
        self.by_action
            .get(&action)
            .map(|list| list.iter().map(|p| p.id.as_str()).collect())
            .unwrap_or_default()
    }

    /// Evaluates `query` against the policies of `action`. Any evaluation error denies.
    pub fn authorize(&self, action: Action, query: &CedarQuery) -> CedarOutcome {
        let Some(policies) = self.by_action.get(&action) else {
            return CedarOutcome {
                allowed: false,
                policy_ids: Vec::new(),
                errors: vec![format!(
                    "no policies are compiled for {}",
                    action.cedar_id()
                )],
            };
        };
        let evaluator = Evaluator::new(
            query.request.clone(),
            query.entities.as_ref().as_ref(),
            Extensions::all_available(),
        );
        let mut permits = Vec::new();
        let mut forbids = Vec::new();
        let mut errors = Vec::new();
        let mut failed = Vec::new();
        for p in policies {
            let satisfied = match evaluator.interpret(&p.condition, &p.slots) {
                Ok(v) => match v.value {
                    ValueKind::Lit(Literal::Bool(b)) => Ok(b),
                    // A condition is a chain of `&&`, which only ever yields a boolean.
                    other => Err(format!("the condition evaluated to {other}, not a boolean")),
                },
                Err(e) => Err(e.to_string()),
            };
            match satisfied {
                Ok(true) if p.effect == Effect::Permit => permits.push(p.id.clone()),
                Ok(true) => forbids.push(p.id.clone()),
                Ok(false) => {}
                Err(e) => {
                    // Worded as Cedar's authorizer words it.
                    errors.push(format!("error while evaluating policy `{}`: {e}", p.id));
                    failed.push(p.id.clone());
                }
            }
        }
        // A request refused because a policy failed to evaluate is determined by that policy,
        // not by the permits that were satisfied.
        let (allowed, policy_ids) = if !errors.is_empty() {
            (false, failed)
        } else if !forbids.is_empty() {
            (false, forbids)
        } else {
            (!permits.is_empty(), permits)
        };
        CedarOutcome {
            allowed,
            policy_ids,
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use cedar_policy::{Authorizer, Decision};
    use ref_cast::RefCast;

    use super::super::{
        Author, CedarContext, CedarEngine, CedarPrincipal, CedarResource, parse_policies,
    };
    use super::*;
    use crate::identity::PrincipalKind;

    /// Every example policy, and policies that permit, read every context field, and fail:
    /// each set compiled, beside the whole unsplit set (base and tenant) for Cedar's
    /// `Authorizer`, so the split by action is checked too.
    fn tenant_sets(engine: &CedarEngine) -> Vec<(Arc<CompiledSet>, PolicySet)> {
        let examples =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/examples"))
                .unwrap()
                .map(|d| std::fs::read_to_string(d.unwrap().path().join("policy.cedar")).unwrap())
                .collect::<Vec<_>>()
                .join("\n");
        let extra = r#"
            @id("permit-reports") permit (principal, action == Action::"files:write", resource in Folder::"ws/reports/") when { context.role == "viewer" };
            @id("no-big") forbid (principal, action, resource) when { context has size && context.size > 100 };
            @id("local-only") forbid (principal is Client, action, resource) unless { context has client_ip && context.client_ip.isLoopback() };
            @id("mcp-no-delete") forbid (principal, action == Action::"files:delete", resource) when { context.transport == "mcp" && context.token_kind == "pat" };
            @id("overflow") forbid (principal in Group::"contractor", action == Action::"files:list", resource) when { 9223372036854775807 + 1 > 0 };
            @id("needs-scope") forbid (principal, action, resource) unless { context.scopes.contains("files:read") || context.principal_kind == "user" };
        "#;
        let whole = |tenant: &str| {
            let mut all = engine.base().clone();
            let parsed = parse_policies(
                engine.schema(),
                tenant,
                Author::Tenant {
                    permits_allowed: true,
                },
            )
            .unwrap();
            for p in parsed.policies() {
                all.add(p.clone()).unwrap();
            }
            all
        };
        let with_extra = format!("{examples}\n{extra}");
        vec![
            (engine.base_compiled(), engine.base().clone()),
            (
                Arc::new(engine.compile_tenant(&examples, 1, false).unwrap()),
                whole(&examples),
            ),
            (
                Arc::new(engine.compile_tenant(&with_extra, 2, true).unwrap()),
                whole(&with_extra),
            ),
        ]
    }

    /// The same request built the way Cedar's public API builds one: the context from
    /// restricted expressions (extension constructors included), evaluated by `Context`.
    fn public_request(
        ours: &cedar_policy::Request,
        ctx: &CedarContext<'_>,
        path: Option<&str>,
    ) -> cedar_policy::Request {
        use cedar_policy::{Context, RestrictedExpression as E};
        let path = path.unwrap_or("");
        let (folder, name) = path
            .rfind('/')
            .map_or(("", path), |i| (&path[..=i], &path[i + 1..]));
        let extension = name
            .rsplit_once('.')
            .filter(|(stem, _)| !stem.is_empty())
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .unwrap_or_default();
        let string = |s: &str| E::new_string(s.to_string());
        let mut pairs = vec![
            ("role".to_string(), string(ctx.role)),
            (
                "scopes".to_string(),
                E::new_set(ctx.scopes.iter().map(|s| string(s))),
            ),
            ("token_kind".to_string(), string(ctx.token_kind)),
            ("principal_kind".to_string(), string(ctx.principal_kind)),
            ("transport".to_string(), string(ctx.transport)),
            (
                "time".to_string(),
                E::new_datetime(humantime::format_rfc3339_seconds(ctx.time).to_string()),
            ),
            ("path".to_string(), string(path)),
            ("folder".to_string(), string(folder)),
            ("extension".to_string(), string(&extension)),
            (
                "tags".to_string(),
                E::new_set(ctx.tags.iter().map(|t| string(t))),
            ),
        ];
        if let Some(ip) = ctx.client_ip {
            pairs.push(("client_ip".to_string(), E::new_ip(ip.to_string())));
        }
        if let Some(size) = ctx.size {
            pairs.push(("size".to_string(), E::new_long(size as i64)));
        }
        cedar_policy::Request::new(
            ours.principal().unwrap().clone(),
            ours.action().unwrap().clone(),
            ours.resource().unwrap().clone(),
            Context::from_pairs(pairs).unwrap(),
            None,
        )
        .unwrap()
    }

    /// Decision, determining policies and errors agree with Cedar's own `Authorizer` on the
    /// request Cedar's public API builds, for every action, kind of principal, role, path and
    /// context this grid reaches.
    #[test]
    fn agrees_with_cedars_authorizer() {
        let engine = CedarEngine::builtin().unwrap();
        let sets = tenant_sets(&engine);
        let authorizer = Authorizer::new();
        let noon = SystemTime::UNIX_EPOCH
            + Duration::from_secs(1_764_000_000 / 86_400 * 86_400 + 12 * 3_600);
        let night = noon + Duration::from_secs(12 * 3_600);
        let groups: [Vec<String>; 2] = [vec![], vec!["contractor".into(), "staff".into()]];
        let tags: [Vec<String>; 2] = [vec![], vec!["confidential".into()]];
        let mut compared = 0;
        let mut outcomes = std::collections::HashSet::new();
        for action in Action::ALL {
            for kind in [
                PrincipalKind::User,
                PrincipalKind::Agent,
                PrincipalKind::Client,
            ] {
                for role in ["owner", "admin", "editor", "viewer", "member", ""] {
                    for path in [
                        None,
                        Some("a.txt"),
                        Some("agent-inbox/x.zip"),
                        Some("reports/q3/"),
                        Some("reports/q3/big.tar"),
                    ] {
                        for (i, g) in groups.iter().enumerate() {
                            let t = &tags[i];
                            let (time, size, ip, transport) = if i == 0 {
                                (noon, None, Some("127.0.0.1".parse().unwrap()), "rest")
                            } else {
                                (night, Some(1_000), Some("10.1.2.3".parse().unwrap()), "mcp")
                            };
                            let ctx = CedarContext {
                                role,
                                scopes: if i == 0 { vec!["files:read"] } else { vec![] },
                                token_kind: "pat",
                                principal_kind: kind.as_str(),
                                transport,
                                client_ip: if path.is_none() { None } else { ip },
                                time,
                                size,
                                tags: t,
                                explain: false,
                            };
                            let principal = CedarPrincipal {
                                kind,
                                id: "p_1",
                                groups: g,
                            };
                            let resource = if action.cedar_id().starts_with("org:")
                                || path.is_none() && i == 1
                            {
                                CedarResource::Org { org: "org_1" }
                            } else {
                                CedarResource::Workspace {
                                    org: "org_1",
                                    workspace: "ws",
                                    path,
                                }
                            };
                            let query = engine.query(principal, action, resource, &ctx).unwrap();
                            let reference = public_request(
                                cedar_policy::Request::ref_cast(&query.request),
                                &ctx,
                                path.filter(|_| {
                                    matches!(resource, CedarResource::Workspace { .. })
                                }),
                            );
                            for (set, whole) in &sets {
                                let ours = set.authorize(action, &query);
                                let theirs =
                                    authorizer.is_authorized(&reference, whole, &query.entities);
                                let errors: Vec<String> = theirs
                                    .diagnostics()
                                    .errors()
                                    .map(|e| e.to_string())
                                    .collect();
                                let mut expected_ids: Vec<String> = if errors.is_empty() {
                                    theirs
                                        .diagnostics()
                                        .reason()
                                        .map(|id| id.to_string())
                                        .collect()
                                } else {
                                    theirs.diagnostics().errors().map(|cedar_policy::AuthorizationError::PolicyEvaluationError(e)| e.policy_id().to_string()).collect()
                                };
                                expected_ids.sort();
                                let mut ids = ours.policy_ids.clone();
                                ids.sort();
                                let what = format!("{action:?} {kind:?} {role} {path:?} {g:?}");
                                assert_eq!(
                                    ours.allowed,
                                    theirs.decision() == Decision::Allow && errors.is_empty(),
                                    "{what}"
                                );
                                assert_eq!(ids, expected_ids, "{what}");
                                let (mut a, mut b) = (ours.errors.clone(), errors);
                                a.sort();
                                b.sort();
                                assert_eq!(a, b, "{what}");
                                outcomes.insert((
                                    ours.allowed,
                                    ids.first().cloned(),
                                    !a.is_empty(),
                                ));
                                compared += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(compared > 4_000, "{compared}");
        // The grid reaches permits, forbids, "nothing permits" and evaluation errors alike.
        assert!(outcomes.iter().any(|(allowed, _, _)| *allowed));
        assert!(
            outcomes
                .iter()
                .any(|(allowed, id, _)| !allowed && id.is_none())
        );
        assert!(
            outcomes
                .iter()
                .any(|(_, id, _)| id.as_deref() == Some("permit-reports"))
        );
        assert!(
            outcomes
                .iter()
                .any(|(_, id, _)| id.as_deref() == Some("agents-read-only"))
        );
        assert!(outcomes.iter().any(|(_, _, errored)| *errored));
    }
}
