//! The server's own cost of an authorised metadata read, in-process: the whole application
//! (`api::app`: its layers, routing, the PAT extractor, the hot read, the decision pipeline,
//! the decision record, the answer's JSON) called as a tower service, against a bare axum
//! hello called the same way; and the load benchmark's other reads alike: the download, and
//! MCP `tools/call read_file` in both revisions (a 2025-11-25 session, the stateless
//! 2026-07-28). No sockets, no hyper, no load generator: what is left is the request path
//! Warrant owns, steady enough for criterion to tell a change of a few per cent, which the
//! load benchmark (`scripts/bench-load`) on two shared vCPUs cannot. The decision
//! log's writer runs beside it on the runtime, and the server's logging is set up (each
//! request opens its trace span), as in the server; the writer's own cost is the
//! `decision_log` bench's.
//!
//! Each is measured twice: `http_path/*` in wall time, `http_path_cpu/*` in the process's CPU
//! time per request (all threads), which is what the load benchmark's ratios follow.
//!
//! `cargo bench -p warrant --bench http_path`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use criterion::{Criterion, criterion_group};
use http_body_util::BodyExt;
use tower::ServiceExt;
use warrant::api::{self, AppContext, AppState};
use warrant::service::{Settings, Warrant};

/// The allocator the server runs with (`host/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The server's public URL (issuer and resource URLs are built from it).
const PUBLIC_URL: &str = "http://127.0.0.1";

/// The file every read reads, and its contents (the load benchmark's).
const FILE: &str = "reports/q1.txt";
const CONTENT: &[u8] = b"A small file, read over and over: the benchmark's payload.\n";

/// A request as it arrives from `axum::serve` with connect info.
fn request(method: Method, uri: &str, token: &str, body: Body) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(body)
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

/// `tools/call read_file` of `path` in `ws`: in a session, or (`stateless`) in the 2026-07-28
/// revision, where each request carries its protocol version and client in `_meta` and names
/// its method and tool in headers.
fn mcp_read(token: &str, ws: &str, path: &str, session: Option<&str>) -> Request<Body> {
    let stateless = session.is_none();
    let mut params =
        serde_json::json!({"name": "read_file", "arguments": {"workspace": ws, "path": path}});
    if stateless {
        params["_meta"] = serde_json::json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "http_path", "version": "0"}
        });
    }
    let body =
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let mut req = mcp_post(
        token,
        body,
        if stateless {
            "2026-07-28"
        } else {
            "2025-11-25"
        },
    );
    let headers = req.headers_mut();
    match session {
        Some(id) => {
            headers.insert("mcp-session-id", id.parse().unwrap());
        }
        None => {
            headers.insert("mcp-method", header::HeaderValue::from_static("tools/call"));
            headers.insert("mcp-name", header::HeaderValue::from_static("read_file"));
        }
    }
    req
}

/// A POST of one JSON-RPC message to `/mcp`, as MCP clients send it.
fn mcp_post(token: &str, message: serde_json::Value, version: &'static str) -> Request<Body> {
    let body = message.to_string();
    let length = header::HeaderValue::from(body.len());
    let mut req = request(Method::POST, "/mcp", token, Body::from(body));
    let headers = req.headers_mut();
    // As hyper gives it from the client's request.
    headers.insert(header::CONTENT_LENGTH, length);
    headers.insert(header::HOST, header::HeaderValue::from_static("127.0.0.1"));
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ACCEPT,
        header::HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert(
        "mcp-protocol-version",
        header::HeaderValue::from_static(version),
    );
    req
}

/// Opens a 2025-11-25 session (`initialize`, `notifications/initialized`); its id.
async fn open_session(app: &axum::Router, token: &str) -> String {
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "http_path", "version": "0"}}});
    let response = app
        .clone()
        .oneshot(mcp_post(token, init, "2025-11-25"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    response.into_body().collect().await.unwrap();
    let note = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let mut req = mcp_post(token, note, "2025-11-25");
    req.headers_mut()
        .insert("mcp-session-id", id.parse().unwrap());
    let (status, body) = call(app, req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body:?}");
    id
}

/// A monotonic clock, from the first time it is read.
fn wall_clock() -> Duration {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now).elapsed()
}

/// The CPU time this process has used so far, all its threads.
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// True when an MCP reply carries a successful tool result.
fn tool_succeeded(body: &[u8]) -> bool {
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    has(b"\"result\"") && !has(b"\"isError\":true")
}

/// A request to send again and again: its head and its body.
type Template = (axum::http::request::Parts, bytes::Bytes);

/// `req` as a template (its body read once).
fn template(req: Request<Body>) -> Template {
    let (parts, body) = req.into_parts();
    let body = futures::executor::block_on(body.collect())
        .unwrap()
        .to_bytes();
    (parts, body)
}

/// Calls `app` once and returns the status and the body.
async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, bytes::Bytes) {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

fn benches(c: &mut Criterion) {
    // The server's logging: every request opens its trace span, as there.
    warrant::cli::init_logging();
    let rt = common::runtime();
    let (dir, url) = common::fresh_database("http");
    let mut settings = Settings::default();
    // Measure the work, not the rate limiter.
    settings.rate.per_ip = 0;
    settings.rate.per_credential = 0;
    let (app, token, ws, file) = rt.block_on(async {
        let warrant = Warrant::open(&url, &dir, settings).await.unwrap();
        warrant.prepare_storage().await.unwrap();
        warrant.set_public_url(PUBLIC_URL);
        let owner = warrant
            .bootstrap("owner@bench.example", None, "Bench")
            .await
            .unwrap();
        let app = api::app(AppState::new(AppContext {
            warrant: Arc::new(warrant),
            public_url: PUBLIC_URL.into(),
            mcp_allowed_origins: Arc::new([]),
        }));
        let mut create = request(
            Method::POST,
            "/api/v1/workspaces",
            &owner.token,
            Body::from(format!(r#"{{"org_id":"{}","name":"bench"}}"#, owner.org_id)),
        );
        create.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        let (status, body) = call(&app, create).await;
        assert_eq!(status, StatusCode::CREATED, "{body:?}");
        let ws: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let ws = ws["id"].as_str().unwrap().to_string();
        let file = format!("/api/v1/workspaces/{ws}/files/{FILE}");
        let (status, body) = call(
            &app,
            request(Method::PUT, &file, &owner.token, Body::from(CONTENT)),
        )
        .await;
        assert!(status.is_success(), "{status} {body:?}");
        (app, owner.token, ws, file)
    });
    let metadata = format!("{file}?metadata=true");
    let session = rt.block_on(open_session(&app, &token));
    let hello = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));

    // Each scenario: the application, its request (built once, copied for every call, so the
    // harness's own work is alike for all), and what its answer must be.
    type Check = fn(StatusCode, &[u8]) -> bool;
    let scenarios: Vec<(&str, axum::Router, Template, Check)> = vec![
        (
            "bare_axum_hello",
            hello,
            template(request(Method::GET, "/", &token, Body::empty())),
            |status, _| status == StatusCode::OK,
        ),
        (
            "metadata_get_with_pat",
            app.clone(),
            template(request(Method::GET, &metadata, &token, Body::empty())),
            |status, _| status == StatusCode::OK,
        ),
        (
            "download_get_with_pat",
            app.clone(),
            template(request(Method::GET, &file, &token, Body::empty())),
            |status, body| status == StatusCode::OK && body == CONTENT,
        ),
        (
            "mcp_read_file_session",
            app.clone(),
            template(mcp_read(&token, &ws, FILE, Some(&session))),
            |status, body| status == StatusCode::OK && tool_succeeded(body),
        ),
        (
            "mcp_read_file_stateless",
            app.clone(),
            template(mcp_read(&token, &ws, FILE, None)),
            |status, body| status == StatusCode::OK && tool_succeeded(body),
        ),
    ];
    // `iters` requests one after another from a task on the runtime, as a connection's task
    // in the server sends them (what the application spawns lands beside it, as there),
    // measured by `clock` from inside that task.
    let run = |app: &axum::Router, t: &Template, ok: Check, iters: u64, clock: fn() -> Duration| {
        let (app, (parts, body)) = (app.clone(), t.clone());
        rt.block_on(rt.spawn(async move {
            let start = clock();
            for _ in 0..iters {
                let req = Request::from_parts(parts.clone(), Body::from(body.clone()));
                let (status, body) = call(&app, req).await;
                assert!(ok(status, &body), "{status} {body:?}");
            }
            clock().saturating_sub(start)
        }))
        .unwrap()
    };

    // Wall time: what a caller waits, thread hand-offs included.
    let mut g = c.benchmark_group("http_path");
    g.measurement_time(Duration::from_secs(5));
    for (name, app, template, ok) in &scenarios {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| run(app, template, *ok, iters, wall_clock))
        });
    }
    g.finish();
    // The process's CPU time (every thread: the runtime's workers, the log's writer): what a
    // request costs the machine, the figure the load benchmark's ratios follow.
    let mut g = c.benchmark_group("http_path_cpu");
    g.measurement_time(Duration::from_secs(5));
    for (name, app, template, ok) in &scenarios {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| run(app, template, *ok, iters, process_cpu))
        });
    }
    g.finish();
    drop(scenarios);
    drop(app);
    // Let the decision log's writer finish before the folder goes.
    rt.shutdown_timeout(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
}
