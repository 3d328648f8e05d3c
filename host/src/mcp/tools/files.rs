//! Files: text travels as text, anything else as base64 with its content type.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Kind, ToolSpec, add, done, structured};
use crate::api::bodies::{FileView, ImportBody, MoveBody};
use crate::authz::Scope;
use crate::files::BlobContents;
use crate::service::{FileBody, WriteConditions, WriteRequest};
use crate::store::files::FileMeta;
use crate::{Error, Result};

/// The largest file read_file returns; larger files are for the REST API's streaming GET.
pub(crate) const MAX_READ_BYTES: i64 = 8 * 1024 * 1024;

/// A folder of a workspace.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListInput {
    /// The workspace id.
    pub workspace: String,
    /// A folder prefix ending in `/` (default: the whole workspace).
    pub prefix: Option<String>,
}

/// A file of a workspace.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRef {
    /// The workspace id.
    pub workspace: String,
    /// The file's path, e.g. `docs/plan.md`.
    pub path: String,
}

/// A file to write: give exactly one of `text` and `base64`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteInput {
    /// The workspace id.
    pub workspace: String,
    /// The file's path, e.g. `docs/plan.md`.
    pub path: String,
    /// The new contents as text (stored as UTF-8).
    pub text: Option<String>,
    /// The new contents as base64, for binary files.
    pub base64: Option<String>,
    /// The content type (default: `text/plain; charset=utf-8` for text,
    /// `application/octet-stream` for base64).
    pub content_type: Option<String>,
    /// Tags to set (omit to keep the current ones).
    pub tags: Option<Vec<String>>,
    /// Replace only the version with this etag (`*`: only if the file exists).
    pub if_match: Option<String>,
    /// True: create only, fail if the file exists.
    #[serde(default)]
    pub if_none_match: bool,
    /// The lock token, when the caller holds a lock on the path.
    pub lock_token: Option<String>,
}

/// A file to delete.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteInput {
    /// The workspace id.
    pub workspace: String,
    /// The file's path.
    pub path: String,
    /// Delete only the version with this etag.
    pub if_match: Option<String>,
    /// The lock token, when the caller holds a lock on the path.
    pub lock_token: Option<String>,
}

/// A move.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct MoveInput {
    /// The workspace id.
    pub workspace: String,
    #[serde(flatten)]
    pub body: MoveBody,
    /// The lock token, when the caller holds a lock on either path.
    pub lock_token: Option<String>,
}

/// An import.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct ImportInput {
    /// The workspace id.
    pub workspace: String,
    #[serde(flatten)]
    pub body: ImportBody,
}

/// A file's contents as read_file returns them.
#[derive(Serialize)]
pub(crate) struct Contents<'a> {
    #[serde(flatten)]
    pub meta: FileView<'a>,
    /// `utf-8` (in `text`) or `base64` (in `base64`).
    pub encoding: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

/// True when bytes of this content type are best shown as text (when they are valid UTF-8).
pub(crate) fn is_textual(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/yaml"
                | "application/toml"
                | "application/x-sh"
                | "application/octet-stream"
                | ""
        )
}

/// Reads a file through the pipeline: its metadata and its bytes (at most [`MAX_READ_BYTES`]).
pub(crate) async fn read_bytes(
    w: &crate::service::Warrant,
    caller: &crate::authz::Caller,
    ws: &str,
    path: &str,
) -> Result<(FileMeta, Vec<u8>)> {
    match w
        .get_file(caller, ws, path, MAX_READ_BYTES as u64, None)
        .await?
    {
        (meta, Some(BlobContents::Whole(bytes))) => Ok((meta, bytes.into())),
        // Not asked for: only a conditional read (`unless_etag`) gets no bytes.
        (_, None) => Err(Error::Internal("a file read returned no bytes".into())),
        (_, Some(BlobContents::Stream(_))) => Err(Error::PayloadTooLarge {
            limit: MAX_READ_BYTES as u64,
        }),
    }
}

/// The bytes as text when they are text, else as base64.
pub(crate) fn encode(meta: &FileMeta, bytes: Vec<u8>) -> Contents<'_> {
    let view = FileView::from(meta);
    if is_textual(&meta.content_type) {
        match String::from_utf8(bytes) {
            Ok(text) => {
                return Contents {
                    meta: view,
                    encoding: "utf-8",
                    text: Some(text),
                    base64: None,
                };
            }
            Err(e) => {
                return Contents {
                    meta: view,
                    encoding: "base64",
                    text: None,
                    base64: Some(BASE64.encode(e.into_bytes())),
                };
            }
        }
    }
    Contents {
        meta: view,
        encoding: "base64",
        text: None,
        base64: Some(BASE64.encode(bytes)),
    }
}

async fn read_file(
    w: std::sync::Arc<crate::service::Warrant>,
    caller: crate::authz::Caller,
    req: FileRef,
) -> Result<CallToolResult> {
    let (meta, bytes) = read_bytes(&w, &caller, &req.workspace, &req.path).await?;
    let contents = encode(&meta, bytes);
    // Text files: the plain text as the content block, for clients that show content blocks;
    // everything, text included, in the structured content. (Built directly: the generic
    // helper would also serialise the whole JSON as text only to throw it away.)
    // Binary files: an image block for images, else an embedded blob resource.
    let block = match (&contents.text, &contents.base64) {
        (Some(text), _) => ContentBlock::text(text.clone()),
        (None, Some(b64)) if meta.content_type.starts_with("image/") => {
            ContentBlock::image(b64.clone(), meta.content_type.clone())
        }
        (None, b64) => ContentBlock::resource(
            ResourceContents::blob(
                b64.clone().unwrap_or_default(),
                crate::mcp::server::resource_uri(&req.workspace, &req.path),
            )
            .with_mime_type(meta.content_type.clone()),
        ),
    };
    let value = serde_json::to_value(&contents)
        .map_err(|e| Error::Internal(format!("cannot serialise a tool result: {e}")))?;
    let mut result = CallToolResult::success(vec![block]);
    result.structured_content = Some(value);
    Ok(result)
}

async fn write_file(
    w: std::sync::Arc<crate::service::Warrant>,
    caller: crate::authz::Caller,
    req: WriteInput,
) -> Result<CallToolResult> {
    let (bytes, default_type) = match (req.text, req.base64) {
        (Some(text), None) => (Bytes::from(text), "text/plain; charset=utf-8"),
        (None, Some(b64)) => (
            Bytes::from(
                BASE64
                    .decode(b64.trim())
                    .map_err(|e| Error::Unprocessable(format!("base64 is not valid: {e}")))?,
            ),
            "application/octet-stream",
        ),
        _ => {
            return Err(Error::Unprocessable(
                "give exactly one of text and base64".into(),
            ));
        }
    };
    let request = WriteRequest {
        content_type: Some(req.content_type.unwrap_or_else(|| default_type.into())),
        declared_len: Some(bytes.len() as u64),
        tags: req.tags,
        conditions: WriteConditions {
            if_match: req.if_match,
            if_none_match_any: req.if_none_match,
        },
        lock_token: req.lock_token,
    };
    let body: FileBody = Box::pin(futures::stream::once(async move { Ok(bytes) }));
    let outcome = w
        .put_file(&caller, &req.workspace, &req.path, request, body)
        .await?;
    structured(&json!({
        "created": outcome.created,
        "file": FileView::from(&outcome.meta),
    }))
}

pub(super) fn register(tools: &mut Vec<ToolSpec>) {
    add(
        tools,
        "list_files",
        "Lists the files of a workspace under a folder prefix (default: all), in path order, \
         with size, etag, content type, tags and last writer.",
        Some(Scope::FilesRead),
        Kind::Read,
        |w, caller, req: ListInput| async move {
            let files = w
                .list_files(&caller, &req.workspace, req.prefix.as_deref().unwrap_or(""))
                .await?;
            structured(&json!({ "files": files.iter().map(FileView::from).collect::<Vec<_>>() }))
        },
    );
    add(
        tools,
        "read_file",
        "Reads a file (up to 8 MiB): text files come back as text (`encoding: utf-8`, field \
         `text`), anything else as base64 (`encoding: base64`, field `base64`), with the \
         content type, size, etag and sha256.",
        Some(Scope::FilesRead),
        Kind::Read,
        read_file,
    );
    add(
        tools,
        "stat_file",
        "A file's metadata without its contents: size, sha256, etag, content type, tags, last \
         writer and time.",
        Some(Scope::FilesRead),
        Kind::Read,
        |w, caller, req: FileRef| async move {
            let meta = w.stat_file(&caller, &req.workspace, &req.path).await?;
            structured(&FileView::from(&meta))
        },
    );
    add(
        tools,
        "write_file",
        "Creates or replaces a file. Give `text` for text or `base64` for binary contents, \
         optionally a content type, tags, `if_match` (an etag: replace only that version) or \
         `if_none_match: true` (create only), and `lock_token` when holding a lock.",
        Some(Scope::FilesWrite),
        Kind::Idempotent,
        write_file,
    );
    add(
        tools,
        "move_file",
        "Moves or renames a file within a workspace; the destination must be free.",
        Some(Scope::FilesWrite),
        Kind::Write,
        |w, caller, req: MoveInput| async move {
            let meta = w
                .move_file(
                    &caller,
                    &req.workspace,
                    &req.body.from,
                    &req.body.to,
                    req.lock_token.as_deref(),
                )
                .await?;
            structured(&FileView::from(&meta))
        },
    );
    add(
        tools,
        "delete_file",
        "Deletes a file (only the version with `if_match`, when given).",
        Some(Scope::FilesDelete),
        Kind::Destructive,
        |w, caller, req: DeleteInput| async move {
            w.delete_file(
                &caller,
                &req.workspace,
                &req.path,
                req.if_match.as_deref(),
                req.lock_token.as_deref(),
            )
            .await?;
            done(format!("{} deleted", req.path))
        },
    );
    add(
        tools,
        "import_url",
        "Fetches a public http(s) URL into a file of the workspace (creating or replacing it). \
         Private and internal addresses are refused; size and time are capped.",
        Some(Scope::FilesWrite),
        Kind::Write,
        |w, caller, req: ImportInput| async move {
            let outcome = w
                .import_url(&caller, &req.workspace, &req.body.url, &req.body.path)
                .await?;
            structured(&json!({
                "created": outcome.put.created,
                "file": FileView::from(&outcome.put.meta),
                "source_url": outcome.source_url,
                "redirects": outcome.redirects,
            }))
        },
    );
}
