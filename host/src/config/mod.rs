//! Settings from flags and environment, with defaults that work with no setup at all.

use std::path::PathBuf;

use clap::Args;

/// The default database: an embedded SQLite file beside the blobs.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./warrant-data/warrant.db";
/// The default data folder.
pub const DEFAULT_DATA_DIR: &str = "./warrant-data";

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://…` (default) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

/// `warrant serve` settings.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port (the bound address is printed).
    #[arg(long, env = "WARRANT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Folder for file blobs.
    #[arg(long, env = "WARRANT_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// The externally visible base URL (issuer and resource URLs); default `http://<listen>`.
    #[arg(long, env = "WARRANT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The largest file body accepted, in bytes (default 100 MiB).
    #[arg(long, env = "WARRANT_MAX_UPLOAD_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// How long the decision log keeps decisions, in days.
    #[arg(long, env = "WARRANT_DECISION_RETENTION_DAYS", default_value_t = 30)]
    pub decision_retention_days: i64,
    /// Do not create an owner on an empty database.
    #[arg(long, env = "WARRANT_NO_BOOTSTRAP")]
    pub no_bootstrap: bool,
}
