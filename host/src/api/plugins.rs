//! Wasm policy plugins: upload, list, remove; attach to and detach from workspaces.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::extract::{Authenticated, JsonBody, QueryParams};
use super::{AppState, problem::ApiError};
use crate::Error;
use crate::service::plugins::{AttachRequest, AttachmentView, MAX_PLUGIN_BYTES, PluginView};

/// `?name=` of an upload.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct UploadQuery {
    /// The plugin's name in the organisation; an existing name gets a new version.
    pub name: String,
}

/// An organisation's plugins.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PluginList {
    /// The plugins, by name.
    pub plugins: Vec<PluginView>,
}

/// A workspace's plugins.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttachmentList {
    /// In evaluation order.
    pub plugins: Vec<AttachmentView>,
}

/// Uploads a Wasm component of the `warrant:policy/policy-plugin` world (at most 10 MiB).
/// It is checked and compiled before it is stored; workspaces running an earlier version of
/// the same name run this one from their next request.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins", security(("bearer" = [])), params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm"), responses(
    (status = 201, description = "a new plugin", body = PluginView),
    (status = 200, description = "a new version of an existing plugin", body = PluginView),
    (status = 400, description = "not a WebAssembly component"),
    (status = 413, description = "over 10 MiB"),
    (status = 422, description = "another world, or imports Warrant does not grant (files, sockets, ...)"),
))]
pub async fn upload_plugin(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    QueryParams(q): QueryParams<UploadQuery>,
    body: Body,
) -> Result<(StatusCode, Json<PluginView>), ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_PLUGIN_BYTES)
        .await
        .map_err(|_| Error::PayloadTooLarge {
            limit: MAX_PLUGIN_BYTES as u64,
        })?;
    let (view, created) = state
        .warrant
        .upload_plugin(&caller, &q.name, bytes.to_vec())
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// The plugins of the caller's organisation, with per-process evaluation counters.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", security(("bearer" = [])),
    responses((status = 200, description = "the plugins", body = PluginList)))]
pub async fn list_plugins(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<PluginList>, ApiError> {
    let plugins = state.warrant.list_plugins(&caller).await?;
    Ok(Json(PluginList { plugins }))
}

/// One plugin.
#[utoipa::path(get, path = "/api/v1/plugins/{id}", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path, description = "plugin id")),
    responses((status = 200, description = "the plugin", body = PluginView)))]
pub async fn get_plugin(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<PluginView>, ApiError> {
    Ok(Json(state.warrant.get_plugin(&caller, &id).await?))
}

/// Removes a plugin and all its versions (409 while it is attached anywhere).
#[utoipa::path(delete, path = "/api/v1/plugins/{id}", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path, description = "plugin id")), responses(
    (status = 204, description = "removed"),
    (status = 409, description = "still attached: detach it first"),
))]
pub async fn delete_plugin(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.warrant.delete_plugin(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Attaches a plugin to the workspace, or changes its config, mode or order. The plugin's
/// `configure` checks the config first. Takes effect on the next request.
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/plugins/{plugin_id}", tag = "plugins", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), ("plugin_id" = String, Path, description = "plugin id")),
    request_body = AttachRequest, responses(
    (status = 200, description = "attached", body = AttachmentView),
    (status = 422, description = "the plugin refused the configuration (its reason in `detail`)"),
))]
pub async fn attach_plugin(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((ws, plugin_id)): Path<(String, String)>,
    JsonBody(req): JsonBody<AttachRequest>,
) -> Result<Json<AttachmentView>, ApiError> {
    Ok(Json(
        state
            .warrant
            .attach_plugin(&caller, &ws, &plugin_id, req)
            .await?,
    ))
}

/// Detaches a plugin: it stops running at once.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/plugins/{plugin_id}", tag = "plugins", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), ("plugin_id" = String, Path, description = "plugin id")),
    responses((status = 204, description = "detached")))]
pub async fn detach_plugin(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((ws, plugin_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .warrant
        .detach_plugin(&caller, &ws, &plugin_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The plugins a workspace runs, in order.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/plugins", tag = "plugins", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")),
    responses((status = 200, description = "the attached plugins", body = AttachmentList)))]
pub async fn workspace_plugins(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
) -> Result<Json<AttachmentList>, ApiError> {
    let plugins = state.warrant.workspace_plugins(&caller, &ws).await?;
    Ok(Json(AttachmentList { plugins }))
}
