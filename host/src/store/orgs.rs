//! Organisations and their members.

use sqlx::Row;
use sqlx::any::AnyExecutor;

use crate::identity::{Org, OrgId, OrgRole, PrincipalId};

/// Stores a new organisation.
pub async fn insert<'c>(db: impl AnyExecutor<'c>, org: &Org) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO orgs (id, name, max_token_days, created_at) VALUES ($1, $2, $3, $4)")
        .bind(org.id.as_str())
        .bind(&org.name)
        .bind(org.max_token_days)
        .bind(org.created_at)
        .execute(db)
        .await?;
    Ok(())
}

/// Changes an organisation's settings.
pub async fn update_settings<'c>(db: impl AnyExecutor<'c>, org: &Org) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orgs SET max_token_days = $2, allow_tenant_permits = $3, rate_limit_per_minute = $4 \
         WHERE id = $1",
    )
    .bind(org.id.as_str())
    .bind(org.max_token_days)
    .bind(i64::from(org.allow_tenant_permits))
    .bind(org.rate_limit_per_minute)
    .execute(db)
    .await?;
    Ok(())
}

/// One organisation.
pub async fn get<'c>(db: impl AnyExecutor<'c>, id: &OrgId) -> Result<Option<Org>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, name, max_token_days, allow_tenant_permits, rate_limit_per_minute, created_at \
         FROM orgs WHERE id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(Org {
            id: OrgId(r.try_get("id")?),
            name: r.try_get("name")?,
            max_token_days: r.try_get("max_token_days")?,
            allow_tenant_permits: r.try_get::<i64, _>("allow_tenant_permits")? != 0,
            rate_limit_per_minute: r.try_get("rate_limit_per_minute")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}

/// True when no organisation exists yet (a fresh database).
pub async fn is_empty<'c>(db: impl AnyExecutor<'c>) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM orgs")
        .fetch_one(db)
        .await?;
    Ok(row.try_get::<i64, _>("n")? == 0)
}

/// Gives `principal` a role in `org`, replacing any previous one.
pub async fn set_member<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
    principal: &PrincipalId,
    role: OrgRole,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO org_members (org_id, principal_id, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, principal_id) DO UPDATE SET role = excluded.role",
    )
    .bind(org.as_str())
    .bind(principal.as_str())
    .bind(role.as_str())
    .bind(super::now())
    .execute(db)
    .await?;
    Ok(())
}

/// The role of `principal` in `org`, if any.
pub async fn member_role<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
    principal: &PrincipalId,
) -> Result<Option<OrgRole>, sqlx::Error> {
    let row = sqlx::query("SELECT role FROM org_members WHERE org_id = $1 AND principal_id = $2")
        .bind(org.as_str())
        .bind(principal.as_str())
        .fetch_optional(db)
        .await?;
    Ok(row
        .map(|r| r.try_get::<String, _>("role"))
        .transpose()?
        .and_then(|s| OrgRole::parse(&s)))
}

/// True when some organisation already has an owner (bootstrap refuses to run twice).
pub async fn has_owner<'c>(db: impl AnyExecutor<'c>) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM org_members WHERE role = 'owner'")
        .fetch_one(db)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Hands `org` to `to`: `to` becomes its only owner and every previous owner a
/// `maintainer`; in each workspace of the org the new owner becomes `owner` and the previous
/// owners keep at most `viewer`. Run it in a transaction: all of it happens, or none.
pub async fn transfer_ownership<'c>(
    tx: &mut sqlx::Transaction<'c, sqlx::Any>,
    org: &OrgId,
    to: &PrincipalId,
) -> Result<Vec<String>, sqlx::Error> {
    // A write first: SQLite then takes its write lock at once (waiting for it) instead of
    // failing a read-then-write upgrade when another writer got in between.
    sqlx::query("UPDATE org_members SET role = 'owner' WHERE org_id = $1 AND principal_id = $2")
        .bind(org.as_str())
        .bind(to.as_str())
        .execute(&mut **tx)
        .await?;
    let previous: Vec<String> = sqlx::query(
        "SELECT principal_id FROM org_members WHERE org_id = $1 AND role = 'owner' AND principal_id <> $2",
    )
    .bind(org.as_str())
    .bind(to.as_str())
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| r.try_get("principal_id"))
    .collect::<Result<_, _>>()?;
    sqlx::query("UPDATE org_members SET role = 'maintainer' WHERE org_id = $1 AND role = 'owner' AND principal_id <> $2")
        .bind(org.as_str())
        .bind(to.as_str())
        .execute(&mut **tx)
        .await?;
    for p in &previous {
        sqlx::query(
            "UPDATE workspace_members SET role = 'viewer' WHERE principal_id = $1 \
             AND workspace_id IN (SELECT id FROM workspaces WHERE org_id = $2)",
        )
        .bind(p)
        .bind(org.as_str())
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, principal_id, role, created_at) \
         SELECT id, $2, 'owner', $3 FROM workspaces WHERE org_id = $1 \
         ON CONFLICT (workspace_id, principal_id) DO UPDATE SET role = 'owner'",
    )
    .bind(org.as_str())
    .bind(to.as_str())
    .bind(super::now())
    .execute(&mut **tx)
    .await?;
    Ok(previous)
}
