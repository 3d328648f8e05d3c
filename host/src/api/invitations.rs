//! Invitations to an organisation, and signing up with one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::Uri;
use serde::Serialize;

use super::extract::{Authenticated, JsonBody, refuse_credential_in_query};
use super::{AppState, problem::ApiError};
use crate::service::invitations::{Acceptance, InvitationView, Joining, Membership, NewInvitation};
use crate::service::orgs::PrincipalView;

/// An organisation's invitations.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitationList {
    /// Newest first; tokens are never shown again.
    pub invitations: Vec<InvitationView>,
}

/// Invites a person by e-mail with an org role; the answer holds the single-use
/// `wrt_inv_…` token, shown this once (owners and admins, `org:admin`).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/invitations", tag = "identity", security(("bearer" = [])),
    params(("org" = String, Path, description = "organisation id")), request_body = NewInvitation, responses(
    (status = 201, description = "invited; `token` is shown once", body = InvitationView),
))]
pub async fn invite(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(org): Path<String>,
    JsonBody(req): JsonBody<NewInvitation>,
) -> Result<(StatusCode, Json<InvitationView>), ApiError> {
    let view = state.warrant.invite(&caller, &org, req).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The invitations of an organisation, with their status.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/invitations", tag = "identity", security(("bearer" = [])),
    params(("org" = String, Path, description = "organisation id")),
    responses((status = 200, description = "the invitations", body = InvitationList)))]
pub async fn list_invitations(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(org): Path<String>,
) -> Result<Json<InvitationList>, ApiError> {
    let invitations = state.warrant.list_invitations(&caller, &org).await?;
    Ok(Json(InvitationList { invitations }))
}

/// Withdraws an open invitation.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/invitations/{id}", tag = "identity", security(("bearer" = [])),
    params(("org" = String, Path, description = "organisation id"), ("id" = String, Path, description = "invitation id")),
    responses((status = 204, description = "withdrawn")))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.warrant.revoke_invitation(&caller, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs up with an invitation: creates the user in the organisation with the invited role.
/// The token travels in the body only (a token in the query string is refused).
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "identity", request_body = Acceptance, responses(
    (status = 201, description = "the new user; sign in with the password", body = PrincipalView),
    (status = 401, description = "not a valid invitation token"),
    (status = 410, description = "already used, withdrawn or expired"),
))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    uri: Uri,
    JsonBody(req): JsonBody<Acceptance>,
) -> Result<(StatusCode, Json<PrincipalView>), ApiError> {
    refuse_credential_in_query(&uri)?;
    let user = state.warrant.accept_invitation(req).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Joins an organisation with an invitation, as a person who already has an account: the
/// caller's credential says who, the token (addressed to the caller's e-mail) says where.
#[utoipa::path(post, path = "/api/v1/invitations/join", tag = "identity", security(("bearer" = [])),
    request_body = Joining, responses(
    (status = 200, description = "joined", body = Membership),
    (status = 401, description = "no valid credential, or not a valid invitation token"),
    (status = 409, description = "already a member (the invitation stays open)"),
    (status = 410, description = "already used, withdrawn or expired"),
    (status = 422, description = "addressed to another e-mail address, or the caller is not a person"),
))]
pub async fn join_with_invitation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<Joining>,
) -> Result<Json<Membership>, ApiError> {
    let joined = state
        .warrant
        .join_with_invitation(&caller, &req.token)
        .await?;
    Ok(Json(joined))
}
