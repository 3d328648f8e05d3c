//! Liveness, readiness and the fallback.

use axum::extract::State;
use axum::http::StatusCode;

use super::{AppState, problem::ApiError};
use crate::Error;

/// 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "the process runs")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "system", responses(
    (status = 200, description = "the database answers"),
    (status = 503, description = "the database does not answer"),
))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.warrant.store().ping().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}

/// Counters in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "counters", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> String {
    let mut out = String::new();
    for (name, help, value) in state.warrant.metrics() {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    }
    out
}

/// A known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    Error::MethodNotAllowed.into()
}

/// Unknown routes are problems too.
pub async fn not_found() -> ApiError {
    Error::NotFound("route").into()
}
