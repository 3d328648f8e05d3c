//! Workspaces and their members.

use std::sync::Arc;

use sqlx::Row;
use sqlx::any::AnyExecutor;

use super::Store;
use super::columns::Columns;
use crate::identity::{Member, OrgId, PrincipalId, PrincipalKind, Role, Workspace, WorkspaceId};

fn from_row(r: &impl Columns) -> Result<Workspace, sqlx::Error> {
    Ok(Workspace {
        id: WorkspaceId(r.text("id")?),
        org_id: OrgId(r.text("org_id")?),
        name: r.text("name")?,
        created_at: r.int("created_at")?,
        policy_version: r.opt_int("policy_version")?,
        shadow_version: r.opt_int("shadow_version")?,
        plugins_version: r.int("plugins_version")?,
    })
}

fn role_from_row(r: &impl Columns) -> Result<Role, sqlx::Error> {
    let role = r.text("role")?;
    Role::parse(&role).ok_or_else(|| sqlx::Error::Decode(format!("unknown role {role}").into()))
}

/// The `role` column of a LEFT JOIN on the members: None when the principal holds none.
fn optional_role(r: &impl Columns) -> Result<Option<Role>, sqlx::Error> {
    match r.opt_text("role")? {
        Some(_) => role_from_row(r).map(Some),
        None => Ok(None),
    }
}

/// Stores a new workspace.
pub async fn insert<'c>(
    db: impl AnyExecutor<'c>,
    ws: &Workspace,
    created_by: &PrincipalId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO workspaces (id, org_id, name, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ws.id.as_str())
    .bind(ws.org_id.as_str())
    .bind(&ws.name)
    .bind(created_by.as_str())
    .bind(ws.created_at)
    .execute(db)
    .await?;
    Ok(())
}

/// One workspace with the role `principal` holds in it (None when it has none).
pub async fn get_with_role<'c>(
    db: impl AnyExecutor<'c>,
    id: &WorkspaceId,
    principal: &PrincipalId,
) -> Result<Option<(Workspace, Option<Role>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT w.id, w.org_id, w.name, w.created_at, w.policy_version, w.shadow_version, w.plugins_version, m.role \
         FROM workspaces w LEFT JOIN workspace_members m ON m.workspace_id = w.id AND m.principal_id = $2 \
         WHERE w.id = $1",
    )
    .bind(id.as_str())
    .bind(principal.as_str())
    .fetch_optional(db)
    .await?;
    row.map(|r| Ok((from_row(&r)?, optional_role(&r)?)))
        .transpose()
}

/// The query of [`get_with_role_and_file`], written once.
static WITH_ROLE_AND_FILE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let file_columns = super::files::COLUMNS
        .split(", ")
        .map(|c| format!("f.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT w.id, w.org_id, w.name, w.created_at, w.policy_version, w.shadow_version, w.plugins_version, m.role, {file_columns} \
         FROM workspaces w LEFT JOIN workspace_members m ON m.workspace_id = w.id AND m.principal_id = $2 \
         LEFT JOIN files f ON f.workspace_id = w.id AND f.path = $3 \
         WHERE w.id = $1"
    )
});

/// A workspace, the caller's role in it and the file at a path, if any.
pub type WithRoleAndFile = (Workspace, Option<Role>, Option<super::files::FileMeta>);

/// [`get_with_role`] and the file at `path` in one query: what reading a file needs, for one
/// round trip instead of two on the hot path. (The column names of both tables are distinct.)
/// On a SQLite file it runs inline on the calling thread ([`super::inline`] says why), and
/// what it read is remembered until this process next commits a write
/// ([`super::remembered`]).
pub async fn get_with_role_and_file(
    store: &Store,
    id: &WorkspaceId,
    principal: &PrincipalId,
    path: &str,
) -> Result<Option<Arc<WithRoleAndFile>>, sqlx::Error> {
    let (id, principal) = (id.as_str(), principal.as_str());
    let Some(reads) = store.access_reads() else {
        let read = read_with_role_and_file(store, id, principal, path).await?;
        return Ok(read.map(Arc::new));
    };
    // Remembered until the next commit (`store::remembered`); keyed without ambiguity, since
    // the workspace id and the path come from the request: `len:id len:principal path`.
    let mut key = String::with_capacity(id.len() + principal.len() + path.len() + 8);
    for part in [id, principal] {
        key.push_str(itoa::Buffer::new().format(part.len()));
        key.push(':');
        key.push_str(part);
    }
    key.push_str(path);
    let now = super::now();
    if let Some(read) = reads.get(&key, now) {
        return Ok(Some(read));
    }
    let ticket = reads.ticket();
    let read = read_with_role_and_file(store, id, principal, path)
        .await?
        .map(Arc::new);
    if let (Some(ticket), Some(read)) = (ticket, &read) {
        reads.put(ticket, key, now, read.clone());
    }
    Ok(read)
}

/// [`get_with_role_and_file`] from the database.
async fn read_with_role_and_file(
    store: &Store,
    id: &str,
    principal: &str,
    path: &str,
) -> Result<Option<WithRoleAndFile>, sqlx::Error> {
    let params = [("$1", id), ("$2", principal), ("$3", path)];
    if let Some(answer) = store.read_inline(&WITH_ROLE_AND_FILE, &params, |r| with_role_and_file(r))
    {
        return answer;
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(WITH_ROLE_AND_FILE.as_str()))
        .bind(id)
        .bind(principal)
        .bind(path)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(with_role_and_file).transpose()
}

/// A row of [`WITH_ROLE_AND_FILE`].
fn with_role_and_file(r: &impl Columns) -> Result<WithRoleAndFile, sqlx::Error> {
    let role = optional_role(r)?;
    let file = match r.opt_text("path")? {
        Some(_) => Some(super::files::from_row(r)?),
        None => None,
    };
    Ok((from_row(r)?, role, file))
}

/// The workspaces where `principal` holds a role, with that role.
pub async fn list_for_principal<'c>(
    db: impl AnyExecutor<'c>,
    principal: &PrincipalId,
) -> Result<Vec<(Workspace, Role)>, sqlx::Error> {
    sqlx::query(
        "SELECT w.id, w.org_id, w.name, w.created_at, w.policy_version, w.shadow_version, w.plugins_version, m.role \
         FROM workspaces w JOIN workspace_members m ON m.workspace_id = w.id WHERE m.principal_id = $1 \
         ORDER BY w.created_at, w.id",
    )
    .bind(principal.as_str())
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| Ok((from_row(r)?, role_from_row(r)?)))
    .collect()
}

/// Makes the calling transaction take its turn among writers of this workspace: a write to
/// the workspace's row that changes nothing, which PostgreSQL holds as a row lock and SQLite
/// as the database's write lock until the transaction ends. Call it first in the transaction
/// (on SQLite a transaction that reads before it writes can fail to upgrade).
pub async fn take_turn<'c>(db: impl AnyExecutor<'c>, id: &WorkspaceId) -> Result<(), sqlx::Error> {
    // A column no foreign key refers to: PostgreSQL then takes the weaker row lock that does
    // not hold up inserts of rows referring to the workspace (files, members).
    sqlx::query("UPDATE workspaces SET name = name WHERE id = $1")
        .bind(id.as_str())
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes a workspace; members and file metadata cascade.
pub async fn delete<'c>(db: impl AnyExecutor<'c>, id: &WorkspaceId) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM workspaces WHERE id = $1")
        .bind(id.as_str())
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Gives `principal` a role in the workspace, replacing any previous one.
pub async fn set_member<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    principal: &PrincipalId,
    role: Role,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, principal_id, role, created_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (workspace_id, principal_id) DO UPDATE SET role = excluded.role",
    )
    .bind(ws.as_str())
    .bind(principal.as_str())
    .bind(role.as_str())
    .bind(super::now())
    .execute(db)
    .await?;
    Ok(())
}

/// The role of `principal` in the workspace.
pub async fn member_role<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    principal: &PrincipalId,
) -> Result<Option<Role>, sqlx::Error> {
    sqlx::query("SELECT role FROM workspace_members WHERE workspace_id = $1 AND principal_id = $2")
        .bind(ws.as_str())
        .bind(principal.as_str())
        .fetch_optional(db)
        .await?
        .map(|r| role_from_row(&r))
        .transpose()
}

/// Removes a member; true when there was one.
pub async fn remove_member<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    principal: &PrincipalId,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM workspace_members WHERE workspace_id = $1 AND principal_id = $2")
            .bind(ws.as_str())
            .bind(principal.as_str())
            .execute(db)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// The members of a workspace.
pub async fn members<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
) -> Result<Vec<Member>, sqlx::Error> {
    sqlx::query(
        "SELECT m.principal_id, p.kind, p.name, m.role FROM workspace_members m \
         JOIN principals p ON p.id = m.principal_id WHERE m.workspace_id = $1 \
         ORDER BY m.created_at, m.principal_id",
    )
    .bind(ws.as_str())
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| {
        let kind: String = r.try_get("kind")?;
        Ok(Member {
            principal_id: PrincipalId(r.try_get("principal_id")?),
            kind: PrincipalKind::parse(&kind)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown kind {kind}").into()))?,
            name: r.try_get("name")?,
            role: role_from_row(r)?,
        })
    })
    .collect()
}

/// How many owners a workspace has (the last one may not leave).
pub async fn owner_count<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM workspace_members WHERE workspace_id = $1 AND role = 'owner'",
    )
    .bind(ws.as_str())
    .fetch_one(db)
    .await?;
    row.try_get("n")
}
