//! Shared vocabulary of the OAuth end-to-end tests: a user who can sign in, registered clients,
//! an `oauth2` crate client pointed at the server's metadata, and a cookie-keeping browser that
//! signs in and answers the consent page the way a person would.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    IntrospectionUrl, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RevocationUrl, Scope,
    TokenUrl,
};
use warrant_e2e::{TestServer, Value, json};

/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery staple";
/// The redirect URI registered for test clients (a loopback address: any port matches).
pub const REDIRECT: &str = "http://127.0.0.1/callback";

/// An `oauth2` client with every endpoint this server names.
pub type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointSet, EndpointSet, EndpointSet>;

/// A user with a password, editor of a fresh workspace; returns (user id, email, workspace id).
pub async fn user_with_workspace(srv: &TestServer, name: &str) -> (String, String, String) {
    let email = format!("{name}@example.com");
    let user = srv
        .post(
            &srv.owner_token,
            "/users",
            json!({"org_id": srv.org_id, "email": email, "name": name, "password": PASSWORD}),
        )
        .await
        .expect_json(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ws = srv
        .create_workspace(&srv.owner_token, &format!("{name}-ws"))
        .await;
    srv.add_member(&srv.owner_token, &ws, &user, "editor").await;
    (user, email, ws)
}

/// Registers a client as the owner; returns the server's answer (with `client_secret`).
pub async fn register(srv: &TestServer, body: Value) -> Value {
    srv.post(&srv.owner_token, "/oauth/clients", body)
        .await
        .expect_json(201)
}

/// A confidential code-flow client with `scopes`.
pub async fn code_client(srv: &TestServer, scopes: &[&str]) -> (String, String) {
    let c = register(
        srv,
        json!({"name": "Test app", "redirect_uris": [REDIRECT, "https://app.example/cb"], "scopes": scopes}),
    )
    .await;
    (
        c["client_id"].as_str().unwrap().to_string(),
        c["client_secret"].as_str().unwrap().to_string(),
    )
}

/// The server's authorization server metadata.
pub async fn metadata(srv: &TestServer) -> Value {
    let r = srv
        .client
        .get(srv.root_url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// An `oauth2` client configured from the metadata document, as a third-party app would.
pub async fn oauth_client(
    srv: &TestServer,
    id: &str,
    secret: Option<&str>,
    redirect: &str,
) -> Client {
    let m = metadata(srv).await;
    let s = |k: &str| m[k].as_str().unwrap().to_string();
    let mut c = BasicClient::new(ClientId::new(id.to_string()))
        .set_auth_uri(AuthUrl::new(s("authorization_endpoint")).unwrap())
        .set_token_uri(TokenUrl::new(s("token_endpoint")).unwrap())
        .set_revocation_url(RevocationUrl::new(s("revocation_endpoint")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(s("introspection_endpoint")).unwrap())
        .set_redirect_uri(RedirectUrl::new(redirect.to_string()).unwrap());
    if let Some(secret) = secret {
        c = c.set_client_secret(ClientSecret::new(secret.to_string()));
    }
    c
}

/// A confidential client registered with `scopes`, as the `oauth2` crate sees it; returns it
/// with its id and secret.
pub async fn confidential_client(
    srv: &TestServer,
    name: &str,
    scopes: &[&str],
) -> (Client, String, String) {
    let c = register(srv, json!({"name": name, "scopes": scopes})).await;
    let id = c["client_id"].as_str().unwrap().to_string();
    let secret = c["client_secret"].as_str().unwrap().to_string();
    let client = oauth_client(srv, &id, Some(&secret), REDIRECT).await;
    (client, id, secret)
}

/// An access token from the client credentials grant.
pub async fn client_credentials_token(client: &Client) -> String {
    use oauth2::TokenResponse;
    let t = client
        .exchange_client_credentials()
        .request_async(&http())
        .await
        .unwrap();
    t.access_token().secret().clone()
}

/// The HTTP client the `oauth2` crate sends with: no redirects followed.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser: keeps cookies, follows no redirects (the test looks at each one).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An authorization URL with PKCE S256 and a random state, built by the `oauth2` crate.
pub fn authorize_url(
    client: &Client,
    scopes: &[&str],
    resource: Option<&str>,
) -> (url::Url, CsrfToken, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge);
    for s in scopes {
        req = req.add_scope(Scope::new((*s).to_string()));
    }
    if let Some(r) = resource {
        req = req.add_extra_param("resource", r.to_string());
    }
    let (url, state) = req.url();
    (url, state, verifier)
}

/// Decodes the five HTML entities the server's escaping produces.
pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The hidden inputs of a page's form, in order.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in html.split(r#"<input type="hidden" name=""#).skip(1) {
        let (name, rest) = chunk.split_once('"').unwrap();
        let value = rest
            .split_once(r#"value=""#)
            .and_then(|(_, v)| v.split_once('"'))
            .map(|(v, _)| unescape(v))
            .unwrap_or_default();
        out.push((name.to_string(), value));
    }
    out
}

/// The `Location` of a response, which must be a 303.
pub fn location(r: &reqwest::Response) -> String {
    assert_eq!(
        r.status(),
        303,
        "expected 303 See Other, got {}",
        r.status()
    );
    r.headers()
        .get("location")
        .expect("Location")
        .to_str()
        .unwrap()
        .to_string()
}

/// Signs in on the login page the authorization URL shows; returns the consent page's HTML
/// (or, with remembered consent, the redirect to the client as `Err(location)`).
pub async fn sign_in(
    srv: &TestServer,
    browser: &reqwest::Client,
    url: &url::Url,
    email: &str,
) -> Result<String, String> {
    let login = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let html = login.text().await.unwrap();
    assert!(html.contains("Sign in"), "{html}");
    let mut form = hidden_inputs(&html);
    form.push(("email".into(), email.into()));
    form.push(("password".into(), PASSWORD.into()));
    let r = browser
        .post(srv.root_url("/oauth/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let next = location(&r);
    assert!(next.starts_with("/oauth/authorize?"), "{next}");
    let r = browser.get(srv.root_url(&next)).send().await.unwrap();
    if r.status() == 303 {
        return Err(location(&r));
    }
    assert_eq!(r.status(), 200);
    Ok(r.text().await.unwrap())
}

/// Answers a consent page: approve with `workspaces` (or deny); returns the redirect location.
pub async fn answer_consent(
    srv: &TestServer,
    browser: &reqwest::Client,
    consent_html: &str,
    approve: bool,
    workspaces: &[&str],
    remember: bool,
) -> String {
    let mut form = hidden_inputs(consent_html);
    form.push((
        "decision".into(),
        if approve { "approve" } else { "deny" }.into(),
    ));
    for w in workspaces {
        form.push(("workspace".into(), (*w).to_string()));
    }
    if remember {
        form.push(("remember".into(), "on".into()));
    }
    let r = browser
        .post(srv.root_url("/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    location(&r)
}

/// A query parameter of a URL.
pub fn param(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Runs the whole front channel: sign in, approve `workspaces`; returns (code, redirect).
pub async fn get_code(
    srv: &TestServer,
    url: &url::Url,
    email: &str,
    workspaces: &[&str],
) -> (String, String) {
    let b = browser();
    let consent = sign_in(srv, &b, url, email).await.expect("a consent page");
    let to = answer_consent(srv, &b, &consent, true, workspaces, false).await;
    (param(&to, "code").expect("code in the redirect"), to)
}

/// Exchanges a code with the `oauth2` crate.
pub async fn exchange(
    client: &Client,
    code: &str,
    verifier: PkceCodeVerifier,
) -> Result<oauth2::basic::BasicTokenResponse, String> {
    client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .map_err(|e| describe(&e))
}

/// A readable rendering of an `oauth2` request error, with the server's `error` code first.
pub fn describe<E: std::error::Error + 'static>(
    e: &oauth2::RequestTokenError<E, oauth2::basic::BasicErrorResponse>,
) -> String {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => {
            format!(
                "{} {}",
                r.error(),
                r.error_description().cloned().unwrap_or_default()
            )
        }
        other => format!("{other:?}"),
    }
}

/// `GET /api/v1/me` with `token`; returns (status, body).
pub async fn me(srv: &TestServer, token: &str) -> (u16, Value) {
    let r = srv.get(token, "/me").await;
    let code = r.code();
    let body = serde_json::from_str(&r.text()).unwrap_or(Value::Null);
    (code, body)
}

/// A raw token-endpoint POST (for requests no well-behaved library would send).
pub async fn token_post(
    srv: &TestServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut rb = srv.client.post(srv.root_url("/oauth/token")).form(form);
    if let Some((id, secret)) = basic {
        rb = rb.basic_auth(id, Some(secret));
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The actions in the server's audit log, oldest first.
pub async fn audit_actions(srv: &TestServer) -> Vec<String> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(srv.database_url())
        .await
        .unwrap();
    let rows = sqlx::query("SELECT action FROM audit_log ORDER BY at, id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String, _>("action").unwrap())
        .collect()
}
