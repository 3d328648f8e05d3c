//! Temporary locks on files and folders, so agents and people editing side by side do not
//! overwrite each other. While a lock is live, writes, moves and deletes under it need its
//! `Lock-Token`, which only its holder has.

use serde::Serialize;

use super::Warrant;
use crate::authz::{Action, Caller, ResourceFacts};
use crate::files::{FilePath, FolderPrefix};
use crate::identity::WorkspaceId;
use crate::store::locks::Lock;
use crate::store::{self, now_ms};
use crate::{Error, Result};

/// The shortest and longest lock lifetimes, in seconds.
pub const TTL_RANGE: std::ops::RangeInclusive<i64> = 1..=3600;

/// A lock as shown over the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LockView {
    /// The lock id, which is also the `Lock-Token` to pass on writes.
    pub lock_id: String,
    /// The locked path (a folder when it ends in `/`).
    pub path: String,
    /// Who holds it.
    pub holder: String,
    /// RFC 3339, to the second.
    pub expires_at: String,
}

fn ms_to_rfc3339(ms: i64) -> String {
    super::rfc3339(ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) > 0))
}

fn view(l: &Lock) -> LockView {
    LockView {
        lock_id: l.lock_id.clone(),
        path: l.path.clone(),
        holder: l.holder_id.clone(),
        expires_at: ms_to_rfc3339(l.expires_at_ms),
    }
}

fn locked(l: &Lock) -> Error {
    Error::Locked {
        path: l.path.clone(),
        holder: l.holder_id.clone(),
        expires_at: ms_to_rfc3339(l.expires_at_ms),
    }
}

/// A lock path: a file path, or a folder ending in `/`.
fn lock_path(path: &str) -> Result<String> {
    if path.ends_with('/') {
        let p = FolderPrefix::parse(path)?;
        if p.as_str().is_empty() {
            return Err(Error::InvalidPath(
                "lock a file or a folder, not the whole workspace".into(),
            ));
        }
        Ok(p.as_str().to_string())
    } else {
        Ok(FilePath::parse(path)?.as_str().to_string())
    }
}

fn check_ttl(ttl_seconds: i64) -> Result<()> {
    if TTL_RANGE.contains(&ttl_seconds) {
        Ok(())
    } else {
        Err(Error::Unprocessable(format!(
            "ttl_seconds must be between {} and {}",
            TTL_RANGE.start(),
            TTL_RANGE.end()
        )))
    }
}

impl Warrant {
    /// Takes a lock; 423 when the path, a folder above it or (for a folder) a path below it
    /// is locked already.
    pub async fn acquire_lock(
        &self,
        caller: &Caller,
        ws: &str,
        path: &str,
        ttl_seconds: i64,
    ) -> Result<LockView> {
        let ws = WorkspaceId(ws.to_string());
        let path = lock_path(path)?;
        check_ttl(ttl_seconds)?;
        self.workspace_access(
            caller,
            &ws,
            Action::LockFile,
            Some(&path),
            &ResourceFacts::default(),
        )
        .await?;
        let lock = self.take_lock(caller, &ws, &path, ttl_seconds).await?;
        self.audit(
            caller,
            "lock.acquire",
            &format!("{ws}/{path}"),
            Some(lock.lock_id.clone()),
        )
        .await;
        Ok(view(&lock))
    }

    /// Looks for a live overlapping lock (on the path, a folder above it, or for a folder
    /// anything below it) and inserts ours if there is none, as one step: the transaction's
    /// first write locks the workspace's row (PostgreSQL) or the database (SQLite) until it
    /// commits, so acquirers in one workspace take turns and each sees the locks taken before
    /// it. (Inserting first and yielding to the older of two overlapping locks, as this did
    /// before, let two acquirers both win: one whose look ran before the other's insert, and
    /// the other whose timestamp, taken before its insert, made it the "older".)
    async fn take_lock(
        &self,
        caller: &Caller,
        ws: &WorkspaceId,
        path: &str,
        ttl_seconds: i64,
    ) -> Result<Lock> {
        let mut tx = self.store.pool().begin().await?;
        store::workspaces::take_turn(&mut *tx, ws).await?;
        let now = now_ms();
        store::locks::purge_expired_at(&mut *tx, ws.as_str(), path, now).await?;
        let mut held = store::locks::covering(&mut *tx, ws.as_str(), path, now).await?;
        if path.ends_with('/') {
            held.extend(store::locks::below(&mut *tx, ws.as_str(), path, now).await?);
        }
        if let Some(oldest) = held.iter().min_by_key(|l| (l.created_at_ms, &l.lock_id)) {
            return Err(locked(oldest));
        }
        let lock = Lock {
            lock_id: crate::identity::new_id("lck"),
            workspace_id: ws.0.clone(),
            path: path.to_string(),
            holder_id: caller.principal.id.0.clone(),
            created_at_ms: now,
            expires_at_ms: now + ttl_seconds * 1000,
        };
        if !store::locks::insert(&mut *tx, &lock).await? {
            // Cannot happen while acquirers take turns; never report a lock we did not take.
            return Err(Error::Conflict(format!("{path} is contended; try again")));
        }
        tx.commit().await?;
        Ok(lock)
    }

    /// Extends a lock the caller holds.
    pub async fn renew_lock(
        &self,
        caller: &Caller,
        ws: &str,
        lock_id: &str,
        ttl_seconds: i64,
    ) -> Result<LockView> {
        let ws = WorkspaceId(ws.to_string());
        check_ttl(ttl_seconds)?;
        let lock = self.live_lock(&ws, lock_id).await?;
        self.workspace_access(
            caller,
            &ws,
            Action::LockFile,
            Some(&lock.path),
            &ResourceFacts::default(),
        )
        .await?;
        if lock.holder_id != caller.principal.id.0 {
            return Err(locked(&lock));
        }
        let now = now_ms();
        let expires = now + ttl_seconds * 1000;
        if !store::locks::renew(self.store.pool(), ws.as_str(), lock_id, now, expires).await? {
            return Err(Error::NotFound("lock"));
        }
        Ok(view(&Lock {
            expires_at_ms: expires,
            ..lock
        }))
    }

    /// Releases a lock: its holder may, and so may a workspace admin (breaking it).
    pub async fn release_lock(&self, caller: &Caller, ws: &str, lock_id: &str) -> Result<()> {
        let ws = WorkspaceId(ws.to_string());
        let lock = self.live_lock(&ws, lock_id).await?;
        let action = if lock.holder_id == caller.principal.id.0 {
            Action::LockFile
        } else {
            Action::BreakLock
        };
        self.workspace_access(
            caller,
            &ws,
            action,
            Some(&lock.path),
            &ResourceFacts::default(),
        )
        .await?;
        store::locks::delete(self.store.pool(), ws.as_str(), lock_id).await?;
        let what = if action == Action::BreakLock {
            "lock.break"
        } else {
            "lock.release"
        };
        self.audit(
            caller,
            what,
            &format!("{ws}/{}", lock.path),
            Some(lock.lock_id),
        )
        .await;
        Ok(())
    }

    /// A workspace's live locks.
    pub async fn list_locks(&self, caller: &Caller, ws: &str) -> Result<Vec<LockView>> {
        let ws = WorkspaceId(ws.to_string());
        self.workspace_admin(caller, ws.as_str(), Action::ListFiles)
            .await?;
        let locks = store::locks::list(self.store.pool(), ws.as_str(), now_ms()).await?;
        Ok(locks.iter().map(view).collect())
    }

    async fn live_lock(&self, ws: &WorkspaceId, lock_id: &str) -> Result<Lock> {
        store::locks::get(self.store.pool(), ws.as_str(), lock_id)
            .await?
            .filter(|l| l.expires_at_ms > now_ms())
            .ok_or(Error::NotFound("lock"))
    }

    /// Refuses a change of `path` that a live lock covers, unless the caller holds that lock
    /// and passed its token.
    pub(super) async fn check_locks(
        &self,
        caller: &Caller,
        ws: &WorkspaceId,
        path: &str,
        token: Option<&str>,
    ) -> Result<()> {
        let locks = store::locks::covering(self.store.pool(), ws.as_str(), path, now_ms()).await?;
        for lock in &locks {
            let holds =
                lock.holder_id == caller.principal.id.0 && token == Some(lock.lock_id.as_str());
            if !holds {
                return Err(locked(lock));
            }
        }
        Ok(())
    }
}
