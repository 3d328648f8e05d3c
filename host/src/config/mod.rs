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
    /// Requests per minute per client address (0: off).
    #[arg(long, env = "WARRANT_RATE_LIMIT_PER_IP", default_value_t = 12_000)]
    pub rate_limit_per_ip: u32,
    /// Requests per minute per credential, unless the token or org says otherwise (0: off).
    #[arg(
        long,
        env = "WARRANT_RATE_LIMIT_PER_CREDENTIAL",
        default_value_t = 6_000
    )]
    pub rate_limit_per_credential: u32,
    /// Requests per minute per address to sensitive endpoints: token minting, sign-in (0: off).
    #[arg(long, env = "WARRANT_RATE_LIMIT_SENSITIVE", default_value_t = 60)]
    pub rate_limit_sensitive: u32,
    /// Failed authentications per minute per address before callers must wait (0: off).
    #[arg(long, env = "WARRANT_RATE_LIMIT_FAILED_AUTH", default_value_t = 60)]
    pub rate_limit_failed_auth: u32,
    /// Networks, addresses or host names URL imports may fetch although they are not public
    /// (repeat or separate with commas): `127.0.0.1/32`, `10.0.0.0/8`, `files.intranet`.
    #[arg(long, env = "WARRANT_IMPORT_ALLOW", value_delimiter = ',')]
    pub import_allow: Vec<String>,
    /// The time cap of one URL import, from the request to the last byte (`30s`, `2m`).
    #[arg(long, env = "WARRANT_IMPORT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub import_timeout: std::time::Duration,
    /// The storage quota of an organisation that sets none, in bytes (default 50 GB).
    #[arg(long, env = "WARRANT_STORAGE_QUOTA_BYTES", default_value_t = crate::service::DEFAULT_STORAGE_QUOTA, value_parser = clap::value_parser!(i64).range(0..))]
    pub storage_quota_bytes: i64,
    /// The largest quota an organisation's owner may set, in bytes (default: the default quota,
    /// so owners may lower their quota but not raise it).
    #[arg(long, env = "WARRANT_STORAGE_QUOTA_MAX_BYTES", value_parser = clap::value_parser!(i64).range(0..))]
    pub storage_quota_max_bytes: Option<i64>,
    /// The linear memory cap of one plugin evaluation, in MiB.
    #[arg(long, env = "WARRANT_PLUGIN_MEMORY_MIB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub plugin_memory_mib: u64,
    /// The CPU time one plugin evaluation may use, in milliseconds, before it is stopped (deny);
    /// a thread starved of CPU gets 20 times this on the wall clock.
    #[arg(long, env = "WARRANT_PLUGIN_DEADLINE_MS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub plugin_deadline_ms: u64,
    /// The life of an OAuth access token, in seconds (1–900).
    #[arg(long, env = "WARRANT_OAUTH_ACCESS_TOKEN_TTL", default_value_t = 900, value_parser = clap::value_parser!(i64).range(1..=900))]
    pub oauth_access_token_ttl: i64,
    /// Browser origins allowed to call the MCP endpoints besides the public URL's own
    /// (comma-separated, e.g. `https://app.example.com`); requests without `Origin` pass.
    #[arg(long, env = "WARRANT_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub mcp_allowed_origins: Vec<String>,
    /// Memory for small files' bytes, kept after their first read so that reading them again
    /// touches no disk, in bytes (default 32 MiB; 0: off). Files over 64 KiB are never kept.
    #[arg(long, env = "WARRANT_BLOB_CACHE_BYTES", default_value_t = crate::service::DEFAULT_BLOB_CACHE_BYTES)]
    pub blob_cache_bytes: usize,
    /// Do not create an owner on an empty database.
    #[arg(long, env = "WARRANT_NO_BOOTSTRAP")]
    pub no_bootstrap: bool,
}
