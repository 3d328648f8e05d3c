//! Workspaces and membership.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::extract::{Authenticated, JsonBody};
use super::{AppState, problem::ApiError};
use crate::identity::Member;
use crate::service::workspaces::{MembershipView, WorkspaceView};

/// A new workspace.
#[derive(Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// The owning organisation.
    pub org_id: String,
    /// Display name, unique in the organisation.
    pub name: String,
}

/// A list of workspaces.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkspaceList {
    /// The workspaces.
    pub workspaces: Vec<WorkspaceView>,
}

/// A role to give.
#[derive(Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// owner | admin | editor | viewer
    pub role: String,
}

/// A list of members.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberList {
    /// The members.
    #[schema(value_type = Vec<Object>)]
    pub members: Vec<Member>,
}

/// Creates a workspace; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces", security(("bearer" = [])), request_body = NewWorkspace, responses(
    (status = 201, description = "created", body = WorkspaceView),
    (status = 409, description = "the name is taken in this organisation"),
))]
pub async fn create_workspace(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<NewWorkspace>,
) -> Result<(StatusCode, Json<WorkspaceView>), ApiError> {
    let ws = state
        .warrant
        .create_workspace(&caller, &req.org_id, &req.name)
        .await?;
    Ok((StatusCode::CREATED, Json(ws)))
}

/// The workspaces the caller holds a role in (within its credential's limits).
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces", security(("bearer" = [])), responses(
    (status = 200, description = "the workspaces", body = WorkspaceList),
))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<WorkspaceList>, ApiError> {
    Ok(Json(WorkspaceList {
        workspaces: state.warrant.list_workspaces(&caller).await?,
    }))
}

/// One workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")), responses(
    (status = 200, description = "the workspace", body = WorkspaceView),
    (status = 404, description = "unknown, or the caller holds no role in it"),
))]
pub async fn get_workspace(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
) -> Result<Json<WorkspaceView>, ApiError> {
    Ok(Json(state.warrant.get_workspace(&caller, &ws).await?))
}

/// Deletes a workspace and its files (owners only).
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")), responses(
    (status = 204, description = "deleted"),
))]
pub async fn delete_workspace(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.warrant.delete_workspace(&caller, &ws).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The members of a workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/members", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")), responses(
    (status = 200, description = "the members", body = MemberList),
))]
pub async fn list_members(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
) -> Result<Json<MemberList>, ApiError> {
    Ok(Json(MemberList {
        members: state.warrant.list_members(&caller, &ws).await?,
    }))
}

/// Gives a principal a role in the workspace.
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/members/{principal_id}", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), ("principal_id" = String, Path, description = "member")),
    request_body = RoleBody, responses(
    (status = 200, description = "the role is set", body = MembershipView),
    (status = 409, description = "the last owner cannot be demoted"),
))]
pub async fn set_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((ws, principal_id)): Path<(String, String)>,
    JsonBody(req): JsonBody<RoleBody>,
) -> Result<Json<MembershipView>, ApiError> {
    Ok(Json(
        state
            .warrant
            .set_member(&caller, &ws, &principal_id, &req.role)
            .await?,
    ))
}

/// Removes a member.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/members/{principal_id}", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), ("principal_id" = String, Path, description = "member")),
    responses((status = 204, description = "removed")))]
pub async fn remove_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((ws, principal_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .warrant
        .remove_member(&caller, &ws, &principal_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
