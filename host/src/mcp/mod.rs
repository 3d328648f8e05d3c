//! The MCP server: every service operation as a tool, files as resources, over Streamable HTTP
//! (`/mcp`, the official `rmcp` SDK) and the older HTTP+SSE transport (`/sse` + `/messages`,
//! written here because `rmcp` has no server for it). Warrant is an OAuth resource server for
//! it: Protected Resource Metadata (RFC 9728), bearer challenges, audience-checked tokens.
//! This is a transport: every call goes through [`crate::service`] and its one pipeline.

mod auth;
mod coalesce;
mod direct;
mod legacy_sse;
pub(crate) mod server;
pub(crate) mod tools;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderValue;
use axum::middleware;
use axum::routing::{any, get, post};
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::api::AppState;
use crate::authz::Scope;
use crate::service::Warrant;

pub(crate) use server::WarrantMcp;

/// Cancelled when the server shuts down, so open MCP streams end and shutdown can finish.
static SHUTDOWN: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);

/// Ends every open MCP stream (call when graceful shutdown begins).
pub fn shutdown() {
    SHUTDOWN.cancel();
}

/// Above this many bound sessions, bindings of sessions that have ended are swept.
const SWEEP_ABOVE: usize = 4096;

/// How long after the SDK last served a request of a session its tool calls may be answered
/// in place ([`direct`]); the next one after that goes to the SDK again. The SDK closes a
/// session it has seen nothing of for its idle timeout (five minutes), so a session in use
/// never looks idle to it.
const SDK_SEES_A_SESSION_EVERY: Duration = Duration::from_secs(30);

/// A Streamable HTTP session as the guard knows it.
struct Bound {
    /// The principal that created it; no one else may use it.
    principal: String,
    /// When the SDK last served one of its requests (and so restarted its idle timer).
    sdk_seen: Instant,
}

/// What the MCP endpoints share.
pub(crate) struct McpState {
    warrant: Arc<Warrant>,
    public_url: Arc<str>,
    /// Allowed browser origins, normalised (`scheme://host[:port]`, lower case).
    origins: Vec<String>,
    /// The host names the SDK's DNS-rebinding check allows; the direct answers check the same.
    allowed_hosts: Vec<String>,
    /// Streamable HTTP session id → who created it, and when the SDK last saw it.
    sessions: Mutex<HashMap<String, Bound>>,
    session_manager: Arc<LocalSessionManager>,
    handler: WarrantMcp,
    legacy: legacy_sse::Sessions,
}

fn normalise_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl McpState {
    /// The state of the MCP endpoints of the application of `state`.
    fn new(state: &AppState) -> Arc<McpState> {
        let catalogue = Arc::new(tools::Catalogue::new());
        let mut origins: Vec<String> = state
            .mcp_allowed_origins
            .iter()
            .map(|o| normalise_origin(o))
            .filter(|o| !o.is_empty())
            .collect();
        origins.extend(own_origin(&state.public_url));
        Arc::new(McpState {
            warrant: state.warrant.clone(),
            public_url: state.public_url.clone(),
            origins,
            allowed_hosts: allowed_hosts(&state.public_url),
            sessions: Mutex::new(HashMap::new()),
            session_manager: Arc::new(LocalSessionManager::default()),
            handler: WarrantMcp::new(state.warrant.clone(), catalogue),
            legacy: legacy_sse::Sessions::default(),
        })
    }

    fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        origin
            .to_str()
            .is_ok_and(|o| self.origins.contains(&normalise_origin(o)))
    }

    /// Where the MCP resource's Protected Resource Metadata lives.
    fn metadata_url(&self) -> String {
        format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            self.public_url
        )
    }

    fn session_belongs_to(&self, id: &str, principal: &str) -> bool {
        self.sessions
            .lock()
            .map(|s| s.get(id).is_some_and(|b| b.principal == principal))
            .unwrap_or(false)
    }

    async fn bind_session(&self, id: &str, principal: String) {
        let bound = Bound {
            principal,
            sdk_seen: Instant::now(),
        };
        let len = match self.sessions.lock() {
            Ok(mut s) => {
                s.insert(id.to_string(), bound);
                s.len()
            }
            Err(_) => return,
        };
        if len > SWEEP_ABOVE {
            self.sweep().await;
        }
    }

    /// Notes that the SDK served a request of session `id` at `at` (and so restarted its idle
    /// timer then).
    fn sdk_saw(&self, id: &str, at: Instant) {
        if let Ok(mut s) = self.sessions.lock()
            && let Some(bound) = s.get_mut(id)
        {
            bound.sdk_seen = at;
        }
    }

    /// True when a tool call of session `id` may be answered in place: the SDK has served one
    /// of its requests lately (see [`SDK_SEES_A_SESSION_EVERY`]) and still holds the session.
    async fn session_answerable_in_place(&self, id: &str) -> bool {
        let lately = self.sessions.lock().is_ok_and(|s| {
            s.get(id)
                .is_some_and(|b| b.sdk_seen.elapsed() < SDK_SEES_A_SESSION_EVERY)
        });
        if !lately {
            return false;
        }
        let sid: rmcp::transport::streamable_http_server::SessionId = id.into();
        self.session_manager
            .has_session(&sid)
            .await
            .unwrap_or(false)
    }

    fn unbind_session(&self, id: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(id);
        }
    }

    /// Forgets the bindings of sessions the SDK has closed (idle or ended).
    async fn sweep(&self) {
        let ids: Vec<String> = match self.sessions.lock() {
            Ok(s) => s.keys().cloned().collect(),
            Err(_) => return,
        };
        let mut gone = Vec::new();
        for id in ids {
            let sid: rmcp::transport::streamable_http_server::SessionId = id.clone().into();
            if !self
                .session_manager
                .has_session(&sid)
                .await
                .unwrap_or(false)
            {
                gone.push(id);
            }
        }
        if let Ok(mut s) = self.sessions.lock() {
            for id in gone {
                s.remove(&id);
            }
        }
    }
}

/// The host names the SDK's DNS-rebinding check accepts: the public URL's and loopback.
fn allowed_hosts(public_url: &str) -> Vec<String> {
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(url) = url::Url::parse(public_url)
        && let Some(host) = url.host_str()
    {
        hosts.push(host.trim_matches(['[', ']']).to_string());
    }
    hosts
}

/// The origin of the public URL (`scheme://host[:port]`).
fn own_origin(public_url: &str) -> Option<String> {
    url::Url::parse(public_url)
        .ok()
        .map(|u| normalise_origin(&u.origin().ascii_serialization()))
}

/// The MCP routes and the Protected Resource Metadata documents.
pub fn router(state: &AppState) -> Router<AppState> {
    serve(McpState::new(state), Direct::Answer)
}

/// Whether `/mcp` answers tool calls itself ([`direct`]) or leaves every request to the SDK
/// (the tests compare the two).
#[derive(Clone, Copy)]
enum Direct {
    Answer,
    #[cfg_attr(not(test), allow(dead_code))]
    LeaveToSdk,
}

fn serve(mcp: Arc<McpState>, direct: Direct) -> Router<AppState> {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(mcp.allowed_hosts.clone())
        // Stateless (2026-07-28) replies that are one message go out as plain JSON.
        .with_json_response(true)
        .with_cancellation_token(SHUTDOWN.child_token());
    let handler = mcp.handler.clone();
    // Shared, not cloned per request: as a route's service it would be cloned for every
    // request, and again by its own `call`, each time copying its configuration (the allowed
    // hosts and origins, a handful of allocations); `handle` needs only a reference.
    let service = Arc::new(StreamableHttpService::new(
        move || Ok(handler.clone()),
        mcp.session_manager.clone(),
        config,
    ));
    let served = mcp.clone();
    let guarded = Router::new()
        .route(
            "/mcp",
            any(move |req: axum::extract::Request| async move {
                let req = match direct {
                    Direct::Answer => match direct::answer(&served, req).await {
                        Ok(response) => return response,
                        Err(req) => req,
                    },
                    Direct::LeaveToSdk => req,
                };
                service.handle(req).await.map(axum::body::Body::new)
            }),
        )
        .layer(middleware::from_fn(coalesce::replies))
        .route("/sse", get(legacy_sse::open))
        .route("/messages", post(legacy_sse::message))
        .layer(middleware::from_fn_with_state(mcp.clone(), auth::guard));
    guarded
        .route("/.well-known/oauth-protected-resource", get(metadata_api))
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata_mcp),
        )
        .with_state(mcp)
}

/// RFC 9728 metadata of a resource of this server.
fn metadata(public_url: &str, resource: String, name: &str) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "resource": resource,
        "authorization_servers": [public_url],
        "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "bearer_methods_supported": ["header"],
        "resource_name": name,
        "resource_documentation": format!("{public_url}/openapi.json"),
    }))
}

/// `/.well-known/oauth-protected-resource`: the REST API.
async fn metadata_api(
    axum::extract::State(mcp): axum::extract::State<Arc<McpState>>,
) -> axum::Json<serde_json::Value> {
    metadata(&mcp.public_url, mcp.public_url.to_string(), "Warrant API")
}

/// `/.well-known/oauth-protected-resource/mcp`: the MCP server.
async fn metadata_mcp(
    axum::extract::State(mcp): axum::extract::State<Arc<McpState>>,
) -> axum::Json<serde_json::Value> {
    metadata(
        &mcp.public_url,
        format!("{}/mcp", mcp.public_url),
        "Warrant MCP server",
    )
}
