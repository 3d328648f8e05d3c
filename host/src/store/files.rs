//! File metadata. Blobs live on disk (`files::blobs`); a row points at the blob of the current
//! version. Writers never hold a transaction open: each change is one conditional statement,
//! so concurrent writers on SQLite and PostgreSQL alike serialize cleanly and the loser retries.

use sqlx::any::AnyExecutor;
use sqlx::{AssertSqlSafe, Row};

use super::columns::Columns;
use crate::identity::{PrincipalId, WorkspaceId};

/// The metadata of one file version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileMeta {
    /// The workspace.
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    /// The normalised path.
    pub path: String,
    /// The blob holding the bytes.
    #[serde(skip)]
    pub blob_id: String,
    /// Bytes.
    pub size: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// The content type given at upload.
    pub content_type: String,
    /// The entity tag (changes with every version).
    pub etag: String,
    /// Labels policies can speak of (`confidential`).
    pub tags: Vec<String>,
    /// Who last wrote it.
    pub updated_by: PrincipalId,
    /// Unix seconds.
    pub updated_at: i64,
}

pub(super) const COLUMNS: &str =
    "workspace_id, path, blob_id, size, sha256, content_type, etag, updated_by, updated_at, tags";

pub(super) fn from_row(r: &impl Columns) -> Result<FileMeta, sqlx::Error> {
    Ok(FileMeta {
        workspace_id: WorkspaceId(r.text("workspace_id")?),
        path: r.text("path")?,
        blob_id: r.text("blob_id")?,
        size: r.int("size")?,
        sha256: r.text("sha256")?,
        content_type: r.text("content_type")?,
        etag: r.text("etag")?,
        tags: r
            .text("tags")?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        updated_by: PrincipalId(r.text("updated_by")?),
        updated_at: r.int("updated_at")?,
    })
}

/// One file's metadata.
pub async fn get<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    path: &str,
) -> Result<Option<FileMeta>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM files WHERE workspace_id = $1 AND path = $2"
    )))
    .bind(ws.as_str())
    .bind(path)
    .fetch_optional(db)
    .await?
    .map(|r| from_row(&r))
    .transpose()
}

/// Inserts a new file unless the path is taken; true when inserted.
pub async fn insert_new<'c>(db: impl AnyExecutor<'c>, f: &FileMeta) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO files (workspace_id, path, blob_id, size, sha256, content_type, etag, \
         created_by, updated_by, created_at, updated_at, tags) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $9, $10) \
         ON CONFLICT (workspace_id, path) DO NOTHING",
    )
    .bind(f.workspace_id.as_str())
    .bind(&f.path)
    .bind(&f.blob_id)
    .bind(f.size)
    .bind(&f.sha256)
    .bind(&f.content_type)
    .bind(&f.etag)
    .bind(f.updated_by.as_str())
    .bind(f.updated_at)
    .bind(f.tags.join(" "))
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the version whose blob is `previous_blob`; false when another writer got there
/// first (compare-and-swap on the blob id, which is unique per version).
pub async fn replace_if_current<'c>(
    db: impl AnyExecutor<'c>,
    f: &FileMeta,
    previous_blob: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE files SET blob_id = $3, size = $4, sha256 = $5, content_type = $6, etag = $7, \
         updated_by = $8, updated_at = $9, tags = $11 \
         WHERE workspace_id = $1 AND path = $2 AND blob_id = $10",
    )
    .bind(f.workspace_id.as_str())
    .bind(&f.path)
    .bind(&f.blob_id)
    .bind(f.size)
    .bind(&f.sha256)
    .bind(&f.content_type)
    .bind(&f.etag)
    .bind(f.updated_by.as_str())
    .bind(f.updated_at)
    .bind(previous_blob)
    .bind(f.tags.join(" "))
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a file (only the version with `etag`, when given); returns its blob id and size.
pub async fn delete<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    path: &str,
    etag: Option<&str>,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query(
        "DELETE FROM files WHERE workspace_id = $1 AND path = $2 AND etag = COALESCE($3, etag) \
         RETURNING blob_id, size",
    )
    .bind(ws.as_str())
    .bind(path)
    .bind(etag)
    .fetch_optional(db)
    .await?
    .map(|r| Ok((r.try_get("blob_id")?, r.try_get("size")?)))
    .transpose()
}

/// Renames `from` to `to`; false when `from` is gone. A taken `to` is a unique violation.
pub async fn rename<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    from: &str,
    to: &str,
    by: &PrincipalId,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE files SET path = $3, updated_by = $4, updated_at = $5 \
         WHERE workspace_id = $1 AND path = $2",
    )
    .bind(ws.as_str())
    .bind(from)
    .bind(to)
    .bind(by.as_str())
    .bind(at)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Files whose path starts with `prefix`, in path order, at most `limit`.
pub async fn list<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    prefix: &str,
    limit: i64,
) -> Result<Vec<FileMeta>, sqlx::Error> {
    // A range scan instead of LIKE: no wildcard escaping, and it uses the primary key.
    // U+10FFFF sorts after every other character, so [prefix, prefix+U+10FFFF) is the prefix.
    let upper = format!("{prefix}\u{10FFFF}");
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM files WHERE workspace_id = $1 AND path >= $2 AND path < $3 \
         ORDER BY path LIMIT $4"
    )))
    .bind(ws.as_str())
    .bind(prefix)
    .bind(upper)
    .bind(limit)
    .fetch_all(db)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// The blob ids of every file in a workspace (to remove them with the workspace).
pub async fn blob_ids<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query("SELECT blob_id FROM files WHERE workspace_id = $1")
        .bind(ws.as_str())
        .fetch_all(db)
        .await?
        .iter()
        .map(|r| r.try_get("blob_id"))
        .collect()
}
