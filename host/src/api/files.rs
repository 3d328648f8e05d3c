//! Files: raw bodies streamed in and out.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::io::ReaderStream;

use super::extract::{Authenticated, JsonBody, QueryParams};
use super::{AppState, problem::ApiError};
use crate::Error;
use crate::files::BlobContents;
use crate::service::{FileBody, WriteConditions, WriteRequest};
use crate::store::files::FileMeta;

// Borrowed from the metadata it shows: it is made for every file read and only serialised.
/// File metadata as shown over the API.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FileView<'a> {
    /// The path in the workspace.
    pub path: &'a str,
    /// Bytes.
    pub size: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: &'a str,
    /// Entity tag of this version (quoted in the `ETag` header).
    pub etag: &'a str,
    /// Content type given at upload.
    pub content_type: &'a str,
    /// Tags (set with the `Warrant-Tags` header).
    pub tags: &'a [String],
    /// Who last wrote it.
    pub updated_by: &'a str,
    /// RFC 3339.
    pub updated_at: String,
}

impl<'a> From<&'a FileMeta> for FileView<'a> {
    fn from(m: &'a FileMeta) -> Self {
        FileView {
            path: &m.path,
            size: m.size,
            sha256: &m.sha256,
            etag: &m.etag,
            content_type: &m.content_type,
            tags: &m.tags,
            updated_by: m.updated_by.as_str(),
            updated_at: crate::service::rfc3339(m.updated_at),
        }
    }
}

/// A listing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FileList<'a> {
    /// The files, in path order.
    pub files: Vec<FileView<'a>>,
}

/// Listing parameters.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// A folder prefix ending in `/` (default: the whole workspace).
    pub prefix: Option<String>,
}

/// Download parameters.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct GetQuery {
    /// `true`: answer with the file's metadata as JSON instead of its bytes.
    #[serde(default)]
    pub metadata: bool,
}

/// A move.
#[derive(Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// The current path.
    pub from: String,
    /// The new path (must be free).
    pub to: String,
}

pub(super) fn etag_header(etag: &str) -> Option<HeaderValue> {
    let mut quoted = Vec::with_capacity(etag.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(etag.as_bytes());
    quoted.push(b'"');
    HeaderValue::from_maybe_shared(bytes::Bytes::from(quoted)).ok()
}

/// The `Lock-Token` header, when given.
fn lock_token(headers: &HeaderMap) -> Result<Option<String>, Error> {
    headers
        .get("lock-token")
        .map(|v| {
            v.to_str()
                .map(|s| {
                    s.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                })
                .map_err(|_| Error::BadRequest("Lock-Token is not valid text".into()))
        })
        .transpose()
}

/// Reads an entity tag from `If-Match`-style headers: `"abc"`, `W/"abc"` or `*`.
fn header_etag(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<String>, Error> {
    let Some(value) = headers.get(name.clone()) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Error::BadRequest(format!("{name} is not valid text")))?
        .trim();
    if value == "*" {
        return Ok(Some("*".into()));
    }
    let unquoted = value.trim_start_matches("W/").trim_matches('"');
    if unquoted.is_empty() || unquoted.contains(',') {
        return Err(Error::BadRequest(format!(
            "{name} must hold exactly one entity tag"
        )));
    }
    Ok(Some(unquoted.to_string()))
}

fn meta_response(status: StatusCode, meta: &FileMeta) -> Response {
    let mut response = (status, Json(FileView::from(meta))).into_response();
    if let Some(v) = etag_header(&meta.etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// Lists files under a folder prefix.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/files", tag = "files", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), ListQuery), responses(
    (status = 200, description = "the files", body = FileList),
))]
pub async fn list_files(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let files = state
        .warrant
        .list_files(&caller, &ws, q.prefix.as_deref().unwrap_or(""))
        .await?;
    Ok(Json(FileList {
        files: files.iter().map(FileView::from).collect(),
    })
    .into_response())
}

/// Creates or replaces a file with the raw body (streamed; `If-Match` for safe replace).
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/files/{*path}", tag = "files", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), ("path" = String, Path, description = "file path")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses(
    (status = 201, description = "created", body = FileView),
    (status = 200, description = "replaced", body = FileView),
    (status = 412, description = "If-Match did not match"),
    (status = 413, description = "over the size limit"),
))]
pub async fn put_file(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((ws, path)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request = WriteRequest {
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        declared_len: headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok()),
        tags: headers
            .get("warrant-tags")
            .map(|v| {
                v.to_str()
                    .map(|s| {
                        s.split(',')
                            .map(|t| t.trim().to_string())
                            .filter(|t| !t.is_empty())
                            .collect()
                    })
                    .map_err(|_| Error::BadRequest("Warrant-Tags is not valid text".into()))
            })
            .transpose()?,
        lock_token: lock_token(&headers)?,
        conditions: WriteConditions {
            if_match: header_etag(&headers, header::IF_MATCH)?,
            if_none_match_any: header_etag(&headers, header::IF_NONE_MATCH)?.as_deref()
                == Some("*"),
        },
    };
    let stream: FileBody = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
    let outcome = state
        .warrant
        .put_file(&caller, &ws, &path, request, stream)
        .await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(meta_response(status, &outcome.meta))
}

/// Files up to this size are read whole and sent in one piece; larger ones are streamed.
const WHOLE_BODY_BYTES: u64 = 256 << 10;

/// Downloads a file, or with `?metadata=true` shows its metadata.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/files/{*path}", tag = "files", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), ("path" = String, Path, description = "file path"), GetQuery),
    responses(
    (status = 200, description = "the bytes, or with `?metadata=true` the metadata", content_type = "application/octet-stream", body = FileView),
    (status = 304, description = "If-None-Match matched"),
    (status = 404, description = "no such file"),
))]
pub async fn get_file(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((ws, path)): Path<(String, String)>,
    QueryParams(q): QueryParams<GetQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if q.metadata {
        let meta = state.warrant.stat_file(&caller, &ws, &path).await?;
        return Ok(meta_response(StatusCode::OK, &meta));
    }
    let if_none_match = header_etag(&headers, header::IF_NONE_MATCH);
    let unless = if_none_match.as_ref().ok().and_then(Option::as_deref);
    let (meta, contents) = state
        .warrant
        .get_file(&caller, &ws, &path, WHOLE_BODY_BYTES, unless)
        .await?;
    if_none_match?;
    let etag = etag_header(&meta.etag);
    let Some(contents) = contents else {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Some(v) = etag {
            response.headers_mut().insert(header::ETAG, v);
        }
        return Ok(response);
    };
    let body = match contents {
        BlobContents::Whole(bytes) => Body::from(bytes),
        BlobContents::Stream(file) => Body::from_stream(ReaderStream::new(file)),
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    if let Some(v) = etag {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&meta.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&meta.sha256) {
        h.insert("x-content-sha256", v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// Deletes a file (`If-Match` to delete only a known version).
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/files/{*path}", tag = "files", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id"), ("path" = String, Path, description = "file path")),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such file")))]
pub async fn delete_file(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((ws, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let if_match = header_etag(&headers, header::IF_MATCH)?;
    let token = lock_token(&headers)?;
    state
        .warrant
        .delete_file(&caller, &ws, &path, if_match.as_deref(), token.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves or renames a file.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/files:move", tag = "files", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")), request_body = MoveBody, responses(
    (status = 200, description = "moved", body = FileView),
    (status = 409, description = "the destination exists"),
))]
pub async fn move_file(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<MoveBody>,
) -> Result<Response, ApiError> {
    let token = lock_token(&headers)?;
    let meta = state
        .warrant
        .move_file(&caller, &ws, &req.from, &req.to, token.as_deref())
        .await?;
    Ok(meta_response(StatusCode::OK, &meta))
}
