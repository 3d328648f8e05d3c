//! Process-level behaviour: health, bootstrap, OpenAPI, error format, request ids, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use warrant_e2e::*;

both_backends!(
    healthz_and_readyz_answer_200,
    bootstrap_prints_exactly_one_json_line_with_a_working_owner_token,
    bootstrap_twice_fails_and_changes_nothing,
    serve_bootstraps_an_empty_database_unless_told_not_to,
    openapi_lists_every_documented_route,
    errors_are_problem_json,
    malformed_json_bodies_are_problem_json,
    responses_carry_a_request_id,
    sigterm_exits_cleanly,
    decisions_still_queued_at_sigterm_are_written,
);

#[tokio::test]
async fn a_sqlite_file_is_served_by_one_process() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    let out = s
        .cli(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-bootstrap",
            "--database-url",
            s.database_url(),
            "--data-dir",
            "second-data",
        ])
        .await;
    assert!(!out.status.success(), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another warrant server is serving this SQLite file")
            && stderr.contains("use PostgreSQL for several replicas"),
        "{stderr}"
    );
    // The first serves on; the CLI's other commands still open the file beside it.
    s.get(&s.owner_token, "/me").await.expect(200);
    let out = s
        .cli(&["keys", "rotate", "--database-url", s.database_url()])
        .await;
    assert!(out.status.success(), "{}", describe_output(&out));
    // Once it has stopped, the file may be served again.
    assert!(s.sigterm_and_wait(Duration::from_secs(10)).await.is_some());
    let mut cmd = warrant_command();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--no-bootstrap",
        "--database-url",
    ])
    .arg(s.database_url())
    .args(["--data-dir", "third-data"])
    .current_dir(s.dir())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .kill_on_drop(true);
    let mut again = cmd.spawn().unwrap();
    let stdout = again.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the server starts within 60 s")
        .unwrap();
    assert!(
        first
            .as_deref()
            .is_some_and(|l| l.starts_with("warrant listening on")),
        "{first:?}"
    );
    again.kill().await.unwrap();
}

async fn healthz_and_readyz_answer_200(backend: Backend) {
    let s = TestServer::start(backend).await;
    for path in ["/healthz", "/readyz"] {
        send(s.req_root(Method::GET, path, None)).await.expect(200);
    }
}

async fn bootstrap_prints_exactly_one_json_line_with_a_working_owner_token(backend: Backend) {
    // Run the CLI on a database of our own, then serve it.
    let db = TestDb::fresh(backend).await;
    let out = run_cli(
        &[
            "bootstrap",
            "--database-url",
            &db.url,
            "--email",
            "first@example.com",
        ],
        &db.dir,
    )
    .await;
    assert!(out.status.success(), "{}", describe_output(&out));
    let stdout = String::from_utf8(out.stdout.clone()).expect("utf-8 stdout");
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "bootstrap must print exactly one line:\n{}",
        describe_output(&out)
    );
    let v: Value = serde_json::from_str(lines[0]).expect("bootstrap line is JSON");
    let obj = v.as_object().expect("a JSON object");
    for k in ["user_id", "org_id", "token"] {
        assert!(obj.get(k).is_some_and(Value::is_string), "missing {k}: {v}");
    }
    let token = v["token"].as_str().unwrap();
    assert_pat_format(token);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(token),
        "the token must be printed on stdout only"
    );
    drop(db);

    // Through the harness (same CLI): the owner token has every scope and no workspace limits.
    let s = TestServer::start(backend).await;
    let me = s.get(&s.owner_token, "/me").await.expect_json(200);
    assert_eq!(me["principal_id"], json!(s.owner_id), "{me}");
    assert_eq!(me["principal_kind"], json!("user"), "{me}");
    assert_eq!(me["org_id"], json!(s.org_id), "{me}");
    assert!(
        me["workspaces"].is_null(),
        "owner token must not be workspace-limited: {me}"
    );
    let scopes: Vec<&str> = me["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for scope in ALL_SCOPES {
        assert!(scopes.contains(scope), "owner token lacks {scope}: {me}");
    }
}

async fn bootstrap_twice_fails_and_changes_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "before").await;
    let before = s.get(&s.owner_token, "/workspaces").await.expect_json(200);
    let org_before = s
        .get(&s.owner_token, &format!("/orgs/{}", s.org_id))
        .await
        .expect_json(200);

    for email in [OWNER_EMAIL, "intruder@example.com"] {
        let out = s
            .cli(&[
                "bootstrap",
                "--database-url",
                s.database_url(),
                "--email",
                email,
            ])
            .await;
        assert!(
            !out.status.success(),
            "second bootstrap must fail:\n{}",
            describe_output(&out)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).trim().is_empty(),
            "second bootstrap must say why on stderr:\n{}",
            describe_output(&out)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("wrt_pat_"),
            "second bootstrap must not print a token:\n{}",
            describe_output(&out)
        );
    }

    // The first owner token still works, and nothing moved.
    let me = s.get(&s.owner_token, "/me").await.expect_json(200);
    assert_eq!(me["principal_id"], json!(s.owner_id));
    let after = s.get(&s.owner_token, "/workspaces").await.expect_json(200);
    assert_eq!(before, after, "workspaces changed");
    s.get(&s.owner_token, &format!("/workspaces/{ws}"))
        .await
        .expect(200);
    let org_after = s
        .get(&s.owner_token, &format!("/orgs/{}", s.org_id))
        .await
        .expect_json(200);
    assert_eq!(org_before, org_after, "organisation changed");

    // No user was created for the second e-mail address: the operator helper cannot find it.
    let out = s
        .cli(&[
            "token",
            "issue",
            "--database-url",
            s.database_url(),
            "--email",
            "intruder@example.com",
            "--name",
            "x",
            "--scopes",
            "files:read",
        ])
        .await;
    assert!(
        !out.status.success(),
        "a failed bootstrap must not leave a user behind:\n{}",
        describe_output(&out)
    );
}

async fn serve_bootstraps_an_empty_database_unless_told_not_to(backend: Backend) {
    let s = TestServer::start_opts(
        backend,
        ServerOptions {
            serve_bootstraps: true,
            ..Default::default()
        },
    )
    .await;
    let json_lines: Vec<&String> = s
        .startup_stdout
        .iter()
        .filter(|l| l.trim_start().starts_with('{'))
        .collect();
    assert_eq!(
        json_lines.len(),
        1,
        "expected one bootstrap JSON line before listening: {:?}",
        s.startup_stdout
    );
    assert_pat_format(&s.owner_token);
    let me = s.get(&s.owner_token, "/me").await.expect_json(200);
    assert_eq!(me["principal_id"], json!(s.owner_id), "{me}");
    assert_eq!(me["org_id"], json!(s.org_id), "{me}");
    // And with --no-bootstrap (the harness default) nothing is printed before listening.
    let s2 = TestServer::start(backend).await;
    assert!(
        !s2.startup_stdout.iter().any(|l| l.contains("wrt_pat_")),
        "--no-bootstrap must not bootstrap: {:?}",
        s2.startup_stdout
    );
}

/// Replaces every `{...}` segment with `{}` so parameter names do not matter.
fn template(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '{' => {
                if depth == 0 {
                    out.push('{');
                }
                depth += 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    out.push('}');
                }
            }
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

async fn openapi_lists_every_documented_route(backend: Backend) {
    let s = TestServer::start(backend).await;
    let r = send(s.req_root(Method::GET, "/openapi.json", None)).await;
    let doc = r.expect_json(200);
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("3.1"),
        "expected OpenAPI 3.1, got {:?}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("`paths` object");
    // Paths may be written relative to a `servers` entry ending in /api/v1.
    let server_prefix = doc["servers"][0]["url"]
        .as_str()
        .filter(|u| u.trim_end_matches('/').ends_with("/api/v1"))
        .map(|_| "/api/v1");
    let mut documented: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, item) in paths {
        let full = match server_prefix {
            Some(p) if !path.starts_with("/api/v1") => format!("{p}{path}"),
            _ => path.clone(),
        };
        let methods = item
            .as_object()
            .map(|m| m.keys().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        documented
            .entry(template(&full))
            .or_default()
            .extend::<Vec<String>>(methods);
    }
    let expected: &[(&str, &[&str])] = &[
        ("/api/v1/me", &["get"]),
        ("/api/v1/orgs", &["post"]),
        ("/api/v1/orgs/{}", &["get"]),
        ("/api/v1/users", &["post"]),
        ("/api/v1/agents", &["post", "get"]),
        ("/api/v1/agents/{}", &["delete"]),
        ("/api/v1/tokens", &["post", "get"]),
        ("/api/v1/tokens/{}", &["get", "delete"]),
        ("/api/v1/workspaces", &["post", "get"]),
        ("/api/v1/workspaces/{}", &["get", "delete"]),
        ("/api/v1/workspaces/{}/members", &["get"]),
        ("/api/v1/workspaces/{}/members/{}", &["put", "delete"]),
        ("/api/v1/workspaces/{}/files", &["get"]),
        ("/api/v1/workspaces/{}/files/{}", &["put", "get", "delete"]),
        ("/api/v1/workspaces/{}/files:move", &["post"]),
    ];
    let mut missing = Vec::new();
    for (path, methods) in expected {
        match documented.get(*path) {
            None => missing.push(format!("{path} (all of {methods:?})")),
            Some(have) => {
                for m in *methods {
                    if !have.iter().any(|h| h == m) {
                        missing.push(format!("{} {path}", m.to_uppercase()));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "openapi.json lacks: {missing:#?}\ndocumented: {:#?}",
        documented.keys().collect::<Vec<_>>()
    );
}

async fn errors_are_problem_json(backend: Backend) {
    let s = TestServer::start(backend).await;
    // 401
    send(s.req(Method::GET, "/me", None))
        .await
        .problem(401, "unauthenticated");
    // 404 for an unknown workspace
    let r = s.get(&s.owner_token, "/workspaces/ws_doesnotexist").await;
    r.not_found();
    // 404 for an unknown route under the API prefix
    let r = s.get(&s.owner_token, "/no-such-route").await;
    assert_eq!(r.code(), 404, "{}", r.text());
    r.assert_problem_shape();
    // 405 / 404 for a wrong method is still problem+json
    let r = send(s.req(Method::PATCH, "/me", Some(&s.owner_token))).await;
    assert!(
        r.status.is_client_error(),
        "PATCH /me: {} {}",
        r.status,
        r.text()
    );
    r.assert_problem_shape();
}

async fn malformed_json_bodies_are_problem_json(backend: Backend) {
    let s = TestServer::start(backend).await;
    // Not JSON at all.
    let r = send(
        s.req(Method::POST, "/workspaces", Some(&s.owner_token))
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert!(matches!(r.code(), 400 | 422), "{}: {}", r.status, r.text());
    let v = r.assert_problem_shape();
    assert!(
        matches!(v["code"].as_str(), Some("bad_request" | "unprocessable")),
        "code for malformed JSON: {v}"
    );
    // JSON with a missing field.
    let r = s
        .post(&s.owner_token, "/workspaces", json!({"name": "no org"}))
        .await;
    assert!(matches!(r.code(), 400 | 422), "{}: {}", r.status, r.text());
    r.assert_problem_shape();
    // Wrong content type.
    let r = send(
        s.req(Method::POST, "/workspaces", Some(&s.owner_token))
            .header("content-type", "text/plain")
            .body(json!({"org_id": s.org_id, "name": "x"}).to_string()),
    )
    .await;
    assert!(r.status.is_client_error(), "{}: {}", r.status, r.text());
    r.assert_problem_shape();
}

async fn responses_carry_a_request_id(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ok = s.get(&s.owner_token, "/me").await;
    ok.expect(200);
    let err = send(s.req(Method::GET, "/me", None)).await;
    err.expect(401);
    let health = send(s.req_root(Method::GET, "/healthz", None)).await;
    let mut ids = Vec::new();
    for r in [&ok, &err, &health] {
        let id = r
            .header("x-request-id")
            .unwrap_or_else(|| panic!("{}: no x-request-id header", r.what));
        assert!(!id.trim().is_empty(), "{}: empty x-request-id", r.what);
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "request ids must differ per request: {ids:?}");
}

/// The decision log gathers records for a moment before it writes them; a graceful stop
/// writes what is queued (through the same writer as always: on SQLite its own connection).
async fn decisions_still_queued_at_sigterm_are_written(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "flushed").await;
    for _ in 0..20 {
        s.get(&s.owner_token, &format!("/workspaces/{ws}"))
            .await
            .expect(200);
    }
    let status = s.sigterm_and_wait(Duration::from_secs(10)).await;
    assert!(
        status.is_some_and(|st| st.success()),
        "{status:?}\n{}",
        s.logs()
    );
    let logged = s
        .count_sql(&format!(
            "SELECT COUNT(*) FROM decision_log WHERE workspace_id = '{ws}' AND action = 'workspace:read'"
        ))
        .await;
    assert_eq!(logged, 20, "{}", s.logs());
}

async fn sigterm_exits_cleanly(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    s.get(&s.owner_token, "/me").await.expect(200);
    let status = s.sigterm_and_wait(Duration::from_secs(10)).await;
    let status = status
        .unwrap_or_else(|| panic!("server did not exit within 10 s of SIGTERM\n{}", s.logs()));
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}\n{}",
        s.logs()
    );
}
