//! Reads remembered until this process next commits a write to its SQLite file.
//!
//! Every file request reads the workspace, the caller's role in it and the file, and under the
//! load benchmark that read was the largest cost on the path that Warrant owns (~17 % of the
//! server's CPU, most of it SQLite beginning and ending a read transaction). Remembering it is
//! only sound if nothing read before a write is given after it: a stale membership or role
//! would grant access. Having every write site say what it changed would rest on each one
//! remembering to; SQLite says it instead. Every connection of the pool runs
//! [`CommitWatch::sql`] when it opens, which hangs three hooks on it:
//! - the commit hook, called just before a write transaction commits: the commit is *in
//!   flight*, and the generation moves;
//! - the WAL hook, called once the commit is in the WAL and its lock released: the generation
//!   moves again, and the commit is no longer in flight. (It replaces SQLite's own WAL hook,
//!   so it also checkpoints once the WAL holds [`WAL_AUTOCHECKPOINT_FRAMES`], as that one
//!   does.)
//! - the rollback hook: a transaction that was committing and rolled back instead is no
//!   longer in flight.
//!
//! A read is remembered only if no commit was in flight when it began and the generation has
//! not moved since ([`Ticket`]); a remembered read is given only while the generation is the
//! one it was read at. So a read is never given after a commit that began after it, and a read
//! that may have begun beside a commit not yet visible is not remembered. A commit whose end
//! SQLite does not report (one that wrote nothing, or whose statement was reset before it
//! finished) stays in flight until the next commit on the file begins — nothing is remembered
//! meanwhile: slower, never stale.
//!
//! The hooks can only be hung from C on a connection's handle, which sqlx's `Any` driver does
//! not hand out: the first [`CommitWatch`] registers an SQL function on every SQLite
//! connection the process opens from then on (`sqlite3_auto_extension`), and the pool's
//! connections call it.
//!
//! Not watched: the decision log's own connection ([`super::inline::InlineWriter`]): it writes
//! only the log, which no remembered read holds, and commits every few milliseconds under load.
//! Other processes are not seen at all: a SQLite file is served by one process (`serve` locks
//! it), and the CLI writes only tokens and signing keys. For writes made behind the server's
//! back anyway (SQL by hand), a remembered read is trusted at most [`TRUST_SECS`], the bound a
//! cached credential has.

// The hooks are SQLite's C API; nothing else here is unsafe.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock, RwLock};

use rusqlite::ffi;

/// Frames in the WAL past which a commit checkpoints it: SQLite's default, which its own WAL
/// hook (replaced by ours) applies.
const WAL_AUTOCHECKPOINT_FRAMES: c_int = 1000;

/// How long a remembered read is trusted at most, in seconds, if no commit moves it on.
const TRUST_SECS: i64 = 5;

/// The commits of one database's watched connections.
pub(crate) struct CommitWatch {
    /// Its index in [`WATCHES`], which the SQL function is called with.
    id: usize,
    /// Moves at the start and at the end of every watched commit.
    generation: AtomicU64,
    /// The connection (its [`Hooked`] address) whose commit is in flight; 0 for none. One at
    /// most: a commit holds the database's write lock.
    committing: AtomicUsize,
}

/// Every watch made in this process, by id. A watch lives as long as the process: a few
/// words per database opened (one for a server).
static WATCHES: Mutex<Vec<&'static CommitWatch>> = Mutex::new(Vec::new());

/// What a watched connection's hooks are given: its watch. Its address tells the connection
/// apart; SQLite frees it when the connection closes.
struct Hooked {
    watch: &'static CommitWatch,
}

impl CommitWatch {
    /// A new watch; None if the process could not register the SQL function that hangs it.
    pub(crate) fn new() -> Option<&'static CommitWatch> {
        if !registered_in_this_process() {
            return None;
        }
        let mut watches = WATCHES.lock().ok()?;
        let watch: &'static CommitWatch = Box::leak(Box::new(CommitWatch {
            id: watches.len(),
            generation: AtomicU64::new(0),
            committing: AtomicUsize::new(0),
        }));
        watches.push(watch);
        Some(watch)
    }

    /// What a connection of this database runs when it opens (after its settings) to be
    /// watched.
    pub(crate) fn sql(&self) -> String {
        format!("SELECT warrant_watch_commits({})", self.id)
    }

    /// A commit of `conn` begins. It holds the database's write lock (Warrant writes no
    /// temporary tables, the one write that does not take it), so a commit that began before
    /// is over, whether SQLite reported its end or not (one that wrote nothing, or whose
    /// statement was reset unfinished).
    fn commit_begins(&self, conn: usize) {
        self.committing.store(conn, SeqCst);
        self.generation.fetch_add(1, SeqCst);
    }

    /// The commit of `conn` (if it is the one in flight) is over. The generation moves before
    /// it stops counting, so whoever sees it ended sees the new generation.
    fn commit_over(&self, conn: usize) {
        self.generation.fetch_add(1, SeqCst);
        let _ = self.committing.compare_exchange(conn, 0, SeqCst, SeqCst);
    }
}

/// Registers `warrant_watch_commits(id)` on every SQLite connection this process opens from
/// now on; false if SQLite refused.
fn registered_in_this_process() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: `register` has the signature SQLite calls auto-extensions with.
        unsafe { ffi::sqlite3_auto_extension(Some(register)) == ffi::SQLITE_OK }
    })
}

/// The auto-extension: defines `warrant_watch_commits(id)` on a new connection. Only a direct
/// call may use it (not a trigger or a view).
unsafe extern "C" fn register(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: `db` is the connection being opened; the name is a C string literal.
    unsafe {
        ffi::sqlite3_create_function_v2(
            db,
            c"warrant_watch_commits".as_ptr(),
            1,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DIRECTONLY,
            std::ptr::null_mut(),
            Some(watch),
            None,
            None,
            None,
        )
    }
}

/// `warrant_watch_commits(id)`: hangs watch `id`'s hooks on the connection that calls it.
unsafe extern "C" fn watch(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite passes `argc` (1, as registered) live values in `argv` and the live call's
    // context. The `Hooked` box is owned by the connection: SQLite frees it (`forget`) when the
    // connection closes or the function is defined again — in which case the hooks are set to
    // the new box at once, on this thread, before any can run.
    unsafe {
        let id = (argc == 1)
            .then(|| ffi::sqlite3_value_int64(*argv))
            .and_then(|id| usize::try_from(id).ok());
        let watch = id.and_then(|id| WATCHES.lock().ok()?.get(id).copied());
        let Some(watch) = watch else {
            ffi::sqlite3_result_error(ctx, c"no such commit watch".as_ptr(), -1);
            return;
        };
        let db = ffi::sqlite3_context_db_handle(ctx);
        let hooked = Box::into_raw(Box::new(Hooked { watch })).cast::<c_void>();
        let rc = ffi::sqlite3_create_function_v2(
            db,
            c"warrant_watched".as_ptr(),
            0,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DIRECTONLY,
            hooked,
            Some(watched),
            None,
            None,
            Some(forget),
        );
        if rc != ffi::SQLITE_OK {
            // SQLite called `forget` on it already.
            ffi::sqlite3_result_error(ctx, c"could not watch the connection".as_ptr(), -1);
            return;
        }
        ffi::sqlite3_commit_hook(db, Some(commit_begins), hooked);
        ffi::sqlite3_rollback_hook(db, Some(commit_abandoned), hooked);
        ffi::sqlite3_wal_hook(db, Some(commit_ended), hooked);
        ffi::sqlite3_result_int(ctx, 1);
    }
}

/// `warrant_watched()`: 1, on a watched connection (it exists to own the hooks' `Hooked`).
unsafe extern "C" fn watched(
    ctx: *mut ffi::sqlite3_context,
    _argc: c_int,
    _argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: the live call's context.
    unsafe { ffi::sqlite3_result_int(ctx, 1) }
}

unsafe extern "C" fn forget(hooked: *mut c_void) {
    // SAFETY: made by `Box::into_raw` in `watch`; SQLite calls this once.
    drop(unsafe { Box::from_raw(hooked.cast::<Hooked>()) });
}

/// The watch behind a hook's argument.
fn watch_of(hooked: *mut c_void) -> &'static CommitWatch {
    // SAFETY: the hooks are given a live `Hooked` (see `watch`).
    unsafe { (*hooked.cast::<Hooked>()).watch }
}

unsafe extern "C" fn commit_begins(hooked: *mut c_void) -> c_int {
    watch_of(hooked).commit_begins(hooked as usize);
    0 // go on with the commit
}

unsafe extern "C" fn commit_abandoned(hooked: *mut c_void) {
    watch_of(hooked).commit_over(hooked as usize);
}

unsafe extern "C" fn commit_ended(
    hooked: *mut c_void,
    db: *mut ffi::sqlite3,
    schema: *const c_char,
    frames: c_int,
) -> c_int {
    watch_of(hooked).commit_over(hooked as usize);
    if frames >= WAL_AUTOCHECKPOINT_FRAMES {
        // SAFETY: SQLite's own WAL hook makes this call with these arguments. Its outcome is
        // ignored as there (a checkpoint that could not finish is tried at the next commit).
        unsafe { ffi::sqlite3_wal_checkpoint(db, schema) };
    }
    ffi::SQLITE_OK
}

/// Taken before a read: it may be remembered only if nothing committed since.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

/// The most reads remembered; past it the memory starts over.
const CAPACITY: usize = 16_384;

/// Reads of one database by key, all of one generation of its watch.
pub(crate) struct Remembered<V> {
    watch: &'static CommitWatch,
    inner: RwLock<Generation<V>>,
}

struct Generation<V> {
    generation: u64,
    reads: HashMap<String, (i64, V)>,
}

impl<V: Clone> Remembered<V> {
    pub(crate) fn new(watch: &'static CommitWatch) -> Self {
        Remembered {
            watch,
            inner: RwLock::new(Generation {
                generation: u64::MAX,
                reads: HashMap::new(),
            }),
        }
    }

    /// Taken before a read; None while a commit is in flight (a read now might not see it).
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        let generation = self.watch.generation.load(SeqCst);
        (self.watch.committing.load(SeqCst) == 0).then_some(Ticket(generation))
    }

    /// What was read under `key` if nothing has committed since, and not too long ago.
    pub(crate) fn get(&self, key: &str, now: i64) -> Option<V> {
        let inner = self.inner.read().ok()?;
        if inner.generation != self.watch.generation.load(SeqCst) {
            return None;
        }
        let (at, value) = inner.reads.get(key)?;
        (now.saturating_sub(*at) < TRUST_SECS).then(|| value.clone())
    }

    /// Remembers `value`, read under `key` at `now` after `ticket` was taken, unless something
    /// committed in between.
    pub(crate) fn put(&self, ticket: Ticket, key: String, now: i64, value: V) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        if self.watch.generation.load(SeqCst) != ticket.0 {
            return;
        }
        if inner.generation != ticket.0 || inner.reads.len() >= CAPACITY {
            inner.reads.clear();
            inner.generation = ticket.0;
        }
        inner.reads.insert(key, (now, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;
    use std::path::{Path, PathBuf};

    /// A fresh WAL database in a folder of its own, and a watch for it.
    fn database() -> (PathBuf, &'static CommitWatch) {
        let watch = CommitWatch::new().expect("SQLite registers the watch");
        let dir = std::env::temp_dir().join(crate::identity::new_id("remembered-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("remembered.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);",
        )
        .unwrap();
        (path, watch)
    }

    fn watched(path: &Path, watch: &CommitWatch) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.query_row(&watch.sql(), [], |_| Ok(())).unwrap();
        conn
    }

    #[test]
    fn a_watched_commit_forgets_what_was_read_before_it() {
        let (path, watch) = database();
        let writer = watched(&path, watch);
        let remembered = Remembered::<i64>::new(watch);
        let ticket = remembered.ticket().expect("no commit in flight");
        remembered.put(ticket, "a".into(), 0, 1);
        assert_eq!(remembered.get("a", 0), Some(1));
        writer.execute("INSERT INTO t VALUES ('a', 2)", []).unwrap();
        assert_eq!(
            remembered.get("a", 0),
            None,
            "the commit moved the generation"
        );
        // What was read before a commit is not remembered after it.
        remembered.put(ticket, "a".into(), 0, 1);
        assert_eq!(remembered.get("a", 0), None);
        // Explicit transactions too; a rolled-back one leaves nothing in flight.
        let ticket = remembered.ticket().expect("the commit ended");
        writer
            .execute_batch("BEGIN; UPDATE t SET v = 4; ROLLBACK;")
            .unwrap();
        assert!(
            remembered.ticket().is_some(),
            "nothing in flight after a rollback"
        );
        writer
            .execute_batch("BEGIN; UPDATE t SET v = 5; COMMIT;")
            .unwrap();
        remembered.put(ticket, "a".into(), 0, 2);
        assert_eq!(remembered.get("a", 0), None);
        let ticket = remembered.ticket().expect("the commits ended");
        remembered.put(ticket, "a".into(), 0, 5);
        assert_eq!(remembered.get("a", 0), Some(5));
    }

    #[test]
    fn writes_of_connections_not_watched_are_not_seen() {
        // Why the decision log's own connection is left unwatched: its commits do not
        // forget what was read. (Which is why only that connection may be left so.)
        let (path, watch) = database();
        let remembered = Remembered::<i64>::new(watch);
        remembered.put(remembered.ticket().unwrap(), "a".into(), 0, 1);
        let other = Connection::open(&path).unwrap();
        other.execute("INSERT INTO t VALUES ('a', 2)", []).unwrap();
        assert_eq!(remembered.get("a", 0), Some(1));
        // Another database's watched writes are not this one's either.
        let (other_path, other_watch) = database();
        watched(&other_path, other_watch)
            .execute("INSERT INTO t VALUES ('b', 2)", [])
            .unwrap();
        assert_eq!(remembered.get("a", 0), Some(1));
    }

    #[test]
    fn a_commit_in_flight_stops_reads_being_remembered() {
        let (path, watch) = database();
        let writer = watched(&path, watch);
        let remembered = Remembered::<i64>::new(watch);
        // A commit whose end SQLite does not report: the statement that commits (in
        // autocommit mode, with RETURNING) is reset after its first row, before it finished.
        {
            let mut statement = writer
                .prepare("INSERT INTO t VALUES ('x', 1), ('y', 2) RETURNING v")
                .unwrap();
            let mut rows = statement.query([]).unwrap();
            rows.next().unwrap();
        }
        assert!(
            remembered.ticket().is_none(),
            "a commit not known to have ended is in flight"
        );
        // That connection's next commit that ends ends it.
        writer.execute("UPDATE t SET v = 3", []).unwrap();
        assert!(remembered.ticket().is_some());
    }

    #[test]
    fn a_commit_that_changed_nothing_does_not_keep_reads_from_being_remembered() {
        let (path, watch) = database();
        let writer = watched(&path, watch);
        let remembered = Remembered::<i64>::new(watch);
        writer
            .execute("DELETE FROM t WHERE k = 'none'", [])
            .unwrap();
        let stuck = remembered.ticket().is_none();
        // Whatever SQLite reported, the next commit of another connection ends it: that one
        // held the database's write lock, so every commit before it is over.
        let other = watched(&path, watch);
        other.execute("INSERT INTO t VALUES ('z', 1)", []).unwrap();
        assert!(
            remembered.ticket().is_some(),
            "stuck after the empty commit: {stuck}"
        );
    }

    #[test]
    fn a_remembered_read_is_trusted_for_a_bounded_time() {
        let (_, watch) = database();
        let remembered = Remembered::<i64>::new(watch);
        remembered.put(remembered.ticket().unwrap(), "k".into(), 100, 7);
        assert_eq!(remembered.get("k", 100 + TRUST_SECS - 1), Some(7));
        assert_eq!(remembered.get("k", 100 + TRUST_SECS), None);
    }

    #[test]
    fn the_watch_still_checkpoints_the_wal() {
        let (path, watch) = database();
        let writer = watched(&path, watch);
        for i in 0..1500 {
            writer
                .execute("INSERT INTO t VALUES (?1, ?1)", [i.to_string()])
                .unwrap();
        }
        // A commit appends a frame or two; checkpointed at 1000 frames, the WAL was restarted
        // and holds only what came after.
        let wal = std::fs::metadata(path.with_extension("db-wal"))
            .unwrap()
            .len();
        let frame = 4096 + 24;
        assert!(wal < 1200 * frame, "the WAL holds {} frames", wal / frame);
    }
}
