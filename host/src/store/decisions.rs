//! The decision log: every decision, allowed and refused, with what determined it.

use sqlx::any::{AnyExecutor, AnyRow};
use sqlx::{AssertSqlSafe, Row};

use super::Backend;

/// A name from a short fixed list (a principal kind, an action, a transport, a layer): a
/// decision made here borrows it, one read back owns it — no allocation per request.
pub type Label = std::borrow::Cow<'static, str>;

/// One logged decision.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecisionRecord {
    /// `dec_…`
    pub id: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The workspace, for workspace actions.
    pub workspace_id: Option<String>,
    /// Who asked.
    pub principal_id: String,
    /// user | agent | client
    pub principal_kind: Label,
    /// The credential's id.
    pub credential_id: String,
    /// The Cedar action id.
    pub action: Label,
    /// The path, or the workspace or org id.
    pub resource: String,
    /// rest | mcp
    pub transport: Label,
    /// The outcome.
    pub allowed: bool,
    /// The refusing layer.
    pub layer: Option<Label>,
    /// Determining policy ids.
    pub policy_ids: Vec<String>,
    /// Reasons and errors.
    pub reasons: Vec<String>,
    /// Time spent deciding.
    pub elapsed_us: i64,
    /// The tenant version enforced.
    pub policy_version: Option<i64>,
    /// The shadow candidate evaluated, if any.
    pub shadow_version: Option<i64>,
    /// What the candidate decided.
    pub shadow_allowed: Option<bool>,
    /// The candidate's determining policies.
    pub shadow_policy_ids: Option<Vec<String>>,
    /// What each plugin said (name, version, mode, verdict, reason, time), when any was
    /// reached: the stored text of [`super::verdicts`], made once on the request path and
    /// stored as is; expanded only when a record is read back.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::verdicts::serialize_stored"
    )]
    pub plugins: Option<String>,
}

const COLUMNS: &str = "id, at_ms, workspace_id, principal_id, principal_kind, credential_id, action, \
    resource, transport, allowed, layer, policy_ids, reasons, elapsed_us, policy_version, \
    shadow_version, shadow_allowed, shadow_policy_ids, plugins";

fn from_row(r: &AnyRow) -> Result<DecisionRecord, sqlx::Error> {
    let list = |s: String| -> Vec<String> { serde_json::from_str(&s).unwrap_or_default() };
    Ok(DecisionRecord {
        id: r.try_get("id")?,
        at_ms: r.try_get("at_ms")?,
        workspace_id: r.try_get("workspace_id")?,
        principal_id: r.try_get("principal_id")?,
        principal_kind: r.try_get::<String, _>("principal_kind")?.into(),
        credential_id: r.try_get("credential_id")?,
        action: r.try_get::<String, _>("action")?.into(),
        resource: r.try_get("resource")?,
        transport: r.try_get::<String, _>("transport")?.into(),
        allowed: r.try_get::<i64, _>("allowed")? != 0,
        layer: r.try_get::<Option<String>, _>("layer")?.map(Label::from),
        policy_ids: list(r.try_get("policy_ids")?),
        reasons: list(r.try_get("reasons")?),
        elapsed_us: r.try_get("elapsed_us")?,
        policy_version: r.try_get("policy_version")?,
        shadow_version: r.try_get("shadow_version")?,
        shadow_allowed: r
            .try_get::<Option<i64>, _>("shadow_allowed")?
            .map(|v| v != 0),
        shadow_policy_ids: r
            .try_get::<Option<String>, _>("shadow_policy_ids")?
            .map(list),
        plugins: r.try_get("plugins")?,
    })
}

/// How many decisions one `INSERT` carries, largest first: 19 parameters each stays far below
/// both databases' parameter limits (SQLite 32 766, PostgreSQL 65 535), and a few sizes only
/// keep the prepared statements few.
const INSERT_SIZES: [usize; 4] = [64, 16, 4, 1];
/// The index of the single-row `INSERT` in [`INSERT_SIZES`]: the last, so every row is written.
const SINGLE_ROW: usize = INSERT_SIZES.len() - 1;
const _: () = assert!(INSERT_SIZES[SINGLE_ROW] == 1);
/// Parameters per decision.
const PER_ROW: usize = 19;

/// The `INSERT` of each of [`INSERT_SIZES`] rows, for SQLite then PostgreSQL, written once.
/// SQLite looks a numbered parameter's name up in a list as long as the statement's
/// parameters, and sqlx asks for every parameter's name when binding: quadratic in the row
/// count (a tenth of a loaded server's CPU at 64 rows). Anonymous `?` parameters have no
/// names; PostgreSQL only knows numbered ones.
static INSERTS: std::sync::LazyLock<[[String; INSERT_SIZES.len()]; 2]> =
    std::sync::LazyLock::new(|| {
        let sql = |numbered: bool, rows: usize| {
            let values: Vec<String> = (0..rows)
                .map(|r| {
                    let params: Vec<String> = (1..=PER_ROW)
                        .map(|c| {
                            if numbered {
                                format!("${}", r * PER_ROW + c)
                            } else {
                                "?".to_string()
                            }
                        })
                        .collect();
                    format!("({})", params.join(", "))
                })
                .collect();
            format!(
                "INSERT INTO decision_log ({COLUMNS}) VALUES {}",
                values.join(", ")
            )
        };
        [false, true].map(|numbered| INSERT_SIZES.map(|rows| sql(numbered, rows)))
    });

/// The rows in the order they are written: workspace by workspace, each workspace's in the
/// order its decisions came (a stable sort, of references: a record is hundreds of bytes).
/// The per-workspace index, the log's one index, then takes each workspace's rows one after
/// another at the same leaf, which stays in the CPU's cache, instead of jumping between as
/// many leaves as the batch has workspaces for every row (`cargo bench --bench decision_log`).
fn by_workspace(rows: &[DecisionRecord]) -> Vec<&DecisionRecord> {
    let mut ordered: Vec<&DecisionRecord> = rows.iter().collect();
    ordered.sort_by(|a, b| a.workspace_id.cmp(&b.workspace_id));
    ordered
}

/// Appends decisions, as few statements as [`INSERT_SIZES`] allow: a round trip per row to
/// SQLite's worker thread cost more than the row itself. (On a SQLite file the log writes
/// through [`insert_all_inline`] instead.)
pub async fn insert_all(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    rows: &[DecisionRecord],
) -> Result<(), sqlx::Error> {
    let [sqlite, postgres] = &*INSERTS;
    let statements = match backend {
        Backend::Sqlite => sqlite,
        Backend::Postgres => postgres,
    };
    // Largest statements first; the last is the single-row one, so every row is written.
    let ordered = by_workspace(rows);
    let mut rest = &ordered[..];
    for (size, sql) in INSERT_SIZES.iter().zip(statements) {
        while rest.len() >= *size {
            let (chunk, tail) = rest.split_at(*size);
            insert_rows(&mut *conn, sql, chunk).await?;
            rest = tail;
        }
    }
    Ok(())
}

/// Appends decisions on a rusqlite transaction: one prepared single-row statement per row,
/// which needs neither the multi-row statements' statement journal nor sqlx's conversions.
pub fn insert_all_inline(
    tx: &rusqlite::Transaction<'_>,
    rows: &[DecisionRecord],
) -> rusqlite::Result<()> {
    let [sqlite, _] = &*INSERTS;
    let mut statement = tx.prepare_cached(&sqlite[SINGLE_ROW])?;
    for d in by_workspace(rows) {
        statement.execute(rusqlite::params_from_iter(values(d)))?;
    }
    Ok(())
}

/// Runs one of [`INSERTS`] with `rows` bound.
async fn insert_rows<'c>(
    db: impl AnyExecutor<'c>,
    sql: &'static str,
    rows: &[&DecisionRecord],
) -> Result<(), sqlx::Error> {
    let rows: Vec<[Value<'_>; PER_ROW]> = rows.iter().map(|d| values(d)).collect();
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for value in rows.iter().flatten() {
        q = match value {
            Value::Text(t) => q.bind(t.as_deref()),
            Value::Int(i) => q.bind(*i),
        };
    }
    q.execute(db).await?;
    Ok(())
}

/// One column's value (None: NULL), for either driver to bind.
enum Value<'a> {
    Text(Option<std::borrow::Cow<'a, str>>),
    Int(Option<i64>),
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Value::Text(Some(t)) => t.as_ref().to_sql(),
            Value::Int(Some(i)) => i.to_sql(),
            Value::Text(None) | Value::Int(None) => Ok(rusqlite::types::ToSqlOutput::Owned(
                rusqlite::types::Value::Null,
            )),
        }
    }
}

/// A decision's values in [`COLUMNS`] order.
fn values(d: &DecisionRecord) -> [Value<'_>; PER_ROW] {
    use std::borrow::Cow::{Borrowed, Owned};
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    fn text(t: &str) -> Value<'_> {
        Value::Text(Some(Borrowed(t)))
    }
    fn opt_text(t: Option<&str>) -> Value<'_> {
        Value::Text(t.map(Borrowed))
    }
    let int = |i: i64| Value::Int(Some(i));
    [
        text(&d.id),
        int(d.at_ms),
        opt_text(d.workspace_id.as_deref()),
        text(&d.principal_id),
        text(&d.principal_kind),
        text(&d.credential_id),
        text(&d.action),
        text(&d.resource),
        text(&d.transport),
        int(i64::from(d.allowed)),
        opt_text(d.layer.as_deref()),
        Value::Text(Some(Owned(json(&d.policy_ids)))),
        Value::Text(Some(Owned(json(&d.reasons)))),
        int(d.elapsed_us),
        Value::Int(d.policy_version),
        Value::Int(d.shadow_version),
        Value::Int(d.shadow_allowed.map(i64::from)),
        Value::Text(d.shadow_policy_ids.as_ref().map(|p| Owned(json(p)))),
        opt_text(d.plugins.as_deref()),
    ]
}

/// Filters for a query of one workspace's decisions.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    /// Only this principal.
    pub principal: Option<String>,
    /// Only allowed (true) or refused (false) decisions.
    pub allowed: Option<bool>,
    /// Only this action.
    pub action: Option<String>,
    /// Only decisions before this cursor (`<at_ms>_<id>`), for paging backwards.
    pub before: Option<(i64, String)>,
    /// Only decisions where the shadow candidate disagreed.
    pub shadow_disagreements: bool,
    /// At most this many.
    pub limit: i64,
}

/// A workspace's decisions, newest first.
pub async fn query<'c>(
    db: impl AnyExecutor<'c>,
    workspace: &str,
    f: &DecisionFilter,
) -> Result<Vec<DecisionRecord>, sqlx::Error> {
    let (before_at, before_id) = f.before.clone().unwrap_or((i64::MAX, String::new()));
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM decision_log WHERE workspace_id = $1 \
         AND principal_id = COALESCE($2, principal_id) \
         AND allowed = COALESCE($3, allowed) \
         AND action = COALESCE($4, action) \
         AND (at_ms < $5 OR (at_ms = $5 AND id < $6)) \
         AND ($7 = 0 OR (shadow_allowed IS NOT NULL AND shadow_allowed <> allowed)) \
         ORDER BY at_ms DESC, id DESC LIMIT $8"
    )))
    .bind(workspace)
    .bind(f.principal.as_deref())
    .bind(f.allowed.map(i64::from))
    .bind(f.action.as_deref())
    .bind(before_at)
    .bind(before_id)
    .bind(i64::from(f.shadow_disagreements))
    .bind(f.limit)
    .fetch_all(db)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// One group of shadow disagreements.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DisagreementCount {
    /// The action.
    pub action: String,
    /// user | agent | client
    pub principal_kind: String,
    /// What the enforced set decided.
    pub enforced_allowed: bool,
    /// What the candidate decided.
    pub shadow_allowed: bool,
    /// How many times.
    pub count: i64,
}

/// Counts of decisions evaluated with `shadow_version` and of those where it disagreed.
pub async fn shadow_counts<'c>(
    db: impl AnyExecutor<'c>,
    workspace: &str,
    shadow_version: i64,
) -> Result<(i64, Vec<DisagreementCount>), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT action, principal_kind, allowed, shadow_allowed, COUNT(*) AS n FROM decision_log \
         WHERE workspace_id = $1 AND shadow_version = $2 \
         GROUP BY action, principal_kind, allowed, shadow_allowed",
    )
    .bind(workspace)
    .bind(shadow_version)
    .fetch_all(db)
    .await?;
    let mut evaluated = 0;
    let mut groups = Vec::new();
    for r in &rows {
        let n: i64 = r.try_get("n")?;
        evaluated += n;
        let allowed = r.try_get::<i64, _>("allowed")? != 0;
        let shadow = r
            .try_get::<Option<i64>, _>("shadow_allowed")?
            .map(|v| v != 0);
        if let Some(shadow) = shadow.filter(|s| *s != allowed) {
            groups.push(DisagreementCount {
                action: r.try_get("action")?,
                principal_kind: r.try_get("principal_kind")?,
                enforced_allowed: allowed,
                shadow_allowed: shadow,
                count: n,
            });
        }
    }
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.action.cmp(&b.action)));
    Ok((evaluated, groups))
}

/// What a decision's id begins with; ids are [`crate::identity::new_ordered_id`]s.
pub const ID_PREFIX: &str = "dec";

/// Deletes decisions older than `before_ms`; returns how many. The rows are found through the
/// per-workspace index, one workspace at a time (and the org-level decisions, which have none),
/// so no index on the time or the id is written with every row only for this hourly purge;
/// each workspace's delete is a short transaction of its own, which the log's writer waits for
/// at most that long. The workspaces are taken from the log itself, one index seek each, so
/// the decisions of a deleted workspace age out as well.
pub async fn purge_older_than(pool: &sqlx::AnyPool, before_ms: i64) -> Result<u64, sqlx::Error> {
    let mut deleted =
        sqlx::query("DELETE FROM decision_log WHERE workspace_id IS NULL AND at_ms < $1")
            .bind(before_ms)
            .execute(pool)
            .await?
            .rows_affected();
    let mut after = String::new();
    while let Some(workspace) = sqlx::query_scalar::<_, String>(
        "SELECT workspace_id FROM decision_log WHERE workspace_id > $1 \
         ORDER BY workspace_id LIMIT 1",
    )
    .bind(&after)
    .fetch_optional(pool)
    .await?
    {
        deleted += sqlx::query("DELETE FROM decision_log WHERE workspace_id = $1 AND at_ms < $2")
            .bind(&workspace)
            .bind(before_ms)
            .execute(pool)
            .await?
            .rows_affected();
        after = workspace;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn record(i: usize) -> DecisionRecord {
        DecisionRecord {
            id: format!("dec_{i:03}"),
            at_ms: 1_000 + i64::try_from(i).unwrap(),
            workspace_id: Some("ws_1".into()),
            principal_id: "agt_1".into(),
            principal_kind: "agent".into(),
            credential_id: "tok_1".into(),
            action: "files:read".into(),
            resource: format!("f{i}.txt"),
            transport: "rest".into(),
            allowed: i.is_multiple_of(2),
            layer: (!i.is_multiple_of(2)).then(|| "policy".into()),
            policy_ids: vec![format!("p{i}")],
            reasons: vec![],
            elapsed_us: 7,
            policy_version: Some(1),
            shadow_version: None,
            shadow_allowed: None,
            shadow_policy_ids: None,
            plugins: None,
        }
    }

    async fn fresh_store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(crate::identity::new_id("decisions-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&format!("sqlite://{}/w.db", dir.display()))
            .await
            .unwrap();
        (store, dir)
    }

    /// Reads `ws_1`'s log back and compares it with `rows`, every column.
    async fn assert_logged(store: &Store, rows: &[DecisionRecord]) {
        let filter = DecisionFilter {
            limit: 200,
            ..DecisionFilter::default()
        };
        let mut read = query(store.pool(), "ws_1", &filter).await.unwrap();
        read.reverse();
        let json = |d: &DecisionRecord| serde_json::to_value(d).unwrap();
        let (read, rows): (Vec<_>, Vec<_>) = (
            read.iter().map(json).collect(),
            rows.iter().map(json).collect(),
        );
        assert_eq!(read, rows);
    }

    /// With the optional columns set on some rows and not on others.
    fn varied(i: usize) -> DecisionRecord {
        let mut d = record(i);
        if i.is_multiple_of(3) {
            d.shadow_version = Some(2);
            d.shadow_allowed = Some(false);
            d.shadow_policy_ids = Some(vec!["s1".into()]);
            d.plugins = Some(r#"[{"name":"path-guard","verdict":"skipped"}]"#.into());
            d.reasons = vec!["because".into()];
        }
        d
    }

    /// 85 rows take one statement of each size (64 + 16 + 4 + 1), and every row lands whole.
    #[tokio::test]
    async fn every_row_of_a_batch_is_written_in_order() {
        let (store, dir) = fresh_store().await;
        let rows: Vec<DecisionRecord> = (0..85).map(varied).collect();
        let mut conn = store.pool().acquire().await.unwrap();
        insert_all(&mut conn, store.backend(), &rows).await.unwrap();
        drop(conn);
        assert_logged(&store, &rows).await;
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The SQLite file's own writer lands the same rows, readable through the pool at once.
    #[tokio::test]
    async fn the_inline_writer_writes_the_same_rows() {
        let (store, dir) = fresh_store().await;
        let rows: Vec<DecisionRecord> = (0..85).map(varied).collect();
        let written = rows.clone();
        store
            .write_inline(move |tx| insert_all_inline(tx, &written))
            .await
            .expect("a SQLite file has an inline writer")
            .unwrap();
        assert_logged(&store, &rows).await;
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A database the previous release made and logged to keeps every decision through the
    /// table's rebuild without its primary key (migration 10).
    #[tokio::test]
    async fn decisions_logged_before_the_rebuild_survive_it() {
        let dir = std::env::temp_dir().join(crate::identity::new_id("decisions-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/w.db", dir.display());
        sqlx::any::install_default_drivers();
        let before = sqlx::AnyPool::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        let up_to_9: Vec<_> = super::super::MIGRATOR
            .iter()
            .filter(|m| m.version < 10)
            .cloned()
            .collect();
        sqlx::migrate::Migrator::with_migrations(up_to_9)
            .run(&before)
            .await
            .unwrap();
        let rows: Vec<DecisionRecord> = (0..85).map(varied).collect();
        let mut conn = before.acquire().await.unwrap();
        insert_all(&mut conn, Backend::Sqlite, &rows).await.unwrap();
        drop(conn);
        before.close().await;

        let store = Store::open(&url).await.unwrap();
        assert_logged(&store, &rows).await;
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn retention_deletes_what_is_older_and_only_that() {
        let (store, dir) = fresh_store().await;
        retention_deletes_older(&store).await;
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The same on PostgreSQL (the purge steps through workspace ids as text, under the
    /// database's collation),
    /// on a fresh database of the server the end-to-end tests use.
    #[tokio::test]
    async fn retention_deletes_what_is_older_and_only_that_on_postgresql() {
        use sqlx::Connection;
        if std::env::var("WARRANT_E2E_SKIP_POSTGRES").is_ok_and(|v| !v.is_empty() && v != "0") {
            return;
        }
        let admin = std::env::var("WARRANT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        // Named as the end-to-end harness names its databases, so its sweep removes a leftover.
        let name = format!(
            "warrant_e2e_{}_{}",
            crate::store::now_ms() / 1000,
            uuid::Uuid::new_v4().simple()
        );
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        let store = Store::open(url.as_str()).await.unwrap();
        retention_deletes_older(&store).await;
        store.pool().close().await;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }

    async fn retention_deletes_older(store: &Store) {
        let day: i64 = 86_400_000;
        let now = crate::store::now_ms();
        let cutoff = now - 30 * day;
        // At `at_ms`, in workspace `ws` (None: an org-level decision).
        let at = |i: usize, ws: Option<&str>, at_ms: i64| DecisionRecord {
            at_ms,
            workspace_id: ws.map(str::to_string),
            ..record(i)
        };
        let rows = vec![
            at(0, Some("ws_1"), cutoff - 400 * day),
            at(1, Some("ws_1"), cutoff - 1),
            // Just at the cutoff: not older.
            at(2, Some("ws_1"), cutoff),
            at(3, Some("ws_1"), cutoff + 1),
            at(4, Some("ws_2"), cutoff - day),
            at(5, Some("ws_2"), now),
            // A workspace with only old decisions (a deleted one's, say).
            at(6, Some("ws_3"), cutoff - 2),
            at(7, Some("ws_3"), cutoff - 3),
            at(8, None, cutoff - day),
            at(9, None, now),
            // Its id says now, its clock says old: the clock decides.
            DecisionRecord {
                id: crate::identity::new_ordered_id(ID_PREFIX),
                ..at(10, Some("ws_4"), cutoff - 1)
            },
        ];
        let mut tx = store.pool().begin().await.unwrap();
        insert_all(&mut tx, store.backend(), &rows).await.unwrap();
        tx.commit().await.unwrap();

        assert_eq!(purge_older_than(store.pool(), cutoff).await.unwrap(), 7);
        let mut left: Vec<String> = sqlx::query_scalar("SELECT id FROM decision_log")
            .fetch_all(store.pool())
            .await
            .unwrap();
        left.sort();
        let mut kept: Vec<String> = rows
            .iter()
            .filter(|r| r.at_ms >= cutoff)
            .map(|r| r.id.clone())
            .collect();
        kept.sort();
        assert_eq!(left, kept);
        assert_eq!(kept.len(), 4);
        // Nothing more is older.
        assert_eq!(purge_older_than(store.pool(), cutoff).await.unwrap(), 0);
    }
}
