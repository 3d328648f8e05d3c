//! `warrant plugin …`: push components to a running server and attach them to workspaces.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::policy::{ServerArgs, print_response};

/// `warrant plugin …`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Upload a component (a new plugin, or the next version of one with the same name).
    Push {
        /// The `.wasm` component, built for wasm32-wasip2.
        file: PathBuf,
        /// The plugin's name in the organisation.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Attach a plugin to a workspace (or change its config, mode or order).
    Attach {
        /// The workspace id.
        workspace: String,
        /// The plugin id.
        plugin: String,
        /// The configuration, as JSON.
        #[arg(long, default_value = "{}")]
        config: String,
        /// Evaluate and log without enforcing.
        #[arg(long)]
        shadow: bool,
        /// Evaluation order, lower first.
        #[arg(long, default_value_t = 0)]
        order: i64,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Detach a plugin from a workspace.
    Detach {
        /// The workspace id.
        workspace: String,
        /// The plugin id.
        plugin: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List the organisation's plugins.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Runs a plugin command.
pub async fn run_plugin(cmd: PluginCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let request = match cmd {
        PluginCommand::Push { file, name, server } => {
            let bytes = std::fs::read(&file)
                .with_context(|| format!("could not read {}", file.display()))?;
            client
                .post(server.url("/plugins"))
                .query(&[("name", name)])
                .bearer_auth(&server.token)
                .header("content-type", "application/wasm")
                .body(bytes)
        }
        PluginCommand::Attach {
            workspace,
            plugin,
            config,
            shadow,
            order,
            server,
        } => {
            let config: serde_json::Value =
                serde_json::from_str(&config).context("--config is not JSON")?;
            client
                .put(server.url(&format!("/workspaces/{workspace}/plugins/{plugin}")))
                .bearer_auth(&server.token)
                .json(&serde_json::json!({
                    "config": config,
                    "mode": if shadow { "shadow" } else { "enforce" },
                    "order": order,
                }))
        }
        PluginCommand::Detach {
            workspace,
            plugin,
            server,
        } => client
            .delete(server.url(&format!("/workspaces/{workspace}/plugins/{plugin}")))
            .bearer_auth(&server.token),
        PluginCommand::List { server } => client
            .get(server.url("/plugins"))
            .bearer_auth(&server.token),
    };
    let response = request.send().await.context("the server did not answer")?;
    print_response(response).await
}
