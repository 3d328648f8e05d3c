//! Storage with sqlx: SQLite by default (WAL, foreign keys on), PostgreSQL for several replicas.
//! The SQL is portable, so one set of repositories (one module per table group) serves both
//! through sqlx's `Any` driver. Repository functions take any executor: the pool, or a
//! transaction when several writes must land together.

pub mod audit;
pub mod changes;
mod columns;
pub mod decisions;
pub mod files;
mod inline;
pub mod invitations;
pub mod locks;
pub mod oauth;
pub mod orgs;
pub mod plugins;
pub mod policies;
pub mod principals;
pub mod quotas;
mod remembered;
pub mod tokens;
pub mod verdicts;
pub mod workspaces;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// The seconds since the Unix epoch: every stored time uses this.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The milliseconds since the Unix epoch (decision log times).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// For several replicas.
    Postgres,
}

/// The connection pool and the backend it talks to.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The hot read's inline path, for a SQLite file.
    inline: Option<Arc<inline::InlineReader>>,
    /// The decision log's own write connection, for a SQLite file.
    writer: Option<Arc<inline::InlineWriter>>,
    /// The hot read remembered until the next commit, for a SQLite file
    /// ([`remembered`]).
    access_reads: Option<Arc<remembered::Remembered<Arc<workspaces::WithRoleAndFile>>>>,
    /// PostgreSQL's URL, for the connection that listens for changes ([`changes`]).
    postgres_url: Option<Arc<str>>,
}

/// The settings of every read-write SQLite connection (sqlx's pool and the decision log's own,
/// [`inline::InlineWriter`]). WAL lets readers run beside the one writer; NORMAL is durable in
/// WAL mode across application crashes. sqlx turns foreign keys on already; we state it so
/// the guarantee does not depend on a default. A writer waits up to 10 s for another. Temporary
/// files in memory: a statement that changes many rows inside a transaction keeps a statement
/// journal, which SQLite spills to a temp file past 64 KiB — two pwrite calls per page (the
/// decision log's multi-row INSERTs through sqlx made ~2 per logged decision).
const SQLITE_SETTINGS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA temp_store = MEMORY;";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`), creating a SQLite file and its folder
    /// when missing, and runs the migrations.
    pub async fn open(url: &str) -> crate::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(crate::Error::BadRequest(format!(
                "unsupported database URL (use sqlite:// or postgres://): {}",
                redact_url(url)
            )));
        };
        let postgres_url = (backend == Backend::Postgres).then(|| Arc::from(url));
        let (url, file) = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => (url.to_string(), None),
        };
        // Every pool connection to a SQLite file is watched for commits; the decision log's own
        // connection is not (it writes nothing a remembered read holds).
        let watch = file.as_ref().and_then(|_| remembered::CommitWatch::new());
        let watch_sql: Option<Arc<str>> = watch.map(|w| Arc::from(w.sql()));
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings a connection every time it is taken from the pool. For SQLite that is
            // a round trip to the connection's worker thread (two context switches) per query,
            // to test an in-process connection that cannot have been dropped by a server.
            // PostgreSQL connections can go stale across a restart: keep the test there.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                let watch_sql = watch_sql.clone();
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(SQLITE_SETTINGS).await?;
                    }
                    if let Some(sql) = watch_sql {
                        conn.execute(sqlx::AssertSqlSafe(&*sql)).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| crate::Error::Internal(format!("migrations failed: {e}")))?;
        Ok(Store {
            pool,
            backend,
            writer: file.clone().map(|f| Arc::new(inline::InlineWriter::new(f))),
            access_reads: watch.map(|w| Arc::new(remembered::Remembered::new(w))),
            inline: file.map(|f| Arc::new(inline::InlineReader::new(f))),
            postgres_url,
        })
    }

    /// Runs a one-row read inline on the calling thread when the database is a SQLite file
    /// (see [`inline`]); None when the caller must run it through the pool instead.
    pub(crate) fn read_inline<T>(
        &self,
        sql: &str,
        params: &[(&str, &str)],
        map: impl FnOnce(&inline::InlineRow<'_>) -> Result<T, sqlx::Error>,
    ) -> Option<Result<Option<T>, sqlx::Error>> {
        self.inline.as_ref()?.query_row(sql, params, map)
    }

    /// The workspace/role/file reads remembered until the next commit, for a SQLite file.
    pub(crate) fn access_reads(
        &self,
    ) -> Option<&remembered::Remembered<Arc<workspaces::WithRoleAndFile>>> {
        self.access_reads.as_deref()
    }

    /// Runs `work` in one transaction on the SQLite file's own write connection, off the async
    /// runtime (see [`inline`]); None when the database is not a SQLite file.
    pub(crate) async fn write_inline<T: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    ) -> Option<Result<T, sqlx::Error>> {
        let writer = self.writer.clone()?;
        Some(
            match tokio::task::spawn_blocking(move || writer.transaction(work)).await {
                Ok(outcome) => outcome,
                Err(e) => Err(sqlx::Error::Protocol(format!("inline SQLite write: {e}"))),
            },
        )
    }

    /// The pool, an executor for single statements.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when the database answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Makes this process the one server of a SQLite file until the returned lock is dropped; None
/// for PostgreSQL and in-memory databases. A second server on the same file would neither see
/// the first one's commits (it remembers reads until its own next commit, [`remembered`]) nor
/// hear its revocations ([`changes`] is PostgreSQL's), so it is refused with a clear error.
/// The CLI's other commands (tokens, keys) may still open the file beside the server.
pub fn claim_sqlite_file(url: &str) -> crate::Result<Option<std::fs::File>> {
    if !url.starts_with("sqlite:") {
        return Ok(None);
    }
    let Some(file) = prepare_sqlite_url(url)?.1 else {
        return Ok(None);
    };
    // Beside the file, as SQLite's own -wal and -shm: a lock on the database file itself
    // would be a second open handle to it, whose closing drops SQLite's own POSIX locks.
    let mut lock_path = file.into_os_string();
    lock_path.push("-serve.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(std::fs::TryLockError::WouldBlock) => Err(crate::Error::Conflict(format!(
            "another warrant server is serving this SQLite file (it holds {}); a SQLite file \
             is served by one process — use PostgreSQL for several replicas",
            std::path::Path::new(&lock_path).display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Creates the folder of a SQLite file and asks sqlx to create the file itself; gives back the
/// URL for sqlx and the file's path (None for an in-memory database).
fn prepare_sqlite_url(url: &str) -> crate::Result<(String, Option<PathBuf>)> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or(rest);
    if path != ":memory:"
        && !path.is_empty()
        && let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    let in_memory = path.is_empty() || path == ":memory:" || url.contains("mode=memory");
    let file = (!in_memory).then(|| PathBuf::from(path));
    let url = if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    };
    Ok((url, file))
}

/// A database URL with any password replaced, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// True when a database error is a unique-constraint violation (the same on both backends).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
