//! Invitations to join an organisation. The token is stored only as its hash; accepting is a
//! conditional update, so a token is used at most once even when two people race with it.

use sqlx::Row;
use sqlx::any::{AnyExecutor, AnyRow};

use crate::identity::OrgId;

/// One invitation.
#[derive(Debug, Clone)]
pub struct Invitation {
    /// `inv_…`
    pub id: String,
    /// The organisation to join.
    pub org_id: String,
    /// Who is invited.
    pub email: String,
    /// The org role they get (`admin` or `member`).
    pub role: String,
    /// Who invited them.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// When it was used, Unix seconds.
    pub accepted_at: Option<i64>,
    /// The user it created.
    pub accepted_by: Option<String>,
    /// When it was withdrawn, Unix seconds.
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, org_id, email, role, created_by, created_at, expires_at, accepted_at, accepted_by, revoked_at";

fn from_row(r: &AnyRow) -> Result<Invitation, sqlx::Error> {
    Ok(Invitation {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        email: r.try_get("email")?,
        role: r.try_get("role")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        accepted_at: r.try_get("accepted_at")?,
        accepted_by: r.try_get("accepted_by")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// Stores a new invitation.
pub async fn insert<'c>(
    db: impl AnyExecutor<'c>,
    inv: &Invitation,
    token_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invitations (id, org_id, email, role, token_hash, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&inv.id)
    .bind(&inv.org_id)
    .bind(&inv.email)
    .bind(&inv.role)
    .bind(token_hash)
    .bind(&inv.created_by)
    .bind(inv.created_at)
    .bind(inv.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The invitation whose token hashes to `token_hash`.
pub async fn by_token_hash<'c>(
    db: impl AnyExecutor<'c>,
    token_hash: &str,
) -> Result<Option<Invitation>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM invitations WHERE token_hash = $1"
    )))
    .bind(token_hash)
    .fetch_optional(db)
    .await?
    .map(|r| from_row(&r))
    .transpose()
}

/// The invitations of an organisation, newest first.
pub async fn list<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
) -> Result<Vec<Invitation>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM invitations WHERE org_id = $1 ORDER BY created_at DESC, id"
    )))
    .bind(org.as_str())
    .fetch_all(db)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Withdraws an open invitation; false if there is none such in `org`.
pub async fn revoke<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE invitations SET revoked_at = $3 WHERE org_id = $1 AND id = $2 \
         AND revoked_at IS NULL AND accepted_at IS NULL",
    )
    .bind(org.as_str())
    .bind(id)
    .bind(super::now())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks an invitation used by `user`, if it is still open and unexpired at `now`.
pub async fn accept<'c>(
    db: impl AnyExecutor<'c>,
    id: &str,
    user: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE invitations SET accepted_at = $3, accepted_by = $2 WHERE id = $1 \
         AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(id)
    .bind(user)
    .bind(now)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
