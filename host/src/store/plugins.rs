//! Uploaded plugins (one row per name in an organisation, every version's bytes kept) and
//! their attachments to workspaces. Changing what a workspace runs bumps its
//! `plugins_version`, which every replica reads with the workspace on each request.

use sqlx::Row;
use sqlx::any::{AnyExecutor, AnyRow};

use crate::identity::{OrgId, WorkspaceId};

/// A plugin and its latest version.
#[derive(Debug, Clone)]
pub struct PluginRow {
    /// `plg_…`
    pub id: String,
    /// The owning organisation.
    pub org_id: String,
    /// Unique within the organisation.
    pub name: String,
    /// The version new evaluations use.
    pub latest_version: i64,
    /// SHA-256 of the latest version's component, hex.
    pub digest: String,
    /// Size of the latest version, bytes.
    pub size_bytes: i64,
    /// Who created the plugin.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When the latest version was uploaded, Unix seconds.
    pub updated_at: i64,
}

const PLUGIN_COLUMNS: &str = "p.id, p.org_id, p.name, p.latest_version, p.created_by, p.created_at, \
     v.digest, v.size_bytes, v.created_at AS updated_at";
const PLUGIN_FROM: &str =
    "plugins p JOIN plugin_versions v ON v.plugin_id = p.id AND v.version = p.latest_version";

fn plugin_from_row(r: &AnyRow) -> Result<PluginRow, sqlx::Error> {
    Ok(PluginRow {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        name: r.try_get("name")?,
        latest_version: r.try_get("latest_version")?,
        digest: r.try_get("digest")?,
        size_bytes: r.try_get("size_bytes")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The plugin called `name` in `org`, with its id and latest version number.
pub async fn find_by_name<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
    name: &str,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    id_and_version(
        db,
        "SELECT id, latest_version FROM plugins WHERE org_id = $1 AND name = $2",
        org,
        name,
    )
    .await
}

/// Runs a statement over (org, name) that yields at most one `id, latest_version` row.
async fn id_and_version<'c>(
    db: impl AnyExecutor<'c>,
    sql: &'static str,
    org: &OrgId,
    name: &str,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query(sql)
        .bind(org.as_str())
        .bind(name)
        .fetch_optional(db)
        .await?
        .map(|r| Ok((r.try_get("id")?, r.try_get("latest_version")?)))
        .transpose()
}

/// Creates a plugin row (its first version is stored with [`insert_version`]).
pub async fn insert<'c>(
    db: impl AnyExecutor<'c>,
    id: &str,
    org: &OrgId,
    name: &str,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO plugins (id, org_id, name, latest_version, created_by, created_at) VALUES ($1, $2, $3, 1, $4, $5)")
        .bind(id)
        .bind(org.as_str())
        .bind(name)
        .bind(by)
        .bind(super::now())
        .execute(db)
        .await?;
    Ok(())
}

/// A new version's bytes and digest.
pub struct NewVersion<'a> {
    /// The plugin.
    pub plugin_id: &'a str,
    /// Its number.
    pub version: i64,
    /// SHA-256, hex.
    pub digest: &'a str,
    /// The component.
    pub wasm: &'a [u8],
    /// The uploader.
    pub by: &'a str,
}

/// Stores a version.
pub async fn insert_version<'c>(
    db: impl AnyExecutor<'c>,
    v: &NewVersion<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO plugin_versions (plugin_id, version, digest, size_bytes, wasm, uploaded_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(v.plugin_id)
        .bind(v.version)
        .bind(v.digest)
        .bind(i64::try_from(v.wasm.len()).unwrap_or(i64::MAX))
        .bind(v.wasm)
        .bind(v.by)
        .bind(super::now())
        .execute(db)
        .await?;
    Ok(())
}

/// Takes the next version number of the plugin called `name` in `org`, if there is one, and
/// returns its id and that number. A write as the transaction's first statement, so SQLite
/// takes its write lock at once (waiting for it) instead of failing a read-then-write upgrade.
pub async fn take_next_version<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
    name: &str,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    id_and_version(
        db,
        "UPDATE plugins SET latest_version = latest_version + 1 WHERE org_id = $1 AND name = $2 RETURNING id, latest_version",
        org,
        name,
    )
    .await
}

/// Makes every workspace running the plugin reload its plugin list.
pub async fn touch_workspaces_of<'c>(
    db: impl AnyExecutor<'c>,
    plugin_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE workspaces SET plugins_version = plugins_version + 1 WHERE id IN (SELECT workspace_id FROM plugin_attachments WHERE plugin_id = $1)")
        .bind(plugin_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Makes one workspace reload its plugin list.
pub async fn touch_workspace<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE workspaces SET plugins_version = plugins_version + 1 WHERE id = $1")
        .bind(ws.as_str())
        .execute(db)
        .await?;
    Ok(())
}

/// One plugin.
pub async fn get<'c>(db: impl AnyExecutor<'c>, id: &str) -> Result<Option<PluginRow>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PLUGIN_COLUMNS} FROM {PLUGIN_FROM} WHERE p.id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(|r| plugin_from_row(&r))
    .transpose()
}

/// The plugins of an organisation, by name.
pub async fn list<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
) -> Result<Vec<PluginRow>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PLUGIN_COLUMNS} FROM {PLUGIN_FROM} WHERE p.org_id = $1 ORDER BY p.name"
    )))
    .bind(org.as_str())
    .fetch_all(db)
    .await?
    .iter()
    .map(plugin_from_row)
    .collect()
}

/// The bytes of a version.
pub async fn wasm<'c>(
    db: impl AnyExecutor<'c>,
    plugin_id: &str,
    version: i64,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query("SELECT wasm FROM plugin_versions WHERE plugin_id = $1 AND version = $2")
        .bind(plugin_id)
        .bind(version)
        .fetch_optional(db)
        .await?
        .map(|r| r.try_get("wasm"))
        .transpose()
}

/// The workspaces a plugin is attached to.
pub async fn attached_to<'c>(
    db: impl AnyExecutor<'c>,
    plugin_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query(
        "SELECT workspace_id FROM plugin_attachments WHERE plugin_id = $1 ORDER BY workspace_id",
    )
    .bind(plugin_id)
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| r.try_get("workspace_id"))
    .collect()
}

/// Removes a plugin that is attached nowhere; false if it is (or does not exist).
pub async fn delete_unattached<'c>(
    db: impl AnyExecutor<'c>,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM plugins WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM plugin_attachments WHERE plugin_id = $1)")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A plugin attached to a workspace, with its latest version.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The plugin.
    pub plugin_id: String,
    /// Its name.
    pub name: String,
    /// The version in force (its latest).
    pub version: i64,
    /// That version's digest.
    pub digest: String,
    /// The JSON configuration.
    pub config: String,
    /// `enforce` or `shadow`.
    pub mode: String,
    /// Evaluation order (lower first).
    pub position: i64,
    /// Who attached it.
    pub attached_by: String,
    /// Unix seconds.
    pub attached_at: i64,
}

/// Attaches (or re-configures) a plugin.
#[allow(clippy::too_many_arguments)]
pub async fn attach<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    plugin_id: &str,
    config: &str,
    mode: &str,
    position: i64,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO plugin_attachments (workspace_id, plugin_id, config, mode, position, attached_by, attached_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (workspace_id, plugin_id) DO UPDATE SET config = excluded.config, mode = excluded.mode, \
         position = excluded.position, attached_by = excluded.attached_by, attached_at = excluded.attached_at",
    )
    .bind(ws.as_str())
    .bind(plugin_id)
    .bind(config)
    .bind(mode)
    .bind(position)
    .bind(by)
    .bind(super::now())
    .execute(db)
    .await?;
    Ok(())
}

/// Detaches a plugin; false if it was not attached.
pub async fn detach<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
    plugin_id: &str,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM plugin_attachments WHERE workspace_id = $1 AND plugin_id = $2")
            .bind(ws.as_str())
            .bind(plugin_id)
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The plugins attached to a workspace, in evaluation order.
pub async fn attachments<'c>(
    db: impl AnyExecutor<'c>,
    ws: &WorkspaceId,
) -> Result<Vec<Attachment>, sqlx::Error> {
    sqlx::query(
        "SELECT a.plugin_id, p.name, p.latest_version, v.digest, a.config, a.mode, a.position, a.attached_by, a.attached_at \
         FROM plugin_attachments a JOIN plugins p ON p.id = a.plugin_id \
         JOIN plugin_versions v ON v.plugin_id = p.id AND v.version = p.latest_version \
         WHERE a.workspace_id = $1 ORDER BY a.position, p.name",
    )
    .bind(ws.as_str())
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| {
        Ok(Attachment {
            plugin_id: r.try_get("plugin_id")?,
            name: r.try_get("name")?,
            version: r.try_get("latest_version")?,
            digest: r.try_get("digest")?,
            config: r.try_get("config")?,
            mode: r.try_get("mode")?,
            position: r.try_get("position")?,
            attached_by: r.try_get("attached_by")?,
            attached_at: r.try_get("attached_at")?,
        })
    })
    .collect()
}

/// The configurations a plugin is attached with, by workspace.
pub async fn configs_of<'c>(
    db: impl AnyExecutor<'c>,
    plugin_id: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query("SELECT workspace_id, config FROM plugin_attachments WHERE plugin_id = $1 ORDER BY workspace_id")
        .bind(plugin_id)
        .fetch_all(db)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("workspace_id")?, r.try_get("config")?)))
        .collect()
}
