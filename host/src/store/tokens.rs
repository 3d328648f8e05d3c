//! Personal access tokens: stored by hash, never by secret.

use sqlx::any::{AnyExecutor, AnyRow};
use sqlx::{AssertSqlSafe, Row};

use crate::identity::{Principal, PrincipalId, TokenId, WorkspaceId};

/// A stored token, without its secret.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// `tok_…`
    pub id: TokenId,
    /// Whose token it is.
    pub principal_id: PrincipalId,
    /// Who minted it (the principal itself, or an admin of an agent).
    pub created_by: PrincipalId,
    /// What it is for.
    pub name: String,
    /// Space-separated scope names.
    pub scopes: String,
    /// The workspaces it is limited to, if any.
    pub workspaces: Option<Vec<WorkspaceId>>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; always set.
    pub expires_at: i64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// Unix seconds of the last use (written at most once a minute).
    pub last_used_at: Option<i64>,
    /// The address of the last use.
    pub last_used_addr: Option<String>,
    /// Requests per minute allowed with this token (None: the org's or the server's default).
    pub rate_limit_per_minute: Option<i64>,
}

const COLUMNS: &str = "t.id, t.principal_id, t.created_by, t.name, t.scopes, t.workspaces, \
    t.created_at, t.expires_at, t.revoked_at, t.last_used_at, t.last_used_addr, t.rate_limit_per_minute";

fn from_row(r: &AnyRow) -> Result<TokenRecord, sqlx::Error> {
    Ok(TokenRecord {
        id: TokenId(r.try_get("id")?),
        principal_id: PrincipalId(r.try_get("principal_id")?),
        created_by: PrincipalId(r.try_get("created_by")?),
        name: r.try_get("name")?,
        scopes: r.try_get("scopes")?,
        workspaces: r.try_get::<Option<String>, _>("workspaces")?.map(|s| {
            s.split_whitespace()
                .map(|w| WorkspaceId(w.to_string()))
                .collect()
        }),
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
        last_used_addr: r.try_get("last_used_addr")?,
        rate_limit_per_minute: r.try_get("rate_limit_per_minute")?,
    })
}

/// Stores a new token under the hash of its secret.
pub async fn insert<'c>(
    db: impl AnyExecutor<'c>,
    t: &TokenRecord,
    secret_hash: &str,
) -> Result<(), sqlx::Error> {
    let workspaces = t.workspaces.as_ref().map(|ws| {
        ws.iter()
            .map(WorkspaceId::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    });
    sqlx::query(
        "INSERT INTO tokens (id, secret_hash, principal_id, created_by, name, scopes, workspaces, \
         created_at, expires_at, rate_limit_per_minute) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(t.id.as_str())
    .bind(secret_hash)
    .bind(t.principal_id.as_str())
    .bind(t.created_by.as_str())
    .bind(&t.name)
    .bind(&t.scopes)
    .bind(workspaces)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.rate_limit_per_minute)
    .execute(db)
    .await?;
    Ok(())
}

/// The token with this secret hash, with its principal and its organisation's rate limit
/// (one query on the hot path).
pub async fn find_by_hash<'c>(
    db: impl AnyExecutor<'c>,
    secret_hash: &str,
) -> Result<Option<(TokenRecord, Principal, Option<i64>)>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS}, p.id AS p_id, p.kind AS p_kind, p.name AS p_name, p.email AS p_email, \
         p.org_id AS p_org_id, p.created_by AS p_created_by, p.created_at AS p_created_at, \
         p.groups AS p_groups, o.rate_limit_per_minute AS org_rate_limit \
         FROM tokens t JOIN principals p ON p.id = t.principal_id JOIN orgs o ON o.id = p.org_id \
         WHERE t.secret_hash = $1"
    )))
    .bind(secret_hash)
    .fetch_optional(db)
    .await?
    .map(|r| {
        Ok((
            from_row(&r)?,
            super::principals::from_row(&r, "p_")?,
            r.try_get("org_rate_limit")?,
        ))
    })
    .transpose()
}

/// One token by id.
pub async fn get<'c>(
    db: impl AnyExecutor<'c>,
    id: &TokenId,
) -> Result<Option<TokenRecord>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tokens t WHERE t.id = $1"
    )))
    .bind(id.as_str())
    .fetch_optional(db)
    .await?
    .map(|r| from_row(&r))
    .transpose()
}

/// The tokens a principal holds or minted for others, newest first.
pub async fn list_visible_to<'c>(
    db: impl AnyExecutor<'c>,
    principal: &PrincipalId,
) -> Result<Vec<TokenRecord>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tokens t WHERE t.principal_id = $1 OR t.created_by = $1 \
         ORDER BY t.created_at DESC, t.id"
    )))
    .bind(principal.as_str())
    .fetch_all(db)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Revokes a token; true when it was live.
pub async fn revoke<'c>(
    db: impl AnyExecutor<'c>,
    id: &TokenId,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id.as_str())
            .bind(at)
            .execute(db)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Records a use of the token.
pub async fn touch<'c>(
    db: impl AnyExecutor<'c>,
    id: &TokenId,
    at: i64,
    addr: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tokens SET last_used_at = $2, last_used_addr = $3 WHERE id = $1")
        .bind(id.as_str())
        .bind(at)
        .bind(addr)
        .execute(db)
        .await?;
    Ok(())
}
