//! The REST transport (axum): parse, call [`crate::service`], render. Nothing else.
//! Routes and their OpenAPI description come from the same `#[utoipa::path]` annotations, so
//! the document cannot drift from the router.

mod agents;
mod extract;
mod files;
mod imports;
mod invitations;
mod locks;
mod me;
mod oauth;
mod oauth_web;
mod orgs;
mod plugins;
mod policies;
mod problem;
mod system;
mod tokens;
mod workspaces;

pub(crate) use problem::problem;
pub use problem::{ApiError, PROBLEM_JSON};

/// The request bodies of the REST API, which the MCP tools take as their inputs too.
pub(crate) mod bodies {
    pub use super::agents::NewAgent;
    pub use super::files::{FileView, MoveBody};
    pub use super::imports::ImportBody;
    pub use super::locks::{NewLock, Renewal};
    pub use super::me::Me;
    pub use super::orgs::{NewOrg, Transfer};
    pub use super::policies::Rollback;
    pub use super::workspaces::{NewWorkspace, RoleBody};
    pub use crate::service::invitations::NewInvitation;
}

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Warrant;

/// What every handler can reach, behind one `Arc`: axum clones the state for every request
/// (a route's service is cloned per call), and each `Arc` cloned is a pair of atomic
/// operations on a cache line both cores share.
#[derive(Clone)]
pub struct AppState(Arc<AppContext>);

/// The contents of [`AppState`].
pub struct AppContext {
    /// The service layer.
    pub warrant: Arc<Warrant>,
    /// The externally visible base URL (issuer and resource URLs are built from it).
    pub public_url: Arc<str>,
    /// Browser origins the MCP endpoints accept besides the public URL's own.
    pub mcp_allowed_origins: Arc<[String]>,
}

impl AppState {
    /// The state of one server.
    pub fn new(context: AppContext) -> Self {
        AppState(Arc::new(context))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppContext;

    fn deref(&self) -> &AppContext {
        &self.0
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Warrant", description = "Authentication and authorization core: every action needs a warrant."),
    modifiers(&BearerAuth),
    tags(
        (name = "identity", description = "The caller, organisations, users and agents"),
        (name = "tokens", description = "Personal access tokens"),
        (name = "workspaces", description = "Workspaces and membership"),
        (name = "files", description = "Files in a workspace"),
        (name = "policies", description = "Tenant Cedar policies, what-if and the decision log"),
        (name = "system", description = "Health and description"),
        (name = "oauth", description = "OAuth clients and settings (the protocol endpoints are in the authorization server metadata)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The `/api/v1` routes with their OpenAPI description. Their annotations spell the whole path:
/// nesting them under the prefix would wrap each in a layer that rebuilds the request's URI
/// without it, an allocation per request.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me::whoami))
        .routes(routes!(orgs::create_org))
        .routes(routes!(orgs::get_org, orgs::update_org))
        .routes(routes!(orgs::create_user))
        .routes(routes!(agents::create_agent, agents::list_agents))
        .routes(routes!(agents::delete_agent))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::get_token, tokens::revoke_token))
        .routes(routes!(
            workspaces::create_workspace,
            workspaces::list_workspaces
        ))
        .routes(routes!(
            workspaces::get_workspace,
            workspaces::delete_workspace
        ))
        .routes(routes!(workspaces::list_members))
        .routes(routes!(workspaces::set_member, workspaces::remove_member))
        .routes(routes!(files::list_files))
        .routes(routes!(
            files::put_file,
            files::get_file,
            files::delete_file
        ))
        .routes(routes!(files::move_file))
        .routes(routes!(locks::acquire_lock, locks::list_locks))
        .routes(routes!(locks::renew_lock, locks::release_lock))
        .routes(routes!(imports::import_url))
        .routes(routes!(orgs::org_usage))
        .routes(routes!(orgs::transfer_ownership))
        .routes(routes!(invitations::invite, invitations::list_invitations))
        .routes(routes!(invitations::revoke_invitation))
        .routes(routes!(invitations::accept_invitation))
        .routes(routes!(invitations::join_with_invitation))
        .routes(routes!(policies::put_policies, policies::get_policies))
        .routes(routes!(policies::policy_versions))
        .routes(routes!(policies::rollback_policies))
        .routes(routes!(policies::shadow_report))
        .routes(routes!(policies::promote_shadow))
        .routes(routes!(policies::discard_shadow))
        .routes(routes!(policies::what_if))
        .routes(routes!(policies::decisions))
        .routes(routes!(plugins::upload_plugin, plugins::list_plugins))
        .routes(routes!(plugins::get_plugin, plugins::delete_plugin))
        .routes(routes!(plugins::workspace_plugins))
        .routes(routes!(plugins::attach_plugin, plugins::detach_plugin))
        .routes(routes!(oauth::create_client, oauth::list_clients))
        .routes(routes!(oauth::get_client, oauth::delete_client))
        .routes(routes!(oauth::rotate_client_secret))
        .routes(routes!(
            oauth::get_oauth_settings,
            oauth::put_oauth_settings
        ))
}

/// The OpenAPI document and the router, built together.
pub fn router_and_doc() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(api_routes())
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(system::metrics))
        .split_for_parts();
    // axum spells a catch-all `{*path}`; OpenAPI spells it `{path}`.
    doc.paths.paths = std::mem::take(&mut doc.paths.paths)
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    (router, doc)
}

/// The whole HTTP application: routes, OpenAPI, and the cross-cutting layers.
///
/// The layers wrap the routed application once, as one service, rather than each route
/// (`Router::layer`): there every layer became a boxed route of its own, which axum clones,
/// with everything under it, each time a request passes through it — some forty allocations
/// a request for seven layers. Around the router the stack is one value, cloned per request
/// without allocating.
pub fn app(state: AppState) -> Router {
    let (router, doc) = router_and_doc();
    let doc = Arc::new(doc);
    let x_request_id = HeaderName::from_static("x-request-id");
    let routed = router
        .merge(crate::mcp::router(&state))
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(oauth_web::routes())
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .with_state(state.clone());
    // Outermost first.
    let layered = tower::ServiceBuilder::new()
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            Duration::from_secs(300),
        ))
        .map_request(|req: axum::http::Request<_>| req.map(axum::body::Body::new))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(SetRequestIdLayer::new(
            x_request_id.clone(),
            MakeRequestUuid,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            // The path only: a query string may hold what must not be logged. A target of its
            // own, so that `RUST_LOG=…,warrant::request=off` can leave it out: it is a tenth
            // of the request path's CPU (docs/performance.md).
            tracing::info_span!(target: "warrant::request", "request", id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(PropagateRequestIdLayer::new(x_request_id))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn_with_state(state, edge))
        .service(routed);
    Router::new().fallback_service(layered)
}

/// Requests that mint credentials, check passwords or spend invitation tokens: limited
/// harder, per address.
fn is_sensitive(method: &axum::http::Method, path: &str) -> bool {
    (method == axum::http::Method::POST
        && (path == "/api/v1/tokens"
            || path == "/api/v1/users"
            || path == "/api/v1/invitations/accept"
            || path == "/api/v1/invitations/join"))
        || path.starts_with("/oauth/")
        || path.starts_with("/login")
}

/// What every request passes through on its way in and out: it is counted against its
/// client address, and a bearer challenge in its answer is pointed at the Protected Resource
/// Metadata. One middleware, not two: each clones the router's service and boxes a future
/// per request.
async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    if let Err(e) = rate_limit(&state, &req) {
        return ApiError(e).into_response();
    }
    let mut response = next.run(req).await;
    add_resource_metadata(&state, &mut response);
    response
}

/// Counts a request against its client address (and a sensitive one harder).
fn rate_limit(state: &AppState, req: &Request) -> Result<(), crate::Error> {
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let limits = state.warrant.limits();
    limits.check_ip(ip)?;
    if is_sensitive(req.method(), req.uri().path()) {
        limits.check_sensitive(ip)?;
    }
    Ok(())
}

/// Points a bearer challenge at the Protected Resource Metadata (RFC 9728).
fn add_resource_metadata(state: &AppState, response: &mut Response) {
    if let Some(challenge) = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("Bearer") && !v.contains("resource_metadata="))
    {
        let value = format!(
            r#"{challenge}, resource_metadata="{}/.well-known/oauth-protected-resource""#,
            state.public_url
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
}
