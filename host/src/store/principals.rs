//! Users, agents and clients.

use sqlx::any::{AnyExecutor, AnyRow};
use sqlx::{AssertSqlSafe, Row};

use crate::identity::{OrgId, Principal, PrincipalId, PrincipalKind};

const COLUMNS: &str = "id, kind, name, email, org_id, created_by, created_at, groups";

/// Decodes a principal from a row holding [`COLUMNS`] (possibly with a `p_` prefix).
pub(crate) fn from_row(r: &AnyRow, prefix: &str) -> Result<Principal, sqlx::Error> {
    let col = |c: &str| format!("{prefix}{c}");
    let kind: String = r.try_get(col("kind").as_str())?;
    Ok(Principal {
        id: PrincipalId(r.try_get(col("id").as_str())?),
        kind: PrincipalKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown principal kind {kind}").into()))?,
        name: r.try_get(col("name").as_str())?,
        email: r.try_get(col("email").as_str())?,
        org_id: OrgId(r.try_get(col("org_id").as_str())?),
        created_by: r
            .try_get::<Option<String>, _>(col("created_by").as_str())?
            .map(PrincipalId),
        created_at: r.try_get(col("created_at").as_str())?,
        groups: r
            .try_get::<String, _>(col("groups").as_str())?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    })
}

/// Stores a new principal (with a password hash for users who may sign in).
pub async fn insert<'c>(
    db: impl AnyExecutor<'c>,
    p: &Principal,
    password_hash: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO principals (id, kind, name, email, password_hash, org_id, created_by, created_at, groups) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(p.id.as_str())
    .bind(p.kind.as_str())
    .bind(&p.name)
    .bind(p.email.as_deref())
    .bind(password_hash)
    .bind(p.org_id.as_str())
    .bind(p.created_by.as_ref().map(PrincipalId::as_str))
    .bind(p.created_at)
    .bind(p.groups.join(" "))
    .execute(db)
    .await?;
    Ok(())
}

/// One principal.
pub async fn get<'c>(
    db: impl AnyExecutor<'c>,
    id: &PrincipalId,
) -> Result<Option<Principal>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM principals WHERE id = $1"
    )))
    .bind(id.as_str())
    .fetch_optional(db)
    .await?
    .map(|r| from_row(&r, ""))
    .transpose()
}

/// A user by e-mail address.
pub async fn find_user_by_email<'c>(
    db: impl AnyExecutor<'c>,
    email: &str,
) -> Result<Option<Principal>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM principals WHERE kind = 'user' AND email = $1"
    )))
    .bind(email)
    .fetch_optional(db)
    .await?
    .map(|r| from_row(&r, ""))
    .transpose()
}

/// The agents of the organisations `principal` belongs to.
pub async fn list_agents_visible_to<'c>(
    db: impl AnyExecutor<'c>,
    principal: &PrincipalId,
) -> Result<Vec<Principal>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM principals WHERE kind = 'agent' AND org_id IN \
         (SELECT org_id FROM org_members WHERE principal_id = $1) ORDER BY created_at, id"
    )))
    .bind(principal.as_str())
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| from_row(r, ""))
    .collect()
}

/// Removes a principal; its memberships and tokens go with it (foreign keys cascade).
pub async fn delete<'c>(db: impl AnyExecutor<'c>, id: &PrincipalId) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM principals WHERE id = $1")
        .bind(id.as_str())
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}
