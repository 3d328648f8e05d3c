//! The command line: `serve`, `bootstrap`, and operator helpers.

mod plugin;
mod policy;
mod serve;

pub use serve::init_logging;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{DEFAULT_DATA_DIR, DatabaseArgs, ServeConfig};
use crate::service::{Settings, Warrant};

/// Warrant: every action needs a warrant.
#[derive(Debug, Parser)]
#[command(name = "warrant", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeConfig),
    /// Create the first organisation, its owner and an owner token on an empty database.
    Bootstrap {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The owner's e-mail address.
        #[arg(long)]
        email: String,
        /// A file holding the owner's password (first line), for signing in later.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// The first organisation's name.
        #[arg(long, default_value = "Default organisation")]
        org_name: String,
    },
    /// Operator helpers for personal access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Validate, test and push Cedar policy sets.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Push Wasm policy plugins and attach them to workspaces.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Ask a running server what it would decide (what-if).
    #[command(subcommand)]
    Authz(policy::AuthzCommand),
    /// OAuth signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a new signing key; it signs new tokens, and the old public keys stay in the JWKS
    /// until every token they signed has expired. Prints `{"kid"}`.
    Rotate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Mint a personal access token for a user (prints `{"id","token"}` once).
    Issue {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// What the token is for.
        #[arg(long)]
        name: String,
        /// Scopes, separated by spaces or commas.
        #[arg(long)]
        scopes: String,
        /// Workspace ids to limit the token to, separated by spaces or commas.
        #[arg(long)]
        workspaces: Option<String>,
        /// Lifetime in days (default: the organisation's maximum).
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
}

fn split_list(s: &str) -> Vec<String> {
    s.split([' ', ','])
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses the command line and runs the command.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    serve::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(run(cli.command))
}

async fn open_admin(database: &DatabaseArgs) -> anyhow::Result<Warrant> {
    Warrant::open(
        &database.database_url,
        std::path::Path::new(DEFAULT_DATA_DIR),
        Settings::default(),
    )
    .await
    .with_context(|| {
        format!(
            "could not open the database {}",
            crate::store::redact_url(&database.database_url)
        )
    })
}

fn print_json_line(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(config) => serve::serve(config).await,
        Command::Policy(cmd) => policy::run_policy(cmd).await,
        Command::Plugin(cmd) => plugin::run_plugin(cmd).await,
        Command::Authz(cmd) => policy::run_authz(cmd).await,
        Command::Keys(KeysCommand::Rotate { database }) => {
            let warrant = open_admin(&database).await?;
            let result = warrant.rotate_signing_key().await;
            warrant.store().close().await;
            let kid = result.context("could not rotate the signing key")?;
            print_json_line(&serde_json::json!({ "kid": kid }))
        }
        Command::Bootstrap {
            database,
            email,
            password_file,
            org_name,
        } => {
            let password = match password_file {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("could not read {}", path.display()))?
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                ),
                None => None,
            };
            let warrant = open_admin(&database).await?;
            let result = warrant.bootstrap(&email, password, &org_name).await;
            warrant.store().close().await;
            let output = result.context("bootstrap failed")?;
            print_json_line(&output)
        }
        Command::Token(TokenCommand::Issue {
            database,
            email,
            name,
            scopes,
            workspaces,
            expires_in_days,
        }) => {
            let warrant = open_admin(&database).await?;
            let result = warrant
                .issue_user_token(
                    &email,
                    &name,
                    &split_list(&scopes),
                    workspaces.as_deref().map(split_list),
                    expires_in_days,
                )
                .await;
            warrant.store().close().await;
            print_json_line(&result.context("could not issue the token")?)
        }
    }
}
