//! Files: round trips, path validation, size limit, conditional writes, listing, moves,
//! deletes, concurrent writers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use tokio::task::JoinSet;
use warrant_e2e::*;

both_backends!(
    round_trip_text_with_metadata_and_etag,
    round_trip_every_byte_value,
    round_trip_five_mebibytes,
    missing_file_is_not_found,
    metadata_view_is_json_without_the_bytes,
    traversal_and_malformed_paths_are_invalid_path,
    uploads_over_the_limit_are_413_and_leave_nothing,
    refusing_an_oversized_body_keeps_keep_alive_honest,
    if_match_guards_replacement,
    if_none_match_answers_not_modified,
    if_match_on_a_missing_file_fails,
    list_with_prefix,
    move_renames_and_refuses_to_overwrite,
    delete_then_get_is_404,
    concurrent_writers_leave_exactly_one_body,
);

#[track_caller]
fn assert_meta(meta: &Value, path: &str, body: &[u8]) -> String {
    assert_eq!(meta["path"], json!(path), "{meta}");
    assert_eq!(meta["size"], json!(body.len()), "{meta}");
    assert_eq!(meta["sha256"], json!(sha256_hex(body)), "{meta}");
    assert!(meta["content_type"].is_string(), "{meta}");
    assert!(meta["updated_at"].is_string(), "{meta}");
    let etag = meta["etag"]
        .as_str()
        .unwrap_or_else(|| panic!("no etag: {meta}"))
        .to_string();
    assert!(
        !etag.is_empty() && !etag.contains('"'),
        "the etag field is unquoted: {meta}"
    );
    etag
}

/// PUT then GET, checking metadata, ETag and bytes; returns the etag.
async fn round_trip(
    s: &TestServer,
    ws: &str,
    path: &str,
    body: &[u8],
    content_type: &str,
) -> String {
    let put = s
        .put_file_with(
            &s.owner_token,
            ws,
            path,
            body.to_vec(),
            &[("content-type", content_type)],
        )
        .await;
    let meta = put.expect_json(201);
    let etag = assert_meta(&meta, path, body);
    assert_eq!(
        put.header("etag"),
        Some(format!("\"{etag}\"")),
        "PUT ETag header vs etag field"
    );
    assert!(
        meta["content_type"]
            .as_str()
            .unwrap()
            .starts_with(content_type),
        "content_type {} vs sent {content_type}",
        meta["content_type"]
    );
    let get = s.get_file(&s.owner_token, ws, path).await;
    get.expect(200);
    assert!(
        get.body == body,
        "GET {path}: {} bytes differ from the {} uploaded",
        get.body.len(),
        body.len()
    );
    assert_eq!(sha256_hex(&get.body), sha256_hex(body));
    assert_eq!(
        get.header("etag"),
        Some(format!("\"{etag}\"")),
        "GET ETag header"
    );
    assert_eq!(
        get.header("content-length"),
        Some(body.len().to_string()),
        "GET Content-Length"
    );
    let ct = get.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with(content_type),
        "GET Content-Type {ct:?} vs {content_type}"
    );
    etag
}

async fn round_trip_text_with_metadata_and_etag(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "files").await;
    let etag1 = round_trip(
        &s,
        &ws,
        "docs/hello.txt",
        "hello, wörld\n".as_bytes(),
        "text/plain",
    )
    .await;
    // Replacing answers 200 with a new etag.
    let put = s
        .put_file_with(
            &s.owner_token,
            &ws,
            "docs/hello.txt",
            "second",
            &[("content-type", "text/plain")],
        )
        .await;
    let meta = put.expect_json(200);
    let etag2 = assert_meta(&meta, "docs/hello.txt", b"second");
    assert_ne!(etag1, etag2, "replacing content must change the etag");
    let get = s.get_file(&s.owner_token, &ws, "docs/hello.txt").await;
    get.expect(200);
    assert_eq!(get.body, b"second");
    // Unicode and spaces in names.
    round_trip(
        &s,
        &ws,
        "Ünïcode dir/naïve file.md",
        b"# ok",
        "text/markdown",
    )
    .await;
}

async fn round_trip_every_byte_value(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "bin").await;
    let body: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    round_trip(
        &s,
        &ws,
        "bin/all-bytes.bin",
        &body,
        "application/octet-stream",
    )
    .await;
    // An empty file is a file too.
    round_trip(&s, &ws, "bin/empty", b"", "application/octet-stream").await;
}

async fn round_trip_five_mebibytes(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "big").await;
    let body = pseudo_random_bytes(5 * 1024 * 1024, 5);
    round_trip(&s, &ws, "big/blob.bin", &body, "application/octet-stream").await;
}

async fn missing_file_is_not_found(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "empty").await;
    s.get_file(&s.owner_token, &ws, "nope.txt")
        .await
        .not_found();
    s.delete_file(&s.owner_token, &ws, "nope.txt")
        .await
        .not_found();
}

async fn metadata_view_is_json_without_the_bytes(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "meta").await;
    let put = s
        .put_file(&s.owner_token, &ws, "docs/a.txt", "contents")
        .await
        .expect_json(201);
    let path = format!("/workspaces/{ws}/files/docs/a.txt?metadata=true");
    let r = s.get(&s.owner_token, &path).await;
    let meta = r.expect_json(200);
    assert_meta(&meta, "docs/a.txt", b"contents");
    assert_eq!(meta, put, "the metadata view shows what the write answered");
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", meta["etag"].as_str().unwrap()))
    );
    // `metadata=false` is the download.
    let bytes = s
        .get(
            &s.owner_token,
            &format!("/workspaces/{ws}/files/docs/a.txt?metadata=false"),
        )
        .await;
    assert_eq!(bytes.expect(200).body, b"contents");
    s.get(
        &s.owner_token,
        &format!("/workspaces/{ws}/files/docs/b.txt?metadata=true"),
    )
    .await
    .not_found();
    // A malformed query parameter is a problem+json 400 that names it, like every bad input.
    let bad = s
        .get(
            &s.owner_token,
            &format!("/workspaces/{ws}/files/docs/a.txt?metadata=maybe"),
        )
        .await
        .problem(400, "bad_request");
    assert!(
        bad["detail"].as_str().unwrap().contains("metadata"),
        "{bad}"
    );
    // Reading metadata is a read: an agent without a role in the workspace does not see it.
    let agent = s.create_agent(&s.owner_token, "outsider").await;
    let t = s.agent_token(&agent, &["files:read"]).await;
    s.get(&t, &path).await.not_found();
    s.add_member(&s.owner_token, &ws, &agent, "viewer").await;
    s.get(&t, &path).await.expect(200);
}

/// Files under `dir` (recursively) whose bytes contain `marker`.
fn files_containing(dir: &Path, marker: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p)
                && contains_bytes(&bytes, marker)
            {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

async fn traversal_and_malformed_paths_are_invalid_path(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "paths").await;
    let marker = format!("TRAVERSAL-MARKER-{}", forge_pat());
    let auth = format!("Bearer {}", s.owner_token);
    let long: String = std::iter::repeat_n("abcdefghi", 200)
        .collect::<Vec<_>>()
        .join("/"); // 1999 chars
    let long_segment = "a".repeat(2000);
    let bad: Vec<String> = [
        // `..`, in every spelling that reaches the server intact
        "../x",
        "%2E%2E/x",
        "%2e%2e/x",
        "%2E%2E%2Fx",
        "..%2Fx",
        "a/../../b",
        "a/%2e%2e/b",
        "a/%2E%2E/%2E%2E/b",
        "a%2F..%2F..%2Fb",
        "..",
        "a/..",
        // empty and `.` segments
        "a//b",
        "a%2F%2Fb",
        "./a",
        "%2E/a",
        "a/./b",
        "a/",
        // absolute
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        // control characters and backslashes
        "a%00b",
        "a%01b",
        "a%0Ab",
        "a%7Fb",
        "a%5Cb",
        "..%5Cx",
        "%5C%5Cserver%5Cshare",
    ]
    .iter()
    .map(|p| (*p).to_string())
    .chain([long, long_segment])
    .collect();
    let mut failures = Vec::new();
    for path in &bad {
        let target = format!("/api/v1/workspaces/{ws}/files/{path}");
        for method in ["PUT", "GET", "DELETE"] {
            let r = s
                .raw_request(
                    method,
                    &target,
                    &[("Authorization", &auth), ("Content-Type", "text/plain")],
                    marker.as_bytes(),
                )
                .await;
            let ok = r.code() == 400
                && r.header("content-type")
                    .is_some_and(|c| c.starts_with("application/problem+json"))
                && serde_json::from_slice::<Value>(&r.body)
                    .is_ok_and(|v| v["code"] == json!("invalid_path"));
            if !ok {
                let shown = if path.len() > 60 {
                    format!("<{} chars>", path.len())
                } else {
                    path.clone()
                };
                failures.push(format!("{method} {shown}: {} {}", r.status, r.text()));
            }
        }
    }
    // A typical client (reqwest) with an encoded traversal.
    let r = s
        .put_file(
            &s.owner_token,
            &ws,
            "%2E%2E%2F%2E%2E%2Fescape",
            marker.clone(),
        )
        .await;
    if !(r.code() == 400 && r.json()["code"] == json!("invalid_path")) {
        failures.push(format!(
            "reqwest PUT %2E%2E%2F%2E%2E%2Fescape: {} {}",
            r.status,
            r.text()
        ));
    }
    assert!(
        failures.is_empty(),
        "bad paths not refused with 400 invalid_path:\n{}",
        failures.join("\n")
    );

    // Nothing was written, inside the workspace or anywhere in the server's directory.
    let listed = s.list_paths(&s.owner_token, &ws, None).await;
    assert!(listed.is_empty(), "bad paths created files: {listed:?}");
    let leaked = files_containing(s.dir(), marker.as_bytes());
    assert!(
        leaked.is_empty(),
        "a refused upload reached disk: {leaked:?}"
    );
    // A valid path still works afterwards.
    s.put_file(&s.owner_token, &ws, "a/b.txt", "fine")
        .await
        .expect(201);
}

/// A PUT on `client`; a transport error is returned rather than a panic (a server may close
/// the connection after refusing an oversized body).
async fn try_put(
    client: &reqwest::Client,
    s: &TestServer,
    ws: &str,
    path: &str,
    body: reqwest::Body,
) -> Result<Reply, String> {
    let rb = client
        .put(s.url(&format!("/workspaces/{ws}/files/{path}")))
        .bearer_auth(&s.owner_token)
        .body(body);
    match rb.send().await {
        Ok(resp) => Ok(Reply::read(resp, format!("PUT {path}")).await),
        Err(e) => Err(format!("{e:?}")),
    }
}

fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// Sends an oversized body on a client of its own (so a connection the server abandons never
/// reaches the shared pool) and expects 413 `payload_too_large`.
async fn expect_too_large(s: &TestServer, ws: &str, path: &str, make: impl Fn() -> reqwest::Body) {
    let mut errors = Vec::new();
    for _ in 0..3 {
        match try_put(&fresh_client(), s, ws, path, make()).await {
            Ok(r) => {
                r.problem(413, "payload_too_large");
                return;
            }
            Err(e) => errors.push(e),
        }
    }
    panic!(
        "oversized PUT {path}: no HTTP response in 3 attempts (connection closed before a 413?): {errors:#?}"
    );
}

async fn uploads_over_the_limit_are_413_and_leave_nothing(backend: Backend) {
    let s = TestServer::start_with(backend, &["--max-upload-bytes", "1048576"]).await;
    let ws = s.create_workspace(&s.owner_token, "limits").await;
    // Exactly at the limit: accepted.
    let at_limit = pseudo_random_bytes(1024 * 1024, 1);
    s.put_file(&s.owner_token, &ws, "at-limit.bin", at_limit.clone())
        .await
        .expect(201);

    // Over the limit with a Content-Length.
    let over = pseudo_random_bytes(2 * 1024 * 1024, 2);
    let o = over.clone();
    expect_too_large(&s, &ws, "too-big.bin", move || {
        reqwest::Body::from(o.clone())
    })
    .await;
    s.get_file(&s.owner_token, &ws, "too-big.bin")
        .await
        .expect(404);

    // Over the limit, streamed (chunked, no Content-Length).
    let o = over.clone();
    expect_too_large(&s, &ws, "too-big-chunked.bin", move || {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            o.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        reqwest::Body::wrap_stream(futures::stream::iter(chunks))
    })
    .await;
    s.get_file(&s.owner_token, &ws, "too-big-chunked.bin")
        .await
        .expect(404);

    // Replacing an existing file with an oversized body leaves the old content.
    let o = over.clone();
    expect_too_large(&s, &ws, "at-limit.bin", move || {
        reqwest::Body::from(o.clone())
    })
    .await;
    let get = s.get_file(&s.owner_token, &ws, "at-limit.bin").await;
    get.expect(200);
    assert!(
        get.body == at_limit,
        "oversized replacement changed the file"
    );

    let listed: BTreeSet<String> = s
        .list_paths(&s.owner_token, &ws, None)
        .await
        .into_iter()
        .collect();
    assert_eq!(listed, BTreeSet::from(["at-limit.bin".to_string()]));
}

/// A conditional download: the current ETag gets 304 without a body, a stale one the bytes,
/// a malformed header a 400.
/// A server with a workspace named `name` holding `doc.txt` ("v1"), and that version's ETag.
async fn doc_v1(backend: Backend, name: &str) -> (TestServer, String, String) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, name).await;
    let v1 = s
        .put_file(&s.owner_token, &ws, "doc.txt", "v1")
        .await
        .expect_json(201);
    let etag1 = v1["etag"].as_str().unwrap().to_string();
    (s, ws, etag1)
}

async fn if_none_match_answers_not_modified(backend: Backend) {
    let (s, ws, etag1) = doc_v1(backend, "cache").await;
    let get = |inm: String| {
        let s = &s;
        let ws = &ws;
        async move {
            send(
                s.req(
                    Method::GET,
                    &format!("/workspaces/{ws}/files/doc.txt"),
                    Some(&s.owner_token),
                )
                .header("if-none-match", inm),
            )
            .await
        }
    };
    let fresh = get(format!("\"{etag1}\"")).await;
    fresh.expect(304);
    assert!(fresh.body.is_empty());
    assert_eq!(fresh.header("etag"), Some(format!("\"{etag1}\"")));
    s.put_file(&s.owner_token, &ws, "doc.txt", "v2")
        .await
        .expect(200);
    let stale = get(format!("\"{etag1}\"")).await;
    assert_eq!(stale.expect(200).body, b"v2");
    // `*` matches whatever version there is (RFC 9110 §13.1.2).
    let any = get("*".into()).await;
    any.expect(304);
    assert!(any.body.is_empty());
    assert_ne!(any.header("etag"), Some(format!("\"{etag1}\"")));
    get("\"a\", \"b\"".into()).await.problem(400, "bad_request");
}

async fn if_match_guards_replacement(backend: Backend) {
    let (s, ws, etag1) = doc_v1(backend, "cond").await;
    // With the current etag: replaced.
    let v2 = s
        .put_file_with(
            &s.owner_token,
            &ws,
            "doc.txt",
            "v2",
            &[("if-match", &format!("\"{etag1}\""))],
        )
        .await
        .expect_json(200);
    let etag2 = v2["etag"].as_str().unwrap().to_string();
    assert_ne!(etag1, etag2);
    // With the stale etag: 412 and nothing changes.
    s.put_file_with(
        &s.owner_token,
        &ws,
        "doc.txt",
        "v3",
        &[("if-match", &format!("\"{etag1}\""))],
    )
    .await
    .problem(412, "precondition_failed");
    let get = s.get_file(&s.owner_token, &ws, "doc.txt").await;
    get.expect(200);
    assert_eq!(get.body, b"v2", "a failed If-Match write changed the file");
    assert_eq!(get.header("etag"), Some(format!("\"{etag2}\"")));
    // With the current one again: fine.
    s.put_file_with(
        &s.owner_token,
        &ws,
        "doc.txt",
        "v3",
        &[("if-match", &format!("\"{etag2}\""))],
    )
    .await
    .expect(200);
    let get = s.get_file(&s.owner_token, &ws, "doc.txt").await;
    assert_eq!(get.body, b"v3");
}

async fn if_match_on_a_missing_file_fails(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "cond-missing").await;
    // RFC 9110 §13.1.1: If-Match with an entity tag never matches a missing representation.
    s.put_file_with(
        &s.owner_token,
        &ws,
        "ghost.txt",
        "x",
        &[("if-match", "\"deadbeef\"")],
    )
    .await
    .problem(412, "precondition_failed");
    s.get_file(&s.owner_token, &ws, "ghost.txt")
        .await
        .expect(404);
}

async fn list_with_prefix(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "list").await;
    for p in [
        "dir/a.txt",
        "dir/b.txt",
        "dir/sub/c.txt",
        "other/d.txt",
        "dirx/e.txt",
        "top.txt",
    ] {
        s.put_file(&s.owner_token, &ws, p, p.as_bytes().to_vec())
            .await
            .expect(201);
    }
    let set = |v: &[&str]| {
        v.iter()
            .map(|s| (*s).to_string())
            .collect::<BTreeSet<String>>()
    };
    let under: BTreeSet<String> = s
        .list_paths(&s.owner_token, &ws, Some("dir/"))
        .await
        .into_iter()
        .collect();
    assert_eq!(
        under,
        set(&["dir/a.txt", "dir/b.txt", "dir/sub/c.txt"]),
        "prefix dir/"
    );
    let sub: BTreeSet<String> = s
        .list_paths(&s.owner_token, &ws, Some("dir/sub/"))
        .await
        .into_iter()
        .collect();
    assert_eq!(sub, set(&["dir/sub/c.txt"]), "prefix dir/sub/");
    let none: BTreeSet<String> = s
        .list_paths(&s.owner_token, &ws, Some("nothing/"))
        .await
        .into_iter()
        .collect();
    assert!(none.is_empty(), "{none:?}");
    let all: BTreeSet<String> = s
        .list_paths(&s.owner_token, &ws, None)
        .await
        .into_iter()
        .collect();
    assert_eq!(
        all,
        set(&[
            "dir/a.txt",
            "dir/b.txt",
            "dir/sub/c.txt",
            "other/d.txt",
            "dirx/e.txt",
            "top.txt"
        ])
    );
    // Entries carry the file metadata.
    let v = s
        .get(
            &s.owner_token,
            &format!("/workspaces/{ws}/files?prefix=other/"),
        )
        .await
        .expect_json(200);
    let entry = &v["files"][0];
    assert_meta(entry, "other/d.txt", b"other/d.txt");
    // A traversal prefix is refused, not resolved.
    let r = s
        .get(
            &s.owner_token,
            &format!("/workspaces/{ws}/files?prefix=..%2F"),
        )
        .await;
    r.problem(400, "invalid_path");
}

async fn move_renames_and_refuses_to_overwrite(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "mv").await;
    s.put_file(&s.owner_token, &ws, "from.txt", "moving")
        .await
        .expect(201);
    let meta = s
        .move_file(&s.owner_token, &ws, "from.txt", "moved/to.txt")
        .await
        .expect_json(200);
    assert_meta(&meta, "moved/to.txt", b"moving");
    s.get_file(&s.owner_token, &ws, "from.txt")
        .await
        .not_found();
    let get = s.get_file(&s.owner_token, &ws, "moved/to.txt").await;
    get.expect(200);
    assert_eq!(get.body, b"moving");

    // Onto an existing path: 409, both untouched.
    s.put_file(&s.owner_token, &ws, "x.txt", "x")
        .await
        .expect(201);
    s.put_file(&s.owner_token, &ws, "y.txt", "y")
        .await
        .expect(201);
    s.move_file(&s.owner_token, &ws, "x.txt", "y.txt")
        .await
        .problem(409, "conflict");
    assert_eq!(s.get_file(&s.owner_token, &ws, "x.txt").await.body, b"x");
    assert_eq!(s.get_file(&s.owner_token, &ws, "y.txt").await.body, b"y");
    // A missing source: 404. A bad destination: 400 invalid_path.
    s.move_file(&s.owner_token, &ws, "ghost.txt", "z.txt")
        .await
        .not_found();
    s.move_file(&s.owner_token, &ws, "x.txt", "../escape.txt")
        .await
        .problem(400, "invalid_path");
    assert_eq!(s.get_file(&s.owner_token, &ws, "x.txt").await.body, b"x");
}

async fn delete_then_get_is_404(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "rm").await;
    s.put_file(&s.owner_token, &ws, "gone/soon.txt", "bye")
        .await
        .expect(201);
    s.delete_file(&s.owner_token, &ws, "gone/soon.txt")
        .await
        .expect(204);
    s.get_file(&s.owner_token, &ws, "gone/soon.txt")
        .await
        .not_found();
    s.delete_file(&s.owner_token, &ws, "gone/soon.txt")
        .await
        .not_found();
    assert!(s.list_paths(&s.owner_token, &ws, None).await.is_empty());
    // The same path can be created again.
    s.put_file(&s.owner_token, &ws, "gone/soon.txt", "back")
        .await
        .expect(201);
}

async fn concurrent_writers_leave_exactly_one_body(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "race").await;
    let bodies: Vec<Vec<u8>> = (0..10)
        .map(|i| pseudo_random_bytes(256 * 1024, 100 + i))
        .collect();
    let hashes: Vec<String> = bodies.iter().map(|b| sha256_hex(b)).collect();
    let mut set = JoinSet::new();
    for body in bodies {
        let rb = s
            .req(
                Method::PUT,
                &format!("/workspaces/{ws}/files/race/same.bin"),
                Some(&s.owner_token),
            )
            .body(body);
        set.spawn(async move { send(rb).await });
    }
    let mut statuses = Vec::new();
    while let Some(r) = set.join_next().await {
        let r = r.expect("writer task");
        statuses.push(r.code());
        assert!(
            matches!(r.code(), 200 | 201),
            "concurrent PUT: {} {}",
            r.status,
            r.text()
        );
    }
    assert!(
        statuses.contains(&201),
        "someone created the file: {statuses:?}"
    );
    let get = s.get_file(&s.owner_token, &ws, "race/same.bin").await;
    get.expect(200);
    let got = sha256_hex(&get.body);
    assert!(
        hashes.contains(&got),
        "final content ({} bytes) is none of the 10 bodies",
        get.body.len()
    );
    // Metadata agrees with the bytes.
    let v = s
        .get(
            &s.owner_token,
            &format!("/workspaces/{ws}/files?prefix=race/"),
        )
        .await
        .expect_json(200);
    let files = v["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{v}");
    assert_eq!(
        files[0]["sha256"],
        json!(got),
        "listing sha256 vs served bytes"
    );
    assert_eq!(files[0]["size"], json!(256 * 1024));
    assert_eq!(
        get.header("etag"),
        Some(format!(
            "\"{}\"",
            files[0]["etag"].as_str().unwrap_or_default()
        ))
    );
}

async fn refusing_an_oversized_body_keeps_keep_alive_honest(backend: Backend) {
    // A 413 sent before the body was read must either say `Connection: close` or leave the
    // connection usable (the body drained); otherwise a keep-alive client reuses a connection
    // the server is about to drop, and its *next* request fails.
    let s = TestServer::start_with(backend, &["--max-upload-bytes", "1048576"]).await;
    let ws = s.create_workspace(&s.owner_token, "keepalive").await;
    let over = pseudo_random_bytes(2 * 1024 * 1024, 3);
    let client = fresh_client();
    for round in 0..3 {
        let r = try_put(
            &client,
            &s,
            &ws,
            "too-big.bin",
            reqwest::Body::from(over.clone()),
        )
        .await
        .unwrap_or_else(|e| panic!("round {round}: oversized PUT got no response: {e}"));
        r.problem(413, "payload_too_large");
        let closes = r
            .header("connection")
            .is_some_and(|c| c.to_ascii_lowercase().contains("close"));
        if closes {
            continue;
        }
        let next = client.get(s.root_url("/healthz")).send().await;
        assert!(
            next.is_ok(),
            "round {round}: 413 without `Connection: close`, and the next request on the same \
             keep-alive connection failed: {:?}",
            next.err()
        );
    }
}
