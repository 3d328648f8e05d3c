//! Tenant Cedar policies, what-if and the decision log.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::workspaces::Ws;
use super::{Kind, ToolSpec, add, structured};
use crate::api::bodies::Rollback;
use crate::authz::Scope;
use crate::service::policies::{DecisionQuery, PolicyMode, WhatIf};

/// A new policy set.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutInput {
    /// The workspace id.
    pub workspace: String,
    /// The whole Cedar policy set (forbid rules; permits only where the organisation allows).
    pub policies: String,
    /// `enforce` (default) or `shadow` (evaluate alongside the enforced set, log disagreements).
    pub mode: Option<PolicyMode>,
}

/// A rollback.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct RollbackInput {
    /// The workspace id.
    pub workspace: String,
    #[serde(flatten)]
    pub body: Rollback,
}

/// A hypothetical request.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct WhatIfInput {
    /// The workspace id.
    pub workspace: String,
    #[serde(flatten)]
    pub body: WhatIf,
}

/// A decision log query.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct DecisionsInput {
    /// The workspace id.
    pub workspace: String,
    #[serde(flatten)]
    pub query: DecisionQuery,
}

pub(super) fn register(tools: &mut Vec<ToolSpec>) {
    add(
        tools,
        "get_policies",
        "The Cedar policy set in force in a workspace, with its version (and the shadow \
         candidate's version, if any).",
        Some(Scope::PoliciesAdmin),
        Kind::Read,
        |w, caller, req: Ws| async move { structured(&w.get_policies(&caller, &req.workspace).await?) },
    );
    add(
        tools,
        "put_policies",
        "Stores a new version of a workspace's Cedar policy set, enforced at once or in shadow \
         mode. Nothing is stored unless the whole set parses and validates; problems come back \
         located.",
        Some(Scope::PoliciesAdmin),
        Kind::Write,
        |w, caller, req: PutInput| async move {
            let mode = req.mode.unwrap_or(PolicyMode::Enforce);
            structured(
                &w.put_policies(&caller, &req.workspace, &req.policies, mode)
                    .await?,
            )
        },
    );
    add(
        tools,
        "policy_versions",
        "The history of a workspace's policy sets: versions, authors, times.",
        Some(Scope::PoliciesAdmin),
        Kind::Read,
        |w, caller, req: Ws| async move {
            structured(&json!({ "versions": w.policy_versions(&caller, &req.workspace).await? }))
        },
    );
    add(
        tools,
        "rollback_policies",
        "Enforces an earlier version of the policy set again (as a new version).",
        Some(Scope::PoliciesAdmin),
        Kind::Write,
        |w, caller, req: RollbackInput| async move {
            structured(
                &w.rollback_policies(&caller, &req.workspace, req.body.version)
                    .await?,
            )
        },
    );
    add(
        tools,
        "shadow_report",
        "How the shadow candidate policy set would have decided differently from the enforced \
         one, with samples.",
        Some(Scope::PoliciesAdmin),
        Kind::Read,
        |w, caller, req: Ws| async move { structured(&w.shadow_report(&caller, &req.workspace).await?) },
    );
    add(
        tools,
        "promote_shadow",
        "Enforces the shadow candidate policy set.",
        Some(Scope::PoliciesAdmin),
        Kind::Write,
        |w, caller, req: Ws| async move {
            structured(&w.promote_shadow(&caller, &req.workspace).await?)
        },
    );
    add(
        tools,
        "discard_shadow",
        "Drops the shadow candidate policy set.",
        Some(Scope::PoliciesAdmin),
        Kind::Destructive,
        |w, caller, req: Ws| async move {
            structured(&w.discard_shadow(&caller, &req.workspace).await?)
        },
    );
    add(
        tools,
        "what_if",
        "Evaluates a hypothetical request (principal, action, resource, assumed context) \
         against the workspace's policies and explains every reason, without acting.",
        Some(Scope::PoliciesAdmin),
        Kind::Read,
        |w, caller, req: WhatIfInput| async move {
            structured(&w.what_if(&caller, &req.workspace, req.body).await?)
        },
    );
    add(
        tools,
        "query_decisions",
        "Pages through a workspace's decision log, newest first: who did what, allowed or \
         denied, by which layer and policies, over which transport. Filter by principal, \
         decision (allow/deny), action; pass `next` as `before` for the next page.",
        Some(Scope::PoliciesAdmin),
        Kind::Read,
        |w, caller, req: DecisionsInput| async move {
            structured(&w.decisions(&caller, &req.workspace, req.query).await?)
        },
    );
}
