//! URL import and storage quotas: the SSRF matrix against upstream servers bound on loopback
//! (allow-list off: all refused; on: allowed, bytes identical), redirects checked per hop,
//! redirect loops, size and time caps, no credential forwarding, tenant policies on
//! `files:import`; quota exhaustion on upload and import, usage, replace counting the
//! difference, concurrent writers. All traffic stays on 127.0.0.0/8.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use warrant_e2e::*;

both_backends!(
    every_non_public_address_and_scheme_is_refused_without_a_request,
    allowed_import_stores_identical_bytes_and_content_type,
    redirects_are_followed_and_every_hop_is_checked,
    redirect_loop_gives_up_after_the_cap,
    oversized_bodies_are_413_and_leave_nothing,
    slow_upstream_hits_the_time_cap,
    the_callers_credential_never_reaches_the_upstream,
    tenant_policies_refuse_imports_as_imports_and_as_writes,
    upstream_errors_are_502,
    quota_refuses_uploads_and_counts_replacements,
    quota_refuses_imports_and_streams,
    quota_is_configurable_per_org_up_to_the_ceiling,
    concurrent_writers_never_pass_the_quota,
);

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 upstream on loopback that records every request head.

#[derive(Clone)]
enum Behaviour {
    Body {
        content_type: &'static str,
        body: Vec<u8>,
        chunked: bool,
    },
    Status(u16),
    Redirect(String),
    /// Headers at once, then one byte every `every`.
    Drip {
        every: Duration,
        bytes: usize,
    },
    /// Accepts and never answers (for at most 60 s).
    Hang,
}

struct Upstream {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    routes: Arc<Mutex<HashMap<String, Behaviour>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    async fn start(ip: &str) -> Upstream {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind upstream");
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let routes: Arc<Mutex<HashMap<String, Behaviour>>> = Arc::default();
        let (h, r) = (heads.clone(), routes.clone());
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    break;
                };
                let (h, r) = (h.clone(), r.clone());
                conns.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(60), serve(sock, h, r)).await;
                });
            }
        });
        Upstream {
            addr,
            heads,
            routes,
            task,
        }
    }

    fn route(&self, path: &str, b: Behaviour) {
        self.routes.lock().unwrap().insert(path.to_string(), b);
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    fn hits(&self, path: &str) -> usize {
        self.heads()
            .iter()
            .filter(|h| h.split_whitespace().nth(1) == Some(path))
            .count()
    }
}

async fn serve(
    mut sock: TcpStream,
    heads: Arc<Mutex<Vec<String>>>,
    routes: Arc<Mutex<HashMap<String, Behaviour>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n")
        && buf.len() < 65_536
        && buf.first() != Some(&0x16)
    {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if buf.first() == Some(&0x16) {
        // A TLS ClientHello: this server speaks plain HTTP only, so hang up.
        return;
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    heads.lock().unwrap().push(head);
    let behaviour = routes.lock().unwrap().get(&path).cloned();
    let out = match behaviour {
        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        Some(Behaviour::Status(code)) => {
            format!("HTTP/1.1 {code} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .into_bytes()
        }
        Some(Behaviour::Redirect(location)) => format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        Some(Behaviour::Body {
            content_type,
            body,
            chunked: false,
        }) => {
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(&body);
            out
        }
        Some(Behaviour::Body {
            content_type,
            body,
            chunked: true,
        }) => {
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            .into_bytes();
            for part in body.chunks(16 * 1024) {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        Some(Behaviour::Drip { every, bytes }) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {bytes}\r\nConnection: close\r\n\r\n"
            );
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for _ in 0..bytes {
                tokio::time::sleep(every).await;
                if sock.write_all(b"x").await.is_err() {
                    return;
                }
            }
            return;
        }
        Some(Behaviour::Hang) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
    };
    let _ = sock.write_all(&out).await;
    let _ = sock.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Helpers

async fn import(s: &TestServer, token: &str, ws: &str, url: &str, path: &str) -> Reply {
    s.post(
        token,
        &format!("/workspaces/{ws}/imports"),
        json!({"url": url, "path": path}),
    )
    .await
}

/// Files under the data directory's blob and temporary folders.
fn stored_blobs(s: &TestServer) -> usize {
    fn count(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() { count(&p) } else { 1 }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    let data = s.dir().join("data");
    count(&data.join("blobs")) + count(&data.join("tmp"))
}

async fn usage(s: &TestServer) -> Value {
    s.get(&s.owner_token, &format!("/orgs/{}/usage", s.org_id))
        .await
        .expect_json(200)
}

async fn used_bytes(s: &TestServer) -> i64 {
    usage(s).await["used_bytes"].as_i64().unwrap()
}

const ALLOW_LOOPBACK: &[&str] = &[
    "--import-allow",
    "127.0.0.1/32",
    "--import-timeout",
    "2s",
    "--max-upload-bytes",
    "300000",
];

// ---------------------------------------------------------------------------------------------
// URL import

async fn every_non_public_address_and_scheme_is_refused_without_a_request(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "ssrf").await;
    let up = Upstream::start("127.0.0.1").await;
    up.route(
        "/file",
        Behaviour::Body {
            content_type: "text/plain",
            body: b"secret".to_vec(),
            chunked: false,
        },
    );
    let port = up.port();
    // Every one of these would reach the live upstream (or a private network) if it were
    // not refused; the allow-list is off.
    let cases = [
        (format!("http://127.0.0.1:{port}/file"), "loopback"),
        (format!("http://localhost:{port}/file"), "loopback"),
        (format!("http://[::1]:{port}/file"), "loopback"),
        (format!("http://0.0.0.0:{port}/file"), "unspecified"),
        (format!("http://0:{port}/file"), "unspecified"),
        (format!("http://2130706433:{port}/file"), "loopback"),
        (format!("http://0177.0.0.1:{port}/file"), "loopback"),
        (format!("http://0x7f.1:{port}/file"), "loopback"),
        (format!("http://0x7f000001:{port}/file"), "loopback"),
        (format!("http://127.1:{port}/file"), "loopback"),
        (format!("http://[::ffff:127.0.0.1]:{port}/file"), "loopback"),
        (format!("http://[::ffff:7f00:1]:{port}/file"), "loopback"),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "link-local",
        ),
        ("http://10.0.0.1/".to_string(), "private"),
        ("http://192.168.1.1/".to_string(), "private"),
        ("http://172.16.0.1/".to_string(), "private"),
        ("http://100.64.0.1/".to_string(), "carrier-grade"),
        ("http://[fd00::1]/".to_string(), "unique local"),
        ("http://[fe80::1]/".to_string(), "link-local"),
        ("file:///etc/passwd".to_string(), "only http and https"),
        (
            format!("ftp://127.0.0.1:{port}/file"),
            "only http and https",
        ),
        ("gopher://127.0.0.1/".to_string(), "only http and https"),
        (
            format!("http://user:pass@127.0.0.1:{port}/file"),
            "credentials",
        ),
        ("http://user:pass@example.com/".to_string(), "credentials"),
        ("not a url".to_string(), "not a valid"),
    ];
    for (url, word) in &cases {
        let r = import(&s, &s.owner_token, &ws, url, "loot.txt").await;
        let v = r.problem(422, "import_refused");
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(word), "{url}: expected `{word}` in {v}");
    }
    assert!(
        up.heads().is_empty(),
        "the upstream was reached: {:?}",
        up.heads()
    );
    s.get_file(&s.owner_token, &ws, "loot.txt")
        .await
        .not_found();
    assert_eq!(stored_blobs(&s), 0);
}

async fn allowed_import_stores_identical_bytes_and_content_type(backend: Backend) {
    let s = TestServer::start_with(backend, ALLOW_LOOPBACK).await;
    let ws = s.create_workspace(&s.owner_token, "imports").await;
    let up = Upstream::start("127.0.0.1").await;
    let body = pseudo_random_bytes(200_000, 7);
    up.route(
        "/data.csv",
        Behaviour::Body {
            content_type: "text/csv; charset=utf-8",
            body: body.clone(),
            chunked: false,
        },
    );
    up.route(
        "/chunked.bin",
        Behaviour::Body {
            content_type: "application/x-thing",
            body: body[..50_000].to_vec(),
            chunked: true,
        },
    );
    let r = import(&s, &s.owner_token, &ws, &up.url("/data.csv"), "in/data.csv").await;
    let v = r.expect_json(201);
    assert_eq!(v["path"], json!("in/data.csv"), "{v}");
    assert_eq!(v["size"], json!(body.len()), "{v}");
    assert_eq!(v["sha256"], json!(sha256_hex(&body)), "{v}");
    assert_eq!(v["content_type"], json!("text/csv; charset=utf-8"), "{v}");
    assert_eq!(v["source_url"], json!(up.url("/data.csv")), "{v}");
    assert_eq!(v["redirects"], json!(0), "{v}");
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", v["etag"].as_str().unwrap()))
    );
    let get = s.get_file(&s.owner_token, &ws, "in/data.csv").await;
    get.expect(200);
    assert!(get.body == body, "the imported bytes differ");
    assert_eq!(
        get.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    // A chunked body with no length, and a second import over the same path replaces it.
    let r = import(
        &s,
        &s.owner_token,
        &ws,
        &up.url("/chunked.bin"),
        "in/data.csv",
    )
    .await;
    let v = r.expect_json(200);
    assert_eq!(v["size"], json!(50_000), "{v}");
    assert_eq!(v["content_type"], json!("application/x-thing"), "{v}");
    let get = s.get_file(&s.owner_token, &ws, "in/data.csv").await;
    assert!(get.body == body[..50_000], "the replaced bytes differ");
    // The allow-list opens exactly what it names.
    let other = Upstream::start("127.0.0.2").await;
    other.route(
        "/x",
        Behaviour::Body {
            content_type: "text/plain",
            body: b"no".to_vec(),
            chunked: false,
        },
    );
    for url in [
        other.url("/x"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://0.0.0.0:{}/data.csv", up.port()),
    ] {
        import(&s, &s.owner_token, &ws, &url, "in/no.txt")
            .await
            .problem(422, "import_refused");
    }
    assert!(
        other.heads().is_empty(),
        "127.0.0.2 is not on the allow-list"
    );
    // The usage counts the imported file.
    assert_eq!(used_bytes(&s).await, 50_000);
}

async fn redirects_are_followed_and_every_hop_is_checked(backend: Backend) {
    let s = TestServer::start_with(backend, ALLOW_LOOPBACK).await;
    let ws = s.create_workspace(&s.owner_token, "redirects").await;
    let up = Upstream::start("127.0.0.1").await;
    let hidden = Upstream::start("127.0.0.2").await;
    hidden.route(
        "/secret",
        Behaviour::Body {
            content_type: "text/plain",
            body: b"internal".to_vec(),
            chunked: false,
        },
    );
    up.route("/a", Behaviour::Redirect("/b".into()));
    up.route("/b", Behaviour::Redirect(up.url("/final")));
    up.route(
        "/final",
        Behaviour::Body {
            content_type: "text/plain",
            body: b"after two hops".to_vec(),
            chunked: false,
        },
    );
    let v = import(&s, &s.owner_token, &ws, &up.url("/a"), "hops.txt")
        .await
        .expect_json(201);
    assert_eq!(v["redirects"], json!(2), "{v}");
    assert_eq!(v["source_url"], json!(up.url("/final")), "{v}");
    assert_eq!(
        s.get_file(&s.owner_token, &ws, "hops.txt").await.body,
        b"after two hops"
    );
    // An allowed server redirecting to refused places: each is refused at that hop.
    let targets = [
        (hidden.url("/secret"), "loopback"),
        (format!("http://[::1]:{}/final", up.port()), "loopback"),
        (
            format!("http://2130706434:{}/secret", hidden.port()),
            "loopback",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "link-local",
        ),
        ("file:///etc/passwd".to_string(), "only http and https"),
        (
            format!("http://u:p@127.0.0.1:{}/final", up.port()),
            "credentials",
        ),
    ];
    for (i, (target, word)) in targets.iter().enumerate() {
        let from = format!("/to-refused-{i}");
        up.route(&from, Behaviour::Redirect(target.clone()));
        let v = import(&s, &s.owner_token, &ws, &up.url(&from), "refused.txt")
            .await
            .problem(422, "import_refused");
        assert!(
            v["detail"].as_str().unwrap().contains(word),
            "{target}: expected `{word}`: {v}"
        );
        assert_eq!(up.hits(&from), 1);
    }
    assert!(
        hidden.heads().is_empty(),
        "a redirect reached a refused address: {:?}",
        hidden.heads()
    );
    s.get_file(&s.owner_token, &ws, "refused.txt")
        .await
        .not_found();
}

async fn redirect_loop_gives_up_after_the_cap(backend: Backend) {
    let s = TestServer::start_with(backend, ALLOW_LOOPBACK).await;
    let ws = s.create_workspace(&s.owner_token, "loop").await;
    let up = Upstream::start("127.0.0.1").await;
    up.route("/loop", Behaviour::Redirect("/loop".into()));
    let started = Instant::now();
    let v = import(&s, &s.owner_token, &ws, &up.url("/loop"), "loop.txt")
        .await
        .problem(502, "upstream_failed");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("redirected more than"),
        "{v}"
    );
    // The first request and five redirects, then no more.
    assert_eq!(up.hits("/loop"), 6, "{:?}", up.heads());
    assert!(started.elapsed() < Duration::from_secs(10));
    s.get_file(&s.owner_token, &ws, "loop.txt")
        .await
        .not_found();
}

async fn oversized_bodies_are_413_and_leave_nothing(backend: Backend) {
    let s = TestServer::start_with(backend, ALLOW_LOOPBACK).await;
    let ws = s.create_workspace(&s.owner_token, "big").await;
    let up = Upstream::start("127.0.0.1").await;
    let big = pseudo_random_bytes(400_000, 3);
    up.route(
        "/declared",
        Behaviour::Body {
            content_type: "application/octet-stream",
            body: big.clone(),
            chunked: false,
        },
    );
    up.route(
        "/undeclared",
        Behaviour::Body {
            content_type: "application/octet-stream",
            body: big,
            chunked: true,
        },
    );
    for path in ["/declared", "/undeclared"] {
        let v = import(&s, &s.owner_token, &ws, &up.url(path), "big.bin")
            .await
            .problem(413, "payload_too_large");
        assert!(v["detail"].as_str().unwrap().contains("300000"), "{v}");
        assert_eq!(up.hits(path), 1);
    }
    s.get_file(&s.owner_token, &ws, "big.bin").await.not_found();
    assert_eq!(stored_blobs(&s), 0, "an oversized import left bytes behind");
    assert_eq!(used_bytes(&s).await, 0);
}

async fn slow_upstream_hits_the_time_cap(backend: Backend) {
    let s = TestServer::start_with(backend, ALLOW_LOOPBACK).await;
    let ws = s.create_workspace(&s.owner_token, "slow").await;
    let up = Upstream::start("127.0.0.1").await;
    up.route(
        "/drip",
        Behaviour::Drip {
            every: Duration::from_millis(200),
            bytes: 100,
        },
    );
    up.route("/hang", Behaviour::Hang);
    for path in ["/drip", "/hang"] {
        let started = Instant::now();
        let v = import(&s, &s.owner_token, &ws, &up.url(path), "slow.txt")
            .await
            .problem(504, "upstream_timeout");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
            "{path}: the 2 s cap took {took:?}: {v}"
        );
    }
    s.get_file(&s.owner_token, &ws, "slow.txt")
        .await
        .not_found();
    assert_eq!(stored_blobs(&s), 0);
}

async fn the_callers_credential_never_reaches_the_upstream(backend: Backend) {
    let s = TestServer::start_with(backend, ALLOW_LOOPBACK).await;
    let ws = s.create_workspace(&s.owner_token, "creds").await;
    let up = Upstream::start("127.0.0.1").await;
    up.route("/start", Behaviour::Redirect("/doc".into()));
    up.route(
        "/doc",
        Behaviour::Body {
            content_type: "text/plain",
            body: b"doc".to_vec(),
            chunked: false,
        },
    );
    let r = send(
        s.req(
            Method::POST,
            &format!("/workspaces/{ws}/imports"),
            Some(&s.owner_token),
        )
        .header("cookie", "session=abc123")
        .json(&json!({"url": up.url("/start"), "path": "doc.txt"})),
    )
    .await;
    r.expect(201);
    let heads = up.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(!lower.contains("authorization"), "{head}");
        assert!(!lower.contains("cookie"), "{head}");
        assert!(!lower.contains("abc123"), "{head}");
        assert!(!head.contains(&s.owner_token), "{head}");
        assert!(!head.contains("wrt_"), "{head}");
        assert!(lower.contains("user-agent: warrant-import/"), "{head}");
        assert!(!lower.contains("referer"), "{head}");
    }
}

async fn tenant_policies_refuse_imports_as_imports_and_as_writes(backend: Backend) {
    let s = TestServer::start_with(backend, ALLOW_LOOPBACK).await;
    let ws = s.create_workspace(&s.owner_token, "policies").await;
    let up = Upstream::start("127.0.0.1").await;
    up.route(
        "/doc",
        Behaviour::Body {
            content_type: "text/plain",
            body: b"doc".to_vec(),
            chunked: false,
        },
    );
    // A viewer may not import (the base policies treat an import as an editor's write).
    let viewer = s.create_agent(&s.owner_token, "viewer-bot").await;
    s.add_member(&s.owner_token, &ws, &viewer, "viewer").await;
    let viewer_token = s.agent_token(&viewer, &["files:read", "files:write"]).await;
    import(&s, &viewer_token, &ws, &up.url("/doc"), "v.txt")
        .await
        .forbidden("policy");
    // A credential without files:write is refused at the scope gate.
    let editor = s.create_agent(&s.owner_token, "editor-bot").await;
    s.add_member(&s.owner_token, &ws, &editor, "editor").await;
    let read_only = s.agent_token(&editor, &["files:read"]).await;
    let v = import(&s, &read_only, &ws, &up.url("/doc"), "r.txt")
        .await
        .forbidden("scope");
    assert_eq!(v["required_scope"], json!("files:write"), "{v}");
    let editor_token = s.agent_token(&editor, &["files:read", "files:write"]).await;
    import(&s, &editor_token, &ws, &up.url("/doc"), "ok.txt")
        .await
        .expect(201);
    let before = up.heads().len();

    s.put_policies(
        &ws,
        r#"@id("no-imports")
forbid (principal, action == Action::"files:import", resource);
@id("no-writes-in-locked")
forbid (principal, action == Action::"files:write", resource) when { context.path like "locked/*" };
"#,
    )
    .await
    .expect(200);
    let v = import(&s, &editor_token, &ws, &up.url("/doc"), "again.txt")
        .await
        .forbidden("policy");
    assert_eq!(v["policy_ids"], json!(["no-imports"]), "{v}");
    // Uploads are still fine: the forbid names imports only.
    s.put_file(&editor_token, &ws, "upload.txt", "hi")
        .await
        .expect(201);
    assert_eq!(
        up.heads().len(),
        before,
        "a refused import must not fetch anything"
    );

    // A forbid on the write of the target path refuses an import there too.
    s.put_policies(
        &ws,
        r#"@id("no-writes-in-locked")
forbid (principal, action == Action::"files:write", resource) when { context.path like "locked/*" };
"#,
    )
    .await
    .expect(200);
    let v = import(&s, &editor_token, &ws, &up.url("/doc"), "locked/x.txt")
        .await
        .forbidden("policy");
    assert_eq!(v["policy_ids"], json!(["no-writes-in-locked"]), "{v}");
    import(&s, &editor_token, &ws, &up.url("/doc"), "open/x.txt")
        .await
        .expect(201);
    // The import decisions are in the log (written asynchronously).
    s.logged_decision(&ws, "limit=200", |d| d["action"] == "files:import")
        .await;
}

async fn upstream_errors_are_502(backend: Backend) {
    let s = TestServer::start_with(backend, ALLOW_LOOPBACK).await;
    let ws = s.create_workspace(&s.owner_token, "errors").await;
    let up = Upstream::start("127.0.0.1").await;
    up.route("/gone", Behaviour::Status(404));
    up.route("/broken", Behaviour::Status(500));
    up.route("/nowhere", Behaviour::Status(302));
    for path in ["/gone", "/broken", "/nowhere", "/unrouted"] {
        let v = import(&s, &s.owner_token, &ws, &up.url(path), "e.txt")
            .await
            .problem(502, "upstream_failed");
        assert!(!v["detail"].as_str().unwrap().is_empty(), "{v}");
    }
    // Nothing listens on a port just freed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    import(
        &s,
        &s.owner_token,
        &ws,
        &format!("http://127.0.0.1:{closed}/x"),
        "e.txt",
    )
    .await
    .problem(502, "upstream_failed");
    // https is accepted as a scheme; a plain-HTTP server cannot complete the handshake.
    up.route(
        "/tls",
        Behaviour::Body {
            content_type: "text/plain",
            body: b"x".to_vec(),
            chunked: false,
        },
    );
    import(
        &s,
        &s.owner_token,
        &ws,
        &format!("https://127.0.0.1:{}/tls", up.port()),
        "e.txt",
    )
    .await
    .problem(502, "upstream_failed");
    s.get_file(&s.owner_token, &ws, "e.txt").await.not_found();
}

// ---------------------------------------------------------------------------------------------
// Quotas

const SMALL_QUOTA: &[&str] = &[
    "--storage-quota-bytes",
    "1000",
    "--storage-quota-max-bytes",
    "5000",
    "--import-allow",
    "127.0.0.1/32",
];

async fn quota_refuses_uploads_and_counts_replacements(backend: Backend) {
    let s = TestServer::start_with(backend, SMALL_QUOTA).await;
    let ws = s.create_workspace(&s.owner_token, "quota").await;
    let u = usage(&s).await;
    assert_eq!(u["used_bytes"], json!(0), "{u}");
    assert_eq!(u["quota_bytes"], json!(1000), "{u}");
    assert_eq!(u["available_bytes"], json!(1000), "{u}");
    assert_eq!(u["quota_source"], json!("default"), "{u}");

    s.put_file(&s.owner_token, &ws, "a", vec![1u8; 600])
        .await
        .expect(201);
    assert_eq!(used_bytes(&s).await, 600);
    let v = s
        .put_file(&s.owner_token, &ws, "b", vec![2u8; 600])
        .await
        .problem(507, "quota_exceeded");
    assert_eq!(v["quota_bytes"], json!(1000), "{v}");
    assert_eq!(v["used_bytes"], json!(600), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("quota"), "{v}");
    s.get_file(&s.owner_token, &ws, "b").await.not_found();
    assert_eq!(used_bytes(&s).await, 600);

    s.put_file(&s.owner_token, &ws, "b", vec![2u8; 400])
        .await
        .expect(201);
    let u = usage(&s).await;
    assert_eq!(u["used_bytes"], json!(1000), "{u}");
    assert_eq!(u["available_bytes"], json!(0), "{u}");
    // Replacing counts the difference: shrinking is always fine, growing needs room.
    s.put_file(&s.owner_token, &ws, "a", vec![3u8; 500])
        .await
        .expect(200);
    assert_eq!(used_bytes(&s).await, 900);
    s.put_file(&s.owner_token, &ws, "a", vec![4u8; 600])
        .await
        .expect(200);
    assert_eq!(used_bytes(&s).await, 1000);
    s.put_file(&s.owner_token, &ws, "a", vec![5u8; 601])
        .await
        .problem(507, "quota_exceeded");
    assert_eq!(
        s.get_file(&s.owner_token, &ws, "a").await.body,
        vec![4u8; 600]
    );
    // The org view shows the same numbers.
    let org = s
        .get(&s.owner_token, &format!("/orgs/{}", s.org_id))
        .await
        .expect_json(200);
    assert_eq!(org["storage"]["used_bytes"], json!(1000), "{org}");
    // Deleting frees space; so does deleting a workspace.
    s.delete_file(&s.owner_token, &ws, "b").await.expect(204);
    assert_eq!(used_bytes(&s).await, 600);
    let ws2 = s.create_workspace(&s.owner_token, "other").await;
    s.put_file(&s.owner_token, &ws2, "c", vec![6u8; 300])
        .await
        .expect(201);
    assert_eq!(used_bytes(&s).await, 900);
    s.delete(&s.owner_token, &format!("/workspaces/{ws2}"))
        .await
        .expect(204);
    assert_eq!(used_bytes(&s).await, 600);
    // A move changes nothing.
    s.move_file(&s.owner_token, &ws, "a", "moved")
        .await
        .expect(200);
    assert_eq!(used_bytes(&s).await, 600);
}

async fn quota_refuses_imports_and_streams(backend: Backend) {
    let s = TestServer::start_with(backend, SMALL_QUOTA).await;
    let ws = s.create_workspace(&s.owner_token, "quota-import").await;
    s.put_file(&s.owner_token, &ws, "base", vec![0u8; 700])
        .await
        .expect(201);
    let up = Upstream::start("127.0.0.1").await;
    for (path, chunked) in [("/declared", false), ("/chunked", true)] {
        up.route(
            path,
            Behaviour::Body {
                content_type: "application/octet-stream",
                body: vec![9u8; 400],
                chunked,
            },
        );
        import(&s, &s.owner_token, &ws, &up.url(path), "imp.bin")
            .await
            .problem(507, "quota_exceeded");
    }
    s.get_file(&s.owner_token, &ws, "imp.bin").await.not_found();
    assert_eq!(used_bytes(&s).await, 700);
    assert_eq!(stored_blobs(&s), 1, "only `base` is stored");
    // An upload without Content-Length is stopped when it passes the free space.
    let stream = futures::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![7u8; 100])));
    send(
        s.req(
            Method::PUT,
            &format!("/workspaces/{ws}/files/streamed.bin"),
            Some(&s.owner_token),
        )
        .body(reqwest::Body::wrap_stream(stream)),
    )
    .await
    .problem(507, "quota_exceeded");
    s.get_file(&s.owner_token, &ws, "streamed.bin")
        .await
        .not_found();
    assert_eq!(stored_blobs(&s), 1);
    // What fits goes in.
    up.route(
        "/small",
        Behaviour::Body {
            content_type: "application/octet-stream",
            body: vec![9u8; 300],
            chunked: true,
        },
    );
    import(&s, &s.owner_token, &ws, &up.url("/small"), "imp.bin")
        .await
        .expect(201);
    assert_eq!(used_bytes(&s).await, 1000);
}

async fn quota_is_configurable_per_org_up_to_the_ceiling(backend: Backend) {
    let s = TestServer::start_with(backend, SMALL_QUOTA).await;
    let ws = s.create_workspace(&s.owner_token, "configurable").await;
    let org_path = format!("/orgs/{}", s.org_id);
    let patch = |body: Value| {
        send(
            s.req(Method::PATCH, &org_path, Some(&s.owner_token))
                .json(&body),
        )
    };
    let v = patch(json!({"storage_quota_bytes": 6000}))
        .await
        .problem(422, "unprocessable");
    assert!(v["detail"].as_str().unwrap().contains("5000"), "{v}");
    patch(json!({"storage_quota_bytes": -1}))
        .await
        .problem(422, "unprocessable");
    let v = patch(json!({"storage_quota_bytes": 3000}))
        .await
        .expect_json(200);
    assert_eq!(v["storage"]["quota_bytes"], json!(3000), "{v}");
    assert_eq!(v["storage"]["quota_source"], json!("org"), "{v}");
    s.put_file(&s.owner_token, &ws, "big", vec![1u8; 2500])
        .await
        .expect(201);
    // Lowering below the use refuses growth but not shrinking or deleting.
    let v = patch(json!({"storage_quota_bytes": 2000}))
        .await
        .expect_json(200);
    assert_eq!(v["storage"]["available_bytes"], json!(0), "{v}");
    s.put_file(&s.owner_token, &ws, "more", vec![1u8; 1])
        .await
        .problem(507, "quota_exceeded");
    s.put_file(&s.owner_token, &ws, "big", vec![1u8; 2400])
        .await
        .expect(200);
    assert_eq!(used_bytes(&s).await, 2400);
    // Other settings leave the quota alone; null returns to the server default.
    patch(json!({"max_token_days": 30})).await.expect(200);
    assert_eq!(usage(&s).await["quota_bytes"], json!(2000));
    let v = patch(json!({"storage_quota_bytes": null}))
        .await
        .expect_json(200);
    assert_eq!(v["storage"]["quota_bytes"], json!(1000), "{v}");
    assert_eq!(v["storage"]["quota_source"], json!("default"), "{v}");
    // Only the owner changes it; members only read.
    s.create_user(&s.owner_token, "member@example.com", "Member")
        .await;
    let (_, member_token) = s
        .issue_user_token(
            "member@example.com",
            "m",
            &["workspaces:read", "org:admin"],
            None,
        )
        .await;
    usage_as(&s, &member_token).await.expect(200);
    send(
        s.req(Method::PATCH, &org_path, Some(&member_token))
            .json(&json!({"storage_quota_bytes": 5000})),
    )
    .await
    .forbidden("policy");
}

async fn usage_as(s: &TestServer, token: &str) -> Reply {
    s.get(token, &format!("/orgs/{}/usage", s.org_id)).await
}

async fn concurrent_writers_never_pass_the_quota(backend: Backend) {
    let s = Arc::new(TestServer::start_with(backend, SMALL_QUOTA).await);
    let ws = s.create_workspace(&s.owner_token, "race").await;
    let mut tasks = JoinSet::new();
    for i in 0..10 {
        let s = s.clone();
        let ws = ws.clone();
        tasks.spawn(async move {
            s.put_file(&s.owner_token, &ws, &format!("f{i}"), vec![i as u8; 300])
                .await
                .code()
        });
    }
    let mut codes = Vec::new();
    while let Some(code) = tasks.join_next().await {
        codes.push(code.unwrap());
    }
    codes.sort();
    assert_eq!(
        codes.iter().filter(|c| **c == 201).count(),
        3,
        "exactly three 300-byte files fit in 1000 bytes: {codes:?}"
    );
    assert!(codes.iter().all(|c| *c == 201 || *c == 507), "{codes:?}");
    // The counter agrees with the files.
    let listing = s
        .get(&s.owner_token, &format!("/workspaces/{ws}/files"))
        .await
        .expect_json(200);
    let total: i64 = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["size"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 900);
    assert_eq!(used_bytes(&s).await, total);
    // Replacements racing each other keep the count right too.
    let mut tasks = JoinSet::new();
    for i in 0..8 {
        let s = s.clone();
        let ws = ws.clone();
        let files: Vec<String> = listing["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect();
        tasks.spawn(async move {
            let path = &files[i % files.len()];
            s.put_file(&s.owner_token, &ws, path, vec![1u8; 100 + 20 * i])
                .await
                .code()
        });
    }
    while let Some(code) = tasks.join_next().await {
        assert!([200, 409, 507].contains(&code.unwrap()));
    }
    let listing = s
        .get(&s.owner_token, &format!("/workspaces/{ws}/files"))
        .await
        .expect_json(200);
    let total: i64 = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["size"].as_i64().unwrap())
        .sum();
    assert_eq!(used_bytes(&s).await, total);
}
