//! Attacks on the OAuth authorization server: each must fail, and fail safely.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod oauth_support;

use oauth_support::*;
use oauth2::{Scope, TokenResponse};
use warrant_e2e::*;

both_backends!(
    wrong_verifier_is_refused_and_burns_the_code,
    replayed_code_fails_and_revokes_what_it_issued,
    downgrade_without_verifier_is_refused,
);

/// A started code flow: the server, the user's e-mail and workspace, the client's id and secret.
async fn setup(backend: Backend) -> (TestServer, String, String, String, String) {
    let srv = TestServer::start(backend).await;
    let (_, email, ws) = user_with_workspace(&srv, "dave").await;
    let (id, secret) = code_client(&srv, &["files:read"]).await;
    (srv, email, ws, id, secret)
}

async fn wrong_verifier_is_refused_and_burns_the_code(backend: Backend) {
    let (srv, email, ws, id, secret) = setup(backend).await;
    let client = oauth_client(&srv, &id, Some(&secret), REDIRECT).await;
    let (url, _, verifier) = authorize_url(&client, &["files:read"], None);
    let (code, _) = get_code(&srv, &url, &email, &[&ws]).await;
    let wrong = oauth2::PkceCodeVerifier::new("x".repeat(64));
    let e = exchange(&client, &code, wrong).await.unwrap_err();
    assert!(e.starts_with("invalid_grant"), "{e}");
    // The right verifier cannot rescue a code an attacker already tried.
    let e = exchange(&client, &code, verifier).await.unwrap_err();
    assert!(e.starts_with("invalid_grant"), "{e}");
}

async fn replayed_code_fails_and_revokes_what_it_issued(backend: Backend) {
    let (srv, email, ws, id, secret) = setup(backend).await;
    let client = oauth_client(&srv, &id, Some(&secret), REDIRECT).await;
    let (url, _, verifier) = authorize_url(&client, &["files:read"], None);
    let (code, _) = get_code(&srv, &url, &email, &[&ws]).await;
    let verifier_again = oauth2::PkceCodeVerifier::new(verifier.secret().clone());
    let tokens = exchange(&client, &code, verifier).await.unwrap();
    assert_eq!(me(&srv, tokens.access_token().secret()).await.0, 200);
    let e = exchange(&client, &code, verifier_again).await.unwrap_err();
    assert!(e.starts_with("invalid_grant"), "{e}");
    assert_eq!(me(&srv, tokens.access_token().secret()).await.0, 401);
    let e = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http())
        .await
        .unwrap_err();
    assert!(
        describe(&e).starts_with("invalid_grant"),
        "{}",
        describe(&e)
    );
    assert!(
        audit_actions(&srv)
            .await
            .iter()
            .any(|a| a == "oauth.code_replay")
    );
}

async fn downgrade_without_verifier_is_refused(backend: Backend) {
    let (srv, email, ws, id, secret) = setup(backend).await;
    let client = oauth_client(&srv, &id, Some(&secret), REDIRECT).await;
    let (url, _, _) = authorize_url(&client, &["files:read"], None);
    let (code, to) = get_code(&srv, &url, &email, &[&ws]).await;
    let redirect = to.split('?').next().unwrap().to_string();
    let (status, body) = token_post(
        &srv,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// An authorization URL built by hand, for requests no library would send.
fn raw_authorize(srv: &TestServer, pairs: &[(&str, &str)]) -> String {
    format!(
        "{}/oauth/authorize?{}",
        srv.base,
        serde_urlencoded_pairs(pairs)
    )
}

fn serde_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse("http://x/").unwrap();
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap_or("").to_string()
}

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_mismatch_and_unknown_client_show_a_page_and_never_redirect() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let (id, _) = code_client(&srv, &["files:read"]).await;
    let b = browser();
    let attempts = [
        // Open redirects: another host, a longer path, a lookalike, a traversal, a fragment.
        vec![
            ("client_id", id.as_str()),
            ("redirect_uri", "https://evil.example/cb"),
        ],
        vec![
            ("client_id", id.as_str()),
            ("redirect_uri", "https://app.example/cb/../evil"),
        ],
        vec![
            ("client_id", id.as_str()),
            ("redirect_uri", "https://app.example/cbx"),
        ],
        vec![
            ("client_id", id.as_str()),
            ("redirect_uri", "https://app.example.evil.example/cb"),
        ],
        vec![
            ("client_id", id.as_str()),
            (
                "redirect_uri",
                "https://app.example/cb?next=https://evil.example",
            ),
        ],
        vec![
            ("client_id", id.as_str()),
            ("redirect_uri", "http://app.example/cb"),
        ],
        vec![
            ("client_id", id.as_str()),
            ("redirect_uri", "http://127.0.0.1:8000/other"),
        ],
        // Unknown client.
        vec![
            ("client_id", "oac_nope"),
            ("redirect_uri", "https://app.example/cb"),
        ],
    ];
    for extra in attempts {
        let mut pairs = vec![
            ("response_type", "code"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "s1"),
        ];
        pairs.extend(extra.iter().copied());
        let r = b.get(raw_authorize(&srv, &pairs)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{pairs:?}");
        assert!(
            r.headers().get("location").is_none(),
            "{pairs:?} redirected"
        );
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("cannot continue") && !html.contains("evil.example"),
            "{html}"
        );
    }
    // A repeated redirect_uri is not a way around the exact match either.
    let r = b
        .get(format!(
            "{}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            raw_authorize(
                &srv,
                &[
                    ("client_id", &id),
                    ("redirect_uri", "https://app.example/cb"),
                    ("response_type", "code")
                ]
            )
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_or_missing_pkce_is_refused_at_the_redirect() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let (id, _) = code_client(&srv, &["files:read"]).await;
    let b = browser();
    for (method, challenge) in [
        (Some("plain"), Some(CHALLENGE)),
        (None, None),
        (Some("S256"), None),
        (None, Some(CHALLENGE)),
    ] {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", "https://app.example/cb"),
            ("state", "xyz"),
        ];
        if let Some(m) = method {
            pairs.push(("code_challenge_method", m));
        }
        if let Some(c) = challenge {
            pairs.push(("code_challenge", c));
        }
        let r = b.get(raw_authorize(&srv, &pairs)).send().await.unwrap();
        let to = location(&r);
        assert!(to.starts_with("https://app.example/cb?"), "{to}");
        assert_eq!(
            param(&to, "error").as_deref(),
            Some("invalid_request"),
            "{to}"
        );
        assert_eq!(param(&to, "state").as_deref(), Some("xyz"));
        assert_eq!(param(&to, "iss").as_deref(), Some(srv.base.as_str()));
        assert!(param(&to, "code").is_none());
    }
    // An implicit-grant request is refused the same way.
    let r = b
        .get(raw_authorize(
            &srv,
            &[
                ("response_type", "token"),
                ("client_id", &id),
                ("redirect_uri", "https://app.example/cb"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        param(&location(&r), "error").as_deref(),
        Some("unsupported_response_type")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_is_invalid_client() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let c = register(&srv, json!({"name": "Svc", "scopes": ["files:read"]})).await;
    let id = c["client_id"].as_str().unwrap();
    let wrong = oauth_client(&srv, id, Some("wrt_cs_not-the-secret"), REDIRECT).await;
    let e = wrong
        .exchange_client_credentials()
        .request_async(&http())
        .await
        .unwrap_err();
    assert!(
        describe(&e).starts_with("invalid_client"),
        "{}",
        describe(&e)
    );
    let (status, body) = token_post(
        &srv,
        &[("grant_type", "client_credentials")],
        Some((id, "nope")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // No secret at all is no authentication for a confidential client.
    let (status, _) = token_post(
        &srv,
        &[("grant_type", "client_credentials"), ("client_id", id)],
        None,
    )
    .await;
    assert_eq!(status, 401);
    // Two authentication methods at once are refused.
    let secret = c["client_secret"].as_str().unwrap();
    let (status, body) = token_post(
        &srv,
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", secret),
        ],
        Some((id, secret)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_access_token_gets_401() {
    let srv = TestServer::start_with(Backend::Sqlite, &["--oauth-access-token-ttl", "1"]).await;
    let c = register(
        &srv,
        json!({"name": "Short", "scopes": ["workspaces:read"]}),
    )
    .await;
    let client = oauth_client(
        &srv,
        c["client_id"].as_str().unwrap(),
        c["client_secret"].as_str(),
        REDIRECT,
    )
    .await;
    let t = client
        .exchange_client_credentials()
        .request_async(&http())
        .await
        .unwrap();
    assert_eq!(t.expires_in().unwrap().as_secs(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let (status, body) = me(&srv, t.access_token().secret()).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_for_another_audience_is_refused() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let c = register(&srv, json!({"name": "Aud", "scopes": ["workspaces:read"]})).await;
    let client = oauth_client(
        &srv,
        c["client_id"].as_str().unwrap(),
        c["client_secret"].as_str(),
        REDIRECT,
    )
    .await;
    let mcp = client
        .exchange_client_credentials()
        .add_extra_param("resource", format!("{}/mcp", srv.base))
        .request_async(&http())
        .await
        .unwrap();
    let (status, body) = me(&srv, mcp.access_token().secret()).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        srv.get(mcp.access_token().secret(), "/me")
            .await
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let rest = client
        .exchange_client_credentials()
        .add_extra_param("resource", srv.base.clone())
        .request_async(&http())
        .await
        .unwrap();
    assert_eq!(me(&srv, rest.access_token().secret()).await.0, 200);
    let e = client
        .exchange_client_credentials()
        .add_extra_param("resource", "https://evil.example/api")
        .request_async(&http())
        .await
        .unwrap_err();
    assert!(
        describe(&e).starts_with("invalid_target"),
        "{}",
        describe(&e)
    );
    // A forged token (another key) is refused too.
    let mut forged = rest.access_token().secret().clone();
    forged.truncate(forged.rfind('.').unwrap() + 1);
    forged.push_str(&"A".repeat(86));
    assert_eq!(me(&srv, &forged).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_csrf_and_foreign_sessions_are_refused() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let (_, email, ws) = user_with_workspace(&srv, "erin").await;
    let (id, secret) = code_client(&srv, &["files:read"]).await;
    let client = oauth_client(&srv, &id, Some(&secret), REDIRECT).await;
    let (url, _, _) = authorize_url(&client, &["files:read"], None);
    let b = browser();
    let consent = sign_in(&srv, &b, &url, &email).await.unwrap();
    // A forged form (wrong CSRF token) from the victim's browser.
    let mut form: Vec<(String, String)> = hidden_inputs(&consent)
        .into_iter()
        .map(|(k, v)| {
            if k == "csrf" {
                (k, "forged".into())
            } else {
                (k, v)
            }
        })
        .collect();
    form.push(("decision".into(), "approve".into()));
    form.push(("workspace".into(), ws.clone()));
    let r = b
        .post(srv.root_url("/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // No CSRF token at all.
    form.retain(|(k, _)| k != "csrf");
    let r = b
        .post(srv.root_url("/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The genuine form, posted from a browser without the session.
    let mut genuine = hidden_inputs(&consent);
    genuine.push(("decision".into(), "approve".into()));
    genuine.push(("workspace".into(), ws.clone()));
    let r = browser()
        .post(srv.root_url("/oauth/authorize"))
        .form(&genuine)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("location").is_none());
    // The login form checks its CSRF cookie as well.
    let r = browser()
        .post(srv.root_url("/oauth/login"))
        .form(&[
            ("csrf", "x"),
            ("email", email.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A workspace the user holds no role in cannot be granted.
    let foreign = srv.create_workspace(&srv.owner_token, "not-erins").await;
    let mut sneaky = hidden_inputs(&consent);
    sneaky.push(("decision".into(), "approve".into()));
    sneaky.push(("workspace".into(), foreign));
    let r = b
        .post(srv.root_url("/oauth/authorize"))
        .form(&sneaky)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Denying sends access_denied back, with the state.
    let to = answer_consent(&srv, &b, &consent, false, &[], false).await;
    assert_eq!(param(&to, "error").as_deref(), Some("access_denied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_in_query_strings_are_never_accepted() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let c = register(&srv, json!({"name": "Q", "scopes": ["workspaces:read"]})).await;
    let (id, secret) = (
        c["client_id"].as_str().unwrap(),
        c["client_secret"].as_str().unwrap(),
    );
    let client = oauth_client(&srv, id, Some(secret), REDIRECT).await;
    let t = client
        .exchange_client_credentials()
        .add_scope(Scope::new("workspaces:read".into()))
        .request_async(&http())
        .await
        .unwrap();
    let at = t.access_token().secret();
    let r = srv
        .client
        .get(format!("{}?access_token={at}", srv.url("/me")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Token-endpoint parameters in the query string are refused, even with a valid body.
    let r = srv
        .client
        .post(format!(
            "{}?client_secret={secret}",
            srv.root_url("/oauth/token")
        ))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    // Introspection and revocation too.
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let r = srv
            .client
            .post(format!("{}?token={at}", srv.root_url(path)))
            .basic_auth(id, Some(secret))
            .form(&[("token", at.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_registration_refuses_secrets_and_unsafe_redirects() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let register = |body: Value| {
        let (http, url) = (srv.client.clone(), srv.root_url("/oauth/register"));
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for (body, error) in [
        (
            json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "scope": "everything"}),
            "invalid_client_metadata",
        ),
    ] {
        let (status, answer) = register(body.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(error)),
            "{body} -> {answer}"
        );
    }
    // A dynamically registered client cannot use client credentials: it has no secret.
    let (status, reg) = register(json!({"redirect_uris": ["https://app.example/cb"]})).await;
    assert_eq!(status, 201);
    let id = reg["client_id"].as_str().unwrap();
    let (status, body) = token_post(
        &srv,
        &[("grant_type", "client_credentials"), ("client_id", id)],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
}
