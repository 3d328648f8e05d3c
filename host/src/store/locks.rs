//! File and folder locks. Acquisition is atomic without a held transaction: the unique
//! (workspace, path) index settles two acquirers of one path, and for overlapping paths
//! (a folder and a file below it) each acquirer inserts first and then looks for an older
//! overlapping lock — exactly one of two racing acquirers sees the other as older and backs
//! off, on SQLite and PostgreSQL alike.

use sqlx::Row;
use sqlx::any::{AnyExecutor, AnyRow};

/// A lock.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lock {
    /// `lck_…`, also the `Lock-Token` its holder passes.
    pub lock_id: String,
    /// The workspace.
    pub workspace_id: String,
    /// The locked path (a folder when it ends in `/`).
    pub path: String,
    /// Who holds it.
    pub holder_id: String,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds.
    pub expires_at_ms: i64,
}

fn from_row(r: &AnyRow) -> Result<Lock, sqlx::Error> {
    Ok(Lock {
        lock_id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        path: r.try_get("path")?,
        holder_id: r.try_get("holder_id")?,
        created_at_ms: r.try_get("created_at_ms")?,
        expires_at_ms: r.try_get("expires_at_ms")?,
    })
}

const COLUMNS: &str = "id, workspace_id, path, holder_id, created_at_ms, expires_at_ms";

/// Removes the expired lock on exactly this path, if any.
pub async fn purge_expired_at<'c>(
    db: impl AnyExecutor<'c>,
    ws: &str,
    path: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM file_locks WHERE workspace_id = $1 AND path = $2 AND expires_at_ms <= $3",
    )
    .bind(ws)
    .bind(path)
    .bind(now_ms)
    .execute(db)
    .await?;
    Ok(())
}

/// Inserts the lock unless the exact path is locked; true when inserted.
pub async fn insert<'c>(db: impl AnyExecutor<'c>, l: &Lock) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO file_locks (id, workspace_id, path, holder_id, created_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, path) DO NOTHING",
    )
    .bind(&l.lock_id)
    .bind(&l.workspace_id)
    .bind(&l.path)
    .bind(&l.holder_id)
    .bind(l.created_at_ms)
    .bind(l.expires_at_ms)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The live locks on `path` itself or on a folder above it (what a write of `path` must
/// respect).
pub async fn covering<'c>(
    db: impl AnyExecutor<'c>,
    ws: &str,
    path: &str,
    now_ms: i64,
) -> Result<Vec<Lock>, sqlx::Error> {
    let mut paths: Vec<&str> = path
        .match_indices('/')
        .map(|(i, _)| &path[..=i])
        .filter(|a| *a != path)
        .collect();
    paths.push(path);
    let placeholders: Vec<String> = (0..paths.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM file_locks WHERE workspace_id = $1 AND expires_at_ms > $2 \
         AND path IN ({}) ORDER BY created_at_ms, id",
        placeholders.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ws).bind(now_ms);
    for p in &paths {
        q = q.bind(*p);
    }
    q.fetch_all(db).await?.iter().map(from_row).collect()
}

/// The live locks strictly below a folder.
pub async fn below<'c>(
    db: impl AnyExecutor<'c>,
    ws: &str,
    folder: &str,
    now_ms: i64,
) -> Result<Vec<Lock>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM file_locks WHERE workspace_id = $1 AND expires_at_ms > $2 \
         AND path > $3 AND path < $4 ORDER BY created_at_ms, id"
    )))
    .bind(ws)
    .bind(now_ms)
    .bind(folder)
    .bind(format!("{folder}\u{10FFFF}"))
    .fetch_all(db)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// One lock by id.
pub async fn get<'c>(
    db: impl AnyExecutor<'c>,
    ws: &str,
    id: &str,
) -> Result<Option<Lock>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM file_locks WHERE workspace_id = $1 AND id = $2"
    )))
    .bind(ws)
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(|r| from_row(&r))
    .transpose()
}

/// A workspace's live locks.
pub async fn list<'c>(
    db: impl AnyExecutor<'c>,
    ws: &str,
    now_ms: i64,
) -> Result<Vec<Lock>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM file_locks WHERE workspace_id = $1 AND expires_at_ms > $2 ORDER BY path"
    )))
    .bind(ws)
    .bind(now_ms)
    .fetch_all(db)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Extends a live lock; false when it has expired or is gone.
pub async fn renew<'c>(
    db: impl AnyExecutor<'c>,
    ws: &str,
    id: &str,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE file_locks SET expires_at_ms = $4 WHERE workspace_id = $1 AND id = $2 AND expires_at_ms > $3",
    )
    .bind(ws)
    .bind(id)
    .bind(now_ms)
    .bind(expires_at_ms)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a lock; true when it existed.
pub async fn delete<'c>(db: impl AnyExecutor<'c>, ws: &str, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM file_locks WHERE workspace_id = $1 AND id = $2")
        .bind(ws)
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}
