//! Agent identities.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::extract::{Authenticated, JsonBody};
use super::{AppState, problem::ApiError};
use crate::service::orgs::PrincipalView;

/// A new agent.
#[derive(Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// The owning organisation.
    pub org_id: String,
    /// Display name.
    pub name: String,
    /// Group labels for Cedar (`principal in Group::"…"`).
    pub groups: Option<Vec<String>>,
}

/// A list of agents.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AgentList {
    /// The agents.
    pub agents: Vec<PrincipalView>,
}

/// Creates an agent (needs `agents:admin` and an admin role in the organisation).
#[utoipa::path(post, path = "/api/v1/agents", tag = "identity", security(("bearer" = [])), request_body = NewAgent, responses(
    (status = 201, description = "created", body = PrincipalView),
))]
pub async fn create_agent(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<NewAgent>,
) -> Result<(StatusCode, Json<PrincipalView>), ApiError> {
    let agent = state
        .warrant
        .create_agent(
            &caller,
            &req.org_id,
            &req.name,
            req.groups.unwrap_or_default(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

/// The agents of the caller's organisations.
#[utoipa::path(get, path = "/api/v1/agents", tag = "identity", security(("bearer" = [])), responses(
    (status = 200, description = "the agents", body = AgentList),
))]
pub async fn list_agents(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<AgentList>, ApiError> {
    let agents = state.warrant.list_agents(&caller).await?;
    Ok(Json(AgentList { agents }))
}

/// Removes an agent; its tokens stop working at once.
#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path, description = "agent id")), responses(
    (status = 204, description = "removed"),
    (status = 404, description = "unknown"),
))]
pub async fn delete_agent(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.warrant.delete_agent(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
