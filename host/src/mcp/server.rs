//! The MCP server handler: tools and resources over the service layer. The caller of every
//! request was authenticated by [`super::auth`] and travels in the HTTP request's extensions.

use std::sync::Arc;

use base64::Engine;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, InitializeResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::tools::{self, Catalogue};
use crate::authz::{Caller, Scope};
use crate::service::Warrant;
use crate::{Error, Result};

/// The URI scheme of workspace files.
pub(crate) const URI_SCHEME: &str = "warrant://";
/// At most this many files are listed as resources.
const MAX_RESOURCES: usize = 1000;

/// One MCP server; cheap to clone (one per session).
#[derive(Clone)]
pub(crate) struct WarrantMcp {
    warrant: Arc<Warrant>,
    catalogue: Arc<Catalogue>,
}

impl WarrantMcp {
    pub fn new(warrant: Arc<Warrant>, catalogue: Arc<Catalogue>) -> Self {
        WarrantMcp { warrant, catalogue }
    }
}

/// The authenticated caller of the request in `ctx`.
fn caller_of(ctx: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| {
            tracing::error!("an MCP request reached the handler without an authenticated caller");
            ErrorData::internal_error("the request was not authenticated", None)
        })
}

/// A failure of a non-tool request as a JSON-RPC error carrying the problem document.
fn rpc_error(err: &Error) -> ErrorData {
    let (_, body, _) = crate::api::problem(err);
    let message = tools::describe(err, &body);
    match err {
        Error::NotFound(_) => ErrorData::resource_not_found(message, Some(body)),
        Error::Database(_) | Error::Io(_) | Error::Internal(_) => {
            ErrorData::internal_error(message, Some(body))
        }
        _ => ErrorData::invalid_request(message, Some(body)),
    }
}

/// `warrant://{workspace}/{path}`.
pub(crate) fn resource_uri(ws: &str, path: &str) -> String {
    format!("{URI_SCHEME}{ws}/{path}")
}

fn parse_uri(uri: &str) -> Result<(&str, &str)> {
    uri.strip_prefix(URI_SCHEME)
        .and_then(|rest| rest.split_once('/'))
        .filter(|(ws, path)| !ws.is_empty() && !path.is_empty())
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "expected {URI_SCHEME}{{workspace}}/{{path}}, got {uri}"
            ))
        })
}

impl WarrantMcp {
    /// `tools/call` for `caller`: the one way a tool is called, whichever path the request took
    /// ([`super::direct`] or the SDK's service). Every tool completes its call (none makes a
    /// task of it or asks the client for input).
    pub(crate) async fn call(
        &self,
        caller: Caller,
        request: CallToolRequestParams,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(spec) = self.catalogue.get(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool {}", request.name),
                None,
            ));
        };
        let args = serde_json::Value::Object(request.arguments.unwrap_or_default());
        // A tool the token's scopes cannot use is still called: the pipeline refuses it at the
        // scope layer, and that refusal is logged like any other.
        Ok(match spec.call(self.warrant.clone(), caller, args).await {
            Ok(result) => result,
            Err(e) => tools::tool_error(&e),
        })
    }

    /// True when `name` is a tool of the catalogue.
    pub(crate) fn has_tool(&self, name: &str) -> bool {
        self.catalogue.get(name).is_some()
    }

    async fn list_file_resources(&self, caller: &Caller) -> Result<Vec<Resource>> {
        let mut out = Vec::new();
        if !caller.grant.scopes.allows(Scope::FilesRead) {
            return Ok(out);
        }
        for ws in self.warrant.list_workspaces(caller).await? {
            let files = match self.warrant.list_files(caller, &ws.id, "").await {
                Ok(files) => files,
                // A workspace whose files the pipeline refuses is simply not listed.
                Err(Error::Forbidden(_) | Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            for f in files {
                if out.len() >= MAX_RESOURCES {
                    return Ok(out);
                }
                let mut r = Resource::new(resource_uri(&ws.id, &f.path), f.path.clone())
                    .with_title(format!("{} in {}", f.path, ws.name))
                    .with_mime_type(f.content_type.clone());
                r.size = u64::try_from(f.size).ok();
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn read(&self, caller: &Caller, uri: &str) -> Result<ReadResourceResult> {
        let (ws, path) = parse_uri(uri)?;
        let (meta, bytes) = tools::files::read_bytes(&self.warrant, caller, ws, path).await?;
        let contents = tools::files::encode(&meta, bytes);
        let item = match (contents.text, contents.base64) {
            (Some(text), _) => ResourceContents::text(text, uri),
            (None, Some(b64)) => ResourceContents::blob(b64, uri),
            (None, None) => {
                ResourceContents::blob(base64::engine::general_purpose::STANDARD.encode([]), uri)
            }
        };
        Ok(ReadResourceResult::new(vec![
            item.with_mime_type(meta.content_type.clone()),
        ]))
    }
}

impl ServerHandler for WarrantMcp {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("warrant", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Warrant: workspaces of files shared by people and agents. Every tool call is \
             authorised like the REST API: by the token's scopes and workspaces, the caller's \
             role, the workspace's Cedar policies and plugins. A refusal is a tool error that \
             names the layer that refused and why. Files are also resources \
             warrant://{workspace}/{path}.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller_of(&ctx)?;
        Ok(ListToolsResult::with_all_items(
            self.catalogue
                .visible(&caller)
                .map(|spec| spec.tool.clone())
                .collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller_of(&ctx)?;
        self.call(caller, request).await.map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = caller_of(&ctx)?;
        let resources = self
            .list_file_resources(&caller)
            .await
            .map_err(|e| rpc_error(&e))?;
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = caller_of(&ctx)?;
        self.read(&caller, &request.uri)
            .await
            .map(Into::into)
            .map_err(|e| rpc_error(&e))
    }
}
