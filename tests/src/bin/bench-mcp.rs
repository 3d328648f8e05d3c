//! Throughput of `tools/call read_file` over Streamable HTTP against the REST `GET` of the same
//! file, in the same run, on the same server. Usage (see scripts/bench-mcp):
//!
//!     bench-mcp [seconds per round, default 5] [concurrency, default 16]
//!
//! The server is the `warrant` binary the e2e harness finds (`WARRANT_BIN` to choose one, e.g.
//! a release build). Rounds alternate REST, MCP, REST, MCP so drift affects both alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use warrant_e2e::{Backend, ServerOptions, TestServer};

const CONTENT: &[u8] = b"A small file, read over and over: the benchmark's payload.\n";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let conc: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);
    let opts = ServerOptions {
        args: [
            "--rate-limit-per-ip",
            "100000000",
            "--rate-limit-per-credential",
            "100000000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        // The default log configuration, as deployed.
        env: Vec::new(),
        ..ServerOptions::default()
    };
    let s = TestServer::start_opts(Backend::Sqlite, opts).await;
    let ws = s.create_workspace(&s.owner_token, "bench").await;
    s.put_file(&s.owner_token, &ws, "small.txt", CONTENT)
        .await
        .expect(201);
    println!(
        "server {} ({}); {conc} concurrent clients, {secs} s per round",
        s.base,
        warrant_e2e::warrant_bin().display()
    );

    let mut rest = Vec::new();
    let mut session = Vec::new();
    let mut stateless = Vec::new();
    let (v1, v2) = (ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28);
    // A warm-up of each, then three measured rounds of each, interleaved.
    rest_round(&s, &ws, conc, Duration::from_secs(1)).await;
    mcp_round(&s, &ws, conc, Duration::from_secs(1), v1.clone()).await;
    mcp_round(&s, &ws, conc, Duration::from_secs(1), v2.clone()).await;
    let d = Duration::from_secs(secs);
    let pid = s.pid();
    let mut cpu = [(0.0f64, 0.0f64); 3];
    for _ in 0..3 {
        let c0 = server_cpu_secs(pid);
        let r = rest_round(&s, &ws, conc, d).await;
        let c1 = server_cpu_secs(pid);
        let m1 = mcp_round(&s, &ws, conc, d, v1.clone()).await;
        let c2 = server_cpu_secs(pid);
        let m2 = mcp_round(&s, &ws, conc, d, v2.clone()).await;
        let c3 = server_cpu_secs(pid);
        for (i, (rate, spent)) in [(r, c1 - c0), (m1, c2 - c1), (m2, c3 - c2)]
            .into_iter()
            .enumerate()
        {
            cpu[i].0 += spent;
            cpu[i].1 += rate * d.as_secs_f64();
        }
        rest.push(r);
        session.push(m1);
        stateless.push(m2);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (r, m1, m2) = (mean(&rest), mean(&session), mean(&stateless));
    println!("REST GET file:                          {r:>8.0} req/s  (rounds: {rest:.0?})");
    println!(
        "MCP tools/call read_file, 2025-11-25:   {m1:>8.0} req/s  (rounds: {session:.0?})  {:.1} % of REST",
        100.0 * m1 / r
    );
    println!(
        "MCP tools/call read_file, 2026-07-28:   {m2:>8.0} req/s  (rounds: {stateless:.0?})  {:.1} % of REST",
        100.0 * m2 / r
    );
    // The server's own CPU per request (the client shares the machine; this isolates the
    // server). Session rounds include their handshakes.
    let per = |(spent, n): (f64, f64)| 1e6 * spent / n;
    println!(
        "server CPU per request: REST {:.0} µs, MCP 2025-11-25 {:.0} µs, MCP 2026-07-28 {:.0} µs",
        per(cpu[0]),
        per(cpu[1]),
        per(cpu[2])
    );
}

/// User + system CPU seconds the process has used so far (Linux `/proc`).
fn server_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0 // USER_HZ
}

async fn rest_round(s: &TestServer, ws: &str, conc: usize, d: Duration) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let url = s.url(&format!("/workspaces/{ws}/files/small.txt"));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (client, url, token, count) = (
            s.client.clone(),
            url.clone(),
            s.owner_token.clone(),
            count.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < d {
                let r = client.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let body = r.bytes().await.unwrap();
                assert_eq!(&body[..], CONTENT);
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// `tools/call read_file` with `conc` clients speaking `version` (2025-11-25: one session each;
/// 2026-07-28: stateless).
async fn mcp_round(
    s: &TestServer,
    ws: &str,
    conc: usize,
    d: Duration,
    version: ProtocolVersion,
) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..conc {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(s.root_url("/mcp"))
                .auth_header(s.owner_token.clone()),
        );
        let client = ClientConfig::default()
            .with_protocol_version(version.clone())
            .serve(transport)
            .await
            .expect("MCP client");
        clients.push(client);
    }
    let args = json!({"workspace": ws, "path": "small.txt"})
        .as_object()
        .unwrap()
        .clone();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for client in clients {
        let (args, count) = (args.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < d {
                let r = client
                    .call_tool(CallToolRequestParams::new("read_file").with_arguments(args.clone()))
                    .await
                    .unwrap();
                assert_ne!(r.is_error, Some(true), "{r:?}");
                let text = r.structured_content.as_ref().unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .len();
                assert_eq!(text, CONTENT.len());
                count.fetch_add(1, Ordering::Relaxed);
            }
            client.cancel().await.ok();
        }));
    }
    let n = {
        for t in tasks {
            t.await.unwrap();
        }
        count.load(Ordering::Relaxed)
    };
    n as f64 / start.elapsed().as_secs_f64()
}
