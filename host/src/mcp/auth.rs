//! The resource-server guard in front of every MCP endpoint: Origin validation, bearer
//! authentication of every request (a session id is never a credential), and sessions bound
//! to the principal that created them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::McpState;
use super::direct::AnsweredInPlace;
use crate::Error;
use crate::api::ApiError;
use crate::authz::{Scope, Transport};

/// The session header of the Streamable HTTP transport.
pub(crate) const SESSION_HEADER: &str = "mcp-session-id";

/// The scopes a client should ask for to use the MCP server at all.
pub(crate) const CHALLENGE_SCOPES: &str = "workspaces:read files:read";

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Result<&str, Error> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(Error::Unauthenticated)?
        .to_str()
        .map_err(|_| Error::InvalidToken("the Authorization header is not valid text"))?;
    value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(Error::InvalidToken("use the Bearer scheme"))
}

/// An authentication failure with the challenge of RFC 9728 / RFC 6750: where the Protected
/// Resource Metadata is, and which scopes to ask for.
fn challenge(state: &McpState, err: Error) -> Response {
    let mut response = ApiError(err).into_response();
    let existing = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(r#"Bearer realm="warrant""#)
        .to_string();
    if response.status() == StatusCode::UNAUTHORIZED {
        let value = format!(
            r#"{existing}, resource_metadata="{}", scope="{CHALLENGE_SCOPES}""#,
            state.metadata_url()
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

fn refuse(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": format!("urn:warrant:problem:{code}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::api::PROBLEM_JSON),
    );
    response
}

/// The most of a message body read to judge it at the HTTP level.
const MAX_PEEK_BYTES: usize = 4 * 1024 * 1024;

/// True when a JSON-RPC message (or batch) calls a `resources/…` method.
fn asks_for_resources(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Method {
        method: Option<String>,
    }
    let is_resource = |m: &Method| {
        m.method
            .as_deref()
            .is_some_and(|m| m.starts_with("resources/"))
    };
    if let Ok(one) = serde_json::from_slice::<Method>(body) {
        return is_resource(&one);
    }
    serde_json::from_slice::<Vec<Method>>(body).is_ok_and(|all| all.iter().any(is_resource))
}

/// `403` with `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"` (RFC 6750).
fn insufficient_scope(state: &McpState, scope: Scope) -> Response {
    let mut response = refuse(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        &format!("this request needs a token with the scope {scope}"),
    );
    let value = format!(
        r#"Bearer realm="warrant", error="insufficient_scope", scope="{scope}", resource_metadata="{}""#,
        state.metadata_url()
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// The guard: Origin, bearer, session binding; the caller goes into the request's extensions.
pub(crate) async fn guard(
    State(state): State<Arc<McpState>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN)
        && !state.origin_allowed(origin)
    {
        return refuse(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this Origin may not call the MCP server (see --mcp-allowed-origins)",
        );
    }
    let token = match bearer(req.headers()) {
        Ok(t) => t,
        Err(e) => return challenge(&state, e),
    };
    let client_addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let caller = match state
        .warrant
        .authenticate(token, client_addr, Transport::Mcp)
        .await
    {
        Ok(c) => c,
        Err(e) => return challenge(&state, e),
    };
    let principal = caller.principal.id.0.clone();
    let session = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(id) = &session
        && !state.session_belongs_to(id, &principal)
    {
        // Unknown and foreign sessions look the same: neither exists for this caller.
        return refuse(
            StatusCode::NOT_FOUND,
            "session_not_found",
            "no such MCP session for this principal; initialize a new one",
        );
    }
    let is_delete = req.method() == Method::DELETE;
    // Resources are files: without `files:read` no resource request can succeed, and that is
    // known before any tool or pipeline runs — an HTTP-level scope refusal (step-up).
    // (Tool calls cannot be judged here; their scope refusals are tool errors.)
    let req = if req.method() == Method::POST && !caller.grant.scopes.allows(Scope::FilesRead) {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_PEEK_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the MCP message is too large",
                );
            }
        };
        if asks_for_resources(&bytes) {
            return insufficient_scope(&state, Scope::FilesRead);
        }
        Request::from_parts(parts, axum::body::Body::from(bytes))
    } else {
        req
    };
    let mut req = req;
    req.extensions_mut().insert(caller);
    let response = next.run(req).await;
    match session {
        None => {
            if let Some(id) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                state.bind_session(id, principal).await;
            }
        }
        Some(id) if is_delete && response.status().is_success() => state.unbind_session(&id),
        // A request the SDK answered reached the session's worker: its idle timer restarted.
        Some(id)
            if response.status().is_success()
                && response.extensions().get::<AnsweredInPlace>().is_none() =>
        {
            state.sdk_saw(&id, Instant::now())
        }
        Some(_) => {}
    }
    response
}
