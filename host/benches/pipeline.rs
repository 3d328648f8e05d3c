//! The decision pipeline's cost, and the floors it is measured against, in one run.
//!
//! `cargo bench -p warrant --bench pipeline` runs criterion; after it, a percentile pass
//! (`PERCENTILES=1`, default on) times 200 000 single decisions per scenario and prints
//! p50/p99, which criterion's mean-based report does not give.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use criterion::{Criterion, criterion_group};
use warrant::authz::cedar::{CedarContext, CedarPrincipal, CedarResource};
use warrant::authz::{
    Action, Authz, Caller, CredentialKind, Grant, ResourceFacts, ScopeSet, Target, Transport,
    WorkspacePolicies,
};
use warrant::credentials::pat;
use warrant::identity::{OrgId, Principal, PrincipalId, PrincipalKind, Role, WorkspaceId};

/// 50 tenant forbids of the kinds the examples use, spread over the actions.
fn fifty_tenant_policies() -> String {
    let actions = [
        "files:read",
        "files:write",
        "files:delete",
        "files:move",
        "files:list",
    ];
    (0..50)
        .map(|i| {
            let action = actions[i % actions.len()];
            match i % 5 {
                0 => format!("@id(\"p{i}\") forbid (principal is Agent, action == Action::\"{action}\", resource) when {{ context.path like \"restricted-{i}/*\" }};"),
                1 => format!("@id(\"p{i}\") forbid (principal in Group::\"g{i}\", action == Action::\"{action}\", resource) when {{ context.extension == \"x{i}\" }};"),
                2 => format!("@id(\"p{i}\") forbid (principal, action == Action::\"{action}\", resource) when {{ context.tags.contains(\"t{i}\") }};"),
                3 => format!("@id(\"p{i}\") forbid (principal is Agent, action == Action::\"{action}\", resource) when {{ context.transport == \"mcp\" && context.folder == \"f{i}/\" }};"),
                _ => format!("@id(\"p{i}\") forbid (principal, action == Action::\"{action}\", resource) when {{ context has size && context.size > {} }};", 1_000_000 + i),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn caller() -> Caller {
    Caller {
        principal: Principal {
            id: PrincipalId("agt_bench".into()),
            kind: PrincipalKind::Agent,
            name: "bench".into(),
            email: None,
            org_id: OrgId("org_bench".into()),
            created_by: None,
            created_at: 0,
            groups: vec!["staff".into()],
        },
        grant: Grant {
            kind: CredentialKind::Pat,
            credential_id: "tok_bench".into(),
            scopes: ScopeSet::all(),
            workspaces: None,
        },
        client_addr: Some("127.0.0.1".parse().unwrap()),
        transport: Transport::Rest,
    }
}

struct Scenario {
    authz: Authz,
    caller: Caller,
    org: OrgId,
    ws: WorkspaceId,
    rbac: WorkspacePolicies,
    tenant50: WorkspacePolicies,
    facts: ResourceFacts,
}

impl Scenario {
    fn new() -> Self {
        let authz = Authz::new().unwrap();
        let rbac = WorkspacePolicies {
            enforced: authz.cedar().base_compiled(),
            shadow: None,
            plugins: Arc::new([]),
        };
        let tenant50 = WorkspacePolicies {
            enforced: Arc::new(
                authz
                    .cedar()
                    .compile_tenant(&fifty_tenant_policies(), 1, false)
                    .unwrap(),
            ),
            shadow: None,
            plugins: Arc::new([]),
        };
        Scenario {
            authz,
            caller: caller(),
            org: OrgId("org_bench".into()),
            ws: WorkspaceId("ws_bench".into()),
            rbac,
            tenant50,
            facts: ResourceFacts {
                size: None,
                tags: vec!["draft".into()],
                content_type: None,
            },
        }
    }

    fn decide(&self, policies: &WorkspacePolicies) -> bool {
        let target = Target::Workspace {
            org: &self.org,
            workspace: &self.ws,
            role: Some(Role::Editor),
            path: Some("reports/2026/q3/summary.pdf"),
            policies,
            facts: &self.facts,
        };
        self.authz
            .decide(&self.caller, Action::ReadFile, target)
            .allowed
    }
}

fn benches(c: &mut Criterion) {
    let s = Scenario::new();
    assert!(s.decide(&s.rbac) && s.decide(&s.tenant50));

    // The floor: Cedar's own is_authorized on a prebuilt request, base + 50 tenant policies.
    let ctx = CedarContext {
        role: "editor",
        scopes: ScopeSet::all().names(),
        token_kind: "pat",
        principal_kind: "agent",
        transport: "rest",
        client_ip: Some("127.0.0.1".parse().unwrap()),
        time: SystemTime::now(),
        size: None,
        tags: &s.facts.tags,
    };
    let groups = vec!["staff".to_string()];
    let principal = CedarPrincipal {
        kind: PrincipalKind::Agent,
        id: "agt_bench",
        groups: &groups,
    };
    let resource = CedarResource::Workspace {
        org: "org_bench",
        workspace: "ws_bench",
        path: Some("reports/2026/q3/summary.pdf"),
    };
    let query = s
        .authz
        .cedar()
        .query(principal, Action::ReadFile, resource, &ctx)
        .unwrap();

    c.bench_function(
        "floor/cedar_is_authorized_prebuilt_request_base_plus_50",
        |b| {
            b.iter(|| {
                black_box(
                    s.authz
                        .cedar()
                        .authorize(&s.tenant50.enforced, Action::ReadFile, &query)
                        .allowed,
                )
            })
        },
    );
    c.bench_function("floor/cedar_build_request_and_entities", |b| {
        b.iter(|| {
            black_box(
                s.authz
                    .cedar()
                    .query(principal, Action::ReadFile, resource, &ctx)
                    .is_ok(),
            )
        })
    });
    c.bench_function("pipeline/rbac_only", |b| {
        b.iter(|| black_box(s.decide(&s.rbac)))
    });
    c.bench_function("pipeline/base_plus_50_tenant_policies", |b| {
        b.iter(|| black_box(s.decide(&s.tenant50)))
    });

    let token = pat::TokenSecret::generate();
    let secret = token.expose().to_string();
    c.bench_function("credentials/pat_checksum_and_hash", |b| {
        b.iter(|| {
            pat::check_format(black_box(&secret)).unwrap();
            black_box(pat::hash(&secret))
        })
    });
}

/// Times single decisions and prints p50/p99 (criterion reports means of batches).
fn percentiles() {
    if std::env::var("PERCENTILES").is_ok_and(|v| v == "0") {
        return;
    }
    let s = Scenario::new();
    for (name, policies) in [
        ("pipeline/rbac_only", &s.rbac),
        ("pipeline/base_plus_50_tenant_policies", &s.tenant50),
    ] {
        for _ in 0..20_000 {
            black_box(s.decide(policies));
        }
        let mut samples: Vec<u64> = (0..200_000)
            .map(|_| {
                let t = Instant::now();
                black_box(s.decide(policies));
                t.elapsed().as_nanos() as u64
            })
            .collect();
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
        println!(
            "{name:45} p50 {:7.2} µs   p90 {:7.2} µs   p99 {:7.2} µs",
            at(0.5),
            at(0.9),
            at(0.99)
        );
    }
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    percentiles();
}
