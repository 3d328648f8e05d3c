//! Personal access tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::extract::{Authenticated, JsonBody};
use super::{AppState, problem::ApiError};
use crate::service::{NewToken, TokenView};

/// A list of tokens (never their secrets).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenList {
    /// The tokens.
    pub tokens: Vec<TokenView>,
}

/// Mints a personal access token; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = NewToken, responses(
    (status = 201, description = "created; `token` is shown this once", body = TokenView),
    (status = 403, description = "a scope or workspace the creator does not hold"),
    (status = 422, description = "bad scopes or lifetime"),
))]
pub async fn create_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<NewToken>,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    let token = state.warrant.create_token(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(token)))
}

/// The tokens the caller holds or minted.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])), responses(
    (status = 200, description = "the tokens", body = TokenList),
))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<TokenList>, ApiError> {
    Ok(Json(TokenList {
        tokens: state.warrant.list_tokens(&caller).await?,
    }))
}

/// One token.
#[utoipa::path(get, path = "/api/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "token id")), responses(
    (status = 200, description = "the token", body = TokenView),
    (status = 404, description = "unknown"),
))]
pub async fn get_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(state.warrant.get_token(&caller, &id).await?))
}

/// Revokes a token; the next request with it gets 401.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "token id")), responses(
    (status = 204, description = "revoked"),
    (status = 404, description = "unknown"),
))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.warrant.revoke_token(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
