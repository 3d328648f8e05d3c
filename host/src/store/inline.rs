//! SQLite reads on the request path, run on the calling thread.
//!
//! sqlx gives every SQLite connection a worker thread of its own, so each query is two thread
//! hand-offs: the request's task sends it to the worker and sleeps, the worker wakes, runs
//! it, and wakes the task again. Under the load benchmark those hand-offs and wake-ups were
//! the largest cost of an authorised metadata GET — more than the query itself, an indexed
//! lookup of a few microseconds. The one read every file request makes (workspace, role and
//! file) therefore runs here: on a read-only rusqlite connection to the same database file,
//! inline on the tokio worker. WAL lets it read beside sqlx's writer, and each statement sees
//! every transaction committed before it began, exactly as a pooled sqlx read would.
//!
//! Both drivers must link one and the same SQLite: SQLite shares POSIX file locks between all
//! connections to a file within one copy of the library, and a second copy in the process
//! would release the other's locks when it closed a file. rusqlite's version is chosen for the
//! `libsqlite3-sys` that sqlx-sqlite links (its `links = "sqlite3"` makes cargo refuse two).
//!
//! It never waits for a lock: a read that meets one (`SQLITE_BUSY`, rare in WAL mode) is given
//! back to the caller, which runs it through sqlx instead. An in-memory database cannot be
//! shared between connections: none then.
//!
//! One write goes here too, [`InlineWriter`]: the decision log's batches, a row per decision
//! of every request. Through sqlx each batch was multi-row `INSERT`s whose every value was
//! converted twice (to sqlx's driver-neutral arguments, then to SQLite's) and sent to the
//! connection's thread; here it is one prepared single-row statement run per row in one
//! transaction, on the log writer's own connection. Every other write stays with sqlx; SQLite
//! serializes the writers (each waits for the other up to the busy timeout).

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, ffi::ErrorCode};

pub(crate) use super::columns::InlineRow;

/// Idle connections kept for reuse; more may be open while more threads read at once.
const IDLE_CONNECTIONS: usize = 8;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 16;

/// Read-only connections to a SQLite file, used on the caller's thread.
pub(crate) struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl InlineReader {
    /// A reader of the SQLite file at `path`.
    pub(crate) fn new(path: PathBuf) -> Self {
        InlineReader {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `sql` with the named `params` and maps its first row, if any, with `map`. None
    /// when the database was busy: the caller then reads through sqlx.
    pub(crate) fn query_row<T>(
        &self,
        sql: &str,
        params: &[(&str, &str)],
        map: impl FnOnce(&InlineRow<'_>) -> Result<T, sqlx::Error>,
    ) -> Option<Result<Option<T>, sqlx::Error>> {
        let conn = match self.take() {
            Ok(conn) => conn,
            Err(e) => return busy_or(e),
        };
        let answer = (|| {
            let mut statement = conn.prepare_cached(sql)?;
            let mut rows = statement.query(params)?;
            Ok::<_, rusqlite::Error>(rows.next()?.map(|row| map(&InlineRow::new(row))))
        })();
        let answer = match answer {
            Ok(mapped) => Some(mapped.transpose()),
            Err(e) => busy_or(e),
        };
        self.give_back(conn);
        answer
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The default; stated because never blocking the request's thread depends on it.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_CONNECTIONS
        {
            idle.push(conn);
        }
    }
}

/// A read-write connection of its own for batched appends (see the module doc).
pub(crate) struct InlineWriter {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

impl InlineWriter {
    pub(crate) fn new(path: PathBuf) -> Self {
        InlineWriter {
            path,
            conn: Mutex::new(None),
        }
    }

    /// Runs `work` in one immediate transaction (blocking: call it off the async runtime).
    /// A failed connection is dropped and opened again next time.
    pub(crate) fn transaction<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, sqlx::Error> {
        let mut slot = self
            .conn
            .lock()
            .map_err(|_| sqlx::Error::Protocol("inline SQLite writer: poisoned lock".into()))?;
        let outcome = (|| {
            let conn = match slot.as_mut() {
                Some(conn) => conn,
                None => slot.insert(self.open()?),
            };
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let value = work(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        outcome.map_err(|e: rusqlite::Error| {
            *slot = None;
            sqlx::Error::Protocol(format!("inline SQLite write: {e}"))
        })
    }

    /// With the same settings as the pool's connections.
    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch(super::SQLITE_SETTINGS)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

/// None (read through sqlx) for a busy or locked database, else the error.
fn busy_or<T>(e: rusqlite::Error) -> Option<Result<T, sqlx::Error>> {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => None,
        _ => Some(Err(sqlx::Error::Protocol(format!(
            "inline SQLite read: {e}"
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::columns::Columns;

    /// A fresh WAL database with one row, in a folder of its own.
    fn database() -> PathBuf {
        let dir = std::env::temp_dir().join(crate::identity::new_id("inline-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("inline.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); \
             INSERT INTO t VALUES ('a', 1);",
        )
        .unwrap();
        path
    }

    fn read(reader: &InlineReader, k: &str) -> Option<Result<Option<i64>, sqlx::Error>> {
        reader.query_row("SELECT v FROM t WHERE k = $1", &[("$1", k)], |r| r.int("v"))
    }

    #[test]
    fn reads_what_was_committed_before_it_began() {
        let path = database();
        let reader = InlineReader::new(path.clone());
        assert_eq!(read(&reader, "a").unwrap().unwrap(), Some(1));
        assert_eq!(read(&reader, "b").unwrap().unwrap(), None);
        // A write by another connection is seen by the next read on the idle connection.
        let writer = Connection::open(&path).unwrap();
        writer
            .execute("UPDATE t SET v = 2 WHERE k = 'a'", [])
            .unwrap();
        assert_eq!(read(&reader, "a").unwrap().unwrap(), Some(2));
    }

    #[test]
    fn a_locked_database_is_handed_back_not_waited_for() {
        let path = database();
        // An exclusive transaction keeps WAL readers out: the read must not wait for it.
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE t SET v = 3;")
            .unwrap();
        let reader = InlineReader::new(path);
        assert!(read(&reader, "a").is_none(), "a busy read is handed back");
    }

    #[test]
    fn columns_are_found_by_their_exact_name() {
        let reader = InlineReader::new(database());
        let both = reader.query_row("SELECT k, v FROM t", &[], |r| {
            Ok((r.text("k")?, r.int("v")?))
        });
        assert_eq!(both.unwrap().unwrap(), Some(("a".to_string(), 1)));
        let missing = reader.query_row("SELECT k FROM t", &[], |r| r.int("v"));
        assert!(
            matches!(missing, Some(Err(sqlx::Error::ColumnNotFound(ref c))) if c == "v"),
            "{missing:?}"
        );
    }

    #[test]
    fn a_missing_table_is_an_error_not_a_fallback() {
        let reader = InlineReader::new(database());
        let answer = reader.query_row("SELECT v FROM nowhere", &[], |_| Ok(()));
        assert!(matches!(answer, Some(Err(_))));
    }
}
