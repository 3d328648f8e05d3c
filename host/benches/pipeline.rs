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
use warrant::authz::plugins::reuse::{Budget, VerdictMemo};
use warrant::authz::plugins::{
    AttachedPlugin, PluginInterest, PluginMode, PluginRequest, PluginRuntime, PluginSettings,
};
use warrant::authz::{
    Action, Authz, Caller, CredentialKind, Grant, ResourceFacts, ScopeSet, Target, Transport,
    WorkspacePolicies,
};
use warrant::credentials::pat;
use warrant::identity::{OrgId, Principal, PrincipalId, PrincipalKind, Role, WorkspaceId};

/// The allocator the server runs with (`host/src/main.rs`), so decisions cost here what they
/// cost there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        principal: std::sync::Arc::new(Principal {
            id: PrincipalId("agt_bench".into()),
            kind: PrincipalKind::Agent,
            name: "bench".into(),
            email: None,
            org_id: OrgId("org_bench".into()),
            created_by: None,
            created_at: 0,
            groups: vec!["staff".into()],
        }),
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

/// A built example plugin (`./scripts/test` or `scripts/serve` builds them).
fn component(crate_name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/wasm32-wasip2/release")
        .join(format!("{crate_name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the plugins: cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml",
            path.display()
        )
    })
}

/// A plugin attached as the server attaches it: asked about the requests it declares, but
/// evaluated afresh every time (see [`reusing`] for what the server also does).
fn attached(runtime: &PluginRuntime, crate_name: &str, config: &str) -> AttachedPlugin {
    let bytes = component(crate_name);
    let compiled = runtime.compile(crate_name, &bytes).unwrap();
    let (id, name): (Arc<str>, Arc<str>) = (format!("plg_{crate_name}").into(), crate_name.into());
    let interest = runtime.configure(&id, &name, &compiled, config).unwrap();
    AttachedPlugin {
        plugin_id: id,
        name,
        version: 1,
        mode: PluginMode::Enforce,
        config: config.into(),
        memo: never_keeping(&interest),
        interest,
        compiled,
        stats: runtime.stats_of(crate_name),
    }
}

/// For a plugin that declared on what its verdicts depend, a memo that keeps none: every
/// request takes the server's path for a request it has no verdict for (the key, the miss, the
/// plugin shown only what it declared, evaluated afresh), so the scenarios keep measuring an
/// evaluation.
fn never_keeping(interest: &PluginInterest) -> Option<Arc<VerdictMemo>> {
    let fields = interest.decided_by?;
    Some(Arc::new(VerdictMemo::new(fields, Budget::new(0))))
}

/// The same plugin with its verdicts reused by the fields it declared, as the server runs it.
fn reusing(runtime: &PluginRuntime, plugin: AttachedPlugin) -> AttachedPlugin {
    AttachedPlugin {
        memo: runtime.verdict_memo(&plugin.interest),
        ..plugin
    }
}

/// The same plugin asked about every request and shown all of it, as one without the
/// `interest` and `reuse` exports is.
fn asked_always(plugin: AttachedPlugin) -> AttachedPlugin {
    AttachedPlugin {
        interest: PluginInterest::everything(),
        memo: None,
        ..plugin
    }
}

const PATH_GUARD: &str =
    r#"{"rules":[{"kinds":["agent"],"paths":["reports/**"],"access":"read-only"}]}"#;
const CONTENT_RULES: &str = r#"{"kinds":["agent"],"deny_extensions":["exe"],"max_size":1000000}"#;
const SCOPE_RULES: &str = r#"{"rules":[{"name":"reports:publish","paths":["reports/**"],"actions":["files:write"],"any_scope":["shares:write"]}]}"#;

struct Scenario {
    authz: Authz,
    caller: Caller,
    /// The same agent in 92 groups: with the org, workspace, 3 folders and the file, ~100
    /// entities in the request's entity set.
    caller_100_entities: Caller,
    org: OrgId,
    ws: WorkspaceId,
    rbac: WorkspacePolicies,
    tenant50: WorkspacePolicies,
    tenant50_1plugin: WorkspacePolicies,
    tenant50_3plugins: WorkspacePolicies,
    /// The same three as they declare themselves: the two that judge writes are skipped for
    /// the read every scenario makes.
    tenant50_3plugins_as_declared: WorkspacePolicies,
    /// The same, with verdicts reused by the fields each declared: a request seen before
    /// starts no plugin.
    tenant50_3plugins_reused: WorkspacePolicies,
    facts: ResourceFacts,
}

impl Scenario {
    fn new() -> Self {
        let runtime = Arc::new(PluginRuntime::new(PluginSettings::default()).unwrap());
        let guard = attached(&runtime, "path_guard", PATH_GUARD);
        let declared = [
            guard.clone(),
            attached(&runtime, "content_rules", CONTENT_RULES),
            attached(&runtime, "scope_rules", SCOPE_RULES),
        ];
        let three: Arc<[AttachedPlugin]> = declared.clone().map(asked_always).into();
        let reused: Arc<[AttachedPlugin]> = declared.clone().map(|p| reusing(&runtime, p)).into();
        // Cedar is evaluated for every decision here: the scenarios measure the evaluation.
        let authz = Authz::new()
            .unwrap()
            .with_plugins(runtime)
            .without_outcome_memo();
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
        let tenant50_1plugin = WorkspacePolicies {
            plugins: Arc::new([guard]),
            ..tenant50.clone()
        };
        let tenant50_3plugins = WorkspacePolicies {
            plugins: three,
            ..tenant50.clone()
        };
        let tenant50_3plugins_as_declared = WorkspacePolicies {
            plugins: declared.into(),
            ..tenant50.clone()
        };
        let tenant50_3plugins_reused = WorkspacePolicies {
            plugins: reused,
            ..tenant50.clone()
        };
        Scenario {
            authz,
            caller: caller(),
            caller_100_entities: {
                let mut c = caller();
                std::sync::Arc::make_mut(&mut c.principal).groups =
                    (0..92).map(|i| format!("g{i}")).collect();
                c
            },
            org: OrgId("org_bench".into()),
            ws: WorkspaceId("ws_bench".into()),
            rbac,
            tenant50,
            tenant50_1plugin,
            tenant50_3plugins,
            tenant50_3plugins_as_declared,
            tenant50_3plugins_reused,
            facts: ResourceFacts {
                size: None,
                tags: vec!["draft".into()],
                content_type: None,
            },
        }
    }

    fn decide(&self, policies: &WorkspacePolicies) -> bool {
        self.decide_at(policies, "reports/2026/q3/summary.pdf")
    }

    fn decide_at(&self, policies: &WorkspacePolicies, path: &str) -> bool {
        self.decide_as(&self.caller, policies, path)
    }

    fn decide_as(&self, caller: &Caller, policies: &WorkspacePolicies, path: &str) -> bool {
        let target = Target::Workspace {
            org: &self.org,
            workspace: &self.ws,
            role: Some(Role::Editor),
            path: Some(path),
            policies,
            facts: &self.facts,
        };
        self.authz.decide(caller, Action::ReadFile, target).allowed
    }
}

fn benches(c: &mut Criterion) {
    let s = Scenario::new();
    assert!(s.decide(&s.rbac) && s.decide(&s.tenant50));
    assert!(s.decide(&s.tenant50_1plugin) && s.decide(&s.tenant50_3plugins));
    assert!(s.decide(&s.tenant50_3plugins_as_declared));
    assert!(s.decide(&s.tenant50_3plugins_reused));
    assert!(s.decide_as(
        &s.caller_100_entities,
        &s.tenant50_1plugin,
        "reports/2026/q3/summary.pdf"
    ));

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
        explain: false,
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
    // The plugin floors: a bare call on a kept instance, and what the pipeline does per
    // plugin (fresh pooled instance + call).
    let runtime = s.authz.plugin_runtime().unwrap().clone();
    let guard = &s.tenant50_1plugin.plugins[0];
    let groups = vec!["staff".to_string()];
    let request = PluginRequest {
        principal: ("agt_bench", "agent", "bench", &groups),
        credential: ("pat", "tok_bench", ScopeSet::parse(["files:read"]).unwrap()),
        action: "files:read",
        workspace: "ws_bench",
        path: "reports/2026/q3/summary.pdf",
        size: None,
        content_type: None,
        transport: "rest",
        client_address: Some(std::net::Ipv4Addr::LOCALHOST.into()),
        time_ms: 1_764_000_000_000,
        dry_run: false,
    };
    let mut live = runtime.live_instance(guard, &request).unwrap();
    assert!(live.call().unwrap());
    c.bench_function("floor/plugin_call_on_live_instance", |b| {
        b.iter(|| black_box(live.call().unwrap()))
    });
    c.bench_function("floor/plugin_fresh_instance_and_call", |b| {
        b.iter(|| black_box(runtime.run_all(std::slice::from_ref(guard), &request)))
    });
    // The same on both cores at once (time per evaluation, wall clock): perfect scaling
    // would halve the figure above; what is left over is what the threads share in wasmtime
    // and the kernel (the load benchmark sees plugins cost more than single-threaded).
    c.bench_function("floor/plugin_fresh_instance_and_call_two_threads", |b| {
        b.iter_custom(|iters| {
            let started = std::time::Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..2 {
                    scope.spawn(|| {
                        for _ in 0..iters.div_ceil(2) {
                            black_box(runtime.run_all(std::slice::from_ref(guard), &request));
                        }
                    });
                }
            });
            started.elapsed()
        })
    });
    // Upload-to-enforced is dominated by compiling the component (storing it and the next
    // request's reload of the workspace's plugin list are a few database round trips).
    let bytes = component("path_guard");
    let mut n = 0u64;
    let mut g = c.benchmark_group("upload");
    g.sample_size(10);
    g.bench_function(
        format!("compile_component_{}_kib", bytes.len() / 1024),
        |b| {
            b.iter(|| {
                n += 1;
                black_box(runtime.compile(&format!("bench-{n}"), &bytes).is_ok())
            })
        },
    );
    g.finish();
    c.bench_function("pipeline/rbac_only", |b| {
        b.iter(|| black_box(s.decide(&s.rbac)))
    });
    c.bench_function("pipeline/base_plus_50_tenant_policies", |b| {
        b.iter(|| black_box(s.decide(&s.tenant50)))
    });
    c.bench_function("pipeline/base_plus_50_plus_1_plugin", |b| {
        b.iter(|| black_box(s.decide(&s.tenant50_1plugin)))
    });
    // A new path every time: the entity-set cache never hits (the cost of a first request).
    let mut n = 0u64;
    c.bench_function(
        "pipeline/base_plus_50_plus_1_plugin_entity_cache_miss",
        |b| {
            b.iter(|| {
                n += 1;
                black_box(s.decide_at(&s.tenant50_1plugin, &format!("reports/{n}/summary.pdf")))
            })
        },
    );
    // ~100 entities: the principal's 92 groups are all in the request's entity set (the
    // tenant set's `principal in Group::"g…"` forbids test membership against them).
    c.bench_function("pipeline/base_plus_50_plus_1_plugin_100_entities", |b| {
        b.iter(|| {
            black_box(s.decide_as(
                &s.caller_100_entities,
                &s.tenant50_1plugin,
                "reports/2026/q3/summary.pdf",
            ))
        })
    });
    c.bench_function("pipeline/base_plus_50_plus_3_plugins", |b| {
        b.iter(|| black_box(s.decide(&s.tenant50_3plugins)))
    });
    c.bench_function("pipeline/base_plus_50_plus_3_plugins_as_declared", |b| {
        b.iter(|| black_box(s.decide(&s.tenant50_3plugins_as_declared)))
    });
    c.bench_function("pipeline/base_plus_50_plus_3_plugins_reused", |b| {
        b.iter(|| black_box(s.decide(&s.tenant50_3plugins_reused)))
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
        ("pipeline/base_plus_50_plus_1_plugin", &s.tenant50_1plugin),
        ("pipeline/base_plus_50_plus_3_plugins", &s.tenant50_3plugins),
        (
            "pipeline/base_plus_50_plus_3_plugins_as_declared",
            &s.tenant50_3plugins_as_declared,
        ),
        (
            "pipeline/base_plus_50_plus_3_plugins_reused",
            &s.tenant50_3plugins_reused,
        ),
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
