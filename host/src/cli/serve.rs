//! `warrant serve`: open, bootstrap an empty database, listen, shut down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::api::{self, AppContext, AppState};
use crate::config::ServeConfig;
use crate::service::{Settings, Warrant};

/// Structured logs on stderr; JSON when `WARRANT_LOG_FORMAT=json`; level from `RUST_LOG`.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info,rmcp=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let json = std::env::var("WARRANT_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // A second initialisation (in tests) is harmless: keep the first.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the server until SIGTERM or SIGINT; in-flight requests finish first.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let allow = crate::files::import::AllowList::parse(&config.import_allow)
        .map_err(|e| anyhow::anyhow!("--import-allow: {e}"))?;
    if !allow.is_empty() {
        tracing::warn!(allow = ?config.import_allow, "URL imports may fetch these non-public networks and hosts");
    }
    let settings = Settings {
        max_upload_bytes: config.max_upload_bytes,
        decision_retention_days: config.decision_retention_days,
        rate: crate::ratelimit::RateConfig {
            per_ip: config.rate_limit_per_ip,
            per_credential: config.rate_limit_per_credential,
            sensitive_per_ip: config.rate_limit_sensitive,
            failed_auth_per_ip: config.rate_limit_failed_auth,
        },
        import: crate::files::import::ImportSettings {
            allow,
            timeout: config.import_timeout,
            ..Default::default()
        },
        storage_quota_default: config.storage_quota_bytes,
        storage_quota_max: config
            .storage_quota_max_bytes
            .unwrap_or(config.storage_quota_bytes)
            .max(config.storage_quota_bytes),
        plugins: crate::authz::plugins::PluginSettings {
            memory_bytes: usize::try_from(config.plugin_memory_mib << 20).unwrap_or(usize::MAX),
            deadline: std::time::Duration::from_millis(config.plugin_deadline_ms),
            ..Default::default()
        },
        oauth_access_token_ttl: config.oauth_access_token_ttl,
        blob_cache_bytes: config.blob_cache_bytes,
        ..Settings::default()
    };
    // Held until the server stops.
    let _one_server = crate::store::claim_sqlite_file(&config.database.database_url)
        .context("could not start the server")?;
    let warrant = Warrant::open(&config.database.database_url, &config.data_dir, settings)
        .await
        .with_context(|| {
            format!(
                "could not open the database {}",
                crate::store::redact_url(&config.database.database_url)
            )
        })?;
    warrant.prepare_storage().await.with_context(|| {
        format!(
            "could not prepare the data folder {}",
            config.data_dir.display()
        )
    })?;
    if !config.no_bootstrap && warrant.needs_bootstrap().await? {
        let output = warrant
            .bootstrap("owner@localhost", None, "Default organisation")
            .await
            .context("could not bootstrap the empty database")?;
        super::print_json_line(&output)?;
        eprintln!(
            "warrant: created the first organisation and its owner; the owner token above is shown only once"
        );
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("could not listen on {}", config.listen))?;
    let bound = listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"))
        .trim_end_matches('/')
        .to_string();
    warrant.set_public_url(&public_url);
    let warrant = Arc::new(warrant);
    warrant
        .hear_other_replicas()
        .await
        .context("could not listen for the other replicas' changes")?;
    let state = AppState::new(AppContext {
        warrant: warrant.clone(),
        public_url: public_url.into(),
        mcp_allowed_origins: config.mcp_allowed_origins.clone().into(),
    });
    println!("warrant listening on http://{bound}");
    tracing::info!(%bound, "listening");
    // Small request/response exchanges (REST and MCP alike) must not wait for Nagle.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        api::app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("the server failed")?;
    tracing::info!("shut down; flushing the decision log and closing the database");
    warrant.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
    crate::mcp::shutdown();
}
