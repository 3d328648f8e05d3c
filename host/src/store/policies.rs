//! Tenant policy versions: immutable rows; the workspace row points at the versions in force.

use sqlx::Row;
use sqlx::any::{AnyExecutor, AnyRow};

use crate::identity::WorkspaceId;

/// One stored version of a workspace's policy set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyVersion {
    /// 1, 2, 3, … per workspace.
    pub version: i64,
    /// The Cedar text.
    #[serde(skip)]
    pub source: String,
    /// Who stored it.
    pub author: String,
    /// Unix seconds.
    #[serde(skip)]
    pub created_at: i64,
    /// Why (e.g. "rollback to v3").
    pub note: Option<String>,
}

fn from_row(r: &AnyRow) -> Result<PolicyVersion, sqlx::Error> {
    Ok(PolicyVersion {
        version: r.try_get("version")?,
        source: r.try_get("source")?,
        author: r.try_get("author")?,
        created_at: r.try_get("created_at")?,
        note: r.try_get("note")?,
    })
}

/// Stores `source` as the workspace's next version number and returns that number. One
/// statement, so the number is computed and taken atomically (a concurrent writer that still
/// collides fails on the primary key and retries).
pub async fn insert_next<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    source: &str,
    author: &str,
    note: Option<&str>,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO policy_versions (workspace_id, version, source, author, created_at, note) \
         SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5 FROM policy_versions \
         WHERE workspace_id = $1 RETURNING version",
    )
    .bind(ws.as_str())
    .bind(source)
    .bind(author)
    .bind(super::now())
    .bind(note)
    .fetch_one(db)
    .await?;
    row.try_get("version")
}

/// One version.
pub async fn get<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    version: i64,
) -> Result<Option<PolicyVersion>, sqlx::Error> {
    sqlx::query("SELECT version, source, author, created_at, note FROM policy_versions WHERE workspace_id = $1 AND version = $2")
        .bind(ws.as_str())
        .bind(version)
        .fetch_optional(db)
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

/// Every version, newest first.
pub async fn list<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
) -> Result<Vec<PolicyVersion>, sqlx::Error> {
    sqlx::query("SELECT version, source, author, created_at, note FROM policy_versions WHERE workspace_id = $1 ORDER BY version DESC")
        .bind(ws.as_str())
        .fetch_all(db)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Sets the enforced version (None: base role policies only).
pub async fn set_enforced<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    version: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE workspaces SET policy_version = $2 WHERE id = $1")
        .bind(ws.as_str())
        .bind(version)
        .execute(db)
        .await?;
    Ok(())
}

/// Sets the shadow candidate (None: no candidate).
pub async fn set_shadow<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    version: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE workspaces SET shadow_version = $2 WHERE id = $1")
        .bind(ws.as_str())
        .bind(version)
        .execute(db)
        .await?;
    Ok(())
}
