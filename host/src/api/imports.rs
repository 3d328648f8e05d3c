//! URL import: the server fetches a URL into the workspace, synchronously, within its caps.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::extract::{Authenticated, JsonBody};
use super::files::{FileView, etag_header};
use super::{AppState, problem::ApiError};

/// What to import, and where.
#[derive(Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// An `http` or `https` URL of a public address, without credentials.
    pub url: String,
    /// The file to create or replace.
    pub path: String,
}

/// The file written, as a PUT shows it, and where its bytes came from.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportView<'a> {
    /// The file's metadata (the same fields as a PUT answers with).
    #[serde(flatten)]
    pub file: FileView<'a>,
    /// The URL that answered, after redirects.
    pub source_url: String,
    /// How many redirects were followed.
    pub redirects: usize,
}

/// Fetches a URL into a file (created or replaced). Authorized as `files:import` and as
/// `files:write` of `path`; only public http(s) addresses unless the operator allows more.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/imports", tag = "files", security(("bearer" = [])),
    params(("ws" = String, Path, description = "workspace id")), request_body = ImportBody, responses(
    (status = 201, description = "imported into a new file", body = ImportView),
    (status = 200, description = "imported over an existing file", body = ImportView),
    (status = 403, description = "refused by the pipeline (files:import or files:write)"),
    (status = 413, description = "the body is over the upload limit; nothing was stored"),
    (status = 422, description = "refused URL: scheme, credentials, or a non-public address"),
    (status = 502, description = "the upstream server failed or redirected too often"),
    (status = 504, description = "the import ran out of time"),
    (status = 507, description = "the organisation's storage quota would be exceeded"),
))]
pub async fn import_url(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(ws): Path<String>,
    JsonBody(req): JsonBody<ImportBody>,
) -> Result<Response, ApiError> {
    let outcome = state
        .warrant
        .import_url(&caller, &ws, &req.url, &req.path)
        .await?;
    let status = if outcome.put.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let meta = &outcome.put.meta;
    let view = ImportView {
        file: FileView::from(meta),
        source_url: outcome.source_url.clone(),
        redirects: outcome.redirects,
    };
    let mut response = (status, Json(view)).into_response();
    if let Some(v) = etag_header(&meta.etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    Ok(response)
}
