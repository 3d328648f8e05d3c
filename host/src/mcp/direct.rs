//! The 2026-07-28 revision's `tools/call`, answered where it arrives.
//!
//! That revision has no sessions: each request carries its protocol version and client in
//! `_meta` and names its method and tool in headers, so its answer needs nothing but the
//! handler. The SDK serves it with a service made for that one request — a parse through
//! serde's untagged enums, the whole message serialised again to check its headers, three
//! spawned tasks and their channels — which cost the server more than the read the call
//! carried (docs/performance.md). A request of exactly the common shape is answered here, by
//! the same [`WarrantMcp::call`] and written with the SDK's own types. Anything else —
//! another method or version, a field or header this module does not know, a session, a
//! browser's `Origin`, a body without a length or over [`MAX_BODY_BYTES`] — goes to the SDK
//! as it came, which answers or refuses it as before. The tests hold the two answers equal.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ErrorData, Implementation,
    JsonObject, JsonRpcVersion2_0, ProgressToken, ProtocolVersion, RequestId, ServerJsonRpcMessage,
    ServerResult,
};
use serde::Deserialize;

use super::WarrantMcp;
use super::auth::SESSION_HEADER;
use crate::authz::Caller;

/// The largest body answered here; larger calls (writes of big files) go to the SDK.
const MAX_BODY_BYTES: u64 = 64 * 1024;

/// The revision served here: the first without sessions.
const VERSION: &str = "2026-07-28";
/// The standard headers of the revision (SEP-2243), named once: looking a header up by a
/// `&str` parses the name again every time.
static PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
static METHOD: HeaderName = HeaderName::from_static("mcp-method");
static NAME: HeaderName = HeaderName::from_static("mcp-name");
/// Header values the SDK wraps in this when they are not plain text (SEP-2243).
const ENCODED_PREFIX: &str = "=?base64?";

/// A `tools/call` request of the 2026-07-28 revision, as clients send it; a member of any
/// other name makes it someone else's (the SDK's) to answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Call {
    #[allow(dead_code)] // checked by its type: only "2.0" parses
    jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    method: String,
    params: Params,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default)]
    arguments: Option<JsonObject>,
    #[serde(rename = "_meta")]
    meta: Meta,
}

/// The request's `_meta`: what the revision requires, the client's name, and the token the
/// client would match progress notifications by (no tool sends any; SDK clients always give
/// one).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: ProtocolVersion,
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities")]
    client_capabilities: ClientCapabilities,
    #[serde(rename = "io.modelcontextprotocol/clientInfo", default)]
    #[allow(dead_code)] // checked by its type, as the SDK reads it
    client_info: Option<Implementation>,
    #[serde(rename = "progressToken", default)]
    #[allow(dead_code)] // checked by its type, as the SDK reads it
    progress_token: Option<ProgressToken>,
}

/// Answers `req` when it is a 2026-07-28 `tools/call` of the common shape from an
/// authenticated caller; gives it back, whole, otherwise.
pub(crate) async fn answer(
    handler: &WarrantMcp,
    allowed_hosts: &[String],
    req: Request,
) -> Result<Response, Request> {
    if req.method() != Method::POST
        || !tool_named_in_headers(req.headers(), allowed_hosts).is_some_and(|t| handler.has_tool(t))
    {
        return Err(req);
    }
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return Err(req);
    };
    let (parts, body) = req.into_parts();
    // The length is declared and small (checked above), so this reads at most that much.
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES as usize).await {
        Ok(bytes) => bytes,
        // The body broke off (the client went away): the SDK answers an unreadable message.
        Err(_) => return Err(Request::from_parts(parts, Body::empty())),
    };
    let call = match serde_json::from_slice::<Call>(&bytes) {
        Ok(call)
            if call.method == "tools/call"
                && one(&parts.headers, &NAME) == Some(call.params.name.as_str())
                && call.params.meta.protocol_version == ProtocolVersion::V_2026_07_28 =>
        {
            call
        }
        _ => return Err(Request::from_parts(parts, Body::from(bytes))),
    };
    let tasks = call.params.meta.client_capabilities.supports_tasks();
    let mut params = CallToolRequestParams::new(call.params.name);
    params.arguments = call.params.arguments;
    let (status, message) = match handler.call(caller, params).await {
        // As the SDK: a task may only answer a client that declared it can take one.
        Ok(CallToolResponse::Task(_)) if !tasks => (
            StatusCode::BAD_REQUEST,
            ServerJsonRpcMessage::error(
                ErrorData::missing_required_client_capability(
                    ClientCapabilities::builder().enable_tasks().build(),
                ),
                Some(call.id),
            ),
        ),
        Ok(response) => (
            StatusCode::OK,
            ServerJsonRpcMessage::response(ServerResult::from(response), call.id),
        ),
        Err(error) => (
            StatusCode::OK,
            ServerJsonRpcMessage::error(error, Some(call.id)),
        ),
    };
    Ok(json(status, &message))
}

/// The tool a request names in `Mcp-Name`, when its headers are those of a 2026-07-28
/// `tools/call` answered here: one plain value of each standard header, JSON in, JSON or an
/// event stream accepted, an allowed `Host`, a declared length within [`MAX_BODY_BYTES`],
/// and nothing that asks for more (a session, an `Origin`, parameters in headers).
fn tool_named_in_headers<'h>(headers: &'h HeaderMap, allowed_hosts: &[String]) -> Option<&'h str> {
    if headers.contains_key(SESSION_HEADER)
        || headers.contains_key(header::ORIGIN)
        || headers
            .keys()
            .any(|name| name.as_str().starts_with("mcp-param-"))
    {
        return None;
    }
    if one(headers, &PROTOCOL_VERSION)? != VERSION || one(headers, &METHOD)? != "tools/call" {
        return None;
    }
    let tool = one(headers, &NAME).filter(|t| !t.starts_with(ENCODED_PREFIX))?;
    let length: u64 = one(headers, &header::CONTENT_LENGTH)?.parse().ok()?;
    let json_in = one(headers, &header::CONTENT_TYPE)?
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    (length <= MAX_BODY_BYTES
        && json_in
        && accepts_json_and_events(headers)
        && host_allowed(headers, allowed_hosts))
    .then_some(tool)
}

/// The one value of header `name` as text; `None` when it is absent, repeated or not text.
fn one<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    values
        .next()
        .is_none()
        .then(|| value.to_str().ok())
        .flatten()
}

/// `Accept` names both `application/json` and `text/event-stream`, neither with a weight (a
/// weighted or quoted list is the SDK's to read).
fn accepts_json_and_events(headers: &HeaderMap) -> bool {
    let Some(accept) = one(headers, &header::ACCEPT) else {
        return false;
    };
    if accept.contains('"') {
        return false;
    }
    let plain = |wanted: &str| {
        accept.split(',').any(|entry| {
            let mut parts = entry.split(';');
            parts
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(wanted))
                && parts.all(|p| !p.trim_start().starts_with(['q', 'Q']))
        })
    };
    plain("application/json") && plain("text/event-stream")
}

/// The `Host` is one the SDK's DNS-rebinding check allows (any port).
fn host_allowed(headers: &HeaderMap, allowed_hosts: &[String]) -> bool {
    one(headers, &header::HOST)
        .and_then(|host| axum::http::uri::Authority::try_from(host).ok())
        .is_some_and(|authority| {
            let host = authority.host().trim_matches(['[', ']']);
            allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(host))
        })
}

/// A JSON-RPC message as the SDK writes a JSON reply.
fn json(status: StatusCode, message: &ServerJsonRpcMessage) -> Response {
    match serde_json::to_vec(message) {
        Ok(body) => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise an MCP reply");
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

#[cfg(test)]
mod tests;
