//! The one place where library errors become HTTP responses: RFC 9457 problem+json with a
//! stable `code`, and RFC 6750 `WWW-Authenticate` challenges on 401 and scope refusals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Error;
use crate::authz::Layer;

/// A library error on its way out over HTTP.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// The media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error as RFC 9457 problem+json: the status, the body, and the `WWW-Authenticate` challenge
/// it calls for. The REST and MCP transports both render errors with it.
pub(crate) fn problem(err: &Error) -> (StatusCode, serde_json::Value, Option<String>) {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let detail = match err {
        // Never show internals; log them with the request id instead.
        Error::Database(e) => {
            tracing::error!(error = %e, "database error");
            "an internal error occurred; it has been logged".to_string()
        }
        Error::Io(e) => {
            tracing::error!(error = %e, "storage error");
            "an internal error occurred; it has been logged".to_string()
        }
        Error::Internal(e) => {
            tracing::error!(error = %e, "internal error");
            "an internal error occurred; it has been logged".to_string()
        }
        other => other.to_string(),
    };
    let mut body = json!({
        "type": format!("urn:warrant:problem:{}", err.code()),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": err.code(),
    });
    let mut challenge = None;
    match err {
        Error::Unauthenticated => challenge = Some(r#"Bearer realm="warrant""#.to_string()),
        Error::InvalidToken(_) => {
            challenge = Some(format!(
                r#"Bearer realm="warrant", error="invalid_token", error_description="{}""#,
                detail.replace('"', "'")
            ));
        }
        Error::InvalidPolicy(diagnostics) => body["diagnostics"] = json!(diagnostics),
        Error::Locked {
            path,
            holder,
            expires_at,
        } => {
            body["lock_path"] = json!(path);
            body["holder"] = json!(holder);
            body["expires_at"] = json!(expires_at);
        }
        Error::QuotaExceeded {
            used,
            quota,
            needed,
        } => {
            body["used_bytes"] = json!(used);
            body["quota_bytes"] = json!(quota);
            body["needed_bytes"] = json!(needed);
        }
        Error::Forbidden(decision) => {
            body["layer"] = json!(decision.layer.map(Layer::as_str));
            body["reasons"] = json!(decision.reasons);
            if decision.layer == Some(Layer::Policy) {
                body["policy_ids"] = json!(decision.policy_ids);
                if !decision.errors.is_empty() {
                    body["errors"] = json!(decision.errors);
                }
            }
            if decision.layer == Some(Layer::Plugin)
                && let Some(v) = decision.plugins.iter().find(|v| v.refuses())
            {
                body["plugin"] = json!({
                    "id": v.plugin_id,
                    "name": v.name,
                    "version": v.version,
                    "reason": v.reason,
                });
            }
            if let Some(scope) = decision.required_scope {
                body["required_scope"] = json!(scope);
                challenge = Some(format!(
                    r#"Bearer realm="warrant", error="insufficient_scope", scope="{scope}""#
                ));
            }
        }
        _ => {}
    }
    (status, body, challenge)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let (status, body, challenge) = problem(&err);
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Error::RateLimited {
            limit,
            retry_after_secs,
        } = &err
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            headers.insert("ratelimit-limit", HeaderValue::from(*limit));
            headers.insert("ratelimit-remaining", HeaderValue::from(0));
            headers.insert("ratelimit-reset", HeaderValue::from(*retry_after_secs));
        }
        if matches!(
            err,
            Error::PayloadTooLarge { .. } | Error::QuotaExceeded { .. }
        ) {
            // The body may be left unread: the connection cannot be reused.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
