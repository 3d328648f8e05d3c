//! The HTTP+SSE transport of MCP revision 2024-11-05, for clients that still use it. `rmcp`
//! has no server for it, so this is the small missing part: `GET /sse` opens a stream whose
//! first event, `endpoint`, names the URL to POST messages to; `POST /messages?sessionId=…`
//! hands one JSON-RPC message to the session's server; responses come back on the stream as
//! `message` events. The rmcp server itself runs over a pair of channels. Every POST is
//! authenticated on its own, and a session answers only the principal that opened it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt};
use rmcp::ServiceExt;
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use serde::Deserialize;

use super::McpState;
use crate::authz::Caller;

/// Messages waiting for a session's server before POSTs are refused.
const INBOX: usize = 64;
/// The largest message accepted.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

struct Session {
    principal: String,
    inbox: mpsc::Sender<ClientJsonRpcMessage>,
}

/// The open legacy sessions.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<String, Session>>);

/// Removes its session when the stream is dropped (the client went away).
struct Unregister {
    state: Arc<McpState>,
    id: String,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Ok(mut map) = self.state.legacy.0.lock() {
            map.remove(&self.id);
        }
    }
}

fn caller(req: &Request) -> Option<Caller> {
    req.extensions().get::<Caller>().cloned()
}

/// `GET /sse`: opens a session and its event stream.
pub(crate) async fn open(State(state): State<Arc<McpState>>, req: Request) -> Response {
    let Some(caller) = caller(&req) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (inbox, inbound) = mpsc::channel::<ClientJsonRpcMessage>(INBOX);
    let (outbound, outbox) = mpsc::channel::<ServerJsonRpcMessage>(INBOX);
    if let Ok(mut map) = state.legacy.0.lock() {
        map.insert(
            id.clone(),
            Session {
                principal: caller.principal.id.0.clone(),
                inbox,
            },
        );
    }
    let handler = state.handler.clone();
    let session_id = id.clone();
    tokio::spawn(async move {
        match handler.serve((outbound, inbound)).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => {
                tracing::debug!(session = %session_id, error = %e, "legacy SSE session ended before initialisation")
            }
        }
    });
    let guard = Unregister {
        state: state.clone(),
        id: id.clone(),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={id}"));
    let messages = outbox.map(move |message| {
        let _keep = &guard;
        Ok::<Event, Infallible>(
            match Event::default().event("message").json_data(&message) {
                Ok(event) => event,
                Err(e) => Event::default().event("error").data(e.to_string()),
            },
        )
    });
    let stream = futures::stream::once(async move { Ok::<Event, Infallible>(endpoint) })
        .chain(messages)
        .take_until(super::SHUTDOWN.child_token().cancelled_owned());
    sse(stream)
}

fn sse<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The session a POST is for.
#[derive(Deserialize)]
pub(crate) struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

/// `POST /messages?sessionId=…`: one JSON-RPC message for the session's server.
pub(crate) async fn message(
    State(state): State<Arc<McpState>>,
    Query(q): Query<SessionQuery>,
    req: Request,
) -> Response {
    let Some(caller) = caller(&req) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let inbox = state.legacy.0.lock().ok().and_then(|map| {
        map.get(&q.session_id)
            .filter(|s| s.principal == caller.principal.id.0)
            .map(|s| s.inbox.clone())
    });
    let Some(mut inbox) = inbox else {
        return (StatusCode::NOT_FOUND, "no such session for this principal").into_response();
    };
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "message too large").into_response(),
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a JSON-RPC message: {e}"),
            )
                .into_response();
        }
    };
    // The handler finds the authenticated caller of this very request here, as with /mcp.
    match &mut message {
        ClientJsonRpcMessage::Request(r) => {
            r.request.extensions_mut().insert(parts);
        }
        ClientJsonRpcMessage::Notification(n) => {
            n.notification.extensions_mut().insert(parts);
        }
        _ => {}
    }
    match inbox.send(message).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "the session has ended").into_response(),
    }
}
