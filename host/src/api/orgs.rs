//! Organisations and their users.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::extract::{Authenticated, JsonBody};
use super::{AppState, problem::ApiError};
use crate::service::orgs::{NewUser, OrgSettings, OrgView, PrincipalView, StorageView};

/// A new organisation.
#[derive(Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// Display name.
    pub name: String,
}

/// Whom to hand an organisation to.
#[derive(Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The principal id of a human user who is a member of the organisation.
    pub to: String,
}

/// Founds an organisation; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "identity", security(("bearer" = [])), request_body = NewOrg, responses(
    (status = 201, description = "created", body = OrgView),
    (status = 403, description = "refused by the pipeline"),
))]
pub async fn create_org(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<NewOrg>,
) -> Result<(StatusCode, Json<OrgView>), ApiError> {
    let org = state.warrant.create_org(&caller, &req.name).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

/// An organisation the caller belongs to.
#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "identity", security(("bearer" = [])),
    params(("org" = String, Path, description = "organisation id")), responses(
    (status = 200, description = "the organisation", body = OrgView),
    (status = 404, description = "unknown, or the caller does not belong to it"),
))]
pub async fn get_org(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(org): Path<String>,
) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(state.warrant.get_org(&caller, &org).await?))
}

/// An organisation's storage: bytes used, the quota in force, what is left.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/usage", tag = "identity", security(("bearer" = [])),
    params(("org" = String, Path, description = "organisation id")), responses(
    (status = 200, description = "storage use and quota", body = StorageView),
    (status = 404, description = "unknown, or the caller does not belong to it"),
))]
pub async fn org_usage(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(org): Path<String>,
) -> Result<Json<StorageView>, ApiError> {
    Ok(Json(state.warrant.org_usage(&caller, &org).await?))
}

/// Changes an organisation's settings (owners only).
#[utoipa::path(patch, path = "/api/v1/orgs/{org}", tag = "identity", security(("bearer" = [])),
    params(("org" = String, Path, description = "organisation id")), request_body = OrgSettings, responses(
    (status = 200, description = "the organisation", body = OrgView),
))]
pub async fn update_org(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(org): Path<String>,
    JsonBody(req): JsonBody<OrgSettings>,
) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(state.warrant.update_org(&caller, &org, req).await?))
}

/// Hands the organisation to a human member (owners only). The new owner becomes owner of
/// every workspace in it; every previous owner becomes a `maintainer` (read the organisation,
/// manage its own tokens) with at most `viewer` in its workspaces, and cannot take it back.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/transfer-ownership", tag = "identity", security(("bearer" = [])),
    params(("org" = String, Path, description = "organisation id")), request_body = Transfer, responses(
    (status = 200, description = "handed over", body = OrgView),
    (status = 422, description = "the target is not a human user"),
))]
pub async fn transfer_ownership(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(org): Path<String>,
    JsonBody(req): JsonBody<Transfer>,
) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(
        state
            .warrant
            .transfer_ownership(&caller, &org, &req.to)
            .await?,
    ))
}

/// Creates a user in an organisation the caller administers (needs `org:admin`).
#[utoipa::path(post, path = "/api/v1/users", tag = "identity", security(("bearer" = [])), request_body = NewUser, responses(
    (status = 201, description = "created", body = PrincipalView),
    (status = 409, description = "the e-mail address is taken"),
))]
pub async fn create_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<PrincipalView>), ApiError> {
    let user = state.warrant.create_user(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(user)))
}
