//! File operations: every one authorizes its path through the pipeline, then acts. Bodies
//! stream to disk; metadata changes are single compare-and-swap statements.

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

use super::Warrant;
use crate::authz::{Action, Caller, ResourceFacts};
use crate::files::{BlobContents, FilePath, FolderPrefix};
use crate::identity::{OrgId, WorkspaceId};
use crate::store::files::FileMeta;
use crate::store::{self, is_unique_violation};
use crate::{Error, Result};

/// A request body, streamed.
pub type FileBody = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Preconditions of a write (`If-Match`, `If-None-Match: *`).
#[derive(Debug, Clone, Default)]
pub struct WriteConditions {
    /// Replace only the version with this etag (`*`: only if the file exists).
    pub if_match: Option<String>,
    /// Create only: fail if the file exists.
    pub if_none_match_any: bool,
}

/// What a write asks for besides the bytes.
#[derive(Debug, Clone, Default)]
pub struct WriteRequest {
    /// The declared content type.
    pub content_type: Option<String>,
    /// The declared body length, when given.
    pub declared_len: Option<u64>,
    /// New tags (None keeps the current ones).
    pub tags: Option<Vec<String>>,
    /// Preconditions.
    pub conditions: WriteConditions,
    /// The `Lock-Token` of a lock the caller holds on the path.
    pub lock_token: Option<String>,
}

/// A write the pipeline allowed, waiting for its bytes.
pub(super) struct AllowedWrite {
    ws: WorkspaceId,
    org: OrgId,
    path: FilePath,
    /// The requested tags (None keeps the current ones).
    tags: Option<Vec<String>>,
}

/// What a write did.
#[derive(Debug)]
pub struct PutOutcome {
    /// The new version.
    pub meta: FileMeta,
    /// True when the path did not exist before.
    pub created: bool,
}

/// How much of a refused body is read and discarded before answering.
const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;

async fn drain(body: &mut FileBody, limit: u64) {
    use futures::StreamExt;
    let mut read = 0u64;
    while read <= limit {
        match body.next().await {
            Some(Ok(chunk)) => read += chunk.len() as u64,
            _ => break,
        }
    }
}

/// How many times a writer retries after losing a race before giving up with 409.
const MAX_WRITE_ATTEMPTS: usize = 64;
/// The most files one listing returns.
const LIST_LIMIT: i64 = 10_000;

impl Warrant {
    /// Creates or replaces a file with the streamed `body`.
    pub async fn put_file(
        &self,
        caller: &Caller,
        ws: &str,
        path: &str,
        req: WriteRequest,
        mut body: FileBody,
    ) -> Result<PutOutcome> {
        let result = self.write_file(caller, ws, path, req, &mut body).await;
        if result.is_err() {
            // Read (and discard) a little of what the client is still sending, so it sees our
            // answer instead of a connection reset; beyond that the connection is closed.
            drain(&mut body, DRAIN_LIMIT).await;
        }
        result
    }

    async fn write_file(
        &self,
        caller: &Caller,
        ws: &str,
        path: &str,
        req: WriteRequest,
        body: &mut FileBody,
    ) -> Result<PutOutcome> {
        let allowed = self
            .authorize_write(
                caller,
                ws,
                path,
                req.tags,
                req.declared_len,
                req.content_type.as_deref(),
                &[Action::WriteFile],
                req.lock_token.as_deref(),
            )
            .await?;
        let outcome = self
            .store_write(
                caller,
                allowed,
                req.content_type.as_deref(),
                req.declared_len,
                &req.conditions,
                body,
            )
            .await?;
        self.audit(
            caller,
            "file.write",
            &format!("{}/{}", outcome.meta.workspace_id, outcome.meta.path),
            Some(outcome.meta.sha256.clone()),
        )
        .await;
        Ok(outcome)
    }

    /// Checks a write's path and tags and asks the pipeline for each of `actions` on the
    /// path (a plain write asks for `files:write`; an import also for `files:import`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn authorize_write(
        &self,
        caller: &Caller,
        ws: &str,
        path: &str,
        tags: Option<Vec<String>>,
        declared_len: Option<u64>,
        content_type: Option<&str>,
        actions: &[Action],
        lock_token: Option<&str>,
    ) -> Result<AllowedWrite> {
        let ws = WorkspaceId(ws.to_string());
        let path = FilePath::parse(path)?;
        let requested_tags = tags
            .map(|t| super::orgs::check_labels("tag", t))
            .transpose()?;
        // Policies see both what the file is and what it would become.
        let mut tags = self.current_tags(&ws, path.as_str()).await?;
        tags.extend(requested_tags.iter().flatten().cloned());
        tags.sort();
        tags.dedup();
        let facts = ResourceFacts {
            size: declared_len,
            tags,
            content_type: content_type.map(str::to_string),
        };
        let mut org = None;
        for action in actions {
            let access = self
                .workspace_access(caller, &ws, *action, Some(path.as_str()), &facts)
                .await?;
            org = Some(access.workspace.org_id);
        }
        let org =
            org.ok_or_else(|| Error::Internal("a write was authorized for no action".into()))?;
        self.check_locks(caller, &ws, path.as_str(), lock_token)
            .await?;
        Ok(AllowedWrite {
            ws,
            org,
            path,
            tags: requested_tags,
        })
    }

    /// Streams `body` into a new blob within the upload limit and the organisation's free
    /// space, then installs it as the file's new version, counting the size difference
    /// against the quota in the same transaction.
    pub(super) async fn store_write<S, E>(
        &self,
        caller: &Caller,
        w: AllowedWrite,
        content_type: Option<&str>,
        declared_len: Option<u64>,
        conditions: &WriteConditions,
        body: S,
    ) -> Result<PutOutcome>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let limit = self.settings.max_upload_bytes;
        if declared_len.is_some_and(|n| n > limit) {
            return Err(Error::PayloadTooLarge { limit });
        }
        // The room left as seen now lets a write that cannot fit stop early, before its bytes
        // are stored; the authoritative check is the counter update that installs it. A
        // replace may always reuse the bytes of the version it replaces.
        let old_size = store::files::get(self.store.pool(), &w.ws, w.path.as_str())
            .await?
            .map_or(0, |m| m.size);
        let (used, quota) = self.storage_of(&w.org).await?;
        let room = quota.saturating_sub(used).max(0).saturating_add(old_size);
        let room = u64::try_from(room).unwrap_or(0);
        let refuse = |needed: u64| Error::QuotaExceeded {
            used,
            quota,
            needed: i64::try_from(needed)
                .unwrap_or(i64::MAX)
                .saturating_sub(old_size),
        };
        if let Some(n) = declared_len.filter(|n| *n > room) {
            return Err(refuse(n));
        }
        let content_type = content_type
            .filter(|c| !c.is_empty() && c.len() <= 255 && !c.chars().any(char::is_control))
            .unwrap_or("application/octet-stream");
        let stream_limit = limit.min(room);
        let blob = match self.blobs.write(body, stream_limit).await {
            Err(Error::PayloadTooLarge { .. }) if stream_limit < limit => {
                return Err(refuse(stream_limit.saturating_add(1)));
            }
            other => other?,
        };
        let keep_tags = w.tags.is_none();
        let mut meta = FileMeta {
            workspace_id: w.ws,
            path: w.path.as_str().to_string(),
            blob_id: blob.id.clone(),
            size: i64::try_from(blob.size).unwrap_or(i64::MAX),
            etag: format!("{}-{}", &blob.sha256[..16], &blob.id[..8]),
            sha256: blob.sha256,
            content_type: content_type.to_string(),
            tags: w.tags.unwrap_or_default(),
            updated_by: caller.principal.id.clone(),
            updated_at: store::now(),
        };
        match self
            .install_version(&mut meta, conditions, keep_tags, &w.org)
            .await
        {
            Ok((created, replaced_blob)) => {
                if let Some(old) = replaced_blob {
                    self.blobs.remove(&old).await;
                }
                Ok(PutOutcome { meta, created })
            }
            Err(e) => {
                self.blobs.remove(&blob.id).await;
                Err(e)
            }
        }
    }

    /// An organisation's bytes in use and its quota in force.
    pub(super) async fn storage_of(&self, org: &OrgId) -> Result<(i64, i64)> {
        let usage = store::quotas::usage(self.store.pool(), org)
            .await?
            .ok_or(Error::NotFound("organisation"))?;
        Ok((
            usage.used,
            usage.quota.unwrap_or(self.settings.storage_quota_default),
        ))
    }

    /// Begins a transaction that counts `delta` bytes against the quota; a refusal ends it
    /// (releasing the organisation's row, and SQLite's write lock, before anything else is
    /// read) and says how full the quota is.
    async fn reserve_storage(
        &self,
        org: &OrgId,
        delta: i64,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.store.pool().begin().await?;
        if store::quotas::reserve(&mut *tx, org, delta, self.settings.storage_quota_default).await?
        {
            return Ok(tx);
        }
        tx.rollback().await?;
        let (used, quota) = self.storage_of(org).await?;
        Err(Error::QuotaExceeded {
            used,
            quota,
            needed: delta,
        })
    }

    /// Points the path at the new blob, retrying when a concurrent writer wins a round. The
    /// size difference is counted against the organisation's quota in the same transaction.
    /// Returns whether the file was created and the blob it replaced.
    async fn install_version(
        &self,
        meta: &mut FileMeta,
        conditions: &WriteConditions,
        keep_tags: bool,
        org: &OrgId,
    ) -> Result<(bool, Option<String>)> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let current =
                store::files::get(self.store.pool(), &meta.workspace_id, &meta.path).await?;
            match &current {
                Some(cur) => {
                    if conditions.if_none_match_any {
                        return Err(Error::PreconditionFailed(format!(
                            "{} already exists",
                            meta.path
                        )));
                    }
                    if let Some(expected) = conditions.if_match.as_deref()
                        && expected != "*"
                        && expected != cur.etag
                    {
                        return Err(Error::PreconditionFailed(format!(
                            "{} has changed: its current etag is \"{}\"",
                            meta.path, cur.etag
                        )));
                    }
                    if keep_tags {
                        meta.tags = cur.tags.clone();
                    }
                    let mut tx = self.reserve_storage(org, meta.size - cur.size).await?;
                    if store::files::replace_if_current(&mut *tx, meta, &cur.blob_id).await? {
                        tx.commit().await?;
                        return Ok((false, Some(cur.blob_id.clone())));
                    }
                    tx.rollback().await?;
                }
                None => {
                    if conditions.if_match.is_some() {
                        return Err(Error::PreconditionFailed(format!(
                            "{} does not exist, so If-Match cannot match",
                            meta.path
                        )));
                    }
                    let mut tx = self.reserve_storage(org, meta.size).await?;
                    if store::files::insert_new(&mut *tx, meta).await? {
                        tx.commit().await?;
                        return Ok((true, None));
                    }
                    tx.rollback().await?;
                }
            }
        }
        Err(Error::Conflict(format!(
            "{} is being written by others too often; try again",
            meta.path
        )))
    }

    /// The tags of the file at `path`, if it exists (policies may speak of them).
    pub(super) async fn current_tags(&self, ws: &WorkspaceId, path: &str) -> Result<Vec<String>> {
        Ok(store::files::get(self.store.pool(), ws, path)
            .await?
            .map(|m| m.tags)
            .unwrap_or_default())
    }

    /// The facts policies see about an existing file.
    async fn facts_of(&self, ws: &WorkspaceId, path: &str) -> Result<ResourceFacts> {
        Ok(ResourceFacts {
            tags: self.current_tags(ws, path).await?,
            ..ResourceFacts::default()
        })
    }

    /// Authorizes reading a file and returns its metadata. One query loads the workspace, the
    /// caller's role and the file: its tags are what policies see, and it is what the caller
    /// gets.
    async fn readable_file(
        &self,
        caller: &Caller,
        ws: &WorkspaceId,
        path: &FilePath,
    ) -> Result<FileMeta> {
        let read = store::workspaces::get_with_role_and_file(
            &self.store,
            ws,
            &caller.principal.id,
            path.as_str(),
        )
        .await?
        .ok_or(Error::NotFound("workspace"))?;
        let (workspace, role, meta) = &*read;
        let role = role.ok_or(Error::NotFound("workspace"))?;
        let facts = ResourceFacts {
            tags: meta.as_ref().map(|m| m.tags.clone()).unwrap_or_default(),
            ..ResourceFacts::default()
        };
        self.authorize_in(
            caller,
            workspace,
            role,
            Action::ReadFile,
            Some(path.as_str()),
            &facts,
        )
        .await?;
        meta.clone().ok_or(Error::NotFound("file"))
    }

    /// A file's metadata, authorized as a read.
    pub async fn stat_file(&self, caller: &Caller, ws: &str, path: &str) -> Result<FileMeta> {
        let ws = WorkspaceId(ws.to_string());
        self.readable_file(caller, &ws, &FilePath::parse(path)?)
            .await
    }

    /// A file's metadata and its bytes: all of them when the file is at most `whole_up_to`
    /// bytes long, else an open handle to stream them from; no bytes (None) when its ETag is
    /// `unless_etag` (or that is `*`, any version, as in HTTP's `If-None-Match: *`), so a
    /// conditional read that ends in "not modified" reads nothing.
    pub async fn get_file(
        &self,
        caller: &Caller,
        ws: &str,
        path: &str,
        whole_up_to: u64,
        unless_etag: Option<&str>,
    ) -> Result<(FileMeta, Option<BlobContents>)> {
        let ws = WorkspaceId(ws.to_string());
        let path = FilePath::parse(path)?;
        let mut meta = self.readable_file(caller, &ws, &path).await?;
        // A concurrent replace may remove the blob between the two reads: read again then.
        for _ in 0..3 {
            if unless_etag.is_some_and(|tag| tag == "*" || tag == meta.etag) {
                return Ok((meta, None));
            }
            let size = u64::try_from(meta.size).unwrap_or(u64::MAX);
            match self.blobs.read_blob(&meta.blob_id, size, whole_up_to).await {
                Ok(contents) => return Ok((meta, Some(contents))),
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            meta = store::files::get(self.store.pool(), &ws, path.as_str())
                .await?
                .ok_or(Error::NotFound("file"))?;
        }
        Err(Error::Conflict(
            "the file is changing too fast to be read; try again".into(),
        ))
    }

    /// Deletes a file (only the version with `if_match`, when given).
    pub async fn delete_file(
        &self,
        caller: &Caller,
        ws: &str,
        path: &str,
        if_match: Option<&str>,
        lock_token: Option<&str>,
    ) -> Result<()> {
        let ws = WorkspaceId(ws.to_string());
        let path = FilePath::parse(path)?;
        let facts = self.facts_of(&ws, path.as_str()).await?;
        let org = self
            .workspace_access(caller, &ws, Action::DeleteFile, Some(path.as_str()), &facts)
            .await?
            .workspace
            .org_id;
        self.check_locks(caller, &ws, path.as_str(), lock_token)
            .await?;
        let etag = if_match.filter(|e| *e != "*");
        // The organisation's row lock first, as writers take it, then the file.
        let mut tx = self.store.pool().begin().await?;
        store::quotas::lock(&mut *tx, &org).await?;
        let deleted = store::files::delete(&mut *tx, &ws, path.as_str(), etag).await?;
        if let Some((_, size)) = &deleted {
            store::quotas::reserve(&mut *tx, &org, -size, 0).await?;
        }
        tx.commit().await?;
        match deleted.map(|(blob, _)| blob) {
            Some(blob) => {
                self.blobs.remove(&blob).await;
                self.audit(
                    caller,
                    "file.delete",
                    &format!("{ws}/{}", path.as_str()),
                    None,
                )
                .await;
                Ok(())
            }
            None if etag.is_some()
                && store::files::get(self.store.pool(), &ws, path.as_str())
                    .await?
                    .is_some() =>
            {
                Err(Error::PreconditionFailed(format!(
                    "{} has changed",
                    path.as_str()
                )))
            }
            None => Err(Error::NotFound("file")),
        }
    }

    /// The files under a folder prefix.
    pub async fn list_files(
        &self,
        caller: &Caller,
        ws: &str,
        prefix: &str,
    ) -> Result<Vec<FileMeta>> {
        let ws = WorkspaceId(ws.to_string());
        let prefix = FolderPrefix::parse(prefix)?;
        let target = Some(prefix.as_str()).filter(|p| !p.is_empty());
        self.workspace_access(
            caller,
            &ws,
            Action::ListFiles,
            target,
            &ResourceFacts::default(),
        )
        .await?;
        Ok(store::files::list(self.store.pool(), &ws, prefix.as_str(), LIST_LIMIT).await?)
    }

    /// Moves or renames a file; both paths must be allowed, and `to` must be free.
    pub async fn move_file(
        &self,
        caller: &Caller,
        ws: &str,
        from: &str,
        to: &str,
        lock_token: Option<&str>,
    ) -> Result<FileMeta> {
        let ws = WorkspaceId(ws.to_string());
        let from = FilePath::parse(from)?;
        let to = FilePath::parse(to)?;
        let facts = self.facts_of(&ws, from.as_str()).await?;
        self.workspace_access(caller, &ws, Action::MoveFile, Some(from.as_str()), &facts)
            .await?;
        self.workspace_access(caller, &ws, Action::MoveFile, Some(to.as_str()), &facts)
            .await?;
        self.check_locks(caller, &ws, from.as_str(), lock_token)
            .await?;
        self.check_locks(caller, &ws, to.as_str(), lock_token)
            .await?;
        if from == to {
            return Err(Error::Unprocessable("from and to are the same path".into()));
        }
        if store::files::get(self.store.pool(), &ws, to.as_str())
            .await?
            .is_some()
        {
            return Err(Error::Conflict(format!("{} already exists", to.as_str())));
        }
        let moved = store::files::rename(
            self.store.pool(),
            &ws,
            from.as_str(),
            to.as_str(),
            &caller.principal.id,
            store::now(),
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict(format!("{} already exists", to.as_str()))
            } else {
                Error::Database(e)
            }
        })?;
        if !moved {
            return Err(Error::NotFound("file"));
        }
        self.audit(
            caller,
            "file.move",
            &format!("{ws}/{}", from.as_str()),
            Some(format!("to {}", to.as_str())),
        )
        .await;
        store::files::get(self.store.pool(), &ws, to.as_str())
            .await?
            .ok_or(Error::NotFound("file"))
    }
}
