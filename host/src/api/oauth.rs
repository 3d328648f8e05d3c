//! OAuth client administration (`/api/v1/oauth/clients`) and an organisation's OAuth settings.
//! The protocol endpoints themselves (authorize, token, …) are in `oauth_web`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::extract::{Authenticated, JsonBody, QueryParams};
use super::{AppState, problem::ApiError};
use crate::service::oauth::{ClientView, NewClient, OAuthOrgSettings};

/// A list of clients (never their secrets).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClientList {
    /// The clients.
    pub clients: Vec<ClientView>,
}

/// Which organisation's clients to list.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ClientQuery {
    /// The organisation (default: the caller's).
    pub org_id: Option<String>,
}

/// Registers an OAuth client; a confidential client's secret is in this response only.
#[utoipa::path(post, path = "/api/v1/oauth/clients", tag = "oauth", security(("bearer" = [])), request_body = NewClient, responses(
    (status = 201, description = "registered; `client_secret` is shown this once", body = ClientView),
    (status = 403, description = "not an admin of the organisation, or a scope the caller does not hold"),
    (status = 422, description = "bad redirect URIs, grants or scopes"),
))]
pub async fn create_client(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<NewClient>,
) -> Result<(StatusCode, Json<ClientView>), ApiError> {
    let c = state.warrant.create_client(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// The organisation's clients, and the dynamically registered ones (marked as such).
#[utoipa::path(get, path = "/api/v1/oauth/clients", tag = "oauth", security(("bearer" = [])), params(ClientQuery), responses(
    (status = 200, description = "the clients", body = ClientList),
))]
pub async fn list_clients(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    QueryParams(q): QueryParams<ClientQuery>,
) -> Result<Json<ClientList>, ApiError> {
    Ok(Json(ClientList {
        clients: state
            .warrant
            .list_clients(&caller, q.org_id.as_deref())
            .await?,
    }))
}

/// One client.
#[utoipa::path(get, path = "/api/v1/oauth/clients/{id}", tag = "oauth", security(("bearer" = [])),
    params(("id" = String, Path, description = "client id")), responses(
    (status = 200, description = "the client", body = ClientView),
    (status = 404, description = "unknown"),
))]
pub async fn get_client(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ClientView>, ApiError> {
    Ok(Json(state.warrant.get_client(&caller, &id).await?))
}

/// Deletes a client; its grants end and its access tokens are refused from now on.
#[utoipa::path(delete, path = "/api/v1/oauth/clients/{id}", tag = "oauth", security(("bearer" = [])),
    params(("id" = String, Path, description = "client id")), responses(
    (status = 204, description = "deleted"),
    (status = 404, description = "unknown"),
))]
pub async fn delete_client(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.warrant.delete_client(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a confidential client's secret (shown this once); the old one stops working.
#[utoipa::path(post, path = "/api/v1/oauth/clients/{id}/rotate-secret", tag = "oauth", security(("bearer" = [])),
    params(("id" = String, Path, description = "client id")), responses(
    (status = 200, description = "the new secret", body = ClientView),
    (status = 409, description = "a public client has no secret"),
))]
pub async fn rotate_client_secret(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ClientView>, ApiError> {
    Ok(Json(
        state.warrant.rotate_client_secret(&caller, &id).await?,
    ))
}

/// An organisation's OAuth settings.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/oauth", tag = "oauth", security(("bearer" = [])),
    params(("org" = String, Path, description = "organisation id")), responses(
    (status = 200, description = "the settings", body = OAuthOrgSettings),
))]
pub async fn get_oauth_settings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(org): Path<String>,
) -> Result<Json<OAuthOrgSettings>, ApiError> {
    Ok(Json(state.warrant.oauth_org_settings(&caller, &org).await?))
}

/// Changes an organisation's OAuth settings (e.g. turns dynamic registration off).
#[utoipa::path(put, path = "/api/v1/orgs/{org}/oauth", tag = "oauth", security(("bearer" = [])),
    params(("org" = String, Path, description = "organisation id")), request_body = OAuthOrgSettings, responses(
    (status = 200, description = "the settings", body = OAuthOrgSettings),
))]
pub async fn put_oauth_settings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(org): Path<String>,
    JsonBody(req): JsonBody<OAuthOrgSettings>,
) -> Result<Json<OAuthOrgSettings>, ApiError> {
    Ok(Json(
        state
            .warrant
            .set_oauth_org_settings(&caller, &org, req)
            .await?,
    ))
}
