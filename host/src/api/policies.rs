//! Tenant Cedar policies, the what-if endpoint and the decision log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::extract::{Authenticated, JsonBody, QueryParams};
use super::{AppState, problem::ApiError};
use crate::service::policies::{
    DecisionPage, DecisionQuery, PolicyMode, PolicyState, ShadowReport, VersionView, WhatIf,
    WhatIfAnswer,
};

/// `?mode=` of a policy upload.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ModeQuery {
    /// `enforce` (default) or `shadow`.
    pub mode: Option<PolicyMode>,
}

/// A rollback target.
#[derive(Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The version to enforce again (0: the base role policies alone).
    pub version: i64,
}

/// Replaces the workspace's Cedar policy set (or tries it in shadow mode).
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/policies", tag = "policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), ModeQuery),
    request_body(content = String, content_type = "text/plain", description = "Cedar policies"),
    responses(
    (status = 200, description = "stored as a new version", body = PolicyState),
    (status = 400, description = "does not parse or validate; `diagnostics` has every problem with line and column"),
))]
pub async fn put_policies(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
    QueryParams(q): QueryParams<ModeQuery>,
    body: String,
) -> Result<Json<PolicyState>, ApiError> {
    let mode = q.mode.unwrap_or(PolicyMode::Enforce);
    Ok(Json(
        state
            .warrant
            .put_policies(&caller, &ws, &body, mode)
            .await?,
    ))
}

/// The enforced Cedar text (`Warrant-Policy-Version` names its version; empty: base only).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/policies", tag = "policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")),
    responses((status = 200, description = "the Cedar text", content_type = "text/plain")))]
pub async fn get_policies(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
) -> Result<Response, ApiError> {
    let text = state.warrant.get_policies(&caller, &ws).await?;
    let mut response = text.source.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "warrant-policy-version",
        HeaderValue::from(text.version.unwrap_or(0)),
    );
    if let Some(v) = text.shadow_version {
        h.insert("warrant-shadow-version", HeaderValue::from(v));
    }
    Ok(response)
}

/// Every stored version, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/policies/versions", tag = "policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")),
    responses((status = 200, description = "the history", body = Vec<VersionView>)))]
pub async fn policy_versions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
) -> Result<Json<Vec<VersionView>>, ApiError> {
    Ok(Json(state.warrant.policy_versions(&caller, &ws).await?))
}

/// Enforces an earlier version again (as a new version).
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/policies/rollback", tag = "policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")), request_body = Rollback,
    responses((status = 200, description = "rolled back", body = PolicyState)))]
pub async fn rollback_policies(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
    JsonBody(req): JsonBody<Rollback>,
) -> Result<Json<PolicyState>, ApiError> {
    Ok(Json(
        state
            .warrant
            .rollback_policies(&caller, &ws, req.version)
            .await?,
    ))
}

/// How the shadow candidate compares with the enforced set on real traffic.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/policies/shadow-report", tag = "policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")),
    responses((status = 200, description = "the report", body = ShadowReport)))]
pub async fn shadow_report(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
) -> Result<Json<ShadowReport>, ApiError> {
    Ok(Json(state.warrant.shadow_report(&caller, &ws).await?))
}

/// Enforces the shadow candidate.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/policies/shadow/promote", tag = "policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")),
    responses((status = 200, description = "promoted", body = PolicyState)))]
pub async fn promote_shadow(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
) -> Result<Json<PolicyState>, ApiError> {
    Ok(Json(state.warrant.promote_shadow(&caller, &ws).await?))
}

/// Stops trying the shadow candidate.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/policies/shadow", tag = "policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")),
    responses((status = 200, description = "discarded", body = PolicyState)))]
pub async fn discard_shadow(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
) -> Result<Json<PolicyState>, ApiError> {
    Ok(Json(state.warrant.discard_shadow(&caller, &ws).await?))
}

/// What-if: the production pipeline on a hypothetical request, enforcing nothing.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/authorize", tag = "policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")), request_body = WhatIf,
    responses((status = 200, description = "the decision and every reason", body = WhatIfAnswer)))]
pub async fn what_if(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
    JsonBody(req): JsonBody<WhatIf>,
) -> Result<Json<WhatIfAnswer>, ApiError> {
    Ok(Json(state.warrant.what_if(&caller, &ws, req).await?))
}

/// The decision log of a workspace, newest first. Decisions are written off the request path,
/// in batches gathered for 100 ms, so the newest may take a moment to appear.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/decisions", tag = "policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), DecisionQuery),
    responses((status = 200, description = "a page of decisions", body = DecisionPage)))]
pub async fn decisions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
    QueryParams(q): QueryParams<DecisionQuery>,
) -> Result<Json<DecisionPage>, ApiError> {
    Ok(Json(state.warrant.decisions(&caller, &ws, q).await?))
}
