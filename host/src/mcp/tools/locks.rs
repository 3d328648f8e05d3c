//! File and folder locks.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::workspaces::Ws;
use super::{Kind, ToolSpec, add, done, structured};
use crate::api::bodies::{NewLock, Renewal};
use crate::authz::Scope;

/// A lock to take.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct AcquireInput {
    /// The workspace id.
    pub workspace: String,
    #[serde(flatten)]
    pub body: NewLock,
}

/// A lock to renew.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct RenewInput {
    /// The workspace id.
    pub workspace: String,
    /// The lock's id (`lock_…`, returned by acquire_lock).
    pub lock_id: String,
    #[serde(flatten)]
    pub body: Renewal,
}

/// A lock to release.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LockRef {
    /// The workspace id.
    pub workspace: String,
    /// The lock's id (`lock_…`).
    pub lock_id: String,
}

pub(super) fn register(tools: &mut Vec<ToolSpec>) {
    add(
        tools,
        "acquire_lock",
        "Locks a file, or a folder (path ending in `/`) and everything below it, for ttl_seconds. \
         Others cannot change locked paths; the holder passes the returned lock id as \
         `lock_token` to write_file, move_file and delete_file.",
        Some(Scope::LocksWrite),
        Kind::Write,
        |w, caller, req: AcquireInput| async move {
            structured(
                &w.acquire_lock(
                    &caller,
                    &req.workspace,
                    &req.body.path,
                    req.body.ttl_seconds,
                )
                .await?,
            )
        },
    );
    add(
        tools,
        "renew_lock",
        "Extends a lock the caller holds by ttl_seconds from now.",
        Some(Scope::LocksWrite),
        Kind::Idempotent,
        |w, caller, req: RenewInput| async move {
            structured(
                &w.renew_lock(&caller, &req.workspace, &req.lock_id, req.body.ttl_seconds)
                    .await?,
            )
        },
    );
    add(
        tools,
        "release_lock",
        "Releases a lock (the holder, or a workspace admin breaking it).",
        Some(Scope::LocksWrite),
        Kind::Destructive,
        |w, caller, req: LockRef| async move {
            w.release_lock(&caller, &req.workspace, &req.lock_id)
                .await?;
            done(format!("lock {} released", req.lock_id))
        },
    );
    add(
        tools,
        "list_locks",
        "Lists the live locks of a workspace: path, holder, expiry.",
        Some(Scope::FilesRead),
        Kind::Read,
        |w, caller, req: Ws| async move {
            structured(&json!({ "locks": w.list_locks(&caller, &req.workspace).await? }))
        },
    );
}
