//! Commands for security teams: validate and test Cedar sets offline, push them and ask
//! what-if questions of a running server.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::authz::{Authz, fixtures};

/// Where the server is and who asks.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "WARRANT_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// A token with `policies:admin` (read from the environment, never a flag in shell history).
    #[arg(long, env = "WARRANT_TOKEN", hide_env_values = true)]
    pub token: String,
}

impl ServerArgs {
    /// The URL of an `/api/v1` route.
    pub fn url(&self, route: &str) -> String {
        format!("{}/api/v1{route}", self.server.trim_end_matches('/'))
    }
}

/// `warrant policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse and validate a policy file offline, with the server's diagnostics.
    Validate {
        /// The Cedar file.
        file: PathBuf,
        /// Accept `permit` policies (when the organisation allows tenant permits).
        #[arg(long)]
        allow_permits: bool,
    },
    /// Run ALLOW/DENY fixtures: `DIR/policy.cedar` with `DIR/fixtures.json`, or every such
    /// sub-folder of DIR.
    Test {
        /// The folder.
        dir: PathBuf,
    },
    /// Store a policy file as a workspace's new version.
    Push {
        /// The workspace id.
        workspace: String,
        /// The Cedar file.
        file: PathBuf,
        /// Try it in shadow mode instead of enforcing it.
        #[arg(long)]
        shadow: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `warrant authz …`
#[derive(Debug, Subcommand)]
pub enum AuthzCommand {
    /// Ask the server what it would decide for a hypothetical request (what-if).
    Check {
        /// The workspace id.
        workspace: String,
        /// The principal id.
        #[arg(long)]
        principal: String,
        /// The Cedar action id, e.g. `files:write`.
        #[arg(long)]
        action: String,
        /// The path ("" for the workspace).
        #[arg(long, default_value = "")]
        resource: String,
        /// Context to assume, as JSON (e.g. `{"transport":"mcp"}`).
        #[arg(long)]
        context: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

fn authz() -> anyhow::Result<Authz> {
    Authz::new().map_err(|e| anyhow::anyhow!("the built-in policies do not load: {e}"))
}

fn print_diagnostics(file: &Path, diags: &[crate::authz::cedar::Diagnostic]) {
    for d in diags {
        eprintln!(
            "{}:{}:{}: {}{}",
            file.display(),
            d.line.unwrap_or(0),
            d.column.unwrap_or(0),
            d.policy_id
                .as_ref()
                .map(|p| format!("[{p}] "))
                .unwrap_or_default(),
            d.message
        );
        if let Some(s) = &d.snippet {
            eprintln!("    {s}");
        }
    }
}

/// Runs a policy command.
pub async fn run_policy(cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::Validate {
            file,
            allow_permits,
        } => {
            let src = std::fs::read_to_string(&file)
                .with_context(|| format!("could not read {}", file.display()))?;
            match authz()?.cedar().compile_tenant(&src, 0, allow_permits) {
                Ok(set) => {
                    println!("{}: ok, {} policies", file.display(), set.tenant_policies);
                    Ok(())
                }
                Err(e) => {
                    print_diagnostics(&file, &e.0);
                    bail!("{} problem(s) in {}", e.0.len(), file.display())
                }
            }
        }
        PolicyCommand::Test { dir } => {
            let reports = fixtures::run_dir(&authz()?, &dir);
            if reports.is_empty() {
                bail!("no policy.cedar with fixtures.json under {}", dir.display());
            }
            let (mut passed, mut failed) = (0, 0);
            for report in reports {
                match report.results {
                    Ok(results) => {
                        for r in results {
                            if r.passed {
                                passed += 1;
                                println!("PASS {} / {}", report.dir, r.name);
                            } else {
                                failed += 1;
                                println!(
                                    "FAIL {} / {}: {}",
                                    report.dir,
                                    r.name,
                                    r.failure.unwrap_or_default()
                                );
                            }
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        println!("FAIL {}: {e}", report.dir);
                    }
                }
            }
            println!("{passed} passed, {failed} failed");
            if failed > 0 {
                bail!("{failed} fixture(s) failed");
            }
            Ok(())
        }
        PolicyCommand::Push {
            workspace,
            file,
            shadow,
            server,
        } => {
            let src = std::fs::read_to_string(&file)
                .with_context(|| format!("could not read {}", file.display()))?;
            let url = server.url(&format!(
                "/workspaces/{workspace}/policies?mode={}",
                if shadow { "shadow" } else { "enforce" }
            ));
            let response = reqwest::Client::new()
                .put(url)
                .bearer_auth(&server.token)
                .header("content-type", "text/plain")
                .body(src)
                .send()
                .await
                .context("the server did not answer")?;
            print_response(response).await
        }
    }
}

/// Runs an authz command.
pub async fn run_authz(cmd: AuthzCommand) -> anyhow::Result<()> {
    match cmd {
        AuthzCommand::Check {
            workspace,
            principal,
            action,
            resource,
            context,
            server,
        } => {
            let context: serde_json::Value = match context {
                Some(c) => serde_json::from_str(&c).context("--context is not JSON")?,
                None => serde_json::json!({}),
            };
            let url = server.url(&format!("/workspaces/{workspace}/authorize"));
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth(&server.token)
                .json(&serde_json::json!({
                    "principal": principal, "action": action, "resource": resource, "context": context,
                }))
                .send()
                .await
                .context("the server did not answer")?;
            print_response(response).await
        }
    }
}

/// Prints a server's answer (pretty JSON when it is JSON); an error status fails.
pub async fn print_response(response: reqwest::Response) -> anyhow::Result<()> {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let pretty = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(body);
    println!("{pretty}");
    if !status.is_success() {
        bail!("the server answered {status}");
    }
    Ok(())
}
