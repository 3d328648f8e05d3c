//! File and folder locks.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::extract::{Authenticated, JsonBody};
use super::{AppState, problem::ApiError};
use crate::service::locks::LockView;

/// A lock to take.
#[derive(Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLock {
    /// A file path, or a folder ending in `/` (locks everything below it).
    pub path: String,
    /// Lifetime in seconds (1–3600).
    pub ttl_seconds: i64,
}

/// A renewal.
#[derive(Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Renewal {
    /// New lifetime from now, in seconds (1–3600).
    pub ttl_seconds: i64,
}

/// A workspace's live locks.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LockList {
    /// The locks.
    pub locks: Vec<LockView>,
}

/// Takes a lock; pass its `lock_id` as `Lock-Token` on writes, moves and deletes.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/locks", tag = "files", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")), request_body = NewLock, responses(
    (status = 201, description = "locked", body = LockView),
    (status = 423, description = "held by someone else: `holder` and `expires_at` say who and until when"),
))]
pub async fn acquire_lock(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
    JsonBody(req): JsonBody<NewLock>,
) -> Result<(StatusCode, Json<LockView>), ApiError> {
    let lock = state
        .warrant
        .acquire_lock(&caller, &ws, &req.path, req.ttl_seconds)
        .await?;
    Ok((StatusCode::CREATED, Json(lock)))
}

/// The live locks of a workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/locks", tag = "files", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")),
    responses((status = 200, description = "the locks", body = LockList)))]
pub async fn list_locks(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
) -> Result<Json<LockList>, ApiError> {
    Ok(Json(LockList {
        locks: state.warrant.list_locks(&caller, &ws).await?,
    }))
}

/// Extends a lock the caller holds.
#[utoipa::path(patch, path = "/api/v1/workspaces/{ws}/locks/{lock_id}", tag = "files", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), ("lock_id" = String, Path, description = "lock id")),
    request_body = Renewal, responses(
    (status = 200, description = "renewed", body = LockView),
    (status = 404, description = "expired or unknown"),
))]
pub async fn renew_lock(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((ws, lock_id)): Path<(String, String)>,
    JsonBody(req): JsonBody<Renewal>,
) -> Result<Json<LockView>, ApiError> {
    Ok(Json(
        state
            .warrant
            .renew_lock(&caller, &ws, &lock_id, req.ttl_seconds)
            .await?,
    ))
}

/// Releases a lock (its holder), or breaks it (a workspace admin).
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/locks/{lock_id}", tag = "files", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), ("lock_id" = String, Path, description = "lock id")),
    responses((status = 204, description = "released")))]
pub async fn release_lock(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((ws, lock_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.warrant.release_lock(&caller, &ws, &lock_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
