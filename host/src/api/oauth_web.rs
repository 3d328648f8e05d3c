//! The OAuth 2.1 protocol endpoints: metadata (RFC 8414 and OpenID discovery), JWKS, the
//! authorization endpoint with its sign-in and consent pages, token, revocation (RFC 7009),
//! introspection (RFC 7662) and dynamic registration (RFC 7591). Parameters are read only
//! from where the RFCs put them: back-channel requests take form bodies, never query strings.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use super::AppState;
use crate::oauth::OAuthError;
use crate::service::oauth::{
    AuthorizeParams, AuthorizeProblem, AuthorizeStep, ClientAuth, LoginOutcome, Registration,
    SESSION_TTL, single,
};

const SESSION_COOKIE: &str = "warrant_session";
const LOGIN_CSRF_COOKIE: &str = "warrant_login_csrf";
/// Form bodies are small; anything larger is not an OAuth request.
const FORM_LIMIT: usize = 64 * 1024;

/// The OAuth routes (merged into the application by `api::app`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/oauth/jwks", get(jwks))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/oauth/introspect", post(introspect))
        .route("/oauth/register", post(register))
        .route("/oauth/authorize", get(authorize).post(consent))
        .route("/oauth/login", post(login))
}

// ---------------------------------------------------------------------------------------------
// Metadata and keys

fn metadata_document(state: &AppState) -> Value {
    let iss = state.warrant.oauth_issuer();
    json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "jwks_uri": format!("{iss}/oauth/jwks"),
        "registration_endpoint": format!("{iss}/oauth/register"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": crate::oauth::GRANT_TYPES,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": crate::authz::ScopeSet::all().names(),
        "authorization_response_iss_parameter_supported": true,
        "resource_indicators_supported": true,
        "subject_types_supported": ["public"],
    })
}

async fn metadata(State(state): State<AppState>) -> Response {
    axum::Json(metadata_document(&state)).into_response()
}

async fn openid_configuration(State(state): State<AppState>) -> Response {
    axum::Json(metadata_document(&state)).into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    match state.warrant.jwks().await {
        Ok(keys) => axum::Json(json!({ "keys": keys })).into_response(),
        Err(e) => super::ApiError(e).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Back channel: token, revoke, introspect, register

fn client_addr(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

fn oauth_error(e: &OAuthError, basic: bool) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = (
        status,
        axum::Json(json!({"error": e.error, "error_description": e.description})),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if e.status == 401 && basic {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="warrant""#),
        );
    }
    r
}

fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Reads a form body (and refuses parameters in the query string, where they would leak).
async fn read_form(req: Request) -> Result<(HeaderMap, Vec<(String, String)>), OAuthError> {
    if req.uri().query().is_some_and(|q| !q.is_empty()) {
        return Err(OAuthError::invalid_request(
            "parameters are accepted only in the form body, never in the query string",
        ));
    }
    let (parts, body) = req.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes: Bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| OAuthError::invalid_request("the body is too large or unreadable"))?;
    let form = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .map_err(|_| OAuthError::invalid_request("the body is not a valid form"))?;
    Ok((parts.headers, form))
}

/// The client's credentials: `client_secret_basic` or `client_secret_post` (never both).
fn client_auth(headers: &HeaderMap, form: &[(String, String)]) -> Result<ClientAuth, OAuthError> {
    let body_id = single(form, "client_id")?.map(str::to_string);
    let body_secret = single(form, "client_secret")?.map(str::to_string);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(ClientAuth {
            client_id: body_id,
            secret: body_secret,
            basic: false,
        });
    };
    let bad = || OAuthError::invalid_client("malformed Basic credentials");
    let value = value.to_str().map_err(|_| bad())?;
    let encoded = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, v)| v.trim())
        .ok_or_else(|| {
            OAuthError::invalid_client("use HTTP Basic authentication for the client")
        })?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: both halves are form-urlencoded before Basic encoding.
    let decode = |s: &str| -> Result<String, OAuthError> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|v| v.into_iter().next().map(|(_, v)| v))
            .ok_or_else(bad)
    };
    let (id, secret) = (decode(id)?, decode(secret)?);
    if body_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not both",
        ));
    }
    if body_id.as_ref().is_some_and(|b| *b != id) {
        return Err(OAuthError::invalid_request(
            "client_id differs from the Basic credentials",
        ));
    }
    Ok(ClientAuth {
        client_id: Some(id),
        secret: Some(secret),
        basic: true,
    })
}

/// What the client-authenticated endpoints (token, revocation, introspection) read first:
/// the caller's address, its client authentication and the form; an error answer otherwise.
async fn client_request(
    req: Request,
) -> Result<(Option<IpAddr>, ClientAuth, Vec<(String, String)>), Response> {
    let addr = client_addr(&req);
    let (headers, form) = read_form(req).await.map_err(|e| oauth_error(&e, false))?;
    let auth = client_auth(&headers, &form).map_err(|e| oauth_error(&e, false))?;
    Ok((addr, auth, form))
}

async fn token(State(state): State<AppState>, req: Request) -> Response {
    let (addr, auth, form) = match client_request(req).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    match state.warrant.token(&auth, &form, addr).await {
        Ok(t) => no_store(axum::Json(t).into_response()),
        Err(e) => oauth_error(&e, auth.basic),
    }
}

async fn revoke(State(state): State<AppState>, req: Request) -> Response {
    let (addr, auth, form) = match client_request(req).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    match state.warrant.revoke(&auth, &form, addr).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => oauth_error(&e, auth.basic),
    }
}

async fn introspect(State(state): State<AppState>, req: Request) -> Response {
    let (addr, auth, form) = match client_request(req).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    match state.warrant.introspect(&auth, &form, addr).await {
        Ok(v) => no_store(axum::Json(v).into_response()),
        Err(e) => oauth_error(&e, auth.basic),
    }
}

async fn register(State(state): State<AppState>, req: Request) -> Response {
    let addr = client_addr(&req);
    let body = match axum::body::to_bytes(req.into_body(), FORM_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return oauth_error(
                &OAuthError::invalid_client_metadata("the body is too large"),
                false,
            );
        }
    };
    let reg: Registration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return oauth_error(
                &OAuthError::invalid_client_metadata(format!("not valid client metadata: {e}")),
                false,
            );
        }
    };
    match state.warrant.register_client(reg, addr).await {
        Ok(v) => no_store((StatusCode::CREATED, axum::Json(v)).into_response()),
        Err(e) => oauth_error(&e, false),
    }
}

// ---------------------------------------------------------------------------------------------
// Front channel: authorization, sign-in, consent (server-rendered HTML)

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills `{{name}}` slots; every value must already be escaped HTML.
fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in slots {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

fn page(status: StatusCode, title: &str, body: String) -> Response {
    let html = fill(
        include_str!("../../web/layout.html"),
        &[("title", &escape(title)), ("body", &body)],
    );
    let mut r = (status, html).into_response();
    secure_headers(r.headers_mut());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
}

fn error_page(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Error",
        fill(
            include_str!("../../web/error.html"),
            &[("message", &escape(message))],
        ),
    )
}

/// A 303 to `location` (after a POST the browser must GET), with the security headers.
fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    secure_headers(h);
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    r
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> String {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/oauth; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

fn hidden_fields(p: &AuthorizeParams) -> String {
    p.pairs()
        .iter()
        .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{}">"#, escape(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn problem_response(p: AuthorizeProblem) -> Response {
    match p {
        AuthorizeProblem::Page(msg) => error_page(StatusCode::BAD_REQUEST, &msg),
        AuthorizeProblem::Redirect(url) => see_other(&url, &[]),
    }
}

fn login_page(
    state: &AppState,
    p: &AuthorizeParams,
    client_name: &str,
    message: Option<&str>,
) -> Response {
    let csrf = crate::oauth::secrets::Secret::generate("");
    let body = fill(
        include_str!("../../web/login.html"),
        &[
            ("client_name", &escape(client_name)),
            ("csrf", &escape(csrf.expose())),
            ("hidden", &hidden_fields(p)),
            (
                "message",
                &message
                    .map(|m| format!(r#"<p class="error">{}</p>"#, escape(m)))
                    .unwrap_or_default(),
            ),
        ],
    );
    let status = if message.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let mut r = page(status, "Sign in", body);
    if let Ok(v) = HeaderValue::from_str(&set_cookie(state, LOGIN_CSRF_COOKIE, csrf.expose(), 3600))
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn query_pairs(req: &Request) -> Result<Vec<(String, String)>, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.uri().query().unwrap_or(""))
        .map_err(|_| "The request's parameters are malformed.".to_string())
}

/// `GET /oauth/authorize`: check the request, then sign in, then consent.
async fn authorize(State(state): State<AppState>, req: Request) -> Response {
    let params = match query_pairs(&req).and_then(|p| AuthorizeParams::from_pairs(&p)) {
        Ok(p) => p,
        Err(msg) => return error_page(StatusCode::BAD_REQUEST, &msg),
    };
    let v = match state.warrant.check_authorize(&params).await {
        Ok(v) => v,
        Err(p) => return problem_response(p),
    };
    let session = cookie(req.headers(), SESSION_COOKIE);
    let user = match state.warrant.session_user(session.as_deref()).await {
        Ok(u) => u,
        Err(e) => return super::ApiError(e).into_response(),
    };
    let Some((user, csrf)) = user else {
        return login_page(&state, &params, &v.client.name, None);
    };
    match state.warrant.authorize_signed_in(&v, &user).await {
        Err(p) => problem_response(p),
        Ok(AuthorizeStep::Redirect(url)) => see_other(&url, &[]),
        Ok(AuthorizeStep::Consent(c)) => {
            let scopes = c
                .scopes
                .iter()
                .map(|s| format!("<li><code>{}</code></li>", escape(s)))
                .collect::<String>();
            let workspaces = c
                .workspaces
                .iter()
                .map(|(id, name)| {
                    format!(
                        r#"<label><input type="checkbox" name="workspace" value="{}"> {}</label>"#,
                        escape(id),
                        escape(name)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            let unverified = if c.dynamic {
                r#"<p class="error">This application registered itself; Warrant has not verified who runs it.</p>"#
            } else {
                ""
            };
            let body = fill(
                include_str!("../../web/consent.html"),
                &[
                    ("client_name", &escape(&c.client_name)),
                    ("redirect_host", &escape(&c.redirect_host)),
                    ("audience", &escape(&c.audience)),
                    ("unverified", unverified),
                    ("scopes", &scopes),
                    ("csrf", &escape(&csrf)),
                    ("hidden", &hidden_fields(&params)),
                    ("workspaces", &workspaces),
                    ("user", &escape(user.email.as_deref().unwrap_or(&user.name))),
                ],
            );
            page(StatusCode::OK, "Allow access", body)
        }
    }
}

/// Reads a browser form: the authorization parameters and the other fields.
async fn read_browser_form(
    req: Request,
) -> Result<(HeaderMap, Vec<(String, String)>, AuthorizeParams), Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| error_page(StatusCode::BAD_REQUEST, "The form is too large."))?;
    let form = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .map_err(|_| error_page(StatusCode::BAD_REQUEST, "The form is malformed."))?;
    let params =
        AuthorizeParams::from_pairs(&form).map_err(|m| error_page(StatusCode::BAD_REQUEST, &m))?;
    Ok((parts.headers, form, params))
}

fn field<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `POST /oauth/login`: check the password, open a session, go back to the authorization.
async fn login(State(state): State<AppState>, req: Request) -> Response {
    let addr = client_addr(&req);
    let (headers, form, params) = match read_browser_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    // Double-submit check: the form's token must equal the cookie set with the form.
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let presented = field(&form, "csrf").unwrap_or("");
    if expected.is_empty()
        || !crate::credentials::constant_time_eq(expected.as_bytes(), presented.as_bytes())
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The sign-in form has expired or did not come from this site (CSRF check failed).",
        );
    }
    let v = match state.warrant.check_authorize(&params).await {
        Ok(v) => v,
        Err(p) => return problem_response(p),
    };
    let email = field(&form, "email").unwrap_or("");
    let password = field(&form, "password").unwrap_or("");
    match state.warrant.login(email, password, addr).await {
        Ok(LoginOutcome::SignedIn(session)) => {
            let query = serde_urlencoded::to_string(params.pairs()).unwrap_or_default();
            see_other(
                &format!("/oauth/authorize?{query}"),
                &[
                    set_cookie(&state, SESSION_COOKIE, &session, SESSION_TTL),
                    set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0),
                ],
            )
        }
        Ok(LoginOutcome::Refused) => login_page(
            &state,
            &params,
            &v.client.name,
            Some("Wrong e-mail address or password."),
        ),
        Err(e @ crate::Error::RateLimited { .. }) => super::ApiError(e).into_response(),
        Err(e) => super::ApiError(e).into_response(),
    }
}

/// `POST /oauth/authorize`: the user's answer on the consent page.
async fn consent(State(state): State<AppState>, req: Request) -> Response {
    let addr = client_addr(&req);
    let (headers, form, params) = match read_browser_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let session = cookie(&headers, SESSION_COOKIE);
    let (user, session_csrf) = match state.warrant.session_user(session.as_deref()).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return error_page(
                StatusCode::UNAUTHORIZED,
                "Your session has ended. Start again from the application.",
            );
        }
        Err(e) => return super::ApiError(e).into_response(),
    };
    let v = match state.warrant.check_authorize(&params).await {
        Ok(v) => v,
        Err(p) => return problem_response(p),
    };
    let approve = match field(&form, "decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    };
    let workspaces: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "workspace")
        .map(|(_, v)| v.clone())
        .collect();
    let remember = field(&form, "remember") == Some("on");
    let csrf = field(&form, "csrf").unwrap_or("");
    match state
        .warrant
        .decide_consent(
            &v,
            &user,
            &session_csrf,
            csrf,
            approve,
            &workspaces,
            remember,
            addr,
        )
        .await
    {
        Ok(url) => see_other(&url, &[]),
        Err(p) => problem_response(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
