//! Storage quotas: a per-organisation counter of stored bytes, changed in the same transaction
//! as the file metadata it accounts for.
//!
//! Why a counter and not a `SUM` over `files`: the check must be atomic with the change. A
//! `SUM` in the writer's statement is atomic on SQLite (one writer at a time) but not on
//! PostgreSQL under READ COMMITTED, where two writers each see the other's row as absent and
//! both pass. The conditional `UPDATE orgs … WHERE storage_used + delta <= quota` takes the
//! organisation's row lock, and PostgreSQL re-checks the condition against the latest row
//! after the lock is granted, so concurrent writers are counted one after the other on both
//! backends, at O(1) per write. Every writer, deleter and workspace deletion takes that row
//! lock first (the same order everywhere, so they cannot deadlock) and commits the counter
//! and the metadata together, so the counter cannot drift from the files.

use sqlx::Row;
use sqlx::any::AnyExecutor;

use crate::identity::{OrgId, WorkspaceId};

/// An organisation's storage: bytes in use and its own quota (None: the server default).
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Bytes stored.
    pub used: i64,
    /// The quota set for this organisation, if any.
    pub quota: Option<i64>,
}

/// The storage of `org`, None when the organisation does not exist.
pub async fn usage<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
) -> Result<Option<Usage>, sqlx::Error> {
    let row = sqlx::query("SELECT storage_used, storage_quota FROM orgs WHERE id = $1")
        .bind(org.as_str())
        .fetch_optional(db)
        .await?;
    row.map(|r| {
        Ok(Usage {
            used: r.try_get("storage_used")?,
            quota: r.try_get("storage_quota")?,
        })
    })
    .transpose()
}

/// Adds `delta` bytes (negative to release) unless that would pass the quota; growth is
/// refused past the quota, shrinking never is. Takes the organisation's row lock until the
/// transaction ends. Returns false when refused.
pub async fn reserve<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
    delta: i64,
    default_quota: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE orgs SET storage_used = storage_used + $2 \
         WHERE id = $1 AND ($2 <= 0 OR storage_used + $2 <= COALESCE(storage_quota, $3))",
    )
    .bind(org.as_str())
    .bind(delta)
    .bind(default_quota)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes the organisation's row lock (before a delete, so lock order matches writers').
pub async fn lock<'c>(db: impl AnyExecutor<'c>, org: &OrgId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orgs SET storage_used = storage_used WHERE id = $1")
        .bind(org.as_str())
        .execute(db)
        .await?;
    Ok(())
}

/// Releases the bytes of every file in a workspace about to be deleted (after [`lock`]).
pub async fn release_workspace<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
    ws: &WorkspaceId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orgs SET storage_used = storage_used - \
         (SELECT COALESCE(SUM(size), 0) FROM files WHERE workspace_id = $2) WHERE id = $1",
    )
    .bind(org.as_str())
    .bind(ws.as_str())
    .execute(db)
    .await?;
    Ok(())
}

/// Sets an organisation's own quota (None: back to the server default).
pub async fn set_quota<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
    quota: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orgs SET storage_quota = $2 WHERE id = $1")
        .bind(org.as_str())
        .bind(quota)
        .execute(db)
        .await?;
    Ok(())
}
