//! The MCP server, end to end: rmcp's own client over Streamable HTTP, raw HTTP for the
//! transport rules (challenges, metadata, Origin, sessions, protocol versions), and an SSE
//! client for the legacy HTTP+SSE transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, ProtocolVersion,
    ReadResourceRequestParams, ResourceContents,
};
use rmcp::service::{ClientLifecycleMode, RunningService, serve_client_with_lifecycle};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use warrant_e2e::*;

#[path = "oauth_support/mod.rs"]
mod oauth_support;

both_backends!(
    a_pat_session_lists_and_calls_tools,
    an_agent_token_sees_and_uses_only_what_it_may,
    a_policy_refusal_is_a_tool_error_naming_the_policy,
    a_plugin_refusal_is_a_tool_error_naming_the_plugin,
    locks_work_over_mcp,
);

type Client = RunningService<RoleClient, ClientConfig>;

/// An rmcp client speaking `version`: 2025-11-25 opens a session with `initialize`;
/// 2026-07-28 starts with `server/discover` and sends every request on its own, its protocol
/// version and client in `_meta` (the stateless revision).
async fn connect_version(s: &TestServer, token: &str, version: ProtocolVersion) -> Client {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(s.root_url("/mcp")).auth_header(token),
    );
    let lifecycle = if version.has_initialize() {
        ClientLifecycleMode::Initialize
    } else {
        ClientLifecycleMode::Discover {
            preferred_versions: vec![version.clone()],
        }
    };
    serve_client_with_lifecycle(
        ClientConfig::default().with_protocol_version(version),
        transport,
        lifecycle,
    )
    .await
    .expect("MCP client connects")
}

async fn connect(s: &TestServer, token: &str) -> Client {
    connect_version(s, token, ProtocolVersion::V_2025_11_25).await
}

async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool}: {e}"))
}

/// The structured content of a successful call.
fn ok(result: CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "tool error: {result:?}");
    result.structured_content.expect("structured content")
}

/// The text of a tool error.
fn refused(result: CallToolResult) -> (String, Value) {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected a tool error: {result:?}"
    );
    let text = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    (text, result.structured_content.unwrap_or(Value::Null))
}

async fn tool_names(client: &Client) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

async fn a_pat_session_lists_and_calls_tools(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "mcp").await;
    let client = connect(&s, &s.owner_token).await;

    let names = tool_names(&client).await;
    for expected in [
        "whoami",
        "list_workspaces",
        "read_file",
        "write_file",
        "delete_file",
        "acquire_lock",
        "put_policies",
        "query_decisions",
        "create_token",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} missing from {names:?}"
        );
    }
    let tools = client.list_all_tools().await.unwrap();
    let write = tools.iter().find(|t| t.name == "write_file").unwrap();
    let props = write
        .input_schema
        .get("properties")
        .expect("schema properties");
    for field in ["workspace", "path", "text", "base64", "lock_token"] {
        assert!(
            props.get(field).is_some(),
            "write_file schema lacks {field}"
        );
    }
    let moves = tools.iter().find(|t| t.name == "move_file").unwrap();
    // Derived from the REST body type (`MoveBody`), flattened into the tool's input.
    let props = moves.input_schema.get("properties").unwrap();
    assert!(
        props.get("from").is_some() && props.get("to").is_some(),
        "{props:?}"
    );

    let me = ok(call(&client, "whoami", json!({})).await);
    assert_eq!(me["principal_id"], json!(s.owner_id));

    // Write over MCP, read back over MCP and over REST.
    let written = ok(call(
        &client,
        "write_file",
        json!({"workspace": ws, "path": "notes/hello.md", "text": "# Hello\nfrom MCP"}),
    )
    .await);
    assert_eq!(written["created"], json!(true));
    let read = ok(call(
        &client,
        "read_file",
        json!({"workspace": ws, "path": "notes/hello.md"}),
    )
    .await);
    assert_eq!(read["encoding"], json!("utf-8"));
    assert_eq!(read["text"], json!("# Hello\nfrom MCP"));
    assert_eq!(read["etag"], written["file"]["etag"]);
    let rest = s.get_file(&s.owner_token, &ws, "notes/hello.md").await;
    rest.expect(200);
    assert_eq!(rest.text(), "# Hello\nfrom MCP");

    // Binary travels as base64 with its content type.
    let bytes: Vec<u8> = vec![0, 159, 146, 150, 255, 1, 2];
    let b64 = base64_encode(&bytes);
    ok(call(
        &client,
        "write_file",
        json!({"workspace": ws, "path": "bin/blob", "base64": b64, "content_type": "image/png"}),
    )
    .await);
    let result = call(
        &client,
        "read_file",
        json!({"workspace": ws, "path": "bin/blob"}),
    )
    .await;
    let image = result.content[0]
        .as_image()
        .expect("an image content block");
    assert_eq!(
        (image.data.as_str(), image.mime_type.as_str()),
        (b64.as_str(), "image/png")
    );
    let read = ok(result);
    assert_eq!(read["encoding"], json!("base64"));
    assert_eq!(read["base64"], json!(b64));
    assert_eq!(read["content_type"], json!("image/png"));
    assert_eq!(
        s.get_file(&s.owner_token, &ws, "bin/blob").await.body,
        bytes
    );

    let listed = ok(call(&client, "list_files", json!({"workspace": ws})).await);
    let paths: Vec<&str> = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["bin/blob", "notes/hello.md"]);
    let stat = ok(call(
        &client,
        "stat_file",
        json!({"workspace": ws, "path": "bin/blob"}),
    )
    .await);
    assert_eq!(stat["size"], json!(bytes.len()));

    ok(call(
        &client,
        "move_file",
        json!({"workspace": ws, "from": "notes/hello.md", "to": "notes/moved.md"}),
    )
    .await);

    // Files are resources too, read through the same pipeline.
    let resources = client.list_all_resources().await.expect("resources/list");
    let uri = format!("warrant://{ws}/notes/moved.md");
    assert!(resources.iter().any(|r| r.uri == uri), "{resources:?}");
    let contents = client
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .expect("resources/read");
    match &contents.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => {
            assert_eq!(text, "# Hello\nfrom MCP")
        }
        other => panic!("expected text, got {other:?}"),
    }

    ok(call(
        &client,
        "delete_file",
        json!({"workspace": ws, "path": "notes/moved.md"}),
    )
    .await);
    let (text, body) = refused(
        call(
            &client,
            "read_file",
            json!({"workspace": ws, "path": "notes/moved.md"}),
        )
        .await,
    );
    assert_eq!(body["code"], json!("not_found"), "{text}");

    // A workspace created over MCP is visible over REST.
    let org = me["org_id"].as_str().unwrap();
    let created = ok(call(
        &client,
        "create_workspace",
        json!({"org_id": org, "name": "from-mcp"}),
    )
    .await);
    let id = created["id"].as_str().unwrap();
    s.get(&s.owner_token, &format!("/workspaces/{id}"))
        .await
        .expect(200);

    // Identity and organisation tools answer like their REST routes.
    let token = ok(call(&client, "get_token", json!({"token_id": me["token_id"]})).await);
    assert_eq!(token["id"], me["token_id"]);
    let org_before = s.get(&s.owner_token, &format!("/orgs/{org}")).await.json();
    let updated = ok(call(
        &client,
        "update_org",
        json!({"org_id": org, "max_token_days": 30}),
    )
    .await);
    assert_eq!(
        updated["max_token_days"],
        json!(30),
        "{updated} (before: {org_before})"
    );
    let rest_org = s.get(&s.owner_token, &format!("/orgs/{org}")).await.json();
    assert_eq!(rest_org["max_token_days"], json!(30));
    let usage = ok(call(&client, "org_usage", json!({"org_id": org})).await);
    let rest_usage = s
        .get(&s.owner_token, &format!("/orgs/{org}/usage"))
        .await
        .json();
    assert_eq!(usage, rest_usage);

    // The decision log records the calls with transport `mcp`.
    s.logged_decision(&ws, "limit=100", |d| {
        d["transport"] == json!("mcp") && d["action"] == json!("files:write")
    })
    .await;
    client.cancel().await.ok();

    // The stateless 2026-07-28 revision is served too.
    let stateless = connect_version(&s, &s.owner_token, ProtocolVersion::V_2026_07_28).await;
    let me = ok(call(&stateless, "whoami", json!({})).await);
    assert_eq!(me["principal_id"], json!(s.owner_id));
    let read = ok(call(
        &stateless,
        "read_file",
        json!({"workspace": ws, "path": "bin/blob"}),
    )
    .await);
    assert_eq!(read["base64"], json!(b64));
    // Its calls are decided by the same pipeline, and logged like any other.
    ok(call(
        &stateless,
        "write_file",
        json!({"workspace": ws, "path": "stateless/note.txt", "text": "no session"}),
    )
    .await);
    assert_eq!(
        s.get_file(&s.owner_token, &ws, "stateless/note.txt")
            .await
            .body,
        b"no session".to_vec()
    );
    s.logged_decision(&ws, "limit=100", |d| {
        d["transport"] == json!("mcp")
            && d["action"] == json!("files:write")
            && d["resource"] == json!("stateless/note.txt")
    })
    .await;
    stateless.cancel().await.ok();
}

async fn an_agent_token_sees_and_uses_only_what_it_may(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws_a = s.create_workspace(&s.owner_token, "a").await;
    let ws_b = s.create_workspace(&s.owner_token, "b").await;
    s.put_file(&s.owner_token, &ws_a, "report.txt", b"quarterly")
        .await
        .expect(201);
    s.put_file(&s.owner_token, &ws_b, "secret.txt", b"hidden")
        .await
        .expect(201);
    let agent = s.create_agent(&s.owner_token, "reader").await;
    s.add_member(&s.owner_token, &ws_a, &agent, "editor").await;
    s.add_member(&s.owner_token, &ws_b, &agent, "editor").await;
    let (_, token) = s
        .create_token(
            &s.owner_token,
            json!({"name": "reader", "scopes": ["files:read"], "workspaces": [ws_a], "principal_id": agent}),
        )
        .await;
    let client = connect(&s, &token).await;

    let names = tool_names(&client).await;
    assert!(names.contains(&"read_file".to_string()), "{names:?}");
    assert!(names.contains(&"list_files".to_string()), "{names:?}");
    assert!(names.contains(&"whoami".to_string()), "{names:?}");
    for hidden in [
        "write_file",
        "delete_file",
        "move_file",
        "put_policies",
        "create_token",
        "acquire_lock",
    ] {
        assert!(
            !names.contains(&hidden.to_string()),
            "{hidden} is listed: {names:?}"
        );
    }

    let read = ok(call(
        &client,
        "read_file",
        json!({"workspace": ws_a, "path": "report.txt"}),
    )
    .await);
    assert_eq!(read["text"], json!("quarterly"));

    // A write tool it cannot see is refused by the scope layer, with the scope it lacks.
    let (text, body) = refused(
        call(
            &client,
            "write_file",
            json!({"workspace": ws_a, "path": "x.txt", "text": "no"}),
        )
        .await,
    );
    assert!(text.contains("scope layer"), "{text}");
    assert!(text.contains("files:write"), "{text}");
    assert_eq!(body["layer"], json!("scope"));
    assert_eq!(body["required_scope"], json!("files:write"));

    // The other workspace is outside the token's limits: the workspace layer refuses.
    let (text, body) = refused(
        call(
            &client,
            "read_file",
            json!({"workspace": ws_b, "path": "secret.txt"}),
        )
        .await,
    );
    assert!(text.contains("workspace layer"), "{text}");
    assert_eq!(body["layer"], json!("workspace"));

    // Nothing was written, and the refusal is in the decision log with transport mcp.
    s.get_file(&s.owner_token, &ws_a, "x.txt").await.expect(404);
    s.logged_decision(&ws_a, &format!("decision=deny&principal={agent}"), |d| {
        d["transport"] == json!("mcp")
            && d["action"] == json!("files:write")
            && d["layer"] == json!("scope")
    })
    .await;
    client.cancel().await.ok();
}

async fn a_policy_refusal_is_a_tool_error_naming_the_policy(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "guarded").await;
    let agent = s.create_agent(&s.owner_token, "cleaner").await;
    s.add_member(&s.owner_token, &ws, &agent, "editor").await;
    let token = s
        .agent_token(&agent, &["files:read", "files:write", "files:delete"])
        .await;
    let policy = "@id(\"no-agent-deletes\")\nforbid (principal is Agent, action == Action::\"files:delete\", resource);\n";
    s.put_policies(&ws, policy).await.expect(200);

    let client = connect(&s, &token).await;
    assert!(
        tool_names(&client)
            .await
            .contains(&"delete_file".to_string())
    );
    ok(call(
        &client,
        "write_file",
        json!({"workspace": ws, "path": "keep.txt", "text": "keep"}),
    )
    .await);
    let (text, body) = refused(
        call(
            &client,
            "delete_file",
            json!({"workspace": ws, "path": "keep.txt"}),
        )
        .await,
    );
    assert!(text.contains("policy layer"), "{text}");
    assert!(text.contains("no-agent-deletes"), "{text}");
    assert_eq!(body["layer"], json!("policy"));
    assert_eq!(body["code"], json!("policy_denied"));
    s.get_file(&s.owner_token, &ws, "keep.txt")
        .await
        .expect(200);
    client.cancel().await.ok();
}

async fn a_plugin_refusal_is_a_tool_error_naming_the_plugin(backend: Backend) {
    let s = TestServer::start_for_plugins(backend).await;
    let ws = s.create_workspace(&s.owner_token, "guarded").await;
    let agent = s.create_agent(&s.owner_token, "drafter").await;
    s.add_member(&s.owner_token, &ws, &agent, "editor").await;
    let token = s.agent_token(&agent, &["files:read", "files:write"]).await;
    let plugin = s
        .upload_plugin(&s.owner_token, "path-guard", plugin_component("path-guard"))
        .await
        .expect_json(201)["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The owner attaches it over MCP; the agent cannot even see the plugin tools.
    let admin = connect(&s, &s.owner_token).await;
    let attached = ok(call(
        &admin,
        "attach_plugin",
        json!({"workspace": ws, "plugin_id": plugin,
               "config": {"rules": [{"kinds": ["agent"], "paths": ["drafts/**"], "access": "read-write"}]}}),
    )
    .await);
    assert_eq!(attached["mode"], json!("enforce"));
    let listed = ok(call(&admin, "workspace_plugins", json!({"workspace": ws})).await);
    assert_eq!(listed["plugins"][0]["name"], json!("path-guard"));
    let (text, _) = refused(
        call(
            &admin,
            "attach_plugin",
            json!({"workspace": ws, "plugin_id": plugin, "config": {"rules": []}}),
        )
        .await,
    );
    assert!(text.contains("at least one rule"), "{text}");

    let client = connect(&s, &token).await;
    let names = tool_names(&client).await;
    assert!(!names.contains(&"attach_plugin".to_string()), "{names:?}");
    ok(call(
        &client,
        "write_file",
        json!({"workspace": ws, "path": "drafts/a.md", "text": "fine"}),
    )
    .await);
    let (text, body) = refused(
        call(
            &client,
            "write_file",
            json!({"workspace": ws, "path": "secret/a.md", "text": "no"}),
        )
        .await,
    );
    assert!(text.contains("plugin"), "{text}");
    assert!(text.contains("path-guard"), "{text}");
    assert_eq!(body["layer"], json!("plugin"));
    assert_eq!(body["plugin"]["name"], json!("path-guard"));

    // Detached over MCP: the very next call goes through.
    ok(call(
        &admin,
        "detach_plugin",
        json!({"workspace": ws, "plugin_id": plugin}),
    )
    .await);
    ok(call(
        &client,
        "write_file",
        json!({"workspace": ws, "path": "secret/a.md", "text": "now fine"}),
    )
    .await);
    client.cancel().await.ok();
    admin.cancel().await.ok();
}

async fn locks_work_over_mcp(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "locks").await;
    let scopes = ["files:read", "files:write", "locks:write"];
    let alpha = s.create_agent(&s.owner_token, "alpha").await;
    let beta = s.create_agent(&s.owner_token, "beta").await;
    s.add_member(&s.owner_token, &ws, &alpha, "editor").await;
    s.add_member(&s.owner_token, &ws, &beta, "editor").await;
    let a = connect(&s, &s.agent_token(&alpha, &scopes).await).await;
    let b = connect(&s, &s.agent_token(&beta, &scopes).await).await;

    let lock = ok(call(
        &a,
        "acquire_lock",
        json!({"workspace": ws, "path": "docs/", "ttl_seconds": 60}),
    )
    .await);
    let lock_id = lock["lock_id"].as_str().expect("lock id").to_string();
    let listed = ok(call(&b, "list_locks", json!({"workspace": ws})).await);
    assert_eq!(listed["locks"].as_array().unwrap().len(), 1, "{listed}");

    let (text, body) = refused(
        call(
            &b,
            "write_file",
            json!({"workspace": ws, "path": "docs/plan.md", "text": "beta"}),
        )
        .await,
    );
    assert_eq!(body["code"], json!("locked"), "{text}");
    let (_, body) = refused(
        call(
            &b,
            "acquire_lock",
            json!({"workspace": ws, "path": "docs/plan.md", "ttl_seconds": 60}),
        )
        .await,
    );
    assert_eq!(body["status"], json!(423), "{body}");

    // The holder writes with its lock token; without it, even the holder is refused.
    let (_, body) = refused(
        call(
            &a,
            "write_file",
            json!({"workspace": ws, "path": "docs/plan.md", "text": "alpha"}),
        )
        .await,
    );
    assert_eq!(body["code"], json!("locked"));
    ok(call(
        &a,
        "write_file",
        json!({"workspace": ws, "path": "docs/plan.md", "text": "alpha", "lock_token": lock_id}),
    )
    .await);
    ok(call(
        &a,
        "renew_lock",
        json!({"workspace": ws, "lock_id": lock_id, "ttl_seconds": 120}),
    )
    .await);
    ok(call(
        &a,
        "release_lock",
        json!({"workspace": ws, "lock_id": lock_id}),
    )
    .await);
    ok(call(
        &b,
        "write_file",
        json!({"workspace": ws, "path": "docs/plan.md", "text": "beta"}),
    )
    .await);
    let read = ok(call(
        &a,
        "read_file",
        json!({"workspace": ws, "path": "docs/plan.md"}),
    )
    .await);
    assert_eq!(read["text"], json!("beta"));
    a.cancel().await.ok();
    b.cancel().await.ok();
}

// -- the HTTP rules of the transport ------------------------------------------------------------

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}"#;

fn mcp_post(s: &TestServer, token: Option<&str>, body: &str) -> reqwest::RequestBuilder {
    let mut r = s
        .client
        .post(s.root_url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r
}

/// A POST of `body` to `/mcp` in the 2025-11-25 session `id`.
fn in_session(
    s: &TestServer,
    token: Option<&str>,
    id: &str,
    body: &str,
) -> reqwest::RequestBuilder {
    mcp_post(s, token, body)
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-11-25")
}

/// Initializes a session over raw HTTP; returns its id.
async fn open_session(s: &TestServer, token: &str) -> String {
    let r = send(mcp_post(s, Some(token), INIT)).await;
    r.expect(200);
    let id = r.header("mcp-session-id").expect("Mcp-Session-Id");
    send(in_session(
        s,
        Some(token),
        &id,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    ))
    .await
    .expect(202);
    id
}

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
const WHOAMI_CALL: &str =
    r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_get_the_challenge() {
    let s = TestServer::start(Backend::Sqlite).await;
    let metadata = format!(
        r#"resource_metadata="{}/.well-known/oauth-protected-resource/mcp""#,
        s.base
    );
    for token in [None, Some("wrt_pat_notavalidtoken")] {
        let r = send(mcp_post(&s, token, INIT)).await;
        r.expect(401);
        let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(challenge.contains(&metadata), "{challenge}");
        assert!(challenge.contains(r#"scope=""#), "{challenge}");
        if token.is_some() {
            assert!(
                challenge.contains(r#"error="invalid_token""#),
                "{challenge}"
            );
        }
    }
    // The legacy transport is guarded the same way.
    let r = send(s.client.get(s.root_url("/sse"))).await;
    r.expect(401);
    assert!(r.header("www-authenticate").unwrap().contains(&metadata));
    // A session id is not a credential.
    let id = open_session(&s, &s.owner_token).await;
    let r = send(mcp_post(&s, None, TOOLS_LIST).header("mcp-session-id", &id)).await;
    r.expect(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_protected_resource_metadata_documents_are_served() {
    let s = TestServer::start(Backend::Sqlite).await;
    for (path, resource) in [
        ("/.well-known/oauth-protected-resource", s.base.clone()),
        (
            "/.well-known/oauth-protected-resource/mcp",
            format!("{}/mcp", s.base),
        ),
    ] {
        let r = send(s.client.get(s.root_url(path))).await;
        r.expect(200);
        let doc = r.json();
        assert_eq!(doc["resource"], json!(resource), "{doc}");
        assert_eq!(doc["authorization_servers"], json!([s.base]), "{doc}");
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        let scopes = doc["scopes_supported"].as_array().unwrap();
        assert!(scopes.contains(&json!("files:read")), "{doc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused() {
    let s = TestServer::start_with(
        Backend::Sqlite,
        &["--mcp-allowed-origins", "https://app.example.com"],
    )
    .await;
    let r = send(mcp_post(&s, Some(&s.owner_token), INIT).header("origin", "https://evil.example"))
        .await;
    r.expect(403);
    let r = send(
        s.client
            .get(s.root_url("/sse"))
            .bearer_auth(&s.owner_token)
            .header("origin", "https://evil.example"),
    )
    .await;
    r.expect(403);
    // The server's own origin and the configured one are accepted.
    send(mcp_post(&s, Some(&s.owner_token), INIT).header("origin", s.base.as_str()))
        .await
        .expect(200);
    send(mcp_post(&s, Some(&s.owner_token), INIT).header("origin", "https://app.example.com"))
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_bound_to_its_principal() {
    let s = TestServer::start(Backend::Sqlite).await;
    let agent = s.create_agent(&s.owner_token, "other").await;
    let other = s.agent_token(&agent, &["files:read"]).await;
    let id = open_session(&s, &s.owner_token).await;
    assert!(id.len() >= 16, "session ids are long and random: {id}");

    let owner_list = send(in_session(&s, Some(&s.owner_token), &id, TOOLS_LIST)).await;
    owner_list.expect(200);
    assert!(owner_list.text().contains("write_file"));
    // A tool call of the common shape is answered in place, as one JSON reply.
    let whoami = send(in_session(&s, Some(&s.owner_token), &id, WHOAMI_CALL)).await;
    let reply = whoami.expect_json(200);
    assert_eq!(
        whoami.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(reply["id"], json!(3));
    assert_eq!(reply["result"]["isError"], json!(false), "{reply}");

    for body in [TOOLS_LIST, WHOAMI_CALL] {
        let r = send(in_session(&s, Some(&other), &id, body)).await;
        r.expect(404);
    }
    let r = send(
        s.client
            .delete(s.root_url("/mcp"))
            .bearer_auth(&other)
            .header("mcp-session-id", &id),
    )
    .await;
    r.expect(404);
    // The owner ends it; then it is gone for everyone.
    let r = send(
        s.client
            .delete(s.root_url("/mcp"))
            .bearer_auth(&s.owner_token)
            .header("mcp-session-id", &id)
            .header("mcp-protocol-version", "2025-11-25"),
    )
    .await;
    assert!(r.status.is_success(), "DELETE: {} {}", r.status, r.text());
    for body in [TOOLS_LIST, WHOAMI_CALL] {
        send(in_session(&s, Some(&s.owner_token), &id, body))
            .await
            .expect(404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_protocol_version_is_refused() {
    let s = TestServer::start(Backend::Sqlite).await;
    let id = open_session(&s, &s.owner_token).await;
    let r = send(
        mcp_post(&s, Some(&s.owner_token), TOOLS_LIST)
            .header("mcp-session-id", &id)
            .header("mcp-protocol-version", "1999-01-01"),
    )
    .await;
    r.expect(400);
    assert!(r.text().contains("1999-01-01"), "{}", r.text());
}

// -- the legacy HTTP+SSE transport ------------------------------------------------------------

/// A minimal SSE reader: the next `(event, data)`.
struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl SseReader {
    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = "message".to_string();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.trim_start().to_string());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return (event, data.join("\n"));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.stream.next())
                .await
                .expect("an SSE event in time")
                .expect("the stream is open")
                .expect("SSE bytes");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_sse_transport_works() {
    let s = TestServer::start(Backend::Sqlite).await;
    let ws = s.create_workspace(&s.owner_token, "legacy").await;
    s.put_file(&s.owner_token, &ws, "a.txt", b"legacy hello")
        .await
        .expect(201);
    let r = s
        .client
        .get(s.root_url("/sse"))
        .bearer_auth(&s.owner_token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut sse = SseReader {
        stream: r.bytes_stream().boxed(),
        buf: String::new(),
    };
    let (event, endpoint) = sse.next().await;
    assert_eq!(event, "endpoint");
    assert!(endpoint.starts_with("/messages?sessionId="), "{endpoint}");
    let post = |token: &str, body: Value| {
        s.client
            .post(s.root_url(&endpoint))
            .bearer_auth(token)
            .json(&body)
    };
    let r = send(post(&s.owner_token, json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"legacy","version":"1"}}}))).await;
    r.expect(202);
    let (event, data) = sse.next().await;
    assert_eq!(event, "message");
    let init: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(init["id"], json!(1));
    assert_eq!(init["result"]["serverInfo"]["name"], json!("warrant"));
    send(post(
        &s.owner_token,
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    ))
    .await
    .expect(202);
    send(post(
        &s.owner_token,
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file","arguments":{"workspace": ws, "path": "a.txt"}}}),
    ))
    .await
    .expect(202);
    let (_, data) = sse.next().await;
    let reply: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(reply["id"], json!(2));
    assert_eq!(
        reply["result"]["structuredContent"]["text"],
        json!("legacy hello"),
        "{reply}"
    );

    // Another principal cannot use the session; no token at all is a 401.
    let agent = s.create_agent(&s.owner_token, "intruder").await;
    let other = s.agent_token(&agent, &["files:read"]).await;
    send(post(
        &other,
        json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}),
    ))
    .await
    .expect(404);
    send(
        s.client
            .post(s.root_url(&endpoint))
            .json(&json!({"jsonrpc":"2.0","id":4,"method":"tools/list"})),
    )
    .await
    .expect(401);
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_mcp_streams_do_not_hold_up_shutdown() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    let client = connect(&s, &s.owner_token).await;
    ok(call(&client, "whoami", json!({})).await);
    // A legacy SSE stream stays open until the server ends it.
    let sse = s
        .client
        .get(s.root_url("/sse"))
        .bearer_auth(&s.owner_token)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let status = s.sigterm_and_wait(Duration::from_secs(20)).await;
    assert!(
        status.is_some_and(|st| st.success()),
        "the server did not exit cleanly within 20 s with MCP streams open: {status:?}"
    );
    drop(sse);
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_without_files_read_are_an_insufficient_scope_403() {
    let s = TestServer::start(Backend::Sqlite).await;
    let agent = s.create_agent(&s.owner_token, "lister").await;
    let token = s.agent_token(&agent, &["workspaces:read"]).await;
    let id = open_session(&s, &token).await;
    let r = send(in_session(
        &s,
        Some(&token),
        &id,
        r#"{"jsonrpc":"2.0","id":3,"method":"resources/list"}"#,
    ))
    .await;
    r.expect(403);
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="files:read""#), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    // The same token's other requests go through: tools/list shows what it can use.
    let r = send(in_session(&s, Some(&token), &id, TOOLS_LIST)).await;
    r.expect(200);
    assert!(r.text().contains("list_workspaces"), "{}", r.text());
    assert!(!r.text().contains("read_file"), "{}", r.text());
}

/// OAuth access tokens are audience-bound: one minted for the REST API is refused at /mcp
/// (no token passthrough), one minted for the MCP resource works there and not on REST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_audience_is_refused() {
    use oauth_support::{REDIRECT, http, oauth_client, register};
    use oauth2::TokenResponse;
    let s = TestServer::start(Backend::Sqlite).await;
    let c = register(&s, json!({"name": "Aud", "scopes": ["workspaces:read"]})).await;
    let client = oauth_client(
        &s,
        c["client_id"].as_str().unwrap(),
        c["client_secret"].as_str(),
        REDIRECT,
    )
    .await;
    let token_for = |resource: String| {
        let client = &client;
        async move {
            client
                .exchange_client_credentials()
                .add_extra_param("resource", resource)
                .request_async(&http())
                .await
                .unwrap()
                .access_token()
                .secret()
                .clone()
        }
    };
    let rest = token_for(s.base.clone()).await;
    let mcp = token_for(format!("{}/mcp", s.base)).await;

    let r = send(mcp_post(&s, Some(&rest), INIT)).await;
    r.expect(401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token"),
        "{:?}",
        r.header("www-authenticate")
    );
    let session = connect(&s, &mcp).await;
    let me = ok(call(&session, "whoami", json!({})).await);
    assert_eq!(me["principal_kind"], json!("client"), "{me}");
    session.cancel().await.ok();
    s.get(&mcp, "/me").await.expect(401);
    s.get(&rest, "/me").await.expect(200);
}
