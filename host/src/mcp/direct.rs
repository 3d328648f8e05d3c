//! `tools/call`, answered where it arrives.
//!
//! The SDK serves a tool call through machinery the call does not need. In the 2026-07-28
//! revision it builds a service for each request: a parse through serde's untagged enums,
//! the whole message serialised again to check its headers, three spawned tasks and their
//! channels. In a session of an earlier revision the call travels from the HTTP request to
//! the session's worker task, on to the service's loop and a task for the handler, and back
//! the same way to an event stream. Either cost the server more than the read the call
//! carried (docs/performance.md). A call of exactly the common shape is answered here, by the
//! same [`WarrantMcp::call`], shaped for its revision as the SDK shapes it and written with
//! the SDK's own types, as one JSON reply — which the transport lets a server give to any
//! request, and every client must take. Anything else — another method or version, a field
//! or header this module does not know, a browser's `Origin`, a body without a length or
//! over [`MAX_BODY_BYTES`], a session the SDK no longer holds or has not served lately (its
//! idle timer must see the session in use, [`super::SDK_SEES_A_SESSION_EVERY`]) — goes to the
//! SDK as it came, which answers or refuses it as before. The tests hold the answers equal.
//!
//! What a session call answered here does not have that the SDK's has: an event id to resume
//! its stream by (a JSON reply has no stream), and a `notifications/cancelled` that makes the
//! SDK drop the reply (the handler ignores cancellation on either path, so the call runs to
//! its end the same; the client ignores a reply to a request it cancelled). No tool sends
//! notifications or asks the client anything while it runs.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, Implementation, JsonObject, JsonRpcVersion2_0,
    ProgressToken, ProtocolVersion, RequestId, ServerJsonRpcMessage, ServerResult,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::McpState;
use super::auth::SESSION_HEADER;
use crate::authz::Caller;

/// The largest body answered here; larger calls (writes of big files) go to the SDK.
const MAX_BODY_BYTES: u64 = 64 * 1024;

/// The first revision without sessions.
const STATELESS: &str = "2026-07-28";
/// The revisions with sessions whose calls are answered here: those whose clients name the
/// session's version in a header (older ones are the SDK's to read).
const WITH_SESSIONS: [&str; 2] = ["2025-06-18", "2025-11-25"];
/// The standard headers (SEP-2243), named once: looking a header up by a `&str` parses the
/// name again every time.
static PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
static METHOD: HeaderName = HeaderName::from_static("mcp-method");
static NAME: HeaderName = HeaderName::from_static("mcp-name");
static SESSION: HeaderName = HeaderName::from_static(SESSION_HEADER);
/// Header values the SDK wraps in this when they are not plain text (SEP-2243).
const ENCODED_PREFIX: &str = "=?base64?";

/// A `tools/call` request as clients send it, with the `_meta` of its revision; a member of
/// any other name makes it someone else's (the SDK's) to answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Call<M> {
    #[allow(dead_code)] // checked by its type: only "2.0" parses
    jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    method: String,
    params: Params<M>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params<M> {
    name: String,
    #[serde(default)]
    arguments: Option<JsonObject>,
    #[serde(rename = "_meta", default = "Option::default")]
    meta: Option<M>,
}

/// The `_meta` of a 2026-07-28 request: what the revision requires, the client's name, and
/// the token the client would match progress notifications by (no tool sends any; SDK
/// clients always give one).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatelessMeta {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: ProtocolVersion,
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities")]
    #[allow(dead_code)] // checked by its type, as the SDK reads it
    client_capabilities: ClientCapabilities,
    #[serde(rename = "io.modelcontextprotocol/clientInfo", default)]
    #[allow(dead_code)] // checked by its type, as the SDK reads it
    client_info: Option<Implementation>,
    #[serde(rename = "progressToken", default)]
    #[allow(dead_code)] // checked by its type, as the SDK reads it
    progress_token: Option<ProgressToken>,
}

/// The `_meta` of a request in a session: at most a progress token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionMeta {
    #[serde(rename = "progressToken", default)]
    #[allow(dead_code)] // checked by its type, as the SDK reads it
    progress_token: Option<ProgressToken>,
}

impl<M> Call<M> {
    /// The call's id and parameters, when it is a `tools/call` of a tool `Mcp-Name` does not
    /// contradict (whether the revision must name it was checked with the other headers).
    fn into_request(self, headers: &HeaderMap) -> Option<(RequestId, CallToolRequestParams)> {
        let named = optional(headers, &NAME)?.is_none_or(|named| named == self.params.name);
        if self.method != "tools/call" || !named {
            return None;
        }
        let mut params = CallToolRequestParams::new(self.params.name);
        params.arguments = self.params.arguments;
        Some((self.id, params))
    }
}

/// The call in `body`, of the revision the headers named.
fn parse(
    body: &[u8],
    headers: &HeaderMap,
    stateless: bool,
) -> Option<(RequestId, CallToolRequestParams)> {
    fn of<M: DeserializeOwned>(body: &[u8]) -> Option<Call<M>> {
        serde_json::from_slice(body).ok()
    }
    if stateless {
        of::<StatelessMeta>(body)
            .filter(|call| {
                call.params
                    .meta
                    .as_ref()
                    .is_some_and(|m| m.protocol_version == ProtocolVersion::V_2026_07_28)
            })?
            .into_request(headers)
    } else {
        of::<SessionMeta>(body)?.into_request(headers)
    }
}

/// Answers `req` when it is a `tools/call` of the common shape from an authenticated caller;
/// gives it back, whole, otherwise.
pub(crate) async fn answer(mcp: &McpState, req: Request) -> Result<Response, Request> {
    if req.method() != Method::POST {
        return Err(req);
    }
    let Some(revision) = revision(req.headers(), &mcp.allowed_hosts) else {
        return Err(req);
    };
    let stateless = match revision {
        Revision::Stateless => true,
        Revision::Session(id) => {
            if !mcp.session_answerable_in_place(id).await {
                return Err(req);
            }
            false
        }
    };
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
    let Some((id, params)) = parse(&bytes, &parts.headers, stateless)
        .filter(|(_, params)| mcp.handler.has_tool(&params.name))
    else {
        return Err(Request::from_parts(parts, Body::from(bytes)));
    };
    let message = match mcp.handler.call(caller, params).await {
        Ok(result) => {
            let mut result = ServerResult::CallToolResult(result);
            if !stateless {
                // As the SDK answers a peer of a revision before 2026-07-28.
                result.strip_result_type_for_legacy_peer();
                result.strip_non_object_output_for_legacy_peer();
            }
            ServerJsonRpcMessage::response(result, id)
        }
        Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
    };
    Ok(json(&message))
}

/// The revision of a request whose headers are those of a `tools/call` answered here.
enum Revision<'h> {
    /// 2026-07-28.
    Stateless,
    /// An earlier revision, in the session of this id.
    Session(&'h str),
}

/// The revision of a request whose headers are those of a `tools/call` answered here: one
/// plain value of each header it has, of a revision answered here, JSON in, JSON or an event
/// stream accepted, an allowed `Host`, a declared length within [`MAX_BODY_BYTES`], and
/// nothing that asks for more (an `Origin`, parameters in headers). The stateless revision
/// names the method and tool in headers; a session's requests may.
fn revision<'h>(headers: &'h HeaderMap, allowed_hosts: &[String]) -> Option<Revision<'h>> {
    if headers.contains_key(header::ORIGIN)
        || headers
            .keys()
            .any(|name| name.as_str().starts_with("mcp-param-"))
    {
        return None;
    }
    let version = one(headers, &PROTOCOL_VERSION)?;
    let session = optional(headers, &SESSION)?;
    let revision = match session {
        None if version == STATELESS => Revision::Stateless,
        Some(id) if WITH_SESSIONS.contains(&version) => Revision::Session(id),
        _ => return None,
    };
    let method = optional(headers, &METHOD)?;
    let tool = optional(headers, &NAME)?;
    let named = match revision {
        Revision::Stateless => method.is_some() && tool.is_some(),
        Revision::Session(_) => true,
    };
    if !named
        || method.is_some_and(|m| m != "tools/call")
        || tool.is_some_and(|t| t.starts_with(ENCODED_PREFIX))
    {
        return None;
    }
    let length: u64 = one(headers, &header::CONTENT_LENGTH)?.parse().ok()?;
    let json_in = one(headers, &header::CONTENT_TYPE)?
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    (length <= MAX_BODY_BYTES
        && json_in
        && accepts_json_and_events(headers)
        && host_allowed(headers, allowed_hosts))
    .then_some(revision)
}

/// The value of header `name` as text, or `None` within when it is absent; `None` when it is
/// repeated or not text.
fn optional<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<Option<&'h str>> {
    if headers.contains_key(name) {
        one(headers, name).map(Some)
    } else {
        Some(None)
    }
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

/// Marks a reply given here, in its extensions: the guard then knows the SDK did not see
/// the request.
#[derive(Clone, Copy)]
pub(crate) struct AnsweredInPlace;

/// A JSON-RPC message as the SDK writes a JSON reply.
fn json(message: &ServerJsonRpcMessage) -> Response {
    match serde_json::to_vec(message) {
        Ok(body) => {
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response.extensions_mut().insert(AnsweredInPlace);
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
