//! OAuth costs on the request path and at the token endpoint, measured in-process on a real
//! SQLite database (the same code the server runs; no HTTP):
//!
//! - client-credentials issuance (client lookup, secret check, Ed25519 signature, audit write),
//!   as criterion time per token and as tokens per second over 5 000 sequential issuances;
//! - access-token verification: the signature alone, a first verification through
//!   `Warrant::authenticate` (signature + principal lookup), and a cached one (p50/p99 over
//!   100 000 calls).
//!
//! `cargo bench -p warrant --bench oauth`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use warrant::authz::Transport;
use warrant::service::oauth::{ClientAuth, NewClient};
use warrant::service::{Settings, Warrant};

/// The allocator the server runs with (`host/src/main.rs`), so tokens cost here what they
/// cost there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ISSUER: &str = "https://warrant.example";

struct Bench {
    rt: tokio::runtime::Runtime,
    warrant: Warrant,
    auth: ClientAuth,
}

fn setup() -> Bench {
    let rt = common::runtime();
    let (dir, url) = common::fresh_database("oauth");
    let mut settings = Settings::default();
    // Measure the work, not the rate limiter.
    settings.rate.per_credential = 0;
    settings.rate.failed_auth_per_ip = 0;
    let (warrant, auth) = rt.block_on(async {
        let warrant = Warrant::open(&url, &dir, settings).await.unwrap();
        warrant.set_public_url(ISSUER);
        let owner = warrant
            .bootstrap("owner@bench.example", None, "Bench")
            .await
            .unwrap();
        let caller = warrant
            .authenticate(&owner.token, None, Transport::Rest)
            .await
            .unwrap();
        let client = warrant
            .create_client(
                &caller,
                NewClient {
                    org_id: None,
                    name: "bench".into(),
                    client_type: None,
                    redirect_uris: vec![],
                    grant_types: None,
                    scopes: vec!["files:read".into(), "files:write".into()],
                    workspaces: None,
                    principal_id: None,
                },
            )
            .await
            .unwrap();
        let auth = ClientAuth {
            client_id: Some(client.client_id.clone()),
            secret: client.client_secret.clone(),
            basic: true,
        };
        (warrant, auth)
    });
    Bench { rt, warrant, auth }
}

fn form() -> Vec<(String, String)> {
    vec![("grant_type".into(), "client_credentials".into())]
}

fn issue(b: &Bench) -> String {
    b.rt.block_on(b.warrant.token(&b.auth, &form(), None))
        .unwrap()
        .access_token
}

fn percentiles(mut v: Vec<u128>) -> (u128, u128) {
    v.sort_unstable();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn benches(c: &mut Criterion) {
    let b = setup();
    c.bench_function("oauth/client_credentials_issue", |x| {
        x.iter(|| black_box(issue(&b)))
    });
    let token = issue(&b);
    c.bench_function("oauth/verify_cached", |x| {
        x.iter(|| {
            black_box(
                b.rt.block_on(b.warrant.authenticate(&token, None, Transport::Rest))
                    .unwrap(),
            )
        })
    });
    // First verifications are timed in the percentile pass below, on tokens never seen
    // before: criterion's repeated iterations would turn them into cache hits.

    if std::env::var("PERCENTILES").map_or(true, |v| v != "0") {
        // Issuance throughput: 5 000 sequential client-credentials grants.
        let n = 5_000;
        let start = Instant::now();
        for _ in 0..n {
            black_box(issue(&b));
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "oauth issuance: {n} tokens in {secs:.3} s = {:.0} tokens/s (sequential)",
            f64::from(n) / secs
        );

        // Two concurrent issuers (the machine has two cores).
        let start = Instant::now();
        b.rt.block_on(async {
            let per = n / 2;
            let w = &b.warrant;
            let a = &b.auth;
            let one = async {
                for _ in 0..per {
                    black_box(w.token(a, &form(), None).await.unwrap());
                }
            };
            let two = async {
                for _ in 0..per {
                    black_box(w.token(a, &form(), None).await.unwrap());
                }
            };
            futures::join!(one, two);
        });
        let secs = start.elapsed().as_secs_f64();
        println!(
            "oauth issuance: {n} tokens in {secs:.3} s = {:.0} tokens/s (2 concurrent)",
            f64::from(n) / secs
        );

        // Cached verification, per call.
        let mut times = Vec::with_capacity(100_000);
        for _ in 0..100_000 {
            let t0 = Instant::now();
            black_box(
                b.rt.block_on(b.warrant.authenticate(&token, None, Transport::Rest))
                    .unwrap(),
            );
            times.push(t0.elapsed().as_nanos());
        }
        let (p50, p99) = percentiles(times);
        println!(
            "oauth verify (cached): p50 {:.2} µs, p99 {:.2} µs",
            p50 as f64 / 1e3,
            p99 as f64 / 1e3
        );

        // First verification of unseen tokens (signature + principal lookup).
        let unseen: Vec<String> = (0..2000).map(|_| issue(&b)).collect();
        let mut times = Vec::with_capacity(unseen.len());
        for t in &unseen {
            let t0 = Instant::now();
            black_box(
                b.rt.block_on(b.warrant.authenticate(t, None, Transport::Rest))
                    .unwrap(),
            );
            times.push(t0.elapsed().as_nanos());
        }
        let (p50, p99) = percentiles(times);
        println!(
            "oauth verify (first): p50 {:.2} µs, p99 {:.2} µs",
            p50 as f64 / 1e3,
            p99 as f64 / 1e3
        );
    }
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
}
