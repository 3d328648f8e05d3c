//! Changes every replica must hear at once. Each process remembers what it verified (whom a
//! PAT or an OAuth token belongs to, the OAuth deny-list, the signing keys) to keep the
//! database off the request path. The process that revokes, deletes or rotates forgets its
//! own copy at once; with PostgreSQL it also says so on a LISTEN/NOTIFY channel once the
//! change is committed, and every replica forgets and reloads as soon as it hears — instead
//! of trusting its copy until it expires (seconds for PATs, minutes for a token's principal).
//!
//! A replica whose listening connection drops may have missed a message: it forgets
//! everything then too, and listens again. A SQLite file is served by one process, so there
//! is nobody to tell.

use std::time::Duration;

use sqlx::postgres::PgListener;

use super::{Backend, Store};

/// The channel, the same on every replica.
const CHANNEL: &str = "warrant_changes";
/// The payload: credentials (tokens, principals, org limits, OAuth deny-list, keys) changed.
const CREDENTIALS: &str = "credentials";
/// How long to wait before listening again after the database refused.
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl Store {
    /// Tells every replica (this one included) that credentials changed. Nothing to tell on
    /// SQLite, served by one process.
    pub async fn announce_credentials_changed(&self) -> Result<(), sqlx::Error> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(CREDENTIALS)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// What announces changes to this process: None on SQLite.
    pub async fn listen_for_changes(&self) -> Result<Option<ChangeListener>, sqlx::Error> {
        let Some(url) = self.postgres_url.as_deref() else {
            return Ok(None);
        };
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(ChangeListener {
            listener,
            failed: false,
        }))
    }
}

/// A connection listening on the channel (it reconnects, and listens again, by itself).
pub struct ChangeListener {
    listener: PgListener,
    /// The last wait failed: pause before the next, so a database that is down is not
    /// hammered (after saying at once that something may have been missed).
    failed: bool,
}

impl ChangeListener {
    /// Returns when another process announced that credentials changed, or when one may
    /// have been missed (the connection dropped or failed; each cause is logged here): the
    /// caller forgets and reloads either way.
    pub async fn next(&mut self) {
        if std::mem::take(&mut self.failed) {
            tokio::time::sleep(RETRY_AFTER).await;
        }
        match self.listener.try_recv().await {
            Ok(Some(n)) if n.payload() == CREDENTIALS => {}
            Ok(Some(n)) => {
                // From a newer replica, perhaps: forgetting everything is always safe.
                tracing::warn!(payload = n.payload(), "unknown change announced");
            }
            Ok(None) => {
                tracing::warn!("the change listener lost its connection; listening again");
            }
            Err(e) => {
                tracing::warn!(error = %e, "the change listener failed; listening again");
                self.failed = true;
            }
        }
    }
}
