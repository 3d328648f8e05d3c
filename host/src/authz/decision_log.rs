//! Writes every decision to the decision log off the request path: requests hand records to a
//! bounded queue and never wait; one task writes them in batches. When the queue is full the
//! record is dropped and counted (see `/metrics`), never blocking or failing a request.
//! A second task deletes records older than the retention period.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::store::Store;
use crate::store::decisions::{self, DecisionRecord};

/// Counters of the decision log, for `/metrics`.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Records written.
    pub written: AtomicU64,
    /// Records dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Records lost to a database error.
    pub failed: AtomicU64,
}

/// The decision log's front door.
pub struct DecisionLog {
    tx: mpsc::Sender<DecisionRecord>,
    stats: Arc<LogStats>,
    shutdown: Arc<Notify>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// How many records one database transaction writes at most.
const BATCH: usize = 4096;
/// How long the writer gathers records after the first one before it writes them. Each
/// transaction is a WAL commit and several trips to the database's connection thread; writing
/// whatever had queued at once made, under load, a transaction per handful of records, and
/// the log cost a quarter of the server's CPU. The writer sleeps meanwhile instead of waiting
/// on the queue, because a waiting receiver is woken by every record sent: a task wake-up,
/// often a thread's, per request. A record reaches the database at most this much later;
/// shutdown still writes everything queued. A transaction's cost is mostly per page it
/// dirties, and a batch dirties a leaf of the per-workspace index for every workspace it
/// touches, however few rows it holds there: 100 ms rather than 20 ms of a 20 000 req/s load
/// over 116 workspaces costs 14 rather than 21 µs a row (`cargo bench --bench decision_log`).
const GATHER: Duration = Duration::from_millis(100);

impl DecisionLog {
    /// Starts the writer and the retention task.
    pub fn start(store: Store, capacity: usize, retention_days: i64) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stats = Arc::new(LogStats::default());
        let shutdown = Arc::new(Notify::new());
        let writer = tokio::spawn(write_loop(
            store.clone(),
            rx,
            stats.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(retention_loop(store, retention_days));
        DecisionLog {
            tx,
            stats,
            shutdown,
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Queues a record; never waits.
    pub fn record(&self, record: DecisionRecord) {
        if self.tx.try_send(record).is_err() {
            let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Say so in the log, without flooding it.
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "decision log queue full: records dropped");
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> &LogStats {
        &self.stats
    }

    /// Writes what is queued and stops the writer (at shutdown).
    pub async fn close(&self) {
        self.shutdown.notify_one();
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<DecisionRecord>,
    stats: Arc<LogStats>,
    shutdown: Arc<Notify>,
) {
    let mut closing = false;
    let mut full = false;
    loop {
        let first = if closing {
            match rx.try_recv() {
                Ok(r) => r,
                Err(_) => return,
            }
        } else {
            tokio::select! {
                r = rx.recv() => match r { Some(r) => r, None => return },
                () = shutdown.notified() => { closing = true; continue; }
            }
        };
        // After a full batch more is queued already: write it without gathering.
        if !closing && !full {
            tokio::select! {
                () = tokio::time::sleep(GATHER) => {}
                () = shutdown.notified() => closing = true,
            }
        }
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        full = batch.len() == BATCH;
        let n = batch.len() as u64;
        match write_batch(&store, batch).await {
            Ok(()) => {
                stats.written.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                stats.failed.fetch_add(n, Ordering::Relaxed);
                tracing::error!(error = %e, records = n, "could not write to the decision log");
            }
        }
    }
}

/// Writes a batch in one transaction: on a SQLite file through the log's own connection
/// (`store::inline`), elsewhere through the pool. Public for the decision-log bench.
pub async fn write_batch(store: &Store, batch: Vec<DecisionRecord>) -> Result<(), sqlx::Error> {
    let batch = Arc::new(batch);
    let rows = batch.clone();
    if let Some(outcome) = store
        .write_inline(move |tx| decisions::insert_all_inline(tx, &rows))
        .await
    {
        return outcome;
    }
    let mut tx = store.pool().begin().await?;
    decisions::insert_all(&mut tx, store.backend(), &batch).await?;
    tx.commit().await
}

async fn retention_loop(store: Store, retention_days: i64) {
    // First a minute after start (short-lived admin commands never purge), then hourly.
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(60),
        Duration::from_secs(3600),
    );
    loop {
        tick.tick().await;
        let cutoff = crate::store::now_ms() - retention_days.max(1) * 86_400_000;
        match decisions::purge_older_than(store.pool(), cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "decision log retention"),
            Err(e) => tracing::warn!(error = %e, "decision log retention failed"),
        }
    }
}
