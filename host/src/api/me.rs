//! `GET /me`: who the caller is and what its credential allows.

use axum::Json;
use serde::Serialize;

use super::extract::Authenticated;

/// The caller.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The principal's id.
    pub principal_id: String,
    /// user | agent | client
    pub principal_kind: &'static str,
    /// Display name.
    pub name: String,
    /// The principal's organisation.
    pub org_id: String,
    /// The credential's id.
    pub token_id: String,
    /// The credential's scopes.
    pub scopes: Vec<&'static str>,
    /// The workspaces the credential is limited to, or null.
    pub workspaces: Option<Vec<String>>,
}

/// The caller: authentication alone answers this, about the caller itself.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity", security(("bearer" = [])), responses(
    (status = 200, description = "the caller", body = Me),
    (status = 401, description = "no valid credential"),
))]
pub async fn whoami(Authenticated(caller): Authenticated) -> Json<Me> {
    Json(Me::of(caller))
}

impl Me {
    /// What a caller's credential says about it.
    pub fn of(caller: crate::authz::Caller) -> Me {
        Me {
            principal_id: caller.principal.id.0.clone(),
            principal_kind: caller.principal.kind.as_str(),
            name: caller.principal.name.clone(),
            org_id: caller.principal.org_id.0.clone(),
            token_id: caller.grant.credential_id,
            scopes: caller.grant.scopes.names(),
            workspaces: caller
                .grant
                .workspaces
                .map(|ws| ws.into_iter().map(|w| w.0).collect()),
        }
    }
}
