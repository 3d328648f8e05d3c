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
use crate::mcp::{Direct, McpState, serve};
use crate::service::{Settings, Warrant};

const PUBLIC_URL: &str = "http://127.0.0.1:9";

struct Fixture {
    dir: std::path::PathBuf,
    warrant: Arc<Warrant>,
    /// `/mcp` with every request left to the SDK.
    sdk: Router,
    /// `/mcp` as served: the direct answer first.
    served: Router,
    /// What `served` shares.
    mcp: Arc<McpState>,
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
    let mcp = McpState::new(&state);
    Fixture {
        dir,
        warrant,
        sdk: serve(McpState::new(&state), Direct::LeaveToSdk).with_state(state.clone()),
        served: serve(mcp.clone(), Direct::Answer).with_state(state),
        mcp,
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
    to_mcp(f, "2026-07-28", &body)
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(Body::from(body))
        .unwrap()
}

/// A POST of `body` to `/mcp` of revision `version`, as an SDK client sends it.
fn to_mcp(f: &Fixture, version: &str, body: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header(header::HOST, "127.0.0.1:9")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_LENGTH, body.len())
        .header("mcp-protocol-version", version)
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
    let Ok(direct) = answer(&f.mcp, req).await else {
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

/// `req`, authenticated, is given back by the direct path with its body as it was sent.
async fn given_back_whole(f: &Fixture, why: &str, req: Request) {
    let (parts, body) = req.into_parts();
    let sent = body.collect().await.unwrap().to_bytes();
    let req = authenticated(f, Request::from_parts(parts, Body::from(sent.clone()))).await;
    match answer(&f.mcp, req).await {
        Ok(response) => panic!("{why}: answered directly ({})", response.status()),
        Err(back) => {
            let back = back.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(back, sent, "{why}: the body came back changed");
        }
    }
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
        given_back_whole(&f, why, req).await;
    }
    // Without an authenticated caller there is nothing to answer for.
    let ws = f.ws.clone();
    let unauthenticated = call(
        &f,
        json!(1),
        "read_file",
        json!({"workspace": ws, "path": "docs/plan.md"}),
    );
    assert!(answer(&f.mcp, unauthenticated).await.is_err());
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

// -- sessions (2025-11-25) ---------------------------------------------------------------------

/// A POST to `/mcp` of the 2025-11-25 revision, in `session` when given, as an SDK client
/// sends it.
fn in_session(f: &Fixture, session: Option<&str>, body: String) -> Request {
    let mut req = to_mcp(f, "2025-11-25", &body);
    if let Some(id) = session {
        req = req.header("mcp-session-id", id);
    }
    req.body(Body::from(body)).unwrap()
}

/// A `tools/call` of `tool` in `session`.
fn session_call(f: &Fixture, session: &str, id: Value, tool: &str, arguments: Value) -> Request {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": tool, "arguments": arguments, "_meta": {"progressToken": 7}
    }});
    in_session(f, Some(session), body.to_string())
}

/// Opens a session on `app` as an SDK client does (`initialize`,
/// `notifications/initialized`); its id.
async fn open_session(f: &Fixture, app: &Router) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "direct-test", "version": "1"}
    }});
    let response = app
        .clone()
        .oneshot(in_session(f, None, init.to_string()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    response.into_body().collect().await.unwrap();
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _, body) = send(app, in_session(f, Some(&id), note.to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body:?}");
    id
}

/// The one message an event-stream reply carries (a priming event has no data).
fn event_message(body: &[u8]) -> String {
    let text = std::str::from_utf8(body).unwrap();
    let messages: Vec<String> = text
        .split("\n\n")
        .map(|event| {
            event
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|data| data.strip_prefix(' ').unwrap_or(data))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|data| !data.is_empty())
        .collect();
    assert_eq!(messages.len(), 1, "not one message: {text}");
    messages.into_iter().next().unwrap()
}

/// Asks the direct answer, in a session of the served route, and the SDK, in a session of its
/// own, the same call: the JSON reply must be, to the byte, the message of the SDK's event
/// stream. The reply, parsed.
async fn both_agree_in_sessions(
    f: &Fixture,
    served_session: &str,
    sdk_session: &str,
    make: impl Fn(&str) -> Request,
) -> Value {
    let json_type = Some(HeaderValue::from_static("application/json"));
    let req = authenticated(f, make(served_session)).await;
    let Ok(direct) = answer(&f.mcp, req).await else {
        panic!("the direct path gave back a session call it should answer");
    };
    assert_eq!(direct.status(), StatusCode::OK);
    assert_eq!(
        direct.headers().get(header::CONTENT_TYPE),
        json_type.as_ref()
    );
    let body = direct.into_body().collect().await.unwrap().to_bytes();
    let (sdk_status, sdk_type, sdk_body) = send(&f.sdk, make(sdk_session)).await;
    assert_eq!(sdk_status, StatusCode::OK);
    assert!(
        sdk_type.is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream")),
        "the SDK answers a session's call with an event stream"
    );
    assert_eq!(
        String::from_utf8_lossy(&body),
        event_message(&sdk_body),
        "direct (left) and SDK (right) differ"
    );
    // And the route as served takes the direct path to the same answer.
    let served = send(&f.served, make(served_session)).await;
    assert_eq!(served, (StatusCode::OK, json_type, body.clone()));
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_in_a_session_is_answered_as_the_sdk_answers_it() {
    let f = fixture().await;
    let served = open_session(&f, &f.served).await;
    let sdk = open_session(&f, &f.sdk).await;
    let ws = f.ws.clone();
    let read = |path: &'static str, id: Value| {
        let ws = ws.clone();
        let f = &f;
        move |session: &str| {
            session_call(
                f,
                session,
                id.clone(),
                "read_file",
                json!({"workspace": ws, "path": path}),
            )
        }
    };
    let text = both_agree_in_sessions(&f, &served, &sdk, read("docs/plan.md", json!(1))).await;
    assert_eq!(text["result"]["structuredContent"]["text"], "# The plan\n");
    assert_eq!(text["id"], 1);
    assert!(
        text["result"].get("resultType").is_none(),
        "a revision before 2026-07-28 has no resultType: {text}"
    );

    let binary =
        both_agree_in_sessions(&f, &served, &sdk, read("bin/blob", json!("a-string-id"))).await;
    assert_eq!(binary["id"], "a-string-id");
    assert_eq!(binary["result"]["structuredContent"]["encoding"], "base64");

    let refused =
        both_agree_in_sessions(&f, &served, &sdk, read("secret/keys.txt", json!(3))).await;
    assert_eq!(refused["result"]["isError"], true);
    assert_eq!(refused["result"]["structuredContent"]["layer"], "policy");

    let missing = both_agree_in_sessions(&f, &served, &sdk, read("nowhere.txt", json!(4))).await;
    assert_eq!(missing["result"]["isError"], true);

    let me = both_agree_in_sessions(&f, &served, &sdk, |session| {
        session_call(&f, session, json!(5), "whoami", json!({}))
    })
    .await;
    assert_eq!(me["result"]["isError"], false);

    // Without `_meta`, and with the method and tool named in headers as well.
    let bare = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
        "params": {"name": "read_file", "arguments": {"workspace": ws, "path": "docs/plan.md"}}});
    let plain = both_agree_in_sessions(&f, &served, &sdk, |session| {
        in_session(&f, Some(session), bare.to_string())
    })
    .await;
    assert_eq!(plain["result"]["structuredContent"]["text"], "# The plan\n");
    let named = both_agree_in_sessions(&f, &served, &sdk, |session| {
        let mut req = read("docs/plan.md", json!(7))(session);
        let headers = req.headers_mut();
        headers.insert("mcp-method", HeaderValue::from_static("tools/call"));
        headers.insert("mcp-name", HeaderValue::from_static("read_file"));
        req
    })
    .await;
    assert_eq!(named["id"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_sdk_has_not_served_lately_or_has_closed_is_left_to_it() {
    use rmcp::transport::streamable_http_server::session::SessionManager;

    let f = fixture().await;
    let id = open_session(&f, &f.served).await;
    let ws = f.ws.clone();
    let read = || {
        session_call(
            &f,
            &id,
            json!(1),
            "read_file",
            json!({"workspace": ws, "path": "docs/plan.md"}),
        )
    };
    let answered = |req| async { answer(&f.mcp, authenticated(&f, req).await).await.is_ok() };
    assert!(
        answered(read()).await,
        "a fresh session's call is answered in place"
    );

    // A call answered in place through the route is not one the SDK saw.
    let earlier = std::time::Instant::now() - crate::mcp::SDK_SEES_A_SESSION_EVERY / 2;
    f.mcp.sdk_saw(&id, earlier);
    let (status, content_type, _) = send(&f.served, read()).await;
    assert_eq!(
        (status, content_type),
        (
            StatusCode::OK,
            Some(HeaderValue::from_static("application/json"))
        )
    );
    let seen = f.mcp.sessions.lock().unwrap()[id.as_str()].sdk_seen;
    assert_eq!(
        seen, earlier,
        "an answer in place must not count as the SDK's"
    );

    f.mcp.sdk_saw(
        &id,
        std::time::Instant::now() - crate::mcp::SDK_SEES_A_SESSION_EVERY,
    );
    assert!(
        !answered(read()).await,
        "the SDK must see the session in use"
    );
    // As served, that call goes to the SDK (an event stream), whose idle timer so restarts.
    let (status, content_type, body) = send(&f.served, read()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream")));
    assert!(event_message(&body).contains("# The plan"), "{body:?}");
    assert!(
        answered(read()).await,
        "after the SDK served one, calls are answered again"
    );

    // A session the SDK closed (as its idle timer does) is the SDK's to refuse.
    f.mcp
        .session_manager
        .close_session(&id.as_str().into())
        .await
        .unwrap();
    assert!(
        !answered(read()).await,
        "a closed session's call is left to the SDK"
    );
    let (status, _, body) = send(&f.served, read()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_requests_in_a_session_are_given_back_whole() {
    let f = fixture().await;
    let id = open_session(&f, &f.served).await;
    let ws = f.ws.clone();
    let arguments = json!({"workspace": ws, "path": "docs/plan.md"});
    let plain = || session_call(&f, &id, json!(1), "read_file", arguments.clone());
    let with = |mut req: Request, name: &'static str, value: &'static str| {
        req.headers_mut()
            .insert(name, HeaderValue::from_static(value));
        req
    };
    let params = |params: Value| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
        in_session(&f, Some(&id), body.to_string())
    };
    let mut no_version = plain();
    no_version.headers_mut().remove("mcp-protocol-version");
    let cases = vec![
        ("no revision named in a header", no_version),
        (
            "a revision before 2025-06-18",
            with(plain(), "mcp-protocol-version", "2025-03-26"),
        ),
        (
            "the stateless revision with a session",
            with(plain(), "mcp-protocol-version", "2026-07-28"),
        ),
        (
            "a header naming another tool",
            with(plain(), "mcp-name", "whoami"),
        ),
        (
            "a header naming another method",
            with(plain(), "mcp-method", "tools/list"),
        ),
        (
            "a browser's Origin",
            with(plain(), "origin", "http://127.0.0.1:9"),
        ),
        (
            "a version in _meta",
            params(json!({"name": "read_file", "arguments": arguments,
                "_meta": {"io.modelcontextprotocol/protocolVersion": "2025-11-25"}})),
        ),
        (
            "a member it does not know",
            params(json!({"name": "read_file", "arguments": arguments, "task": {}})),
        ),
        (
            "another method",
            in_session(
                &f,
                Some(&id),
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string(),
            ),
        ),
        (
            "an unknown tool",
            session_call(&f, &id, json!(1), "no_such_tool", json!({})),
        ),
        (
            "an unknown session",
            session_call(
                &f,
                "no-such-session",
                json!(1),
                "read_file",
                arguments.clone(),
            ),
        ),
    ];
    for (why, req) in cases {
        given_back_whole(&f, why, req).await;
    }
    // Each was given back for its own reason: the plain call is answered.
    let req = authenticated(&f, plain()).await;
    assert!(answer(&f.mcp, req).await.is_ok());
}

#[test]
fn the_sdk_sees_a_session_in_use_well_within_its_idle_timeout() {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

    // McpState::new keeps the SDK's default session settings.
    let idle = LocalSessionManager::default()
        .session_config
        .keep_alive
        .expect("the SDK closes idle sessions");
    assert!(
        crate::mcp::SDK_SEES_A_SESSION_EVERY * 4 <= idle,
        "a session answered in place would look idle to the SDK ({idle:?})"
    );
}
