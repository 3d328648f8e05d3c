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
    let mut rest = rows;
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
    for d in rows {
        statement.execute(rusqlite::params_from_iter(values(d)))?;
    }
    Ok(())
}

/// Runs one of [`INSERTS`] with `rows` bound.
async fn insert_rows<'c>(
    db: impl AnyExecutor<'c>,
    sql: &'static str,
    rows: &[DecisionRecord],
) -> Result<(), sqlx::Error> {
    let rows: Vec<[Value<'_>; PER_ROW]> = rows.iter().map(values).collect();
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
/// primary key: ids are time-ordered, so no index on the time is written with every row only
/// for this hourly purge. The time is checked as well, so an id made
/// while the clock stood elsewhere is never deleted early.
pub async fn purge_older_than<'c>(
    db: impl AnyExecutor<'c>,
    before_ms: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM decision_log WHERE id < $1 AND at_ms < $2")
        .bind(crate::identity::ordered_id_floor(ID_PREFIX, before_ms))
        .bind(before_ms)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
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

    /// A decision made at `id_ms` by its id and logged at `at_ms` by its clock.
    fn made_at(id_ms: u64, at_ms: i64) -> DecisionRecord {
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            id_ms / 1000,
            (id_ms % 1000) as u32 * 1_000_000,
        );
        DecisionRecord {
            id: format!("{ID_PREFIX}_{}", uuid::Uuid::new_v7(ts).simple()),
            at_ms,
            ..record(0)
        }
    }

    #[tokio::test]
    async fn retention_deletes_what_is_older_and_only_that() {
        let (store, dir) = fresh_store().await;
        retention_deletes_older(&store).await;
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The same on PostgreSQL (the purge compares ids as text, under the database's collation),
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
        let old = |ms: i64| made_at(ms as u64, ms);
        let rows = vec![
            old(cutoff - 400 * day),
            old(cutoff - 1),
            // Made just at the cutoff: not older.
            old(cutoff),
            old(cutoff + 1),
            // Its id says old, its clock does not: kept.
            made_at((cutoff - day) as u64, cutoff + day),
            DecisionRecord {
                id: crate::identity::new_ordered_id(ID_PREFIX),
                at_ms: now,
                ..record(1)
            },
        ];
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut tx = store.pool().begin().await.unwrap();
        insert_all(&mut tx, store.backend(), &rows).await.unwrap();
        tx.commit().await.unwrap();

        assert_eq!(purge_older_than(store.pool(), cutoff).await.unwrap(), 2);
        let mut left: Vec<String> = sqlx::query_scalar("SELECT id FROM decision_log")
            .fetch_all(store.pool())
            .await
            .unwrap();
        left.sort();
        let mut kept = ids[2..].to_vec();
        kept.sort();
        assert_eq!(left, kept);
    }
}
