//! Wasm policy plugins: list the organisation's, see and change what a workspace runs.
//! (Uploading a component stays a REST call: it is a binary body an agent has no business
//! producing.)

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::identity::Nothing;
use super::workspaces::Ws;
use super::{Kind, ToolSpec, add, done, structured};
use crate::authz::Scope;
use crate::service::plugins::AttachRequest;

/// A plugin to attach to a workspace, with its configuration.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct AttachInput {
    /// The workspace id.
    pub workspace: String,
    /// The plugin's id (`plg_…`); list_plugins shows them.
    pub plugin_id: String,
    #[serde(flatten)]
    pub body: AttachRequest,
}

/// A plugin attached to a workspace.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttachmentRef {
    /// The workspace id.
    pub workspace: String,
    /// The plugin's id (`plg_…`).
    pub plugin_id: String,
}

pub(super) fn register(tools: &mut Vec<ToolSpec>) {
    add(
        tools,
        "list_plugins",
        "Lists the Wasm policy plugins of the caller's organisation: id, name, version in force, \
         digest, the workspaces each is attached to, and evaluation counters.",
        Some(Scope::PluginsAdmin),
        Kind::Read,
        |w, caller, _: Nothing| async move {
            structured(&json!({ "plugins": w.list_plugins(&caller).await? }))
        },
    );
    add(
        tools,
        "workspace_plugins",
        "Lists the plugins a workspace runs, in evaluation order, with their configuration and \
         mode (enforce or shadow).",
        Some(Scope::PluginsAdmin),
        Kind::Read,
        |w, caller, req: Ws| async move {
            structured(&json!({ "plugins": w.workspace_plugins(&caller, &req.workspace).await? }))
        },
    );
    add(
        tools,
        "attach_plugin",
        "Attaches a plugin to a workspace, or changes its config, mode (`enforce` refuses what \
         the plugin denies; `shadow` only logs) or order. The plugin checks the config first and \
         its reason is returned if it refuses. Takes effect on the next request.",
        Some(Scope::PluginsAdmin),
        Kind::Idempotent,
        |w, caller, req: AttachInput| async move {
            structured(
                &w.attach_plugin(&caller, &req.workspace, &req.plugin_id, req.body)
                    .await?,
            )
        },
    );
    add(
        tools,
        "detach_plugin",
        "Detaches a plugin from a workspace; it stops running at once.",
        Some(Scope::PluginsAdmin),
        Kind::Destructive,
        |w, caller, req: AttachmentRef| async move {
            w.detach_plugin(&caller, &req.workspace, &req.plugin_id)
                .await?;
            done(format!(
                "plugin {} detached from {}",
                req.plugin_id, req.workspace
            ))
        },
    );
}
