//! OAuth 2.1 flows driven by an independent client (the `oauth2` crate) and a cookie-keeping
//! browser: code + PKCE + state, refresh rotation and family revocation, client credentials,
//! revocation, introspection, JWKS verification and key rotation, dynamic registration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod oauth_support;

use oauth_support::*;
use oauth2::{AccessToken, Scope, TokenIntrospectionResponse, TokenResponse};
use warrant_e2e::*;

both_backends!(
    code_flow_with_pkce_state_iss_and_workspace_limits,
    refresh_rotates_and_reuse_revokes_the_family,
    client_credentials_with_basic_and_post,
    revoked_access_token_gets_401_and_introspects_inactive,
    dynamic_registration_then_code_flow,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_advertises_s256_iss_and_no_implicit_or_password() {
    let srv = TestServer::start(Backend::Sqlite).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let m: Value = srv
            .client
            .get(srv.root_url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(m["issuer"], srv.base.as_str());
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert_eq!(m["response_types_supported"], json!(["code"]));
        let grants: Vec<&str> = m["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap())
            .collect();
        assert!(grants.contains(&"authorization_code") && grants.contains(&"client_credentials"));
        assert!(
            !grants.contains(&"implicit") && !grants.contains(&"password"),
            "{grants:?}"
        );
        for k in [
            "token_endpoint",
            "jwks_uri",
            "registration_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
        ] {
            assert!(m[k].as_str().unwrap().starts_with(&srv.base), "{k}: {m}");
        }
    }
}

async fn code_flow_with_pkce_state_iss_and_workspace_limits(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (user, email, ws) = user_with_workspace(&srv, "alice").await;
    // A second workspace where Alice is editor too, which she will not grant.
    let other = srv.create_workspace(&srv.owner_token, "alice-other").await;
    srv.add_member(&srv.owner_token, &other, &user, "editor")
        .await;
    let (id, secret) = code_client(&srv, &["files:read", "files:write", "workspaces:read"]).await;
    let client = oauth_client(&srv, &id, Some(&secret), "http://127.0.0.1:43117/callback").await;
    let (url, state, verifier) = authorize_url(&client, &["files:read", "files:write"], None);

    // The pages refuse framing and referrers.
    let b = browser();
    let login = b.get(url.as_str()).send().await.unwrap();
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    assert!(
        login.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(login.headers()["referrer-policy"], "no-referrer");

    let consent = sign_in(&srv, &b, &url, &email).await.expect("consent page");
    assert!(
        consent.contains("Test app") && consent.contains("127.0.0.1"),
        "{consent}"
    );
    assert!(
        consent.contains("files:write") && consent.contains("alice-ws"),
        "{consent}"
    );
    let to = answer_consent(&srv, &b, &consent, true, &[&ws], false).await;
    assert!(to.starts_with("http://127.0.0.1:43117/callback?"), "{to}");
    assert_eq!(
        param(&to, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(param(&to, "iss").as_deref(), Some(srv.base.as_str()));
    let code = param(&to, "code").unwrap();

    let tokens = exchange(&client, &code, verifier).await.unwrap();
    assert!(
        tokens
            .refresh_token()
            .unwrap()
            .secret()
            .starts_with("wrt_rt_")
    );
    let expires = tokens.expires_in().unwrap().as_secs();
    assert!((1..=900).contains(&expires), "{expires}");
    let at = tokens.access_token().secret().clone();
    let (status, me_body) = me(&srv, &at).await;
    assert_eq!(status, 200, "{me_body}");
    assert_eq!(me_body["principal_id"], user.as_str());
    assert_eq!(me_body["workspaces"], json!([ws]));

    // The token goes through the same pipeline as a PAT: its scopes and workspaces hold.
    srv.put_file(&at, &ws, "notes/a.txt", "hello")
        .await
        .expect(201);
    srv.get_file(&at, &ws, "notes/a.txt").await.expect(200);
    srv.put_file(&at, &other, "x.txt", "no")
        .await
        .forbidden("workspace");
    srv.delete_file(&at, &ws, "notes/a.txt")
        .await
        .forbidden("scope");

    // Every grant is audited.
    let actions = audit_actions(&srv).await;
    assert!(
        actions
            .iter()
            .any(|a| a == "oauth.grant.authorization_code"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == "oauth.consent.approve"),
        "{actions:?}"
    );
}

async fn refresh_rotates_and_reuse_revokes_the_family(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (_, email, ws) = user_with_workspace(&srv, "bob").await;
    let (id, secret) = code_client(&srv, &["files:read"]).await;
    let client = oauth_client(&srv, &id, Some(&secret), REDIRECT).await;
    let (url, _, verifier) = authorize_url(&client, &["files:read"], None);
    let (code, _) = get_code(&srv, &url, &email, &[&ws]).await;
    let first = exchange(&client, &code, verifier).await.unwrap();
    let rt1 = first.refresh_token().unwrap().clone();

    let second = client
        .exchange_refresh_token(&rt1)
        .request_async(&http())
        .await
        .unwrap();
    let rt2 = second.refresh_token().unwrap().clone();
    assert_ne!(rt1.secret(), rt2.secret(), "the refresh token rotates");
    let at2 = second.access_token().secret().clone();
    assert_eq!(me(&srv, &at2).await.0, 200);

    // Reusing the rotated token is theft: the whole family dies.
    let reuse = client
        .exchange_refresh_token(&rt1)
        .request_async(&http())
        .await
        .unwrap_err();
    assert!(
        describe(&reuse).starts_with("invalid_grant"),
        "{}",
        describe(&reuse)
    );
    let after = client
        .exchange_refresh_token(&rt2)
        .request_async(&http())
        .await
        .unwrap_err();
    assert!(
        describe(&after).starts_with("invalid_grant"),
        "{}",
        describe(&after)
    );
    let (status, body) = me(&srv, &at2).await;
    assert_eq!(status, 401, "{body}");
    let actions = audit_actions(&srv).await;
    assert!(
        actions.iter().any(|a| a == "oauth.refresh_reuse"),
        "{actions:?}"
    );
    assert!(actions.iter().any(|a| a == "oauth.refresh"), "{actions:?}");
    assert_eq!(me(&srv, first.access_token().secret()).await.0, 401);

    // A refresh token is bound to its client.
    let (other_id, other_secret) = code_client(&srv, &["files:read"]).await;
    let other = oauth_client(&srv, &other_id, Some(&other_secret), REDIRECT).await;
    let (url, _, verifier) = authorize_url(&client, &["files:read"], None);
    let (code, _) = get_code(&srv, &url, &email, &[&ws]).await;
    let fresh = exchange(&client, &code, verifier).await.unwrap();
    let stolen = other
        .exchange_refresh_token(fresh.refresh_token().unwrap())
        .request_async(&http())
        .await
        .unwrap_err();
    assert!(
        describe(&stolen).starts_with("invalid_grant"),
        "{}",
        describe(&stolen)
    );
}

async fn client_credentials_with_basic_and_post(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let ws = srv.create_workspace(&srv.owner_token, "svc-ws").await;
    let c = register(
        &srv,
        json!({"name": "Nightly job", "scopes": ["files:read", "files:write"]}),
    )
    .await;
    let id = c["client_id"].as_str().unwrap();
    let secret = c["client_secret"].as_str().unwrap();
    assert!(secret.starts_with("wrt_cs_"));
    let principal = c["principal_id"].as_str().unwrap();
    assert!(principal.starts_with("cli_"), "{c}");
    srv.add_member(&srv.owner_token, &ws, principal, "editor")
        .await;
    // The secret is shown once.
    let shown = srv
        .get(&srv.owner_token, &format!("/oauth/clients/{id}"))
        .await
        .expect_json(200);
    assert!(shown.get("client_secret").is_none(), "{shown}");

    let basic = oauth_client(&srv, id, Some(secret), REDIRECT).await;
    let t = basic
        .exchange_client_credentials()
        .add_scope(Scope::new("files:write".into()))
        .request_async(&http())
        .await
        .unwrap();
    assert!(t.refresh_token().is_none());
    let at = t.access_token().secret();
    let (status, body) = me(&srv, at).await;
    assert_eq!(
        (status, body["principal_kind"].as_str()),
        (200, Some("client")),
        "{body}"
    );
    srv.put_file(at, &ws, "out.txt", "done").await.expect(201);
    srv.get_file(at, &ws, "out.txt").await.forbidden("scope");

    let post = oauth_client(&srv, id, Some(secret), REDIRECT)
        .await
        .set_auth_type(oauth2::AuthType::RequestBody);
    let t = post
        .exchange_client_credentials()
        .request_async(&http())
        .await
        .unwrap();
    assert_eq!(
        t.scopes()
            .unwrap()
            .iter()
            .map(|s| s.as_str().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        "files:read files:write"
    );
    let too_much = basic
        .exchange_client_credentials()
        .add_scope(Scope::new("files:delete".into()))
        .request_async(&http())
        .await
        .unwrap_err();
    assert!(
        describe(&too_much).starts_with("invalid_scope"),
        "{}",
        describe(&too_much)
    );

    // A token response is never cached.
    let raw = srv
        .client
        .post(srv.root_url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    assert_eq!(raw.headers()["cache-control"], "no-store");

    // Rotating the secret retires the old one.
    let rotated = srv
        .post(
            &srv.owner_token,
            &format!("/oauth/clients/{id}/rotate-secret"),
            json!({}),
        )
        .await
        .expect_json(200);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(
        token_post(
            &srv,
            &[("grant_type", "client_credentials")],
            Some((id, secret))
        )
        .await
        .0,
        401
    );
    assert_eq!(
        token_post(
            &srv,
            &[("grant_type", "client_credentials")],
            Some((id, new_secret))
        )
        .await
        .0,
        200
    );

    // Deleting the client kills its live tokens.
    srv.delete(&srv.owner_token, &format!("/oauth/clients/{id}"))
        .await
        .expect(204);
    assert_eq!(me(&srv, at).await.0, 401);
}

async fn revoked_access_token_gets_401_and_introspects_inactive(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = register(
        &srv,
        json!({"name": "Revocable", "scopes": ["workspaces:read"]}),
    )
    .await;
    let id = c["client_id"].as_str().unwrap();
    let secret = c["client_secret"].as_str().unwrap();
    let client = oauth_client(&srv, id, Some(secret), REDIRECT).await;
    let t = client
        .exchange_client_credentials()
        .request_async(&http())
        .await
        .unwrap();
    let at = t.access_token().clone();
    assert_eq!(me(&srv, at.secret()).await.0, 200);

    let info = client.introspect(&at).request_async(&http()).await.unwrap();
    assert!(info.active());
    assert_eq!(
        info.client_id().map(|c| c.as_str().to_string()).as_deref(),
        Some(id)
    );
    assert_eq!(
        info.scopes().unwrap()[0].as_str().to_string(),
        "workspaces:read"
    );

    // The `oauth2` crate revokes only over https; this server runs on loopback http, so the
    // RFC 7009 request is sent by hand (client_secret_basic, a form body).
    let m = metadata(&srv).await;
    let r = srv
        .client
        .post(m["revocation_endpoint"].as_str().unwrap())
        .basic_auth(id, Some(secret))
        .form(&[
            ("token", at.secret().as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = me(&srv, at.secret()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "invalid_token");
    let info = client.introspect(&at).request_async(&http()).await.unwrap();
    assert!(!info.active());
    let garbage = client
        .introspect(&AccessToken::new("not-a-token".into()))
        .request_async(&http())
        .await
        .unwrap();
    assert!(!garbage.active());
    // Introspection requires a confidential client's authentication.
    let anonymous = srv
        .client
        .post(srv.root_url("/oauth/introspect"))
        .form(&[("token", at.secret().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

async fn dynamic_registration_then_code_flow(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let (_, email, ws) = user_with_workspace(&srv, "carol").await;
    let m = metadata(&srv).await;
    let reg = srv
        .client
        .post(m["registration_endpoint"].as_str().unwrap())
        .json(&json!({"client_name": "MCP inspector", "redirect_uris": ["http://localhost/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 201);
    let reg: Value = reg.json().await.unwrap();
    let id = reg["client_id"].as_str().unwrap().to_string();
    assert!(reg.get("client_secret").is_none(), "{reg}");

    // A public client: PKCE alone protects the code.
    let client = oauth_client(&srv, &id, None, "http://localhost:50123/cb").await;
    let (url, _, verifier) =
        authorize_url(&client, &["files:read"], Some(&format!("{}/mcp", srv.base)));
    let b = browser();
    let consent = sign_in(&srv, &b, &url, &email).await.unwrap();
    assert!(
        consent.contains("registered itself"),
        "dynamic clients are marked: {consent}"
    );
    let to = answer_consent(&srv, &b, &consent, true, &[&ws], true).await;
    let tokens = exchange(&client, &param(&to, "code").unwrap(), verifier)
        .await
        .unwrap();
    // A token for the MCP server is refused by the REST API.
    assert_eq!(me(&srv, tokens.access_token().secret()).await.0, 401);

    // Consent is remembered for the same client, scopes and workspaces.
    let (url, _, _) = authorize_url(&client, &["files:read"], None);
    let again = sign_in(&srv, &browser(), &url, &email).await.unwrap_err();
    assert!(param(&again, "code").is_some(), "{again}");

    // Admins see it, marked as dynamically registered.
    let list = srv
        .get(&srv.owner_token, "/oauth/clients")
        .await
        .expect_json(200);
    let listed = list["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == id.as_str())
        .unwrap();
    assert_eq!(listed["dynamically_registered"], true);
    assert_eq!(listed["type"], "public");

    // The organisation turns dynamic registration off: no more registrations, no more consent.
    srv.put_json(
        &srv.owner_token,
        &format!("/orgs/{}/oauth", srv.org_id),
        json!({"dynamic_registration": false}),
    )
    .await
    .expect(200);
    let refused = srv
        .client
        .post(m["registration_endpoint"].as_str().unwrap())
        .json(&json!({"redirect_uris": ["http://localhost/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let (url, _, _) = authorize_url(&client, &["files:read"], None);
    let b = browser();
    let login = b.get(url.as_str()).send().await.unwrap();
    let mut form = hidden_inputs(&login.text().await.unwrap());
    form.push(("email".into(), email.clone()));
    form.push(("password".into(), PASSWORD.into()));
    let next = location(
        &b.post(srv.root_url("/oauth/login"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    );
    let page = b.get(srv.root_url(&next)).send().await.unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.headers().get("location").is_none());
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("does not allow dynamically registered")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_verifies_tokens_and_rotation_keeps_old_keys() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let srv = TestServer::start(Backend::Sqlite).await;
    let c = register(
        &srv,
        json!({"name": "Verifier", "scopes": ["workspaces:read"]}),
    )
    .await;
    let (id, secret) = (
        c["client_id"].as_str().unwrap(),
        c["client_secret"].as_str().unwrap(),
    );
    let client = oauth_client(&srv, id, Some(secret), REDIRECT).await;
    let m = metadata(&srv).await;
    let jwks_uri = m["jwks_uri"].as_str().unwrap().to_string();
    let fetch_jwks = || {
        let (http, uri) = (srv.client.clone(), jwks_uri.clone());
        async move {
            http.get(&uri)
                .send()
                .await
                .unwrap()
                .json::<JwkSet>()
                .await
                .unwrap()
        }
    };

    let old = client
        .exchange_client_credentials()
        .request_async(&http())
        .await
        .unwrap();
    let old_at = old.access_token().secret().clone();
    let verify = |token: &str, set: &JwkSet| {
        let header = decode_header(token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        let jwk = set
            .find(header.kid.as_deref().unwrap())
            .expect("kid in the JWKS");
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&[srv.base.as_str()]);
        v.set_issuer(&[srv.base.as_str()]);
        let data = decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v).unwrap();
        (header.kid.unwrap(), data.claims)
    };
    let set = fetch_jwks().await;
    assert_eq!(set.keys.len(), 1);
    let (old_kid, claims) = verify(&old_at, &set);
    for k in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "scope",
        "client_id",
        "principal_kind",
    ] {
        assert!(claims.get(k).is_some(), "claim {k} missing: {claims}");
    }
    assert_eq!(claims["client_id"], id);
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 900);

    let out = srv
        .cli(&["keys", "rotate", "--database-url", srv.database_url()])
        .await;
    assert!(out.status.success(), "{}", describe_output(&out));
    let set = fetch_jwks().await;
    assert_eq!(set.keys.len(), 2, "the old key stays published");
    let new = client
        .exchange_client_credentials()
        .request_async(&http())
        .await
        .unwrap();
    let (new_kid, _) = verify(new.access_token().secret(), &set);
    assert_ne!(new_kid, old_kid, "the new key signs");
    // Tokens signed by the old key still verify, independently and at the server.
    verify(&old_at, &set);
    assert_eq!(me(&srv, &old_at).await.0, 200);
    assert_eq!(me(&srv, new.access_token().secret()).await.0, 200);
}
