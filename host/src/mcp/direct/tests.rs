//! The direct answer against the SDK's: for each request of the common shape both are asked,
//! and must agree to the byte; every other request must be given back whole, and is then the
//! SDK's to answer (or refuse) as before.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::answer;
use crate::api::{self, AppContext, AppState};
use crate::authz::Transport;
use crate::mcp::tools::Catalogue;
use crate::mcp::{Direct, WarrantMcp, allowed_hosts, routes};
use crate::service::{Settings, Warrant};

const PUBLIC_URL: &str = "http://127.0.0.1:9";

struct Fixture {
    dir: std::path::PathBuf,
    warrant: Arc<Warrant>,
    /// `/mcp` with every request left to the SDK.
    sdk: Router,
    /// `/mcp` as served: the direct answer first.
    served: Router,
    handler: WarrantMcp,
    hosts: Vec<String>,
    token: String,
    ws: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn send(app: &Router, req: Request) -> (StatusCode, Option<HeaderValue>, bytes::Bytes) {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, body)
}

fn rest(method: Method, uri: &str, token: &str, content_type: &str, body: &[u8]) -> Request {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_vec()))
        .unwrap()
}

/// A server's application with a workspace holding a text file, a binary file and a file a
/// tenant policy forbids reading.
async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(crate::identity::new_id("direct-test"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/w.db", dir.display());
    let warrant = Warrant::open(&url, &dir, Settings::default())
        .await
        .unwrap();
    warrant.prepare_storage().await.unwrap();
    warrant.set_public_url(PUBLIC_URL);
    let owner = warrant
        .bootstrap("o@example.com", None, "Org")
        .await
        .unwrap();
    let warrant = Arc::new(warrant);
    let state = AppState::new(AppContext {
        warrant: warrant.clone(),
        public_url: PUBLIC_URL.into(),
        mcp_allowed_origins: Arc::new([]),
    });
    let app = api::app(state.clone());
    let t = &owner.token;
    let body = json!({"org_id": owner.org_id, "name": "direct"}).to_string();
    let (status, _, created) = send(
        &app,
        rest(
            Method::POST,
            "/api/v1/workspaces",
            t,
            "application/json",
            body.as_bytes(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created:?}");
    let ws = serde_json::from_slice::<Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let files = format!("/api/v1/workspaces/{ws}/files");
    for (path, content_type, body) in [
        ("docs/plan.md", "text/markdown", &b"# The plan\n"[..]),
        (
            "bin/blob",
            "application/octet-stream",
            &[0xff, 0xfe, 0x00, 0x01],
        ),
        ("secret/keys.txt", "text/plain", b"do not read"),
    ] {
        let (status, _, answer) = send(
            &app,
            rest(
                Method::PUT,
                &format!("{files}/{path}"),
                t,
                content_type,
                body,
            ),
        )
        .await;
        assert!(status.is_success(), "{status} {answer:?}");
    }
    let policy = r#"@id("no-secrets") forbid (principal, action == Action::"files:read", resource) when { context.path like "secret/*" };"#;
    let (status, _, answer) = send(
        &app,
        rest(
            Method::PUT,
            &format!("/api/v1/workspaces/{ws}/policies"),
            t,
            "text/plain",
            policy.as_bytes(),
        ),
    )
    .await;
    assert!(status.is_success(), "{status} {answer:?}");
    let with_state = |direct| routes(&state, direct).with_state(state.clone());
    Fixture {
        dir,
        handler: WarrantMcp::new(warrant.clone(), Arc::new(Catalogue::new())),
        warrant,
        sdk: with_state(Direct::LeaveToSdk),
        served: with_state(Direct::Answer),
        hosts: allowed_hosts(PUBLIC_URL),
        token: owner.token,
        ws,
    }
}

/// A 2026-07-28 `tools/call` of `tool` as an SDK client sends it.
fn call(f: &Fixture, id: Value, tool: &str, arguments: Value) -> Request {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": tool,
        "arguments": arguments,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "direct-test", "version": "1"},
            "progressToken": 7
        }
    }});
    post(f, tool, body.to_string())
}

fn post(f: &Fixture, tool: &str, body: String) -> Request {
    Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header(header::HOST, "127.0.0.1:9")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_LENGTH, body.len())
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(Body::from(body))
        .unwrap()
}

/// `req` with its caller authenticated, as the guard leaves it.
async fn authenticated(f: &Fixture, mut req: Request) -> Request {
    let caller = f
        .warrant
        .authenticate(&f.token, None, Transport::Mcp)
        .await
        .unwrap();
    req.extensions_mut().insert(caller);
    req
}

/// Asks the direct answer and the SDK the same request; they must agree to the byte. The
/// reply, parsed.
async fn both_agree(f: &Fixture, make: impl Fn() -> Request) -> Value {
    let req = authenticated(f, make()).await;
    let Ok(direct) = answer(&f.handler, &f.hosts, req).await else {
        panic!("the direct path gave back a request it should answer");
    };
    let status = direct.status();
    let content_type = direct.headers().get(header::CONTENT_TYPE).cloned();
    let body = direct.into_body().collect().await.unwrap().to_bytes();
    let (sdk_status, sdk_type, sdk_body) = send(&f.sdk, make()).await;
    assert_eq!(
        (status, content_type, String::from_utf8_lossy(&body)),
        (sdk_status, sdk_type, String::from_utf8_lossy(&sdk_body)),
        "direct (left) and SDK (right) differ"
    );
    // And the route as served takes the direct path to the same answer.
    let (served_status, _, served_body) = send(&f.served, make()).await;
    assert_eq!((served_status, &served_body), (status, &body));
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_tool_call_is_answered_as_the_sdk_answers_it() {
    let f = fixture().await;
    let ws = f.ws.clone();
    let text = both_agree(&f, || {
        call(
            &f,
            json!(1),
            "read_file",
            json!({"workspace": ws, "path": "docs/plan.md"}),
        )
    })
    .await;
    assert_eq!(text["result"]["structuredContent"]["text"], "# The plan\n");
    assert_eq!(text["id"], 1);

    let binary = both_agree(&f, || {
        call(
            &f,
            json!("a-string-id"),
            "read_file",
            json!({"workspace": ws, "path": "bin/blob"}),
        )
    })
    .await;
    assert_eq!(binary["id"], "a-string-id");
    assert_eq!(binary["result"]["structuredContent"]["encoding"], "base64");

    let refused = both_agree(&f, || {
        call(
            &f,
            json!(3),
            "read_file",
            json!({"workspace": ws, "path": "secret/keys.txt"}),
        )
    })
    .await;
    assert_eq!(refused["result"]["isError"], true);
    assert_eq!(refused["result"]["structuredContent"]["layer"], "policy");

    let missing = both_agree(&f, || {
        call(
            &f,
            json!(4),
            "read_file",
            json!({"workspace": ws, "path": "nowhere.txt"}),
        )
    })
    .await;
    assert_eq!(missing["result"]["isError"], true);

    let bad_arguments = both_agree(&f, || {
        call(
            &f,
            json!(5),
            "read_file",
            json!({"workspace": ws, "file": "docs/plan.md"}),
        )
    })
    .await;
    assert_eq!(bad_arguments["result"]["isError"], true);

    let me = both_agree(&f, || call(&f, json!(6), "whoami", json!({}))).await;
    assert_eq!(me["result"]["isError"], false);
}

/// Requests the direct path must give back whole, each for its own reason.
fn not_for_the_direct_path(f: &Fixture) -> Vec<(&'static str, Request)> {
    let ws = f.ws.clone();
    let read = |id: i64| {
        call(
            f,
            json!(id),
            "read_file",
            json!({"workspace": ws, "path": "docs/plan.md"}),
        )
    };
    let with = |mut req: Request, name: &'static str, value: &'static str| {
        req.headers_mut()
            .insert(name, HeaderValue::from_static(value));
        req
    };
    let without = |mut req: Request, name: header::HeaderName| {
        req.headers_mut().remove(name);
        req
    };
    let body_of = |meta: Value, extra: Value| {
        let mut params = json!({"name": "read_file", "arguments": {"workspace": ws, "path": "docs/plan.md"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}}});
        for (k, v) in meta.as_object().unwrap() {
            params["_meta"][k] = v.clone();
        }
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params}).to_string()
    };
    vec![
        ("a session", with(read(1), "mcp-session-id", "s-1")),
        (
            "an older revision",
            with(read(2), "mcp-protocol-version", "2025-11-25"),
        ),
        (
            "a header naming another tool",
            with(read(3), "mcp-name", "whoami"),
        ),
        (
            "a tool name in base64",
            with(read(4), "mcp-name", "=?base64?cmVhZF9maWxl?="),
        ),
        (
            "a browser's Origin",
            with(read(5), "origin", "http://127.0.0.1:9"),
        ),
        (
            "a parameter in a header",
            with(read(6), "mcp-param-path", "docs/plan.md"),
        ),
        ("another host", with(read(7), "host", "evil.example")),
        (
            "a weighted Accept",
            with(read(8), "accept", "application/json, text/event-stream;q=0"),
        ),
        ("no length", without(read(10), header::CONTENT_LENGTH)),
        ("another method", with(read(11), "mcp-method", "tools/list")),
        (
            "an unknown tool",
            call(f, json!(12), "no_such_tool", json!({})),
        ),
        (
            "a log level asked in _meta",
            post(
                f,
                "read_file",
                body_of(
                    json!({"io.modelcontextprotocol/logLevel": "debug"}),
                    json!({}),
                ),
            ),
        ),
        (
            "an older version in _meta",
            post(
                f,
                "read_file",
                body_of(
                    json!({"io.modelcontextprotocol/protocolVersion": "2025-11-25"}),
                    json!({}),
                ),
            ),
        ),
        (
            "a member it does not know",
            post(f, "read_file", body_of(json!({}), json!({"task": {}}))),
        ),
        (
            "a body naming another tool",
            post(
                f,
                "read_file",
                body_of(json!({}), json!({"name": "whoami"})),
            ),
        ),
        (
            "a repeated member",
            post(
                f,
                "read_file",
                body_of(json!({}), json!({})).replacen("\"id\":9", "\"id\":9,\"id\":10", 1),
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anything_else_is_given_back_whole_for_the_sdk() {
    let f = fixture().await;
    for (why, req) in not_for_the_direct_path(&f) {
        let (parts, body) = req.into_parts();
        let sent = body.collect().await.unwrap().to_bytes();
        let req = authenticated(&f, Request::from_parts(parts, Body::from(sent.clone()))).await;
        match answer(&f.handler, &f.hosts, req).await {
            Ok(response) => panic!("{why}: answered directly ({})", response.status()),
            Err(back) => {
                let back = back.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(back, sent, "{why}: the body came back changed");
            }
        }
    }
    // Without an authenticated caller there is nothing to answer for.
    let ws = f.ws.clone();
    let unauthenticated = call(
        &f,
        json!(1),
        "read_file",
        json!({"workspace": ws, "path": "docs/plan.md"}),
    );
    assert!(answer(&f.handler, &f.hosts, unauthenticated).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_given_back_gets_the_sdks_answer_as_served() {
    let f = fixture().await;
    for (why, req) in not_for_the_direct_path(&f) {
        let (parts, body) = req.into_parts();
        let sent = body.collect().await.unwrap().to_bytes();
        let again =
            |sent: &bytes::Bytes| Request::from_parts(parts.clone(), Body::from(sent.clone()));
        let served = send(&f.served, again(&sent)).await;
        let sdk = send(&f.sdk, again(&sent)).await;
        assert_eq!(
            (served.0, &served.1),
            (sdk.0, &sdk.1),
            "{why}: served (left) and SDK (right) differ"
        );
        assert_eq!(served.2, sdk.2, "{why}: served and SDK bodies differ");
    }
    // The SDK's refusals still stand: a header naming another tool than the body is a 400.
    let ws = f.ws.clone();
    let mut mismatch = call(
        &f,
        json!(1),
        "read_file",
        json!({"workspace": ws, "path": "docs/plan.md"}),
    );
    mismatch
        .headers_mut()
        .insert("mcp-name", HeaderValue::from_static("whoami"));
    let (status, _, body) = send(&f.served, mismatch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
}
