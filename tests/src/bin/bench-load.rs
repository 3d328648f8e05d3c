//! The load benchmark of `docs/performance.md`, in one command (`scripts/bench-load`):
//! a release `warrant serve` on loopback with a seeded SQLite database (100 workspaces, each
//! with tenant policies, 2 plugins, an agent and its token, one file; and 16 more without the
//! plugins, to show the plugins' share), driven by a small
//! keep-alive HTTP/1.1 load generator, against a bare axum "hello" served by a child process
//! with the same tokio set-up. Prints req/s, p50, p99, server CPU and context switches per
//! request and RSS, and the ratios the goals are stated in.
//!
//!     bench-load [seconds per round, default 5] [connections, default 16] [rounds, default 3]
//!                [only scenarios whose name contains this text; the baseline always runs]
//!
//! Every scenario uses the same minimal client (hyper's connection API, one connection per
//! task, no pooling layer) so that the client's own cost, which shares the two cores with the
//! server, is alike for all. Rounds are interleaved so drift affects every scenario alike;
//! figures are the median round. Every response is checked; a wrong answer stops the bench.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use warrant_e2e::{Backend, ServerOptions, TestServer, plugin_component};

/// The allocator `warrant` runs with, so the hello baseline (this binary) is served alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WORKSPACES: usize = 100;
/// Workspaces with the same policies and no plugins (the plugins' share of the cost).
const WITHOUT_PLUGINS: usize = 16;
const FILE: &str = "reports/q1.txt";
const CONTENT: &[u8] = b"A small file, read over and over: the benchmark's payload.\n";

/// Ten tenant forbids of the kinds `policies/examples` use.
const TENANT_POLICIES: &str = r#"
@id("agents-read-only") forbid (principal is Agent, action in [Action::"files:write", Action::"files:delete", Action::"files:move"], resource);
@id("no-archives") forbid (principal in Group::"contractor", action == Action::"files:write", resource) when { context.extension == "zip" };
@id("confidential") forbid (principal is Agent, action, resource) when { context.tags.contains("confidential") };
@id("restricted") forbid (principal is Agent, action == Action::"files:read", resource) when { context.path like "restricted/*" };
@id("no-exe") forbid (principal, action == Action::"files:write", resource) when { context.extension == "exe" };
@id("big") forbid (principal, action == Action::"files:write", resource) when { context has size && context.size > 100000000 };
@id("mcp-hr") forbid (principal is Agent, action, resource) when { context.transport == "mcp" && context.folder == "hr/" };
@id("legal") forbid (principal in Group::"contractor", action, resource) when { context.path like "legal/*" };
@id("secrets") forbid (principal, action == Action::"files:read", resource) when { context.extension == "pem" };
@id("night") forbid (principal is Agent, action == Action::"files:delete", resource) when { context.time.toTime() < duration("6h") };
"#;
const PATH_GUARD: &str =
    r#"{"rules":[{"kinds":["agent"],"paths":["reports/**"],"access":"read-only"}]}"#;
const CONTENT_RULES: &str = r#"{"kinds":["agent"],"deny_extensions":["exe"],"max_size":1000000}"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("hello") {
        return hello_server().await;
    }
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let secs = arg(1, 5);
    let conns = arg(2, 16) as usize;
    let rounds = arg(3, 3) as usize;

    let (mut hello_child, hello_addr) = start_hello().await;
    let server = start_warrant().await;
    let seeded = seed(&server).await;
    let warrant_addr: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let host = server.base.trim_start_matches("http://").to_string();
    println!(
        "warrant {} ({}), seeded with {WORKSPACES} workspaces (10 tenant policies, path-guard + content-rules each) \
         and {WITHOUT_PLUGINS} without the plugins; \
         hello {hello_addr}; {conns} connections, {rounds} rounds of {secs} s",
        server.base,
        warrant_e2e::warrant_bin().display()
    );

    let only = args.get(4).cloned().unwrap_or_default();
    let mut scenarios: Vec<Scenario> = vec![
        Scenario::new(
            "bare axum hello",
            hello_addr,
            hello_child.id().unwrap(),
            Kind::Hello,
        ),
        Scenario::new(
            "GET file metadata, PAT",
            warrant_addr,
            server.pid(),
            Kind::Meta(Auth::Pat),
        ),
        Scenario::new(
            "GET file metadata, PAT, workspace without plugins",
            warrant_addr,
            server.pid(),
            Kind::Meta(Auth::PatNoPlugins),
        ),
        Scenario::new(
            "GET file metadata, OAuth JWT",
            warrant_addr,
            server.pid(),
            Kind::Meta(Auth::Jwt),
        ),
        Scenario::new(
            "GET file contents, PAT",
            warrant_addr,
            server.pid(),
            Kind::Download,
        ),
        Scenario::new(
            "MCP tools/call read_file, PAT (2025-11-25 session)",
            warrant_addr,
            server.pid(),
            Kind::McpRead,
        ),
        Scenario::new(
            "MCP tools/call read_file, PAT (2026-07-28, stateless)",
            warrant_addr,
            server.pid(),
            Kind::McpReadStateless,
        ),
    ];
    scenarios.retain(|s| matches!(s.kind, Kind::Hello) || s.name.contains(&only));
    let ctx = Arc::new(Context { seeded, host });
    let mut results: Vec<Vec<Round>> = scenarios.iter().map(|_| Vec::new()).collect();
    for s in &scenarios {
        run_round(s, &ctx, conns, Duration::from_secs(1)).await; // warm-up
    }
    for round in 1..=rounds {
        for (s, r) in scenarios.iter().zip(results.iter_mut()) {
            // What runs now and which process serves it (scripts/profile-load waits for this).
            eprintln!("round {round}/{rounds}: {} (pid {})", s.name, s.pid);
            r.push(run_round(s, &ctx, conns, Duration::from_secs(secs)).await);
        }
    }
    let rss = memory_of(server.pid());
    report(&scenarios, &results, rss);
    hello_child.kill().await.ok();
}

// ---------------------------------------------------------------------------------------------
// The baseline: a bare axum hello in a child process (same tokio defaults as `warrant serve`).

async fn hello_server() {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

async fn start_hello() -> (tokio::process::Child, SocketAddr) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .arg("hello")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines.next_line().await.unwrap().unwrap().parse().unwrap();
    (child, addr)
}

// ---------------------------------------------------------------------------------------------
// The server and its data

async fn start_warrant() -> TestServer {
    let unlimited = "100000000";
    let opts = ServerOptions {
        args: [
            "--rate-limit-per-ip",
            unlimited,
            "--rate-limit-per-credential",
            unlimited,
            "--rate-limit-sensitive",
            unlimited,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        // The default log configuration, as deployed.
        env: Vec::new(),
        ..ServerOptions::default()
    };
    TestServer::start_opts(Backend::Sqlite, opts).await
}

/// What the scenarios need from the seeded database.
struct Seeded {
    /// (workspace id, its agent's PAT), one per workspace.
    workspaces: Vec<(String, String)>,
    /// The same for workspaces with the tenant policies but no plugins.
    without_plugins: Vec<(String, String)>,
    /// A client-credentials access token of a client that is a viewer in every workspace.
    jwt: String,
}

async fn seed(s: &TestServer) -> Seeded {
    let guard = upload(s, "path-guard").await;
    let rules = upload(s, "content-rules").await;
    let client = s
        .post(
            &s.owner_token,
            "/oauth/clients",
            json!({"name": "bench service", "scopes": ["files:read"]}),
        )
        .await
        .expect_json(201);
    let client_principal = client["principal_id"].as_str().unwrap().to_string();
    let plugins = [
        (guard.as_str(), PATH_GUARD),
        (rules.as_str(), CONTENT_RULES),
    ];
    let mut workspaces = Vec::new();
    for i in 0..WORKSPACES {
        let name = format!("bench-{i}");
        workspaces.push(seed_workspace(s, &name, &plugins, &client_principal).await);
    }
    let mut without_plugins = Vec::new();
    for i in 0..WITHOUT_PLUGINS {
        let name = format!("bench-plain-{i}");
        without_plugins.push(seed_workspace(s, &name, &[], &client_principal).await);
    }
    let issued: Value = s
        .client
        .post(s.root_url("/oauth/token"))
        .basic_auth(
            client["client_id"].as_str().unwrap(),
            client["client_secret"].as_str(),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "files:read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwt = issued["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {issued}"))
        .to_string();
    Seeded {
        workspaces,
        without_plugins,
        jwt,
    }
}

/// A workspace with the tenant policies, `plugins` attached in order, the file, and an agent
/// (viewer, with a `files:read` PAT limited to it); the OAuth client is a viewer too. Returns
/// the workspace id and the agent's PAT.
async fn seed_workspace(
    s: &TestServer,
    name: &str,
    plugins: &[(&str, &str)],
    client_principal: &str,
) -> (String, String) {
    let ws = s.create_workspace(&s.owner_token, name).await;
    s.put_policies(&ws, TENANT_POLICIES).await.expect(200);
    for (order, (plugin, config)) in plugins.iter().enumerate() {
        let config: Value = serde_json::from_str(config).unwrap();
        s.put_json(
            &s.owner_token,
            &format!("/workspaces/{ws}/plugins/{plugin}"),
            json!({"config": config, "order": order}),
        )
        .await
        .expect(200);
    }
    s.put_file(&s.owner_token, &ws, FILE, CONTENT)
        .await
        .expect(201);
    let agent = s
        .create_agent(&s.owner_token, &format!("agent-{name}"))
        .await;
    s.add_member(&s.owner_token, &ws, &agent, "viewer").await;
    s.add_member(&s.owner_token, &ws, client_principal, "viewer")
        .await;
    let (_, token) = s
        .create_token(
            &s.owner_token,
            json!({"name": name, "scopes": ["files:read"],
                   "workspaces": [ws], "principal_id": agent}),
        )
        .await;
    (ws, token)
}

async fn upload(s: &TestServer, name: &str) -> String {
    let v = s
        .upload_plugin(&s.owner_token, name, plugin_component(name))
        .await
        .expect_json(201);
    v["id"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Scenarios and the load generator

#[derive(Clone, Copy)]
enum Auth {
    Pat,
    Jwt,
    /// A PAT, in a workspace without plugins.
    PatNoPlugins,
}

#[derive(Clone, Copy)]
enum Kind {
    Hello,
    Meta(Auth),
    Download,
    /// MCP `tools/call read_file` in a 2025-11-25 session.
    McpRead,
    /// The same in the 2026-07-28 revision, which has no sessions.
    McpReadStateless,
}

struct Scenario {
    name: &'static str,
    addr: SocketAddr,
    /// The serving process, whose CPU time is read before and after each round.
    pid: u32,
    kind: Kind,
}

impl Scenario {
    fn new(name: &'static str, addr: SocketAddr, pid: u32, kind: Kind) -> Self {
        Scenario {
            name,
            addr,
            pid,
            kind,
        }
    }
}

struct Context {
    seeded: Seeded,
    host: String,
}

/// One round of one scenario.
struct Round {
    requests: u64,
    elapsed: Duration,
    /// Server CPU seconds spent during the round.
    cpu: f64,
    /// Context switches of the server's threads during the round.
    switches: u64,
    /// Latencies in microseconds.
    latencies: Vec<u32>,
}

impl Round {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

async fn run_round(s: &Scenario, ctx: &Arc<Context>, conns: usize, d: Duration) -> Round {
    // Connections (and MCP sessions) are set up before the clock starts.
    let mut clients = Vec::new();
    for i in 0..conns {
        clients.push(Client::open(s, ctx, i).await);
    }
    let cpu0 = cpu_secs(s.pid);
    let switches0 = context_switches(s.pid);
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(100_000);
                while start.elapsed() < d {
                    let t0 = Instant::now();
                    c.one().await;
                    latencies.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    let cpu = cpu_secs(s.pid) - cpu0;
    let switches = switches_between(&switches0, &context_switches(s.pid));
    latencies.sort_unstable();
    Round {
        requests: latencies.len() as u64,
        elapsed,
        cpu,
        switches,
        latencies,
    }
}

/// One keep-alive connection and the request it repeats.
struct Client {
    sender: SendRequest<Full<Bytes>>,
    kind: Kind,
    host: String,
    token: String,
    uri: String,
    body: Bytes,
    session: Option<String>,
}

impl Client {
    async fn open(s: &Scenario, ctx: &Context, i: usize) -> Client {
        let stream = TcpStream::connect(s.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let (ws, pat) = match s.kind {
            Kind::Meta(Auth::PatNoPlugins) => {
                &ctx.seeded.without_plugins[i % ctx.seeded.without_plugins.len()]
            }
            _ => &ctx.seeded.workspaces[i % WORKSPACES],
        };
        let token = match s.kind {
            Kind::Meta(Auth::Jwt) => ctx.seeded.jwt.clone(),
            _ => pat.clone(),
        };
        let file = format!("/api/v1/workspaces/{ws}/files/{FILE}");
        let (uri, body) = match s.kind {
            Kind::Hello => ("/".to_string(), Bytes::new()),
            Kind::Meta(_) => (format!("{file}?metadata=true"), Bytes::new()),
            Kind::Download => (file, Bytes::new()),
            Kind::McpRead => (
                "/mcp".to_string(),
                Bytes::from(
                    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "read_file", "arguments": {"workspace": ws, "path": FILE}}})
                    .to_string(),
                ),
            ),
            // Without a handshake, each request says who the client is and what it speaks.
            Kind::McpReadStateless => (
                "/mcp".to_string(),
                Bytes::from(
                    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "read_file", "arguments": {"workspace": ws, "path": FILE},
                                      "_meta": {
                                          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                          "io.modelcontextprotocol/clientCapabilities": {},
                                          "io.modelcontextprotocol/clientInfo": {"name": "bench-load", "version": "0"}}}})
                    .to_string(),
                ),
            ),
        };
        let mut c = Client {
            sender,
            kind: s.kind,
            host: ctx.host.clone(),
            token,
            uri,
            body,
            session: None,
        };
        if let Kind::McpRead = s.kind {
            c.start_mcp_session().await;
        }
        c
    }

    fn request(&self, method: Method, uri: &str, body: Bytes) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", &self.host)
            .header("authorization", format!("Bearer {}", self.token));
        if !body.is_empty() {
            b = b
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header(
                    "mcp-protocol-version",
                    match self.kind {
                        Kind::McpReadStateless => "2026-07-28",
                        _ => "2025-11-25",
                    },
                );
        }
        if let Kind::McpReadStateless = self.kind {
            // The 2026-07-28 revision names the method and tool in headers too.
            b = b
                .header("mcp-method", "tools/call")
                .header("mcp-name", "read_file");
        }
        if let Some(id) = &self.session {
            b = b.header("mcp-session-id", id);
        }
        b.body(Full::new(body)).unwrap()
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> (StatusCode, hyper::HeaderMap, Bytes) {
        self.sender.ready().await.unwrap();
        let resp = self.sender.send_request(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, body)
    }

    /// `initialize` and `notifications/initialized`, as any MCP client starts.
    async fn start_mcp_session(&mut self) {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "bench-load", "version": "0"}}});
        let (status, headers, body) = self
            .send(self.request(Method::POST, "/mcp", Bytes::from(init.to_string())))
            .await;
        assert_eq!(
            status,
            200,
            "initialize: {}",
            String::from_utf8_lossy(&body)
        );
        self.session = Some(
            headers
                .get("mcp-session-id")
                .expect("a session id")
                .to_str()
                .unwrap()
                .to_string(),
        );
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let (status, _, body) = self
            .send(self.request(Method::POST, "/mcp", Bytes::from(note.to_string())))
            .await;
        assert_eq!(
            status,
            202,
            "initialized: {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// One request, checked.
    async fn one(&mut self) {
        let method = if self.body.is_empty() {
            Method::GET
        } else {
            Method::POST
        };
        let req = self.request(method, &self.uri.clone(), self.body.clone());
        let (status, _, body) = self.send(req).await;
        let ok = status == StatusCode::OK
            && match self.kind {
                Kind::Hello => &body[..] == b"hello",
                Kind::Meta(_) => contains(&body, b"\"sha256\""),
                Kind::Download => &body[..] == CONTENT,
                Kind::McpRead | Kind::McpReadStateless => {
                    contains(&body, b"\"result\"") && !contains(&body, b"\"isError\":true")
                }
            };
        assert!(
            ok,
            "{}: {status} {}",
            self.uri,
            String::from_utf8_lossy(&body)
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Measurements and the report

/// User + system CPU seconds the process has used so far (Linux `/proc`).
fn cpu_secs(pid: u32) -> f64 {
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

/// Context switches (voluntary and not) of each of the process's threads so far, by thread
/// id: each thread hand-off on the request path shows here.
fn context_switches(pid: u32) -> HashMap<String, u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    tasks
        .filter_map(|t| {
            let t = t.ok()?;
            let status = std::fs::read_to_string(t.path().join("status")).ok()?;
            let switches = status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            Some((t.file_name().to_string_lossy().into_owned(), switches))
        })
        .collect()
}

/// The context switches between two [`context_switches`] readings. Threads come and go (tokio's
/// blocking pool lets idle ones exit): a thread born in between counts whole, one that exited
/// is not counted.
fn switches_between(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> u64 {
    after
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// (current RSS, peak RSS) in MiB.
fn memory_of(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

fn report(scenarios: &[Scenario], results: &[Vec<Round>], (rss, peak): (f64, f64)) {
    let medians: Vec<&Round> = results
        .iter()
        .map(|rounds| {
            let mut by_rate: Vec<&Round> = rounds.iter().collect();
            by_rate.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
            by_rate[by_rate.len() / 2]
        })
        .collect();
    let hello = medians[0].rate();
    let download = medians
        .iter()
        .zip(scenarios)
        .find(|(_, s)| matches!(s.kind, Kind::Download))
        .map(|(r, _)| r.rate())
        .unwrap_or(f64::NAN);
    println!();
    println!(
        "| scenario | req/s (median round) | rounds | p50 | p99 | server CPU / req | switches / req | vs hello | vs GET contents |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for ((s, rounds), m) in scenarios.iter().zip(results).zip(&medians) {
        let pct = |p: f64| m.latencies[((m.latencies.len() as f64 - 1.0) * p) as usize];
        let all: Vec<String> = rounds.iter().map(|r| format!("{:.0}", r.rate())).collect();
        println!(
            "| {} | {:.0} | {} | {} µs | {} µs | {:.0} µs | {:.2} | {:.1} % | {} |",
            s.name,
            m.rate(),
            all.join(" / "),
            pct(0.50),
            pct(0.99),
            1e6 * m.cpu / m.requests as f64,
            m.switches as f64 / m.requests as f64,
            100.0 * m.rate() / hello,
            if matches!(s.kind, Kind::McpRead | Kind::McpReadStateless) {
                format!("{:.1} %", 100.0 * m.rate() / download)
            } else {
                "".into()
            },
        );
    }
    println!();
    println!("warrant RSS after the load: {rss:.0} MiB (peak {peak:.0} MiB)");
}
