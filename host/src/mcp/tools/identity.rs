//! The caller, tokens, agents and organisations.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::{Kind, ToolSpec, add, done, structured};
use crate::api::bodies::{Me, NewAgent, NewOrg, Transfer};
use crate::authz::Scope;
use crate::service::NewToken;
use crate::service::orgs::{NewUser, OrgSettings};

/// No input.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct Nothing {}

/// A token to revoke.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenId {
    /// The token's id (`tok_…`), never its secret.
    pub token_id: String,
}

/// An agent to delete.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentId {
    /// The agent's principal id.
    pub agent_id: String,
}

/// An organisation to hand over, and to whom.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct TransferInput {
    /// The organisation's id (`org_…`).
    pub org_id: String,
    #[serde(flatten)]
    pub body: Transfer,
}

/// An organisation.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrgId {
    /// The organisation's id (`org_…`); `whoami` tells the caller's own.
    pub org_id: String,
}

/// Organisation settings to change.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct UpdateOrg {
    /// The organisation's id.
    pub org_id: String,
    #[serde(flatten)]
    pub settings: OrgSettings,
}

pub(super) fn register(tools: &mut Vec<ToolSpec>) {
    add(
        tools,
        "whoami",
        "Who the caller is: principal id, kind (user or agent), name, organisation, the token's \
         id, its scopes and the workspaces it is limited to (null: all of the principal's).",
        None,
        Kind::Read,
        |_, caller, _: Nothing| async move { structured(&Me::of(caller)) },
    );
    add(
        tools,
        "list_tokens",
        "Lists the caller's own access tokens (ids, names, scopes, workspaces, expiry, last use; \
         never the secrets).",
        Some(Scope::TokensWrite),
        Kind::Read,
        |w, caller, _: Nothing| async move {
            structured(&json!({ "tokens": w.list_tokens(&caller).await? }))
        },
    );
    add(
        tools,
        "create_token",
        "Creates an access token for the caller, or for one of its organisation's agents (give \
         principal_id). Scopes can never exceed the caller's own; limit it to workspaces where \
         possible. The secret is returned once, in `token`: store it now.",
        Some(Scope::TokensWrite),
        Kind::Write,
        |w, caller, req: NewToken| async move { structured(&w.create_token(&caller, req).await?) },
    );
    add(
        tools,
        "get_token",
        "One of the caller's tokens by id (never its secret).",
        Some(Scope::TokensWrite),
        Kind::Read,
        |w, caller, req: TokenId| async move { structured(&w.get_token(&caller, &req.token_id).await?) },
    );
    add(
        tools,
        "revoke_token",
        "Revokes one of the caller's tokens (or an agent's, for an agent administrator) at once.",
        Some(Scope::TokensWrite),
        Kind::Destructive,
        |w, caller, req: TokenId| async move {
            w.revoke_token(&caller, &req.token_id).await?;
            done(format!("token {} revoked", req.token_id))
        },
    );
    add(
        tools,
        "list_agents",
        "Lists the agents of the organisations the caller may see.",
        Some(Scope::WorkspacesRead),
        Kind::Read,
        |w, caller, _: Nothing| async move {
            structured(&json!({ "agents": w.list_agents(&caller).await? }))
        },
    );
    add(
        tools,
        "create_agent",
        "Creates an agent (a non-human principal) in an organisation. Give it a role in a \
         workspace with set_member_role and a token with create_token.",
        Some(Scope::AgentsAdmin),
        Kind::Write,
        |w, caller, req: NewAgent| async move {
            structured(
                &w.create_agent(
                    &caller,
                    &req.org_id,
                    &req.name,
                    req.groups.unwrap_or_default(),
                )
                .await?,
            )
        },
    );
    add(
        tools,
        "delete_agent",
        "Deletes an agent; its tokens stop working at once.",
        Some(Scope::AgentsAdmin),
        Kind::Destructive,
        |w, caller, req: AgentId| async move {
            w.delete_agent(&caller, &req.agent_id).await?;
            done(format!("agent {} deleted", req.agent_id))
        },
    );
    add(
        tools,
        "get_org",
        "An organisation's settings (name, token lifetime cap, rate limit, storage quota).",
        Some(Scope::WorkspacesRead),
        Kind::Read,
        |w, caller, req: OrgId| async move { structured(&w.get_org(&caller, &req.org_id).await?) },
    );
    add(
        tools,
        "org_usage",
        "An organisation's storage: bytes used and its quota.",
        Some(Scope::WorkspacesRead),
        Kind::Read,
        |w, caller, req: OrgId| async move { structured(&w.org_usage(&caller, &req.org_id).await?) },
    );
    add(
        tools,
        "create_org",
        "Founds a new organisation; the caller becomes its owner.",
        Some(Scope::OrgAdmin),
        Kind::Write,
        |w, caller, req: NewOrg| async move { structured(&w.create_org(&caller, &req.name).await?) },
    );
    add(
        tools,
        "update_org",
        "Changes an organisation's settings (owners and admins): token lifetime cap, tenant \
         permits, rate limit, storage quota. Absent fields stay as they are.",
        Some(Scope::OrgAdmin),
        Kind::Idempotent,
        |w, caller, req: UpdateOrg| async move {
            structured(&w.update_org(&caller, &req.org_id, req.settings).await?)
        },
    );
    add(
        tools,
        "transfer_ownership",
        "Hands an organisation the caller owns to a human member (`to`: a user's principal          id). The caller becomes a maintainer: it may then only read the organisation, manage its          own tokens and read the workspaces it belonged to, and cannot take ownership back.",
        Some(Scope::OrgAdmin),
        Kind::Destructive,
        |w, caller, req: TransferInput| async move {
            structured(
                &w.transfer_ownership(&caller, &req.org_id, &req.body.to)
                    .await?,
            )
        },
    );
    add(
        tools,
        "create_user",
        "Creates a user (a person) in an organisation, optionally with an initial password and \
         an organisation role (admin or member).",
        Some(Scope::OrgAdmin),
        Kind::Write,
        |w, caller, req: NewUser| async move { structured(&w.create_user(&caller, req).await?) },
    );
}
