//! Wasm policy plugins end to end, with the real components built from `plugins/` for
//! wasm32-wasip2: upload, attach with a config the plugin checks, deny/allow as configured,
//! detach; budgets and their windows; shadow mode; what-if; new versions and hot swaps under
//! load; and the hostile suite (loops, memory bombs, recursion, panics, huge reasons, WASI
//! imports, core modules, other worlds), after which the server must still serve everyone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use warrant_e2e::*;

both_backends!(
    path_guard_confines_agents_until_detached,
    configs_are_checked_by_the_plugin_at_attach,
    delete_budget_runs_out_and_comes_back_after_the_window,
    content_rules_refuse_executables_from_agents,
    plugins_are_asked_only_about_what_they_declare,
    verdicts_are_reused_only_by_the_fields_a_plugin_declared,
    scope_rules_add_a_pseudo_scope,
    shadow_mode_logs_but_does_not_enforce,
    new_versions_take_effect_on_the_next_request_and_must_accept_attached_configs,
    hot_swaps_under_load_never_fail_a_request,
    plugin_management_needs_the_scope_and_stays_in_its_org,
);

// The hostile suite runs once: what it tests is the runtime, not the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_are_refused_or_fail_closed_and_the_server_stays_healthy() {
    hostile_suite(Backend::Sqlite).await
}

/// A built plugin component.
fn wasm(crate_name: &str) -> Vec<u8> {
    plugin_component(crate_name)
}

async fn start(backend: Backend) -> TestServer {
    TestServer::start_for_plugins(backend).await
}

async fn upload(s: &TestServer, token: &str, name: &str, bytes: Vec<u8>) -> Reply {
    s.upload_plugin(token, name, bytes).await
}

/// Uploads as the owner, expecting success; returns the plugin id.
async fn push(s: &TestServer, name: &str, bytes: Vec<u8>) -> String {
    let r = upload(s, &s.owner_token, name, bytes).await;
    assert!(matches!(r.code(), 200 | 201), "{}: {}", r.code(), r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

async fn attach(s: &TestServer, ws: &str, plugin: &str, body: Value) -> Reply {
    s.put_json(
        &s.owner_token,
        &format!("/workspaces/{ws}/plugins/{plugin}"),
        body,
    )
    .await
}

/// A workspace with an editor agent; returns (ws, agent id, agent token).
async fn workspace_with_agent(s: &TestServer, scopes: &[&str]) -> (String, String, String) {
    let ws = s.create_workspace(&s.owner_token, "plugged").await;
    let agent = s.create_agent(&s.owner_token, "worker-bot").await;
    s.add_member(&s.owner_token, &ws, &agent, "editor").await;
    let token = s.agent_token(&agent, scopes).await;
    (ws, agent, token)
}

const AGENT_SCOPES: &[&str] = &[
    "files:read",
    "files:write",
    "files:delete",
    "workspaces:read",
];

async fn detach(s: &TestServer, ws: &str, plugin: &str) {
    s.delete(
        &s.owner_token,
        &format!("/workspaces/{ws}/plugins/{plugin}"),
    )
    .await
    .expect(204);
}

/// Waits until the decision log of `ws` holds an entry matching `pred`.
async fn logged(s: &TestServer, ws: &str, pred: impl Fn(&Value) -> bool) -> Value {
    s.logged_decision(ws, "limit=50", pred).await
}

async fn path_guard_confines_agents_until_detached(backend: Backend) {
    let s = start(backend).await;
    let (ws, _agent, token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    let id = push(&s, "path-guard", wasm("path-guard")).await;
    let config =
        json!({"rules": [{"kinds": ["agent"], "paths": ["drafts/**"], "access": "read-write"}]});
    let a = attach(&s, &ws, &id, json!({"config": config}))
        .await
        .expect_json(200);
    assert_eq!(a["mode"], "enforce");
    assert_eq!(a["version"], 1);

    s.put_file(&token, &ws, "drafts/plan.md", "ok")
        .await
        .expect(201);
    let refused = s.put_file(&token, &ws, "secret/plan.md", "no").await;
    let p = refused.problem(403, "plugin_denied");
    assert_eq!(p["layer"], "plugin");
    assert_eq!(p["plugin"]["name"], "path-guard");
    assert!(
        p["plugin"]["reason"]
            .as_str()
            .unwrap()
            .contains("secret/plan.md"),
        "{p}"
    );
    // Humans are not named by the rule: the plugin abstains.
    s.put_file(&s.owner_token, &ws, "secret/plan.md", "owner")
        .await
        .expect(201);
    // Reading outside the allowed paths is refused too; listing the top is allowed.
    s.get_file(&token, &ws, "secret/plan.md").await.expect(403);
    s.get(&token, &format!("/workspaces/{ws}/files?prefix=drafts/"))
        .await
        .expect(200);

    let d = logged(&s, &ws, |d| {
        d["allowed"] == false && d["layer"] == "plugin" && d["action"] == "files:write"
    })
    .await;
    let verdicts = d["plugins"].as_array().unwrap();
    assert_eq!(verdicts[0]["name"], "path-guard");
    assert_eq!(verdicts[0]["verdict"], "deny");
    assert_eq!(verdicts[0]["mode"], "enforce");
    assert!(verdicts[0]["elapsed_us"].as_u64().is_some());
    // The log keeps the plugin's own reason, as the refusal gave it.
    assert_eq!(verdicts[0]["reason"], p["plugin"]["reason"], "{d}");

    let listed = s
        .get(&s.owner_token, &format!("/workspaces/{ws}/plugins"))
        .await
        .expect_json(200);
    assert_eq!(listed["plugins"][0]["plugin_id"], json!(id));
    assert_eq!(listed["plugins"][0]["config"], config);

    // Still attached: removing the plugin would silently drop a guardrail.
    s.delete(&s.owner_token, &format!("/plugins/{id}"))
        .await
        .problem(409, "conflict");
    detach(&s, &ws, &id).await;
    // Detaching takes effect on the very next request.
    s.put_file(&token, &ws, "secret/other.md", "free")
        .await
        .expect(201);
    s.delete(&s.owner_token, &format!("/plugins/{id}"))
        .await
        .expect(204);
    s.get(&s.owner_token, &format!("/plugins/{id}"))
        .await
        .expect(404);
}

async fn configs_are_checked_by_the_plugin_at_attach(backend: Backend) {
    let s = start(backend).await;
    let (ws, _agent, _token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    let id = push(&s, "path-guard", wasm("path-guard")).await;
    for (config, needle) in [
        (json!({"rules": []}), "at least one rule"),
        (json!({"bogus": 1}), "unknown field"),
        (
            json!({"rules": [{"kinds": ["robot"], "paths": ["a/**"], "access": "read-only"}]}),
            "unknown principal kind",
        ),
        (
            json!({"rules": [{"kinds": ["agent"], "paths": ["/abs"], "access": "read-only"}]}),
            "relative",
        ),
    ] {
        let p = attach(&s, &ws, &id, json!({"config": config}))
            .await
            .problem(422, "unprocessable");
        assert!(
            p["detail"].as_str().unwrap().contains(needle),
            "{needle}: {p}"
        );
    }
    // Bad request shapes are refused before the plugin is asked.
    attach(&s, &ws, &id, json!({"config": {}, "mode": "sometimes"}))
        .await
        .expect(422);
    attach(&s, &ws, "plg_nope", json!({"config": {}}))
        .await
        .expect(404);
    let listed = s
        .get(&s.owner_token, &format!("/workspaces/{ws}/plugins"))
        .await
        .expect_json(200);
    assert_eq!(listed["plugins"], json!([]), "nothing may be attached");
}

async fn delete_budget_runs_out_and_comes_back_after_the_window(backend: Backend) {
    let s = start(backend).await;
    let (ws, agent, token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    for i in 0..5 {
        s.put_file(&s.owner_token, &ws, &format!("f{i}.txt"), "x")
            .await
            .expect(201);
    }
    let id = push(&s, "delete-budget", wasm("delete-budget")).await;
    attach(
        &s,
        &ws,
        &id,
        json!({"config": {"max": 2, "window_seconds": 2, "kinds": ["agent"]}}),
    )
    .await
    .expect(200);

    // What-if does not spend the budget.
    for _ in 0..3 {
        let w = s
            .post(
                &s.owner_token,
                &format!("/workspaces/{ws}/authorize"),
                json!({"principal": agent, "action": "files:delete", "resource": "f0.txt"}),
            )
            .await
            .expect_json(200);
        assert_eq!(w["decision"]["allowed"], true, "{w}");
        assert_eq!(w["decision"]["plugins"][0]["name"], "delete-budget");
    }
    s.delete_file(&token, &ws, "f0.txt").await.expect(204);
    s.delete_file(&token, &ws, "f1.txt").await.expect(204);
    let p = s
        .delete_file(&token, &ws, "f2.txt")
        .await
        .problem(403, "plugin_denied");
    assert!(p["detail"].as_str().unwrap().contains("budget"), "{p}");
    // The owner is not an agent: no budget applies.
    s.delete_file(&s.owner_token, &ws, "f3.txt")
        .await
        .expect(204);
    // The window slides past the spent deletes.
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    s.delete_file(&token, &ws, "f2.txt").await.expect(204);
}

async fn content_rules_refuse_executables_from_agents(backend: Backend) {
    let s = start(backend).await;
    let (ws, _agent, token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    let id = push(&s, "content-rules", wasm("content-rules")).await;
    attach(
        &s,
        &ws,
        &id,
        json!({"config": {"kinds": ["agent"], "deny_extensions": ["exe", "sh"],
                          "deny_content_types": ["application/x-msdownload"], "max_size": 1000}}),
    )
    .await
    .expect(200);
    let p = s
        .put_file(&token, &ws, "tools/setup.EXE", "MZ")
        .await
        .problem(403, "plugin_denied");
    assert!(p["detail"].as_str().unwrap().contains(".exe"), "{p}");
    s.put_file_with(
        &token,
        &ws,
        "tools/blob.bin",
        "MZ",
        &[("content-type", "application/x-msdownload")],
    )
    .await
    .problem(403, "plugin_denied");
    let p = s
        .put_file(&token, &ws, "big.txt", vec![b'a'; 2000])
        .await
        .problem(403, "plugin_denied");
    assert!(p["detail"].as_str().unwrap().contains("2000 bytes"), "{p}");
    // A move cannot rename around the rule.
    s.put_file(&token, &ws, "notes.txt", "fine")
        .await
        .expect(201);
    s.move_file(&token, &ws, "notes.txt", "notes.sh")
        .await
        .expect(403);
    s.put_file(&s.owner_token, &ws, "tools/setup.exe", "MZ")
        .await
        .expect(201);
}

async fn plugins_are_asked_only_about_what_they_declare(backend: Backend) {
    let s = start(backend).await;
    let (ws, _agent, token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    s.put_file(&s.owner_token, &ws, "notes.txt", "hello")
        .await
        .expect(201);

    // content-rules judges writes by the kinds in its config; the attachment says so.
    let rules = push(&s, "content-rules", wasm("content-rules")).await;
    let attached = attach(
        &s,
        &ws,
        &rules,
        json!({"config": {"kinds": ["agent"], "deny_extensions": ["exe"]}}),
    )
    .await
    .expect_json(200);
    assert_eq!(
        attached["judges"],
        json!({"actions": ["files:write", "files:import", "files:move"], "principal_kinds": ["agent"],
               "decided_by": ["principal-kind", "action", "path", "size", "content-type"]})
    );
    s.get_file(&token, &ws, "notes.txt").await.expect(200);
    let read = logged(&s, &ws, |d| {
        d["action"] == "files:read" && d["resource"] == "notes.txt"
    })
    .await;
    assert_eq!(read["plugins"][0]["name"], "content-rules");
    assert_eq!(read["plugins"][0]["verdict"], "skipped", "{read}");
    assert_eq!(read["plugins"][0]["elapsed_us"], 0);
    s.put_file(&token, &ws, "run.exe", "MZ")
        .await
        .problem(403, "plugin_denied");
    detach(&s, &ws, &rules).await;

    // A plugin that denies whatever it is asked about, declaring only writes: reads pass
    // untouched, writes reach it, for users and agents alike.
    let picky = push(&s, "hostile-interest", wasm("hostile-interest")).await;
    attach(
        &s,
        &ws,
        &picky,
        json!({"config": {"declare": "files:write"}}),
    )
    .await
    .expect(200);
    for who in [&token, &s.owner_token] {
        s.get_file(who, &ws, "notes.txt").await.expect(200);
        let p = s
            .put_file(who, &ws, "notes.txt", "changed")
            .await
            .problem(403, "plugin_denied");
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("asked about `files:write`"),
            "{p}"
        );
    }

    // A declaration that traps or never returns refuses the attachment, like a bad config.
    for (declare, why) in [("trap", "it trapped"), ("loop", "ran past its deadline")] {
        let r = attach(&s, &ws, &picky, json!({"config": {"declare": declare}}))
            .await
            .problem(422, "unprocessable");
        let detail = r["detail"].as_str().unwrap();
        assert!(
            detail.contains("declaring which requests it judges") && detail.contains(why),
            "{declare}: {detail}"
        );
    }
    detach(&s, &ws, &picky).await;

    // A plugin without the `interest` export is asked about every request.
    let plain = push(&s, "hostile", wasm("hostile")).await;
    attach(&s, &ws, &plain, json!({"config": {"attack": "none"}}))
        .await
        .expect(200);
    let listed = s
        .get(&s.owner_token, &format!("/workspaces/{ws}/plugins"))
        .await
        .expect_json(200);
    assert_eq!(
        listed["plugins"][0]["judges"],
        json!({"actions": [], "principal_kinds": [], "decided_by": null})
    );
    s.get_file(&token, &ws, "notes.txt").await.expect(200);
    let asked = logged(&s, &ws, |d| {
        d["action"] == "files:read" && d["plugins"][0]["name"] == "hostile"
    })
    .await;
    assert_ne!(asked["plugins"][0]["verdict"], "skipped", "{asked}");
}

/// The decisions of `ws` on `path` (newest first), once at least `n` of them are in the log.
async fn decisions_on(s: &TestServer, ws: &str, path: &str, n: usize) -> Vec<Value> {
    let on = |all: &[Value]| -> Vec<Value> {
        all.iter()
            .filter(|d| d["resource"] == path)
            .cloned()
            .collect()
    };
    on(&s
        .logged_decisions(ws, "limit=100", |all| on(all).len() >= n)
        .await)
}

async fn verdicts_are_reused_only_by_the_fields_a_plugin_declared(backend: Backend) {
    let s = start(backend).await;
    let (ws, _agent, token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    for path in ["notes.txt", "other.txt", "clock.txt"] {
        s.put_file(&s.owner_token, &ws, path, "hello")
            .await
            .expect(201);
    }
    let plugin = push(&s, "hostile-interest", wasm("hostile-interest")).await;
    let a = attach(
        &s,
        &ws,
        &plugin,
        json!({"config": {"declare": "files:read", "reuse": ["path", "action"]}}),
    )
    .await
    .expect_json(200);
    assert_eq!(a["judges"]["decided_by"], json!(["action", "path"]));

    // The plugin is shown only what it declared: no kind, no credential, time 0.
    let first = s.get_file(&token, &ws, "notes.txt").await;
    let detail = first.problem(403, "plugin_denied")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("`files:read` (path `notes.txt`, kind ``, credential ``, time 0)"),
        "{detail}"
    );
    // The owner's read of the same path is the same request in those fields: the verdict is
    // given again, reason and all, and the log says so.
    let again = s.get_file(&s.owner_token, &ws, "notes.txt").await;
    assert_eq!(again.problem(403, "plugin_denied")["detail"], json!(detail));
    // The owner's write and the two reads: waiting for two could see the write and the first
    // read only, before the second is logged.
    let on_notes = decisions_on(&s, &ws, "notes.txt", 3).await;
    let reused: Vec<bool> = on_notes[..2]
        .iter()
        .map(|d| d["plugins"][0]["reused"] == true)
        .collect();
    assert_eq!(reused, [true, false], "newest first: {on_notes:?}");
    assert_eq!(on_notes[0]["plugins"][0]["verdict"], "deny");
    assert_eq!(on_notes[0]["allowed"], false);
    // Another path is another request: evaluated afresh.
    let other = s.get_file(&token, &ws, "other.txt").await;
    assert!(
        other.problem(403, "plugin_denied")["detail"]
            .as_str()
            .unwrap()
            .contains("path `other.txt`")
    );
    let on_other = decisions_on(&s, &ws, "other.txt", 2).await; // the write, the read
    assert_eq!(on_other[0]["plugins"][0].get("reused"), None);
    let stats = s
        .get(&s.owner_token, &format!("/plugins/{plugin}"))
        .await
        .expect_json(200);
    assert_eq!(stats["stats"]["reused"], 1, "{stats}");
    assert_eq!(stats["stats"]["evaluations"], 2, "{stats}");

    // A plugin that asks the host for the time depends on more than the request: its verdicts
    // are never reused. A new configuration starts afresh.
    attach(
        &s,
        &ws,
        &plugin,
        json!({"config": {"declare": "files:read", "reuse": ["path", "action"], "clock": true}}),
    )
    .await
    .expect(200);
    for _ in 0..3 {
        let p = s.get_file(&token, &ws, "clock.txt").await;
        let detail = p.problem(403, "plugin_denied")["detail"].clone();
        assert!(!detail.as_str().unwrap().ends_with("time 0)"), "{detail}");
    }
    let on_clock = decisions_on(&s, &ws, "clock.txt", 4).await; // the write, three reads
    assert!(
        on_clock
            .iter()
            .all(|d| d["plugins"][0].get("reused").is_none()),
        "{on_clock:?}"
    );
    s.get_file(&token, &ws, "notes.txt")
        .await
        .problem(403, "plugin_denied");
    // The owner's write, the two reads above, and this one.
    let on_notes = decisions_on(&s, &ws, "notes.txt", 4).await;
    assert_eq!(on_notes[0]["plugins"][0].get("reused"), None);

    // A declaration that traps refuses the attachment; the one in force stays.
    let r = attach(
        &s,
        &ws,
        &plugin,
        json!({"config": {"declare": "files:read", "reuse": "trap"}}),
    )
    .await
    .problem(422, "unprocessable");
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.contains("declaring on what its verdicts depend") && detail.contains("it trapped"),
        "{detail}"
    );

    // path-guard reuses by who, what and where; the same agent reading twice gets the
    // verdict again.
    detach(&s, &ws, &plugin).await;
    let guard = push(&s, "path-guard", wasm("path-guard")).await;
    let a = attach(
        &s,
        &ws,
        &guard,
        json!({"config": {"rules": [{"kinds": ["agent"], "paths": ["*.txt"], "access": "read-only"}]}}),
    )
    .await
    .expect_json(200);
    assert_eq!(
        a["judges"]["decided_by"],
        json!(["principal-kind", "principal-name", "action", "path"])
    );
    for _ in 0..2 {
        s.get_file(&token, &ws, "other.txt").await.expect(200);
    }
    s.put_file(&token, &ws, "other.txt", "no")
        .await
        .problem(403, "plugin_denied");
    let on_other = decisions_on(&s, &ws, "other.txt", 5).await; // 2 before, 3 here
    let seen: Vec<(&str, bool)> = on_other[..3]
        .iter()
        .map(|d| {
            (
                d["plugins"][0]["verdict"].as_str().unwrap(),
                d["plugins"][0]["reused"] == true,
            )
        })
        .collect();
    assert_eq!(seen, [("deny", false), ("allow", true), ("allow", false)]);
}

async fn scope_rules_add_a_pseudo_scope(backend: Backend) {
    let s = start(backend).await;
    let (ws, agent, token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    let publisher = s
        .agent_token(&agent, &["files:read", "files:write", "shares:write"])
        .await;
    let id = push(&s, "scope-rules", wasm("scope-rules")).await;
    attach(
        &s,
        &ws,
        &id,
        json!({"config": {"rules": [{"name": "reports:publish", "paths": ["reports/**"],
            "actions": ["files:write", "files:delete", "files:move"], "any_scope": ["shares:write"]}]}}),
    )
    .await
    .expect(200);
    let p = s
        .put_file(&token, &ws, "reports/q3.pdf", "%PDF")
        .await
        .problem(403, "plugin_denied");
    assert!(
        p["detail"].as_str().unwrap().contains("reports:publish"),
        "{p}"
    );
    s.put_file(&token, &ws, "drafts/q3.pdf", "%PDF")
        .await
        .expect(201);
    s.put_file(&publisher, &ws, "reports/q3.pdf", "%PDF")
        .await
        .expect(201);
    s.get_file(&token, &ws, "reports/q3.pdf").await.expect(200);
}

async fn shadow_mode_logs_but_does_not_enforce(backend: Backend) {
    let s = start(backend).await;
    let (ws, _agent, token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    let id = push(&s, "path-guard", wasm("path-guard")).await;
    attach(
        &s,
        &ws,
        &id,
        json!({"mode": "shadow",
               "config": {"rules": [{"kinds": ["agent"], "paths": ["drafts/**"], "access": "read-only"}]}}),
    )
    .await
    .expect(200);
    s.put_file(&token, &ws, "secret/x.md", "tried")
        .await
        .expect(201);
    let d = logged(&s, &ws, |d| {
        d["resource"] == "secret/x.md" && d["action"] == "files:write"
    })
    .await;
    assert_eq!(d["allowed"], true);
    assert_eq!(d["plugins"][0]["mode"], "shadow");
    assert_eq!(d["plugins"][0]["verdict"], "deny");
}

/// `bytes` with an empty custom section appended: a valid component that behaves the same
/// but has another digest, so it is a new version.
fn respin(mut bytes: Vec<u8>, tag: u8) -> Vec<u8> {
    bytes.extend_from_slice(&[0x00, 0x03, 0x02, b'v', tag]);
    bytes
}

async fn new_versions_take_effect_on_the_next_request_and_must_accept_attached_configs(
    backend: Backend,
) {
    let s = start(backend).await;
    let (ws, _agent, token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    let first = upload(&s, &s.owner_token, "guard", wasm("path-guard"))
        .await
        .expect_json(201);
    let id = first["id"].as_str().unwrap().to_string();
    attach(
        &s,
        &ws,
        &id,
        json!({"config": {"rules": [{"kinds": ["agent"], "paths": ["drafts/**"], "access": "read-write"}]}}),
    )
    .await
    .expect(200);
    s.put_file(&token, &ws, "drafts/a.md", "1")
        .await
        .expect(201);

    let second = upload(
        &s,
        &s.owner_token,
        "guard",
        respin(wasm("path-guard"), b'2'),
    )
    .await
    .expect_json(200);
    assert_eq!(second["id"], json!(id));
    assert_eq!(second["version"], 2);
    assert_ne!(second["digest"], first["digest"]);
    s.put_file(&token, &ws, "drafts/b.md", "2")
        .await
        .expect(201);
    let d = logged(&s, &ws, |d| d["resource"] == "drafts/b.md").await;
    assert_eq!(d["plugins"][0]["version"], 2, "{d}");

    // A version that refuses the attached configuration is not stored.
    let p = upload(&s, &s.owner_token, "guard", wasm("hostile"))
        .await
        .problem(422, "unprocessable");
    assert!(p["detail"].as_str().unwrap().contains(&ws), "{p}");
    let shown = s
        .get(&s.owner_token, &format!("/plugins/{id}"))
        .await
        .expect_json(200);
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["attached_to"], json!([ws]));
}

async fn hot_swaps_under_load_never_fail_a_request(backend: Backend) {
    let s = Arc::new(start(backend).await);
    let (ws, _agent, token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    s.put_file(&s.owner_token, &ws, "drafts/read-me.md", "hello")
        .await
        .expect(201);
    let id = push(&s, "guard", wasm("path-guard")).await;
    let config = |glob: &str| json!({"config": {"rules": [{"kinds": ["agent"], "paths": ["drafts/**", glob], "access": "read-only"}]}});
    attach(&s, &ws, &id, config("a/**")).await.expect(200);

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (s, ws, token, stop, served) = (
            s.clone(),
            ws.clone(),
            token.clone(),
            stop.clone(),
            served.clone(),
        );
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = s.get_file(&token, &ws, "drafts/read-me.md").await;
                assert_eq!(r.code(), 200, "a read failed during a swap: {}", r.text());
                served.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for round in 0..6u8 {
        upload(
            &s,
            &s.owner_token,
            "guard",
            respin(wasm("path-guard"), round),
        )
        .await
        .expect(200);
        attach(&s, &ws, &id, config(&format!("r{round}/**")))
            .await
            .expect(200);
        s.put_json(
            &s.owner_token,
            &format!("/workspaces/{ws}/plugins/{id}"),
            json!({"config": {"rules": [{"kinds": ["agent"], "paths": ["drafts/**"], "access": "read-write"}]}, "order": i64::from(round)}),
        )
        .await
        .expect(200);
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    assert!(served.load(Ordering::Relaxed) > 0);
    let shown = s
        .get(&s.owner_token, &format!("/plugins/{id}"))
        .await
        .expect_json(200);
    assert_eq!(shown["version"], 7);
}

async fn plugin_management_needs_the_scope_and_stays_in_its_org(backend: Backend) {
    let s = start(backend).await;
    let (ws, _agent, token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    // Without `plugins:admin`: refused by the scope gate, for upload and attach alike.
    upload(&s, &token, "sneaky", wasm("path-guard"))
        .await
        .problem(403, "insufficient_scope");
    let id = push(&s, "path-guard", wasm("path-guard")).await;
    s.put_json(
        &token,
        &format!("/workspaces/{ws}/plugins/{id}"),
        json!({"config": {}}),
    )
    .await
    .problem(403, "insufficient_scope");
    s.delete(&token, &format!("/workspaces/{ws}/plugins/{id}"))
        .await
        .problem(403, "insufficient_scope");
    // An org member with the scope but no admin role: refused by policy.
    let user = s
        .create_user(&s.owner_token, "member@example.com", "Mem Ber")
        .await;
    s.add_member(&s.owner_token, &ws, &user, "editor").await;
    let (_tid, member) = s
        .issue_user_token(
            "member@example.com",
            "m",
            &["plugins:admin", "workspaces:read"],
            None,
        )
        .await;
    upload(&s, &member, "mine", wasm("path-guard"))
        .await
        .problem(403, "policy_denied");
    s.put_json(
        &member,
        &format!("/workspaces/{ws}/plugins/{id}"),
        json!({"config": {}}),
    )
    .await
    .problem(403, "policy_denied");
    // Bad names and bodies.
    upload(&s, &s.owner_token, "Bad%20Name", wasm("path-guard"))
        .await
        .problem(422, "unprocessable");
    upload(&s, &s.owner_token, "empty", Vec::new())
        .await
        .problem(400, "bad_request");
    let big = vec![0u8; 10 * 1024 * 1024 + 1];
    upload(&s, &s.owner_token, "big", big)
        .await
        .problem(413, "payload_too_large");
    let listed = s.get(&s.owner_token, "/plugins").await.expect_json(200);
    let names: Vec<&str> = listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["path-guard"]);
}

async fn hostile_suite(backend: Backend) {
    let s = start(backend).await;
    let (ws, _agent, token) = workspace_with_agent(&s, AGENT_SCOPES).await;
    let calm = s.create_workspace(&s.owner_token, "calm").await;
    s.put_file(&s.owner_token, &calm, "ok.txt", "fine")
        .await
        .expect(201);
    s.put_file(&s.owner_token, &ws, "a.txt", "x")
        .await
        .expect(201);

    // Refused at upload.
    let p = upload(&s, &s.owner_token, "core", b"\0asm\x01\0\0\0".to_vec())
        .await
        .problem(400, "bad_request");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("core WebAssembly module"),
        "{p}"
    );
    upload(&s, &s.owner_token, "junk", b"definitely not wasm".to_vec())
        .await
        .problem(400, "bad_request");
    let p = upload(&s, &s.owner_token, "other", wasm("other-world"))
        .await
        .problem(422, "unprocessable");
    assert!(
        p["detail"].as_str().unwrap().contains("policy-plugin"),
        "{p}"
    );
    let p = upload(&s, &s.owner_token, "snoop", wasm("hostile-wasi"))
        .await
        .problem(422, "unprocessable");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("wasi:filesystem") && detail.contains("wasi:sockets"),
        "{p}"
    );

    // Accepted, then failing closed at evaluation, each within its deadline.
    let id = push(&s, "hostile", wasm("hostile")).await;
    let p = attach(
        &s,
        &ws,
        &id,
        json!({"config": {"attack": "configure-loop"}}),
    )
    .await
    .problem(422, "unprocessable");
    assert!(p["detail"].as_str().unwrap().contains("deadline"), "{p}");
    for (attack, needle) in [
        ("loop", "deadline"),
        ("memory", "memory cap"),
        ("recursion", "stack"),
        ("panic", "trapped"),
    ] {
        attach(&s, &ws, &id, json!({"config": {"attack": attack}}))
            .await
            .expect(200);
        // The deadline clock sleeps after 100 ms without a plugin running: the first plugin
        // after a pause must wake it, or a loop would never be interrupted.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let p = s
            .get_file(&token, &ws, "a.txt")
            .await
            .problem(403, "plugin_denied");
        let reason = p["plugin"]["reason"].as_str().unwrap();
        assert!(reason.contains(needle), "{attack}: {p}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{attack} took {:?}",
            started.elapsed()
        );
        // Meanwhile a workspace without plugins is served as usual.
        s.get_file(&s.owner_token, &calm, "ok.txt")
            .await
            .expect(200);
    }
    attach(&s, &ws, &id, json!({"config": {"attack": "huge-reason"}}))
        .await
        .expect(200);
    let p = s
        .get_file(&token, &ws, "a.txt")
        .await
        .problem(403, "plugin_denied");
    let reason = p["plugin"]["reason"].as_str().unwrap();
    assert!(
        reason.len() < 1200 && reason.contains("cut from"),
        "{} bytes",
        reason.len()
    );

    attach(&s, &ws, &id, json!({"config": {"attack": "log-flood"}}))
        .await
        .expect(200);
    s.get_file(&token, &ws, "a.txt").await.expect(200);
    let floods = s.logs().matches("flood ").count();
    assert!(
        (1..=16).contains(&floods),
        "{floods} plugin log lines kept for one evaluation"
    );

    attach(&s, &ws, &id, json!({"config": {"attack": "none"}}))
        .await
        .expect(200);
    s.get_file(&token, &ws, "a.txt").await.expect(200);
    let shown = s
        .get(&s.owner_token, &format!("/plugins/{id}"))
        .await
        .expect_json(200);
    assert!(shown["stats"]["failures"].as_u64().unwrap() >= 4, "{shown}");
    s.req_root(Method::GET, "/healthz", None)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
}
