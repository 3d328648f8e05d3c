//! The server's own cost of an authorised metadata read, in-process: the whole application
//! (`api::app`: its layers, routing, the PAT extractor, the hot read, the decision pipeline,
//! the decision record, the answer's JSON) called as a tower service, against a bare axum
//! hello called the same way. No sockets, no hyper, no load generator: what is left is the
//! request path Warrant owns, steady enough for criterion to tell a change of a few per cent,
//! which the load benchmark (`scripts/bench-load`) on two shared vCPUs cannot. The decision
//! log's writer runs beside it on the runtime, and the server's logging is set up (each
//! request opens its trace span), as in the server; the writer's own cost is the
//! `decision_log` bench's.
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
    let (app, token, uri) = rt.block_on(async {
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
        let file = format!("/api/v1/workspaces/{ws}/files/reports/q1.txt");
        let (status, body) = call(
            &app,
            request(
                Method::PUT,
                &file,
                &owner.token,
                Body::from("quarterly figures"),
            ),
        )
        .await;
        assert!(status.is_success(), "{status} {body:?}");
        (app, owner.token, format!("{file}?metadata=true"))
    });
    let hello = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));

    let mut g = c.benchmark_group("http_path");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("bare_axum_hello", |b| {
        b.iter(|| {
            let req = request(Method::GET, "/", &token, Body::empty());
            let (status, _) = rt.block_on(call(&hello, req));
            assert_eq!(status, StatusCode::OK);
        });
    });
    g.bench_function("metadata_get_with_pat", |b| {
        b.iter(|| {
            let req = request(Method::GET, &uri, &token, Body::empty());
            let (status, _) = rt.block_on(call(&app, req));
            assert_eq!(status, StatusCode::OK);
        });
    });
    g.finish();
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
