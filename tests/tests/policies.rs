//! Tenant Cedar policies end to end: hot-reloaded per-workspace sets, validation diagnostics,
//! versions and rollback, shadow mode, the what-if endpoint, the decision log, fail-closed
//! evaluation errors, policy swaps under load, and tags and groups reaching Cedar.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use warrant_e2e::*;

both_backends!(
    agents_read_only_set_refuses_agent_writes_but_not_humans_and_rolls_back,
    invalid_sets_are_refused_with_located_diagnostics_and_nothing_is_stored,
    diagnostics_locate_the_offending_policy_however_it_is_written,
    versions_are_listed_newest_first_and_rollback_creates_a_new_version,
    shadow_set_is_reported_not_enforced_until_promoted_and_can_be_discarded,
    what_if_gives_the_production_decision_with_its_context,
    decision_log_records_every_decision_with_filters_and_paging,
    erroring_policy_fails_closed_with_the_error_in_body_and_log,
    erroring_policy_refusal_names_the_erroring_policy,
    policy_swaps_under_load_never_give_a_request_a_half_updated_set,
    tags_and_groups_reach_cedar,
    policy_endpoints_need_the_scope_and_an_admin_role,
);

const WORKER_SCOPES: &[&str] = &[
    "files:read",
    "files:write",
    "files:delete",
    "workspaces:read",
];

const AGENTS_READ_ONLY: &str = r#"// Agents may read, never change.
@id("agents-read-only")
forbid (
  principal is Agent,
  action in [Action::"files:write", Action::"files:delete", Action::"files:move"],
  resource
);
"#;

const BUSINESS_HOURS_DELETES: &str = r#"
@id("deletes-in-business-hours")
forbid (principal, action == Action::"files:delete", resource)
unless {
  context.time.toTime() >= duration("9h") &&
  context.time.toTime() < duration("17h")
};
"#;

/// A principal with a token.
struct Who {
    id: String,
    token_id: String,
    token: String,
}

/// A workspace `policies` holding `notes/a.md` ("v1"), with an editor agent and an editor
/// human (a user with a CLI-issued token).
struct Fx {
    s: TestServer,
    ws: String,
    agent: Who,
    human: Who,
}

async fn fixture(backend: Backend) -> Fx {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "policies").await;
    s.put_file(&s.owner_token, &ws, "notes/a.md", "v1")
        .await
        .expect(201);
    let agent = new_agent(&s, &ws, "writer-bot", "editor", WORKER_SCOPES).await;
    let human_id = s
        .create_user(&s.owner_token, "editor@example.com", "Eddie Editor")
        .await;
    s.add_member(&s.owner_token, &ws, &human_id, "editor").await;
    let (token_id, token) = s
        .issue_user_token("editor@example.com", "editor-cli", WORKER_SCOPES, None)
        .await;
    Fx {
        s,
        ws,
        agent,
        human: Who {
            id: human_id,
            token_id,
            token,
        },
    }
}

/// An agent with `role` in `ws` and a token with `scopes`.
async fn new_agent(s: &TestServer, ws: &str, name: &str, role: &str, scopes: &[&str]) -> Who {
    let id = s.create_agent(&s.owner_token, name).await;
    s.add_member(&s.owner_token, ws, &id, role).await;
    let (token_id, token) = s
        .create_token(
            &s.owner_token,
            json!({"name": format!("{name}-token"), "scopes": scopes, "principal_id": id}),
        )
        .await;
    Who {
        id,
        token_id,
        token,
    }
}

// -- policy helpers -------------------------------------------------------------------------------

async fn put_policies_as(s: &TestServer, token: &str, ws: &str, query: &str, src: &str) -> Reply {
    send(
        s.req(
            Method::PUT,
            &format!("/workspaces/{ws}/policies{query}"),
            Some(token),
        )
        .header("content-type", "text/plain")
        .body(src.to_string()),
    )
    .await
}

/// `PUT …/policies` (enforced) by the owner.
async fn put_policies(s: &TestServer, ws: &str, src: &str) -> Reply {
    put_policies_as(s, &s.owner_token, ws, "", src).await
}

/// `PUT …/policies?mode=shadow` by the owner.
async fn put_shadow(s: &TestServer, ws: &str, src: &str) -> Reply {
    put_policies_as(s, &s.owner_token, ws, "?mode=shadow", src).await
}

/// Asserts the policy-state answer of a change.
#[track_caller]
fn assert_state(v: &Value, ws: &str, version: Value, enforced: Value, shadow: Value) {
    assert_eq!(v["workspace_id"], json!(ws), "{v}");
    assert_eq!(v["version"], version, "version: {v}");
    assert_eq!(v["enforced_version"], enforced, "enforced_version: {v}");
    assert_eq!(v["shadow_version"], shadow, "shadow_version: {v}");
}

/// `GET …/policies/versions` by the owner.
async fn versions(s: &TestServer, ws: &str) -> Vec<Value> {
    let v = s
        .get(
            &s.owner_token,
            &format!("/workspaces/{ws}/policies/versions"),
        )
        .await
        .expect_json(200);
    v.as_array()
        .unwrap_or_else(|| panic!("versions is not an array: {v}"))
        .clone()
}

fn version_numbers(list: &[Value]) -> Vec<i64> {
    list.iter()
        .map(|v| {
            v["version"]
                .as_i64()
                .unwrap_or_else(|| panic!("no version: {v}"))
        })
        .collect()
}

/// `GET …/policies` by the owner: (the `warrant-policy-version` header, the text).
async fn enforced_text(s: &TestServer, ws: &str) -> (String, String) {
    let r = s
        .get(&s.owner_token, &format!("/workspaces/{ws}/policies"))
        .await;
    r.expect(200);
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "content type {ct:?}");
    let version = r
        .header("warrant-policy-version")
        .unwrap_or_else(|| panic!("GET policies lacks warrant-policy-version: {:?}", r.headers));
    (version, r.text())
}

#[track_caller]
fn policy_ids(v: &Value) -> Vec<String> {
    v["policy_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no policy_ids array: {v}"))
        .iter()
        .map(|p| p.as_str().expect("policy id string").to_string())
        .collect()
}

/// Asserts a 403 by Cedar naming `id`; returns the body.
#[track_caller]
fn denied_by(r: &Reply, id: &str) -> Value {
    let v = r.forbidden("policy");
    let ids = policy_ids(&v);
    assert!(
        ids.iter().any(|p| p == id),
        "{}: expected policy {id:?} among {ids:?}: {v}",
        r.what
    );
    v
}

// -- decision log helpers -------------------------------------------------------------------------

async fn decisions(s: &TestServer, ws: &str, query: &[(&str, &str)]) -> Reply {
    send(
        s.req(
            Method::GET,
            &format!("/workspaces/{ws}/decisions"),
            Some(&s.owner_token),
        )
        .query(query),
    )
    .await
}

#[track_caller]
fn records(v: &Value) -> Vec<Value> {
    v["decisions"]
        .as_array()
        .unwrap_or_else(|| panic!("no decisions array: {v}"))
        .clone()
}

/// Polls the decision log (it is written off the request path) until `ready` holds.
async fn await_records(
    s: &TestServer,
    ws: &str,
    query: &[(&str, &str)],
    what: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let ready = &ready;
    let got = poll_until(Duration::from_secs(5), || async move {
        let r = records(&decisions(s, ws, query).await.expect_json(200));
        ready(&r).then_some(r)
    })
    .await;
    match got {
        Some(r) => r,
        None => {
            let last = decisions(s, ws, query).await.text();
            panic!(
                "the decision log never showed {what} within 5 s (query {query:?}); last: {last}"
            )
        }
    }
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no string `{k}` in {v}"))
}

// -- what-if helpers ------------------------------------------------------------------------------

async fn what_if_as(s: &TestServer, token: &str, ws: &str, body: Value) -> Reply {
    s.post(token, &format!("/workspaces/{ws}/authorize"), body)
        .await
}

async fn what_if(s: &TestServer, ws: &str, body: Value) -> Value {
    what_if_as(s, &s.owner_token, ws, body)
        .await
        .expect_json(200)
}

/// Asserts that a real request came out as the what-if answer said it would.
#[track_caller]
fn same_as_production(answer: &Value, real: &Reply) {
    let d = &answer["decision"];
    if d["allowed"] == json!(true) {
        assert!(
            real.status.is_success(),
            "what-if allowed but production said {}: {} (what-if: {answer})",
            real.status,
            real.text()
        );
    } else {
        let layer = d["layer"]
            .as_str()
            .unwrap_or_else(|| panic!("a refusal without layer: {answer}"));
        let v = real.forbidden(layer);
        if layer == "policy" {
            assert_eq!(
                v["policy_ids"], d["policy_ids"],
                "production and what-if name different policies: {v} vs {answer}"
            );
        }
    }
}

// =================================================================================================

async fn agents_read_only_set_refuses_agent_writes_but_not_humans_and_rolls_back(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, f.ws.as_str());
    // Before any tenant set, the editor agent writes.
    s.put_file(&f.agent.token, ws, "notes/a.md", "agent v2")
        .await
        .expect(200);

    let v = put_policies(s, ws, AGENTS_READ_ONLY).await.expect_json(200);
    assert_state(&v, ws, json!(1), json!(1), Value::Null);

    // The very next request uses the new set.
    let v = denied_by(
        &s.put_file(&f.agent.token, ws, "notes/a.md", "agent v3")
            .await,
        "agents-read-only",
    );
    assert!(
        v["reasons"].as_array().is_some_and(|r| !r.is_empty()),
        "a policy refusal gives reasons: {v}"
    );
    denied_by(
        &s.put_file(&f.agent.token, ws, "notes/new.md", "new").await,
        "agents-read-only",
    );
    denied_by(
        &s.delete_file(&f.agent.token, ws, "notes/a.md").await,
        "agents-read-only",
    );
    denied_by(
        &s.move_file(&f.agent.token, ws, "notes/a.md", "notes/b.md")
            .await,
        "agents-read-only",
    );
    // The agent still reads, and nothing it tried happened.
    let r = s.get_file(&f.agent.token, ws, "notes/a.md").await;
    r.expect(200);
    assert_eq!(r.body, b"agent v2");
    s.get_file(&s.owner_token, ws, "notes/new.md")
        .await
        .expect(404);
    s.get_file(&s.owner_token, ws, "notes/b.md")
        .await
        .expect(404);

    // A human editor keeps what the role grants.
    s.put_file(&f.human.token, ws, "notes/a.md", "human v3")
        .await
        .expect(200);
    s.put_file(&f.human.token, ws, "notes/human.md", "mine")
        .await
        .expect(201);
    s.move_file(&f.human.token, ws, "notes/human.md", "notes/moved.md")
        .await
        .expect(200);

    let (version, text) = enforced_text(s, ws).await;
    assert_eq!(version, "1");
    assert_eq!(text, AGENTS_READ_ONLY);

    // Roll back to the base role policies alone: the agent writes again at once.
    let v = s
        .post(
            &s.owner_token,
            &format!("/workspaces/{ws}/policies/rollback"),
            json!({"version": 0}),
        )
        .await
        .expect_json(200);
    assert_eq!(v["enforced_version"], Value::Null, "{v}");
    assert_eq!(v["shadow_version"], Value::Null, "{v}");
    s.put_file(&f.agent.token, ws, "notes/a.md", "agent v4")
        .await
        .expect(200);
    s.delete_file(&f.agent.token, ws, "notes/moved.md")
        .await
        .expect(204);
    let (version, text) = enforced_text(s, ws).await;
    assert_eq!(
        version, "0",
        "no tenant set is enforced after rollback to 0"
    );
    assert_eq!(text, "");
    let list = versions(s, ws).await;
    assert!(
        list.iter().all(|v| v["enforced"] == json!(false)),
        "nothing is enforced after rollback to 0: {list:?}"
    );
    assert!(
        version_numbers(&list).contains(&1),
        "history keeps v1: {list:?}"
    );
}

/// A named policy source and the `(line, policy id)` of each diagnostic it must produce.
type Case = (
    &'static str,
    &'static str,
    Vec<(usize, Option<&'static str>)>,
);

/// Checks a 400 `invalid_policy` against the source: one diagnostic per expected
/// `(line, policy id)`, each located (line, column, the source line as snippet) with a message.
#[track_caller]
fn assert_diagnostics(r: &Reply, src: &str, expected: &[(usize, Option<&str>)]) {
    let v = r.problem(400, "invalid_policy");
    let diags = v["diagnostics"]
        .as_array()
        .unwrap_or_else(|| panic!("no diagnostics array: {v}"));
    assert_eq!(
        diags.len(),
        expected.len(),
        "expected {} diagnostic(s) for\n{src}\ngot: {v}",
        expected.len()
    );
    let lines: Vec<&str> = src.lines().collect();
    let mut seen = Vec::new();
    for d in diags {
        let line = d["line"]
            .as_u64()
            .unwrap_or_else(|| panic!("diagnostic without a line: {d}\nsource:\n{src}"))
            as usize;
        let column = d["column"]
            .as_u64()
            .unwrap_or_else(|| panic!("diagnostic without a column: {d}\nsource:\n{src}"))
            as usize;
        assert!(
            (1..=lines.len()).contains(&line),
            "line {line} is outside the source: {d}"
        );
        let text = lines[line - 1].trim_end();
        assert!(
            column >= 1 && column <= text.chars().count() + 1,
            "column {column} is outside line {line} ({text:?}): {d}"
        );
        assert_eq!(
            d["snippet"],
            json!(text),
            "the snippet is the offending line: {d}"
        );
        assert!(
            d["message"].as_str().is_some_and(|m| !m.trim().is_empty()),
            "diagnostic without a message: {d}"
        );
        seen.push((line, d["policy_id"].clone()));
    }
    seen.sort_by_key(|(l, _)| *l);
    let mut want: Vec<(usize, Option<&str>)> = expected.to_vec();
    want.sort_by_key(|(l, _)| *l);
    for ((line, id), (want_line, want_id)) in seen.iter().zip(&want) {
        assert_eq!(
            line, want_line,
            "diagnostic lines {seen:?}, expected {want:?}: {v}\nsource:\n{src}"
        );
        if let Some(want_id) = want_id {
            assert_eq!(id, &json!(want_id), "policy id of the diagnostic: {v}");
        }
    }
}

async fn invalid_sets_are_refused_with_located_diagnostics_and_nothing_is_stored(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, f.ws.as_str());
    put_policies(s, ws, AGENTS_READ_ONLY).await.expect_json(200);
    let before = versions(s, ws).await;
    assert_eq!(version_numbers(&before), vec![1]);

    let cases: Vec<Case> = vec![
        (
            "syntax error",
            "@id(\"broken\")\nforbid (principal, action, resource)\nwhen { context.path == };\n",
            vec![(3, None)],
        ),
        (
            "two syntax errors",
            "@id(\"a\")\nforbid (principal, action, resource) when { context.path == };\n\
             @id(\"b\")\nforbid (principal, action, resource) when { context.path == };\n",
            vec![(2, None), (4, None)],
        ),
        (
            "unknown entity type",
            "@id(\"robots\")\nforbid (principal is Robot, action, resource);\n",
            vec![(2, Some("robots"))],
        ),
        (
            "unknown entity type in a Group-like clause",
            "@id(\"teams\")\nforbid (principal in Team::\"contractor\", action == Action::\"files:read\", resource);\n",
            vec![(2, Some("teams"))],
        ),
        (
            "size compared with a string",
            "@id(\"size-as-text\")\nforbid (principal, action == Action::\"files:write\", resource)\n\
             when { context has size && context.size == \"x\" };\n",
            vec![(3, Some("size-as-text"))],
        ),
        (
            "path compared with a number",
            "@id(\"path-as-number\")\nforbid (principal, action == Action::\"files:read\", resource)\n\
             when { context.path > 3 };\n",
            vec![(3, Some("path-as-number"))],
        ),
        (
            "tenant permit without the org switch",
            "@id(\"let-agents-in\")\npermit (principal is Agent, action, resource);\n",
            vec![(1, Some("let-agents-in"))],
        ),
        (
            "reserved base/ id",
            "@id(\"base/override\")\nforbid (principal, action == Action::\"files:read\", resource);\n",
            vec![(1, Some("base/override"))],
        ),
        (
            "two validation errors in two policies",
            "// two mistakes\n@id(\"first\")\nforbid (principal is Robot, action, resource);\n\n\
             @id(\"second\")\nforbid (principal, action == Action::\"files:read\", resource)\n\
             when { context.path > 3 };\n",
            vec![(3, Some("first")), (7, Some("second"))],
        ),
        (
            "a permit and a type error",
            "@id(\"widen\")\npermit (principal, action, resource);\n\n\
             @id(\"bad-type\")\nforbid (principal, action == Action::\"files:write\", resource)\n\
             when { context.extension == 7 };\n",
            vec![(1, Some("widen")), (6, Some("bad-type"))],
        ),
        (
            "a valid policy does not hide an invalid one",
            "@id(\"fine\")\nforbid (principal is Agent, action == Action::\"files:delete\", resource);\n\
             @id(\"not-fine\")\nforbid (principal is Robot, action, resource);\n",
            vec![(4, Some("not-fine"))],
        ),
    ];
    for (name, src, expected) in &cases {
        let r = put_policies(s, ws, src).await;
        eprintln!("{name}: {}", r.text());
        assert_diagnostics(&r, src, expected);
        // Nothing was stored: same history, same enforced text.
        let now = versions(s, ws).await;
        assert_eq!(
            now, before,
            "{name}: the history changed after a refused set"
        );
        let (version, text) = enforced_text(s, ws).await;
        assert_eq!(version, "1", "{name}");
        assert_eq!(text, AGENTS_READ_ONLY, "{name}");
    }
    // Refused shadow candidates are not stored either.
    let src = "@id(\"robots\")\nforbid (principal is Robot, action, resource);\n";
    let r = put_policies_as(s, &s.owner_token, ws, "?mode=shadow", src).await;
    assert_diagnostics(&r, src, &[(2, Some("robots"))]);
    assert_eq!(versions(s, ws).await, before);

    // The previous set is still the one enforced.
    denied_by(
        &s.put_file(&f.agent.token, ws, "notes/a.md", "x").await,
        "agents-read-only",
    );
    s.put_file(&f.human.token, ws, "notes/a.md", "human")
        .await
        .expect(200);

    // Once the organisation owner allows tenant permits, a permit set is accepted; `base/`
    // stays reserved.
    let org = s
        .send_json(
            Method::PATCH,
            &s.owner_token,
            &format!("/orgs/{}", s.org_id),
            json!({"allow_tenant_permits": true}),
        )
        .await
        .expect_json(200);
    assert_eq!(org["allow_tenant_permits"], json!(true), "{org}");
    let permit = "@id(\"let-agents-in\")\npermit (principal is Agent, action == Action::\"files:read\", resource);\n";
    let v = put_policies(s, ws, permit).await.expect_json(200);
    assert_state(&v, ws, json!(2), json!(2), Value::Null);
    let src = "@id(\"base/override\")\npermit (principal, action, resource);\n";
    assert_diagnostics(
        &put_policies(s, ws, src).await,
        src,
        &[(1, Some("base/override"))],
    );
    assert_eq!(version_numbers(&versions(s, ws).await), vec![2, 1]);
}

/// Diagnostics that come from Warrant's own checks (permits, reserved or duplicate ids) must
/// point at the policy they are about, whether or not it carries `@id("…")` written exactly so.
async fn diagnostics_locate_the_offending_policy_however_it_is_written(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "locate").await;
    let cases: Vec<Case> = vec![
        (
            "a permit without @id",
            "@id(\"ok\")\nforbid (principal, action == Action::\"files:delete\", resource);\n\n\
             permit (principal, action, resource);\n",
            vec![(4, None)],
        ),
        (
            "a permit whose @id has a space before the parenthesis",
            "@id(\"ok\")\nforbid (principal, action == Action::\"files:delete\", resource);\n\n\
             @id (\"wide\")\npermit (principal, action, resource);\n",
            vec![(4, Some("wide"))],
        ),
        (
            "a permit whose id is also mentioned in a comment above",
            "// we removed @id(\"wide\") last week\n@id(\"ok\")\n\
             forbid (principal, action == Action::\"files:delete\", resource);\n\n\
             @id(\"wide\")\npermit (principal, action, resource);\n",
            vec![(5, Some("wide"))],
        ),
        (
            "a duplicate id",
            "@id(\"dup\")\nforbid (principal, action == Action::\"files:delete\", resource);\n\
             @id(\"dup\")\nforbid (principal, action == Action::\"files:write\", resource);\n",
            vec![(3, Some("dup"))],
        ),
    ];
    let mut failures = Vec::new();
    for (name, src, expected) in &cases {
        let r = put_policies(&s, &ws, src).await;
        eprintln!("{name}: {}", r.text());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_diagnostics(&r, src, expected);
        }));
        if outcome.is_err() {
            failures.push(format!("{name}: {}", r.text()));
        }
    }
    assert!(
        versions(&s, &ws).await.is_empty(),
        "a refused set was stored"
    );
    assert!(
        failures.is_empty(),
        "diagnostics not located at the offending policy:\n{}",
        failures.join("\n")
    );
}

async fn versions_are_listed_newest_first_and_rollback_creates_a_new_version(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, f.ws.as_str());
    let v1 = AGENTS_READ_ONLY;
    let v2 =
        "@id(\"no-deletes\")\nforbid (principal, action == Action::\"files:delete\", resource);\n";
    let v3 = "@id(\"no-secret-reads\")\nforbid (principal, action == Action::\"files:read\", resource)\nwhen { context.folder == \"secret/\" };\n";
    for (i, src) in [v1, v2, v3].iter().enumerate() {
        let n = json!(i + 1);
        let v = put_policies(s, ws, src).await.expect_json(200);
        assert_state(&v, ws, n.clone(), n, Value::Null);
    }
    let list = versions(s, ws).await;
    assert_eq!(
        version_numbers(&list),
        vec![3, 2, 1],
        "newest first: {list:?}"
    );
    for v in &list {
        assert_eq!(v["author"], json!(s.owner_id), "{v}");
        assert!(
            v["created_at"].as_str().is_some_and(|t| t.contains('T')),
            "created_at is RFC 3339: {v}"
        );
        assert_eq!(v["note"], Value::Null, "{v}");
        assert_eq!(v["shadow"], json!(false), "{v}");
        assert_eq!(
            v["enforced"],
            json!(v["version"] == json!(3)),
            "only v3 is enforced: {v}"
        );
    }
    // v3 is in force: the agent writes.
    s.put_file(&f.agent.token, ws, "notes/a.md", "agent")
        .await
        .expect(200);

    let v = s
        .post(
            &s.owner_token,
            &format!("/workspaces/{ws}/policies/rollback"),
            json!({"version": 1}),
        )
        .await
        .expect_json(200);
    assert_state(&v, ws, json!(4), json!(4), Value::Null);
    let list = versions(s, ws).await;
    assert_eq!(version_numbers(&list), vec![4, 3, 2, 1], "{list:?}");
    assert_eq!(list[0]["note"], json!("rollback to v1"), "{:?}", list[0]);
    assert_eq!(list[0]["author"], json!(s.owner_id));
    for v in &list {
        assert_eq!(
            v["enforced"],
            json!(v["version"] == json!(4)),
            "only v4 is enforced: {v}"
        );
    }
    let (version, text) = enforced_text(s, ws).await;
    assert_eq!(version, "4");
    assert_eq!(text, v1, "GET returns v1's source after rollback to v1");
    // And v1's rule is what is enforced now.
    denied_by(
        &s.put_file(&f.agent.token, ws, "notes/a.md", "agent again")
            .await,
        "agents-read-only",
    );

    // Rolling back to a version that does not exist changes nothing.
    s.post(
        &s.owner_token,
        &format!("/workspaces/{ws}/policies/rollback"),
        json!({"version": 99}),
    )
    .await
    .not_found();
    let r = s
        .post(
            &s.owner_token,
            &format!("/workspaces/{ws}/policies/rollback"),
            json!({"version": "one"}),
        )
        .await;
    assert!(
        matches!(r.code(), 400 | 422),
        "a malformed rollback is bad input: {} {}",
        r.status,
        r.text()
    );
    r.assert_problem_shape();
    assert_eq!(version_numbers(&versions(s, ws).await), vec![4, 3, 2, 1]);
    assert_eq!(enforced_text(s, ws).await.0, "4");
}

async fn shadow_set_is_reported_not_enforced_until_promoted_and_can_be_discarded(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, f.ws.as_str());
    let report_path = format!("/workspaces/{ws}/policies/shadow-report");
    let candidate = "@id(\"shadow-agents-no-reads\")\nforbid (principal is Agent, action == Action::\"files:read\", resource);\n";

    // Nothing to promote or discard yet.
    s.post(
        &s.owner_token,
        &format!("/workspaces/{ws}/policies/shadow/promote"),
        json!({}),
    )
    .await
    .not_found();
    s.delete(&s.owner_token, &format!("/workspaces/{ws}/policies/shadow"))
        .await
        .not_found();
    let empty = s.get(&s.owner_token, &report_path).await.expect_json(200);
    assert_eq!(empty["shadow_version"], Value::Null, "{empty}");

    let v = put_shadow(s, ws, candidate).await.expect_json(200);
    assert_state(&v, ws, json!(1), Value::Null, json!(1));
    let r = s
        .get(&s.owner_token, &format!("/workspaces/{ws}/policies"))
        .await;
    r.expect(200);
    assert_eq!(r.header("warrant-policy-version").as_deref(), Some("0"));
    assert_eq!(r.header("warrant-shadow-version").as_deref(), Some("1"));
    assert_eq!(
        r.text(),
        "",
        "the shadow candidate is not the enforced text"
    );
    let list = versions(s, ws).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["shadow"], json!(true), "{list:?}");
    assert_eq!(list[0]["enforced"], json!(false), "{list:?}");

    // Humans read (the candidate agrees), then the agent reads three times: not enforced.
    for _ in 0..2 {
        s.get_file(&f.human.token, ws, "notes/a.md")
            .await
            .expect(200);
    }
    for _ in 0..3 {
        let r = s.get_file(&f.agent.token, ws, "notes/a.md").await;
        r.expect(200);
        assert_eq!(r.body, b"v1");
    }

    let got = poll_until(Duration::from_secs(5), || async {
        let v = s.get(&s.owner_token, &report_path).await.expect_json(200);
        let n: i64 = v["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter(|g| g["principal_kind"] == json!("agent"))
                    .map(|g| g["count"].as_i64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        (n >= 3).then_some(v)
    })
    .await;
    let report = got.unwrap_or_else(|| {
        panic!("the shadow report never counted the agent's three reads within 5 s")
    });
    assert_eq!(report["shadow_version"], json!(1), "{report}");
    let groups = report["groups"].as_array().expect("groups");
    assert_eq!(
        groups,
        &vec![json!({
            "action": "files:read",
            "principal_kind": "agent",
            "enforced_allowed": true,
            "shadow_allowed": false,
            "count": 3,
        })],
        "only the agent's reads disagree: {report}"
    );
    assert_eq!(report["disagreements"], json!(3), "{report}");
    let evaluated = report["evaluated"].as_i64().expect("evaluated");
    assert!(
        evaluated >= 5,
        "the human reads were evaluated too ({evaluated}): {report}"
    );
    let samples = report["samples"].as_array().expect("samples");
    assert!(
        !samples.is_empty(),
        "samples of the disagreements: {report}"
    );
    for d in samples {
        assert_eq!(d["principal_id"], json!(f.agent.id), "{d}");
        assert_eq!(d["principal_kind"], json!("agent"), "{d}");
        assert_eq!(d["action"], json!("files:read"), "{d}");
        assert_eq!(d["resource"], json!("notes/a.md"), "{d}");
        assert_eq!(d["allowed"], json!(true), "{d}");
        assert_eq!(d["shadow_allowed"], json!(false), "{d}");
        assert_eq!(d["shadow_version"], json!(1), "{d}");
        assert_eq!(
            d["shadow_policy_ids"],
            json!(["shadow-agents-no-reads"]),
            "{d}"
        );
    }
    // The decision log's own disagreement filter agrees.
    let dis = records(
        &decisions(s, ws, &[("disagreements", "true")])
            .await
            .expect_json(200),
    );
    assert_eq!(dis.len(), 3, "{dis:?}");
    assert!(
        dis.iter()
            .all(|d| d["principal_id"] == json!(f.agent.id) && d["shadow_allowed"] == json!(false)),
        "{dis:?}"
    );

    // Promote: now enforced, on the very next request.
    let v = s
        .post(
            &s.owner_token,
            &format!("/workspaces/{ws}/policies/shadow/promote"),
            json!({}),
        )
        .await
        .expect_json(200);
    assert_eq!(v["enforced_version"], json!(1), "{v}");
    assert_eq!(v["shadow_version"], Value::Null, "{v}");
    denied_by(
        &s.get_file(&f.agent.token, ws, "notes/a.md").await,
        "shadow-agents-no-reads",
    );
    s.get_file(&f.human.token, ws, "notes/a.md")
        .await
        .expect(200);
    let list = versions(s, ws).await;
    assert_eq!(list[0]["enforced"], json!(true), "{list:?}");
    assert_eq!(list[0]["shadow"], json!(false), "{list:?}");
    let (version, text) = enforced_text(s, ws).await;
    assert_eq!(version, "1");
    assert_eq!(text, candidate);

    // A second candidate, tried and then discarded: never enforced, no longer evaluated.
    let humans_no_reads = "@id(\"shadow-humans-no-reads\")\nforbid (principal is User, action == Action::\"files:read\", resource);\n";
    let v = put_shadow(s, ws, humans_no_reads).await.expect_json(200);
    assert_state(&v, ws, json!(2), json!(1), json!(2));
    s.get_file(&f.human.token, ws, "notes/a.md")
        .await
        .expect(200);
    let v = s
        .delete(&s.owner_token, &format!("/workspaces/{ws}/policies/shadow"))
        .await
        .expect_json(200);
    assert_eq!(v["enforced_version"], json!(1), "{v}");
    assert_eq!(v["shadow_version"], Value::Null, "{v}");
    s.get_file(&f.human.token, ws, "notes/a.md")
        .await
        .expect(200);
    let report = s.get(&s.owner_token, &report_path).await.expect_json(200);
    assert_eq!(report["shadow_version"], Value::Null, "{report}");
    assert_eq!(report["groups"], json!([]), "{report}");
    let r = s
        .get(&s.owner_token, &format!("/workspaces/{ws}/policies"))
        .await;
    assert_eq!(r.header("warrant-shadow-version"), None);
    let list = versions(s, ws).await;
    assert_eq!(version_numbers(&list), vec![2, 1]);
    assert!(list.iter().all(|v| v["shadow"] == json!(false)), "{list:?}");
    // The human's five reads: two before, one after promotion, one beside candidate 2, one
    // after the discard (which no candidate saw).
    let human_reads = await_records(
        s,
        ws,
        &[("principal", &f.human.id), ("action", "files:read")],
        "the human's five reads",
        |r| r.len() >= 5,
    )
    .await;
    assert_eq!(human_reads.len(), 5, "{human_reads:?}");
    assert_eq!(
        human_reads[0]["shadow_version"],
        Value::Null,
        "{:?}",
        human_reads[0]
    );
    assert_eq!(human_reads[0]["policy_version"], json!(1));
    assert_eq!(
        human_reads[1]["shadow_version"],
        json!(2),
        "{:?}",
        human_reads[1]
    );
    assert_eq!(human_reads[1]["shadow_allowed"], json!(false));
    assert_eq!(human_reads[1]["allowed"], json!(true));
}

async fn what_if_gives_the_production_decision_with_its_context(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, f.ws.as_str());
    let set = format!("{AGENTS_READ_ONLY}{BUSINESS_HOURS_DELETES}");
    put_policies(s, ws, &set).await.expect_json(200);

    // The agent writing: refused by the tenant forbid, exactly as production refuses it.
    let a = what_if(
        s,
        ws,
        json!({"principal": f.agent.id, "action": "files:write", "resource": "notes/a.md"}),
    )
    .await;
    assert_eq!(a["principal"], json!(f.agent.id), "{a}");
    assert_eq!(a["role"], json!("editor"), "{a}");
    assert_eq!(a["action"], json!("files:write"), "{a}");
    assert_eq!(a["resource"], json!("notes/a.md"), "{a}");
    let d = &a["decision"];
    assert_eq!(d["allowed"], json!(false), "{a}");
    assert_eq!(d["layer"], json!("policy"), "{a}");
    assert_eq!(d["policy_ids"], json!(["agents-read-only"]), "{a}");
    assert_eq!(d["errors"], json!([]), "{a}");
    assert_eq!(d["policy_version"], json!(1), "{a}");
    let ctx = &d["context"];
    for (k, want) in [
        ("principal_kind", "agent"),
        ("role", "editor"),
        ("path", "notes/a.md"),
        ("folder", "notes/"),
        ("extension", "md"),
        ("transport", "rest"),
        ("token_kind", "pat"),
    ] {
        assert_eq!(ctx[k], json!(want), "context.{k}: {a}");
    }
    assert!(ctx["time"].is_string(), "context.time: {a}");
    assert!(ctx["scopes"].is_array(), "context.scopes: {a}");
    same_as_production(
        &a,
        &s.put_file(&f.agent.token, ws, "notes/a.md", "agent").await,
    );

    let a = what_if(
        s,
        ws,
        json!({"principal": f.agent.id, "action": "files:read", "resource": "notes/a.md"}),
    )
    .await;
    assert_eq!(a["decision"]["allowed"], json!(true), "{a}");
    assert!(
        policy_ids(&a["decision"]).contains(&"base/viewer-reads".to_string()),
        "{a}"
    );
    same_as_production(&a, &s.get_file(&f.agent.token, ws, "notes/a.md").await);

    let a = what_if(
        s,
        ws,
        json!({"principal": f.human.id, "action": "files:write", "resource": "notes/a.md"}),
    )
    .await;
    assert_eq!(a["decision"]["allowed"], json!(true), "{a}");
    assert_eq!(a["decision"]["context"]["principal_kind"], json!("user"));
    same_as_production(
        &a,
        &s.put_file(&f.human.token, ws, "notes/a.md", "human").await,
    );

    // A hypothetical time flips a time-based rule; nothing is enforced.
    let night = what_if(
        s,
        ws,
        json!({"principal": f.human.id, "action": "files:delete", "resource": "notes/a.md",
               "context": {"time": "2026-11-26T23:00:00Z"}}),
    )
    .await;
    assert_eq!(night["decision"]["allowed"], json!(false), "{night}");
    assert_eq!(
        night["decision"]["policy_ids"],
        json!(["deletes-in-business-hours"]),
        "{night}"
    );
    assert_eq!(
        night["decision"]["context"]["time"],
        json!("2026-11-26T23:00:00Z"),
        "{night}"
    );
    let day = what_if(
        s,
        ws,
        json!({"principal": f.human.id, "action": "files:delete", "resource": "notes/a.md",
               "context": {"time": "2026-11-26T10:00:00Z"}}),
    )
    .await;
    assert_eq!(day["decision"]["allowed"], json!(true), "{day}");
    assert!(
        policy_ids(&day["decision"]).contains(&"base/editor-writes".to_string()),
        "{day}"
    );
    s.get_file(&s.owner_token, ws, "notes/a.md")
        .await
        .expect(200);

    // Every assumed context value is reported back as used.
    let a = what_if(
        s,
        ws,
        json!({"principal": f.human.id, "action": "files:write", "resource": "inbox/tool.SH",
               "context": {"client_ip": "10.1.2.3", "size": 5, "tags": ["draft"],
                           "token_kind": "oauth", "transport": "mcp",
                           "time": "2026-11-26T10:00:00Z"}}),
    )
    .await;
    let ctx = &a["decision"]["context"];
    assert_eq!(ctx["client_ip"], json!("10.1.2.3"), "{a}");
    assert_eq!(ctx["size"], json!(5), "{a}");
    assert_eq!(ctx["tags"], json!(["draft"]), "{a}");
    assert_eq!(ctx["token_kind"], json!("oauth"), "{a}");
    assert_eq!(ctx["transport"], json!("mcp"), "{a}");
    assert_eq!(ctx["extension"], json!("sh"), "{a}");
    assert_eq!(ctx["folder"], json!("inbox/"), "{a}");

    // Hypothetical scopes: the scope gate answers before Cedar.
    let a = what_if(
        s,
        ws,
        json!({"principal": f.human.id, "action": "files:write", "resource": "notes/a.md",
               "context": {"scopes": ["files:read"]}}),
    )
    .await;
    assert_eq!(a["decision"]["allowed"], json!(false), "{a}");
    assert_eq!(a["decision"]["layer"], json!("scope"), "{a}");
    assert_eq!(a["decision"]["required_scope"], json!("files:write"), "{a}");

    // A principal of the organisation without a role here is refused, not an error.
    let stranger = s.create_agent(&s.owner_token, "stranger-bot").await;
    let a = what_if(
        s,
        ws,
        json!({"principal": stranger, "action": "files:read", "resource": "notes/a.md"}),
    )
    .await;
    assert_eq!(a["role"], Value::Null, "{a}");
    assert_eq!(a["decision"]["allowed"], json!(false), "{a}");

    // Bad input.
    let path = format!("/workspaces/{ws}/authorize");
    s.post(
        &s.owner_token,
        &path,
        json!({"principal": f.agent.id, "action": "files:explode", "resource": "notes/a.md"}),
    )
    .await
    .problem(422, "unprocessable");
    s.post(
        &s.owner_token,
        &path,
        json!({"principal": f.agent.id, "action": "files:read", "resource": "notes/a.md",
               "context": {"time": "yesterday"}}),
    )
    .await
    .problem(422, "unprocessable");

    // A principal outside the organisation is as unknown as one that does not exist.
    let other_org = s
        .post(&s.owner_token, "/orgs", json!({"name": "elsewhere"}))
        .await
        .expect_json(201);
    let foreign = s
        .post(
            &s.owner_token,
            "/agents",
            json!({"org_id": other_org["id"], "name": "foreign-bot"}),
        )
        .await
        .expect_json(201);
    let foreign_404 = s
        .post(
            &s.owner_token,
            &path,
            json!({"principal": foreign["id"], "action": "files:read", "resource": "notes/a.md"}),
        )
        .await
        .not_found();
    let missing_404 = s
        .post(
            &s.owner_token,
            &path,
            json!({"principal": "agt_00000000000000000000000000000000", "action": "files:read",
                   "resource": "notes/a.md"}),
        )
        .await
        .not_found();
    assert_eq!(
        foreign_404["detail"], missing_404["detail"],
        "a foreign principal is indistinguishable from a missing one"
    );

    // A viewer-only token cannot ask.
    let viewer = new_agent(
        s,
        ws,
        "viewer-bot",
        "viewer",
        &["files:read", "workspaces:read"],
    )
    .await;
    let r = what_if_as(
        s,
        &viewer.token,
        ws,
        json!({"principal": viewer.id, "action": "files:read", "resource": "notes/a.md"}),
    )
    .await;
    let v = r.forbidden("scope");
    assert_eq!(v["required_scope"], json!("policies:admin"), "{v}");

    // What-if enforces nothing and logs no hypothetical decision: once a later real request
    // of the human is in the log, no hypothetical delete of theirs is.
    s.get_file(&f.human.token, ws, "notes/a.md")
        .await
        .expect(200);
    await_records(
        s,
        ws,
        &[("principal", &f.human.id), ("action", "files:read")],
        "the human's read",
        |r| !r.is_empty(),
    )
    .await;
    let deletes = records(
        &decisions(
            s,
            ws,
            &[("principal", &f.human.id), ("action", "files:delete")],
        )
        .await
        .expect_json(200),
    );
    assert!(
        deletes.is_empty(),
        "what-if decisions were logged: {deletes:?}"
    );
    let all = decisions(s, ws, &[("limit", "1000")])
        .await
        .expect_json(200);
    assert!(
        records(&all)
            .iter()
            .all(|d| d["credential_id"] != json!("what-if")),
        "what-if decisions were logged: {all}"
    );
}

async fn decision_log_records_every_decision_with_filters_and_paging(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, f.ws.as_str());
    put_policies(s, ws, AGENTS_READ_ONLY).await.expect_json(200);
    let (narrow_id, narrow) = s
        .create_token(
            &s.owner_token,
            json!({"name": "narrow", "scopes": ["workspaces:read"], "principal_id": f.agent.id}),
        )
        .await;

    s.get_file(&f.agent.token, ws, "notes/a.md")
        .await
        .expect(200);
    denied_by(
        &s.put_file(&f.agent.token, ws, "notes/a.md", "x").await,
        "agents-read-only",
    );
    denied_by(
        &s.delete_file(&f.agent.token, ws, "notes/a.md").await,
        "agents-read-only",
    );
    s.get(&f.agent.token, &format!("/workspaces/{ws}/members"))
        .await
        .expect(200);
    s.get_file(&narrow, ws, "notes/a.md")
        .await
        .forbidden("scope");
    s.get_file(&f.human.token, ws, "notes/a.md")
        .await
        .expect(200);
    s.put_file(&f.human.token, ws, "notes/b.md", "b")
        .await
        .expect(201);

    let agent_q = [("principal", f.agent.id.as_str())];
    let agent = await_records(s, ws, &agent_q, "the agent's five decisions", |r| {
        r.len() >= 5
    })
    .await;
    assert_eq!(agent.len(), 5, "{agent:?}");
    for d in &agent {
        assert_eq!(d["principal_id"], json!(f.agent.id), "{d}");
        assert_eq!(d["principal_kind"], json!("agent"), "{d}");
        assert_eq!(d["workspace_id"], json!(ws), "{d}");
        assert_eq!(d["transport"], json!("rest"), "{d}");
        // Cedar (and so a policy version) is not reached when the scope gate refuses.
        let cedar_reached = d["layer"] != json!("scope");
        let want_version = if cedar_reached { json!(1) } else { Value::Null };
        assert_eq!(d["policy_version"], want_version, "{d}");
        assert!(str_of(d, "id").starts_with("dec_"), "{d}");
        assert!(d["at_ms"].as_i64().is_some_and(|t| t > 0), "{d}");
        assert!(d["elapsed_us"].as_i64().is_some_and(|t| t >= 0), "{d}");
    }
    let at: Vec<i64> = agent.iter().map(|d| d["at_ms"].as_i64().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] >= w[1]), "newest first: {at:?}");
    let find = |action: &str, allowed: bool| {
        agent
            .iter()
            .find(|d| d["action"] == json!(action) && d["allowed"] == json!(allowed))
            .unwrap_or_else(|| panic!("no {action} allowed={allowed} record: {agent:?}"))
            .clone()
    };
    let read = find("files:read", true);
    assert_eq!(read["resource"], json!("notes/a.md"), "{read}");
    assert_eq!(read["layer"], Value::Null, "{read}");
    assert_eq!(read["policy_ids"], json!(["base/viewer-reads"]), "{read}");
    assert_eq!(read["credential_id"], json!(f.agent.token_id), "{read}");
    let write = find("files:write", false);
    assert_eq!(write["resource"], json!("notes/a.md"), "{write}");
    assert_eq!(write["layer"], json!("policy"), "{write}");
    assert_eq!(write["policy_ids"], json!(["agents-read-only"]), "{write}");
    assert_eq!(write["credential_id"], json!(f.agent.token_id), "{write}");
    assert!(
        write["reasons"].as_array().is_some_and(|r| r
            .iter()
            .any(|r| r.as_str().unwrap_or("").contains("agents-read-only"))),
        "the refusal's reason names the policy: {write}"
    );
    let delete = find("files:delete", false);
    assert_eq!(
        delete["policy_ids"],
        json!(["agents-read-only"]),
        "{delete}"
    );
    let members = find("members:list", true);
    assert_eq!(members["resource"], json!(""), "{members}");
    let scope = find("files:read", false);
    assert_eq!(scope["layer"], json!("scope"), "{scope}");
    assert_eq!(scope["credential_id"], json!(narrow_id), "{scope}");

    // Credential ids, never secrets.
    let all = decisions(s, ws, &[("limit", "1000")]).await;
    let text = all.expect(200).text();
    for secret in [&f.agent.token, &narrow, &f.human.token, &s.owner_token] {
        assert!(
            !text.contains(secret.as_str()),
            "a token secret is in the log"
        );
    }
    assert!(!text.contains("wrt_pat_"), "a token secret is in the log");

    // Filters.
    let human = await_records(
        s,
        ws,
        &[("principal", f.human.id.as_str())],
        "the human's two decisions",
        |r| r.len() >= 2,
    )
    .await;
    assert_eq!(human.len(), 2, "{human:?}");
    for d in &human {
        assert_eq!(d["principal_id"], json!(f.human.id), "{d}");
        assert_eq!(d["principal_kind"], json!("user"), "{d}");
        assert_eq!(d["credential_id"], json!(f.human.token_id), "{d}");
        assert_eq!(d["allowed"], json!(true), "{d}");
    }
    let deny = records(
        &decisions(s, ws, &[("decision", "deny"), ("limit", "1000")])
            .await
            .expect_json(200),
    );
    assert!(
        deny.iter().all(|d| d["allowed"] == json!(false)),
        "{deny:?}"
    );
    let deny_ids: HashSet<&str> = deny.iter().map(|d| str_of(d, "id")).collect();
    for d in [&write, &delete, &scope] {
        assert!(deny_ids.contains(str_of(d, "id")), "{d} missing from deny");
    }
    let allow = records(
        &decisions(s, ws, &[("decision", "allow"), ("limit", "1000")])
            .await
            .expect_json(200),
    );
    assert!(
        allow.iter().all(|d| d["allowed"] == json!(true)),
        "{allow:?}"
    );
    let allow_ids: HashSet<&str> = allow.iter().map(|d| str_of(d, "id")).collect();
    assert!(allow_ids.contains(str_of(&read, "id")));
    assert!(allow_ids.is_disjoint(&deny_ids));
    let writes = records(
        &decisions(s, ws, &[("action", "files:write")])
            .await
            .expect_json(200),
    );
    assert!(
        writes.iter().all(|d| d["action"] == json!("files:write")),
        "{writes:?}"
    );
    assert!(
        writes.iter().any(|d| d["principal_id"] == json!(f.human.id) && d["resource"] == json!("notes/b.md")),
        "{writes:?}"
    );
    assert!(writes.iter().any(|d| d["id"] == write["id"]), "{writes:?}");
    let one = records(
        &decisions(
            s,
            ws,
            &[
                ("principal", f.agent.id.as_str()),
                ("decision", "deny"),
                ("action", "files:write"),
            ],
        )
        .await
        .expect_json(200),
    );
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0]["id"], write["id"]);
    for bad in [
        [("decision", "maybe")],
        [("limit", "0")],
        [("limit", "1001")],
        [("before", "not-a-cursor")],
    ] {
        decisions(s, ws, &bad).await.problem(422, "unprocessable");
    }

    // Paging: disjoint pages that together are the whole list, in order.
    let full: Vec<String> = agent.iter().map(|d| str_of(d, "id").to_string()).collect();
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut q = vec![("principal", f.agent.id.as_str()), ("limit", "2")];
        if let Some(c) = &cursor {
            q.push(("before", c.as_str()));
        }
        let page = decisions(s, ws, &q).await.expect_json(200);
        let ids: Vec<String> = records(&page)
            .iter()
            .map(|d| str_of(d, "id").to_string())
            .collect();
        assert!(ids.len() <= 2, "{page}");
        for id in &ids {
            assert!(!paged.contains(id), "{id} appears on two pages");
        }
        paged.extend(ids);
        match page["next"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => {
                assert_eq!(page["next"], Value::Null, "{page}");
                cursor = None;
                break;
            }
        }
    }
    assert!(cursor.is_none(), "paging did not end");
    assert_eq!(
        paged, full,
        "the pages together are the whole list, in order"
    );

    // The drop counter is exposed.
    let m = send(s.req_root(Method::GET, "/metrics", None)).await;
    m.expect(200);
    let metrics = m.text();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("warrant_decision_log_dropped_total "))
        .unwrap_or_else(|| panic!("no warrant_decision_log_dropped_total in /metrics:\n{metrics}"));
    let n: u64 = line
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad metric line {line:?}"));
    assert_eq!(n, 0, "nothing was dropped at this load");
}

const SWAP_A_ID: &str = "swap-forbids-secret";

const OVERFLOW: &str = r#"@id("read-guard")
forbid (principal, action == Action::"files:read", resource)
when { 9223372036854775807 + 1 > 0 };
"#;

async fn erroring_policy_fails_closed_with_the_error_in_body_and_log(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, f.ws.as_str());
    put_policies(s, ws, OVERFLOW).await.expect_json(200);

    let r = s.get_file(&f.agent.token, ws, "notes/a.md").await;
    let v = r.forbidden("policy");
    let errors: Vec<String> = v["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in the refusal: {v}"))
        .iter()
        .map(|e| e.as_str().expect("error text").to_string())
        .collect();
    assert!(!errors.is_empty(), "{v}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("read-guard") && e.contains("overflow")),
        "the error names the policy and what went wrong: {v}"
    );
    // For everyone, whatever their role.
    s.get_file(&f.human.token, ws, "notes/a.md")
        .await
        .forbidden("policy");
    s.get_file(&s.owner_token, ws, "notes/a.md")
        .await
        .forbidden("policy");
    // Actions the erroring policy cannot apply to are unaffected.
    s.put_file(&f.agent.token, ws, "notes/a.md", "still writable")
        .await
        .expect(200);

    let refused = await_records(
        s,
        ws,
        &[
            ("principal", f.agent.id.as_str()),
            ("action", "files:read"),
            ("decision", "deny"),
        ],
        "the agent's refused read",
        |r| !r.is_empty(),
    )
    .await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    let d = &refused[0];
    assert_eq!(d["layer"], json!("policy"), "{d}");
    let reasons: Vec<&str> = d["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("no reasons: {d}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for e in &errors {
        assert!(
            reasons.iter().any(|r| r.contains(e.as_str())),
            "the evaluation error {e:?} is in the logged reasons: {d}"
        );
    }

    // What-if shows the same error.
    let a = what_if(
        s,
        ws,
        json!({"principal": f.agent.id, "action": "files:read", "resource": "notes/a.md"}),
    )
    .await;
    assert_eq!(a["decision"]["allowed"], json!(false), "{a}");
    assert_eq!(a["decision"]["errors"], json!(errors), "{a}");
}

/// The determining policy of a fail-closed refusal is the one that failed, not a permit.
async fn erroring_policy_refusal_names_the_erroring_policy(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, f.ws.as_str());
    put_policies(s, ws, OVERFLOW).await.expect_json(200);
    let v = s
        .get_file(&f.agent.token, ws, "notes/a.md")
        .await
        .forbidden("policy");
    let ids = policy_ids(&v);
    assert!(
        ids.contains(&"read-guard".to_string()) && !ids.iter().any(|i| i.starts_with("base/")),
        "a refusal caused by `read-guard` failing names it, not the permit it overrode: {v}"
    );
}

async fn policy_swaps_under_load_never_give_a_request_a_half_updated_set(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
    let ws = s.create_workspace(&s.owner_token, "swaps").await;
    s.put_file(&s.owner_token, &ws, "secret/plan.txt", "plan")
        .await
        .expect(201);
    let reader = new_agent(&s, &ws, "reader-bot", "viewer", &["files:read"]).await;
    let checker = new_agent(&s, &ws, "checker-bot", "viewer", &["files:read"]).await;
    const A_ID: &str = SWAP_A_ID;
    const B_ID: &str = "swap-forbids-other";
    let set_a = format!(
        "@id(\"{A_ID}\")\nforbid (principal, action == Action::\"files:read\", resource)\nwhen {{ context.folder == \"secret/\" }};\n"
    );
    let set_b = format!(
        "@id(\"{B_ID}\")\nforbid (principal, action == Action::\"files:read\", resource)\nwhen {{ context.folder == \"other/\" }};\n"
    );

    // version -> whether it forbids the file
    let mut forbids: HashMap<i64, bool> = HashMap::new();
    let swap = |a: bool| swap_to(&s, &ws, if a { &set_a } else { &set_b }, &checker.token, a);
    let first = swap(true).await;
    forbids.insert(first, true);

    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (s, ws, token, stop) = (s.clone(), ws.clone(), reader.token.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let (mut ok, mut refused, mut bad) = (0usize, 0usize, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let r = s.get_file(&token, &ws, "secret/plan.txt").await;
                match r.code() {
                    200 if r.body == b"plan" => ok += 1,
                    403 => {
                        refused += 1;
                        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                        let ids = v["policy_ids"].clone();
                        if v["layer"] != json!("policy") || ids != json!([A_ID]) {
                            bad.push(format!("403 naming {ids}: {}", r.text()));
                        }
                    }
                    _ => bad.push(format!("{}: {}", r.status, r.text())),
                }
            }
            (ok, refused, bad)
        }));
    }
    let started = Instant::now();
    let mut swaps = 1;
    while swaps < 20 || started.elapsed() < Duration::from_secs(2) {
        let a = swaps % 2 == 0;
        let v = swap(a).await;
        forbids.insert(v, a);
        swaps += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut refused, mut bad) = (0, 0, Vec::new());
    for h in readers {
        let (o, r, b) = h.await.expect("reader task");
        ok += o;
        refused += r;
        bad.extend(b);
    }
    eprintln!("{swaps} swaps; readers saw {ok} × 200 and {refused} × 403");
    assert!(
        bad.is_empty(),
        "{} bad responses, first: {:?}",
        bad.len(),
        bad.iter().take(5).collect::<Vec<_>>()
    );
    assert!(ok + refused > 0, "the readers made no requests");

    // Every logged reader decision matches the version it names: the set of version N
    // decided the request whole.
    let total = ok + refused;
    let checker_reads = swaps;
    await_records(
        &s,
        &ws,
        &[("principal", checker.id.as_str()), ("limit", "1000")],
        "every checker read",
        |r| r.len() >= checker_reads,
    )
    .await;
    // The reader's decisions, every page of them.
    let reader_log = || async {
        let mut logged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = vec![("principal", reader.id.as_str()), ("limit", "1000")];
            if let Some(c) = &cursor {
                q.push(("before", c.as_str()));
            }
            let page = decisions(&s, &ws, &q).await.expect_json(200);
            logged.extend(records(&page));
            match page["next"].as_str() {
                Some(n) => cursor = Some(n.to_string()),
                None => return logged,
            }
        }
    };
    // The log is written off the request path, in batches: reader requests that ended after
    // the checker's last read may land a moment later.
    let logged = match poll_until(Duration::from_secs(5), || async {
        let logged = reader_log().await;
        (logged.len() >= total).then_some(logged)
    })
    .await
    {
        Some(logged) => logged,
        None => reader_log().await,
    };
    assert_eq!(logged.len(), total, "every reader decision is logged");
    for d in &logged {
        let v = d["policy_version"]
            .as_i64()
            .unwrap_or_else(|| panic!("a reader decision without a version: {d}"));
        let a = *forbids
            .get(&v)
            .unwrap_or_else(|| panic!("unknown version {v}: {d}"));
        if a {
            assert_eq!(d["allowed"], json!(false), "v{v} forbids: {d}");
            assert_eq!(d["policy_ids"], json!([A_ID]), "{d}");
        } else {
            assert_eq!(d["allowed"], json!(true), "v{v} permits: {d}");
            assert_eq!(d["policy_ids"], json!(["base/viewer-reads"]), "{d}");
        }
    }
}

/// Enforces `src` (set A when `a`) and checks that the very next request uses it.
async fn swap_to(s: &TestServer, ws: &str, src: &str, checker: &str, a: bool) -> i64 {
    let v = put_policies(s, ws, src).await.expect_json(200);
    let version = v["version"].as_i64().unwrap_or_else(|| panic!("{v}"));
    let r = s.get_file(checker, ws, "secret/plan.txt").await;
    if a {
        let body = r.forbidden("policy");
        assert_eq!(policy_ids(&body), vec![SWAP_A_ID], "{body}");
    } else {
        r.expect(200);
    }
    version
}

async fn tags_and_groups_reach_cedar(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "tags").await;
    let set = r#"@id("agents-never-touch-confidential")
forbid (principal is Agent, action, resource)
when { context.tags.contains("confidential") };

@id("contractors-no-archives")
forbid (principal in Group::"contractor", action == Action::"files:read", resource)
when { ["zip", "tar", "tgz", "gz", "7z", "rar"].contains(context.extension) };
"#;
    put_policies(&s, &ws, set).await.expect_json(200);
    let meta = s
        .put_file_with(
            &s.owner_token,
            &ws,
            "vault/plan.txt",
            "the plan",
            &[("Warrant-Tags", "confidential, q3")],
        )
        .await
        .expect_json(201);
    assert_eq!(meta["tags"], json!(["confidential", "q3"]), "{meta}");
    s.put_file(&s.owner_token, &ws, "vault/public.txt", "hello")
        .await
        .expect(201);
    s.put_file(&s.owner_token, &ws, "dist/build.zip", "PK")
        .await
        .expect(201);
    s.put_file(&s.owner_token, &ws, "dist/BUILD2.ZIP", "PK")
        .await
        .expect(201);
    s.put_file(&s.owner_token, &ws, "dist/notes.txt", "notes")
        .await
        .expect(201);

    // Tags.
    let bot = new_agent(&s, &ws, "plain-bot", "editor", WORKER_SCOPES).await;
    denied_by(
        &s.get_file(&bot.token, &ws, "vault/plan.txt").await,
        "agents-never-touch-confidential",
    );
    let r = s.get_file(&bot.token, &ws, "vault/public.txt").await;
    r.expect(200);
    assert_eq!(r.body, b"hello");
    // Overwriting (even without the header: the current tags count) or deleting is refused.
    denied_by(
        &s.put_file(&bot.token, &ws, "vault/plan.txt", "defaced")
            .await,
        "agents-never-touch-confidential",
    );
    denied_by(
        &s.delete_file(&bot.token, &ws, "vault/plan.txt").await,
        "agents-never-touch-confidential",
    );
    // Uploading a file tagged confidential is a write touching a confidential file.
    denied_by(
        &s.put_file_with(
            &bot.token,
            &ws,
            "vault/new.txt",
            "new",
            &[("Warrant-Tags", "confidential")],
        )
        .await,
        "agents-never-touch-confidential",
    );
    s.get_file(&s.owner_token, &ws, "vault/new.txt")
        .await
        .expect(404);
    // Humans read it.
    let r = s.get_file(&s.owner_token, &ws, "vault/plan.txt").await;
    r.expect(200);
    assert_eq!(r.body, b"the plan");
    // Untagged-at-upload files an agent writes stay open to it.
    s.put_file_with(
        &bot.token,
        &ws,
        "vault/draft.txt",
        "d",
        &[("Warrant-Tags", "draft")],
    )
    .await
    .expect(201);
    s.get_file(&bot.token, &ws, "vault/draft.txt")
        .await
        .expect(200);

    // Groups.
    let contractor = s
        .post(
            &s.owner_token,
            "/agents",
            json!({"org_id": s.org_id, "name": "contractor-bot", "groups": ["contractor"]}),
        )
        .await
        .expect_json(201);
    assert_eq!(contractor["groups"], json!(["contractor"]), "{contractor}");
    let contractor_id = str_of(&contractor, "id").to_string();
    s.add_member(&s.owner_token, &ws, &contractor_id, "viewer")
        .await;
    let (_, contractor_token) = s
        .create_token(
            &s.owner_token,
            json!({"name": "contractor", "scopes": ["files:read"], "principal_id": contractor_id}),
        )
        .await;
    denied_by(
        &s.get_file(&contractor_token, &ws, "dist/build.zip").await,
        "contractors-no-archives",
    );
    denied_by(
        &s.get_file(&contractor_token, &ws, "dist/BUILD2.ZIP").await,
        "contractors-no-archives",
    );
    s.get_file(&contractor_token, &ws, "dist/notes.txt")
        .await
        .expect(200);
    // Not in the group: archives are fine.
    s.get_file(&bot.token, &ws, "dist/build.zip")
        .await
        .expect(200);

    // A human contractor too.
    let user = s
        .post(
            &s.owner_token,
            "/users",
            json!({"org_id": s.org_id, "email": "temp@example.com", "name": "Temp",
                   "groups": ["contractor"]}),
        )
        .await
        .expect_json(201);
    assert_eq!(user["groups"], json!(["contractor"]), "{user}");
    s.add_member(&s.owner_token, &ws, str_of(&user, "id"), "viewer")
        .await;
    let (_, user_token) = s
        .issue_user_token("temp@example.com", "temp", &["files:read"], None)
        .await;
    denied_by(
        &s.get_file(&user_token, &ws, "dist/build.zip").await,
        "contractors-no-archives",
    );
    s.get_file(&user_token, &ws, "dist/notes.txt")
        .await
        .expect(200);
    // A human, so tags do not stop them.
    s.get_file(&user_token, &ws, "vault/plan.txt")
        .await
        .expect(200);

    // What-if agrees, and shows the group member's tags and extension in its context.
    let a = what_if(
        &s,
        &ws,
        json!({"principal": contractor_id, "action": "files:read", "resource": "dist/build.zip"}),
    )
    .await;
    assert_eq!(
        a["decision"]["policy_ids"],
        json!(["contractors-no-archives"]),
        "{a}"
    );
    assert_eq!(a["decision"]["context"]["extension"], json!("zip"), "{a}");
    let a = what_if(
        &s,
        &ws,
        json!({"principal": bot.id, "action": "files:read", "resource": "vault/plan.txt"}),
    )
    .await;
    assert_eq!(
        a["decision"]["context"]["tags"],
        json!(["confidential", "q3"]),
        "the file's current tags are the default: {a}"
    );
    assert_eq!(a["decision"]["allowed"], json!(false), "{a}");
}

async fn policy_endpoints_need_the_scope_and_an_admin_role(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, f.ws.as_str());
    put_policies(s, ws, AGENTS_READ_ONLY).await.expect_json(200);
    let mut scopes = WORKER_SCOPES.to_vec();
    scopes.push("policies:admin");

    // An editor holding the scope: refused by the role policies.
    let editor = new_agent(s, ws, "editor-admin-scope", "editor", &scopes).await;
    // An admin without the scope: refused by the scope gate.
    let admin_no_scope = new_agent(s, ws, "admin-no-scope", "admin", WORKER_SCOPES).await;
    // An admin with the scope: allowed.
    let admin = new_agent(s, ws, "admin-bot", "admin", &scopes).await;
    // No role at all: the workspace does not exist for it.
    let outsider_id = s.create_agent(&s.owner_token, "outsider").await;
    let (_, outsider) = s
        .create_token(
            &s.owner_token,
            json!({"name": "outsider", "scopes": scopes, "principal_id": outsider_id}),
        )
        .await;

    let attempt = |token: String| {
        let ws = ws.to_string();
        let agent = f.agent.id.clone();
        async move {
            let p = |x: &str| format!("/workspaces/{ws}/policies{x}");
            vec![
                put_policies_as(
                    s,
                    &token,
                    &ws,
                    "",
                    "@id(\"x\")\nforbid (principal, action, resource);\n",
                )
                .await,
                put_policies_as(
                    s,
                    &token,
                    &ws,
                    "?mode=shadow",
                    "@id(\"x\")\nforbid (principal, action, resource);\n",
                )
                .await,
                s.get(&token, &p("")).await,
                s.get(&token, &p("/versions")).await,
                s.post(&token, &p("/rollback"), json!({"version": 0})).await,
                s.get(&token, &p("/shadow-report")).await,
                s.post(&token, &p("/shadow/promote"), json!({})).await,
                s.delete(&token, &p("/shadow")).await,
                s.post(
                    &token,
                    &format!("/workspaces/{ws}/authorize"),
                    json!({"principal": agent, "action": "files:read", "resource": "notes/a.md"}),
                )
                .await,
                s.get(&token, &format!("/workspaces/{ws}/decisions")).await,
            ]
        }
    };
    for r in attempt(editor.token.clone()).await {
        r.forbidden("policy");
    }
    for r in attempt(admin_no_scope.token.clone()).await {
        let v = r.forbidden("scope");
        assert_eq!(v["required_scope"], json!("policies:admin"), "{v}");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("insufficient_scope") && challenge.contains("policies:admin"),
            "{}: WWW-Authenticate {challenge:?}",
            r.what
        );
    }
    for r in attempt(outsider.clone()).await {
        r.not_found();
    }
    // None of that changed anything.
    assert_eq!(version_numbers(&versions(s, ws).await), vec![1]);
    let (version, text) = enforced_text(s, ws).await;
    assert_eq!(version, "1");
    assert_eq!(text, AGENTS_READ_ONLY);

    // A workspace admin with the scope manages policies (and, being an agent, is itself
    // bound by them).
    let v = put_policies_as(
        s,
        &admin.token,
        ws,
        "",
        "@id(\"no-deletes\")\nforbid (principal, action == Action::\"files:delete\", resource);\n",
    )
    .await
    .expect_json(200);
    assert_state(&v, ws, json!(2), json!(2), Value::Null);
    let list = versions(s, ws).await;
    assert_eq!(list[0]["author"], json!(admin.id), "{list:?}");
    s.post(
        &admin.token,
        &format!("/workspaces/{ws}/policies/rollback"),
        json!({"version": 1}),
    )
    .await
    .expect_json(200);
    s.get(&admin.token, &format!("/workspaces/{ws}/decisions"))
        .await
        .expect(200);
}
