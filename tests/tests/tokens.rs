//! Personal access tokens: format, challenges, secrecy, revocation, expiry, escalation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use warrant_e2e::*;

both_backends!(
    token_format_and_checksum,
    flipped_checksum_is_invalid_token,
    well_formed_unknown_token_is_invalid_token,
    missing_credential_challenge_has_no_error,
    unauthorized_responses_name_resource_metadata,
    token_in_query_string_is_refused,
    secret_is_shown_only_at_creation,
    revoked_token_is_refused,
    a_revocation_by_another_replica_is_seen_within_seconds,
    expiry_is_capped_by_the_org_maximum,
    non_positive_expiry_is_rejected,
    token_cannot_mint_a_broader_scope,
    token_cannot_mint_a_broader_workspace_set,
    workspace_limited_token_on_other_workspaces,
    last_used_is_recorded,
    plaintext_token_is_never_stored_or_logged,
    admin_creates_agent_and_its_token,
    token_without_agents_admin_cannot_mint_for_an_agent,
    deleting_an_agent_kills_its_tokens,
);

fn other_base62(c: char) -> char {
    if c == 'A' { 'B' } else { 'A' }
}

async fn token_format_and_checksum(backend: Backend) {
    let s = TestServer::start(backend).await;
    assert_pat_format(&s.owner_token);
    let (_, t) = s
        .create_token(
            &s.owner_token,
            json!({"name": "fmt", "scopes": ["workspaces:read"], "expires_in_days": 7}),
        )
        .await;
    assert_pat_format(&t);
    assert_ne!(t, s.owner_token);
    s.get(&t, "/me").await.expect(200);
}

#[track_caller]
fn assert_invalid_token(r: &Reply) {
    r.problem(401, "invalid_token");
    let www = r
        .header_all("www-authenticate")
        .unwrap_or_else(|| panic!("{}: 401 without WWW-Authenticate", r.what));
    assert!(www.starts_with("Bearer "), "{www}");
    assert!(www.contains("realm=\"warrant\""), "{www}");
    assert!(www.contains("error=\"invalid_token\""), "{www}");
}

async fn flipped_checksum_is_invalid_token(backend: Backend) {
    let s = TestServer::start(backend).await;
    let good = s.owner_token.clone();
    // Last checksum character changed.
    let mut bad = good.clone();
    let last = bad.pop().unwrap();
    bad.push(other_base62(last));
    assert_invalid_token(&s.get(&bad, "/me").await);
    // A random-part character changed (the checksum then no longer matches).
    let mut bad2: Vec<char> = good.chars().collect();
    bad2[10] = other_base62(bad2[10]);
    let bad2: String = bad2.into_iter().collect();
    assert_invalid_token(&s.get(&bad2, "/me").await);
    // Malformed shapes.
    for junk in [
        "wrt_pat_short",
        "not-a-token",
        "wrt_pat_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    ] {
        assert_invalid_token(&s.get(junk, "/me").await);
    }
    // The good one still works.
    s.get(&good, "/me").await.expect(200);
}

async fn well_formed_unknown_token_is_invalid_token(backend: Backend) {
    let s = TestServer::start(backend).await;
    let forged = forge_pat();
    assert_pat_format(&forged);
    assert_invalid_token(&s.get(&forged, "/me").await);
    assert_invalid_token(&s.get(&forged, "/workspaces").await);
}

async fn missing_credential_challenge_has_no_error(backend: Backend) {
    let s = TestServer::start(backend).await;
    for path in ["/me", "/workspaces", "/tokens"] {
        let r = send(s.req(Method::GET, path, None)).await;
        r.problem(401, "unauthenticated");
        let www = r
            .header_all("www-authenticate")
            .unwrap_or_else(|| panic!("{}: no WWW-Authenticate", r.what));
        assert!(www.starts_with("Bearer realm=\"warrant\""), "{www}");
        assert!(
            !www.contains("error="),
            "no `error` when the credential is missing: {www}"
        );
    }
    // An Authorization header of another scheme counts as missing a bearer credential or as
    // invalid, but never succeeds.
    let r = send(
        s.req(Method::GET, "/me", None)
            .header("authorization", "Basic b3duZXI6cGFzcw=="),
    )
    .await;
    assert_eq!(r.code(), 401, "{}", r.text());
}

async fn unauthorized_responses_name_resource_metadata(backend: Backend) {
    let s = TestServer::start(backend).await;
    let missing = send(s.req(Method::GET, "/me", None)).await;
    let invalid = s.get(&forge_pat(), "/me").await;
    for r in [missing, invalid] {
        assert_eq!(r.code(), 401);
        let www = r.header_all("www-authenticate").unwrap_or_default();
        assert!(
            www.contains("resource_metadata=\""),
            "RFC 9728 resource_metadata missing: {www}"
        );
    }
}

async fn token_in_query_string_is_refused(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "q").await;
    for path in [
        "/me".to_string(),
        "/workspaces".to_string(),
        format!("/workspaces/{ws}/files"),
    ] {
        // Only in the query.
        let r = send(
            s.req(Method::GET, &path, None)
                .query(&[("access_token", s.owner_token.as_str())]),
        )
        .await;
        assert!(
            matches!(r.code(), 400 | 401),
            "{}: token in query must be refused, got {}: {}",
            r.what,
            r.status,
            r.text()
        );
        let v = r.assert_problem_shape();
        if r.code() == 400 {
            assert_eq!(v["code"], json!("token_in_query"), "{v}");
        }
        // In the query and in the header: still refused, the query copy is a leak.
        let r = send(
            s.req(Method::GET, &path, Some(&s.owner_token))
                .query(&[("access_token", s.owner_token.as_str())]),
        )
        .await;
        assert!(
            matches!(r.code(), 400 | 401),
            "{}: token in query must be refused, got {}: {}",
            r.what,
            r.status,
            r.text()
        );
    }
}

async fn secret_is_shown_only_at_creation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let created = s
        .post(
            &s.owner_token,
            "/tokens",
            json!({"name": "once", "scopes": ["files:read"], "expires_in_days": 30}),
        )
        .await
        .expect_json(201);
    for k in [
        "id",
        "token",
        "name",
        "principal_id",
        "scopes",
        "workspaces",
        "created_at",
        "expires_at",
    ] {
        assert!(
            created.get(k).is_some(),
            "creation response lacks {k}: {created}"
        );
    }
    assert_eq!(created["principal_id"], json!(s.owner_id));
    let id = created["id"].as_str().unwrap();
    let secret = created["token"].as_str().unwrap();
    assert_pat_format(secret);
    let random_part = &secret[8..40];

    let list = s.get(&s.owner_token, "/tokens").await;
    list.expect(200);
    let one = s.get(&s.owner_token, &format!("/tokens/{id}")).await;
    one.expect(200);
    for r in [&list, &one] {
        let text = r.text();
        assert!(
            !text.contains(secret),
            "{} leaks the secret: {text}",
            r.what
        );
        assert!(
            !text.contains(random_part),
            "{} leaks part of the secret: {text}",
            r.what
        );
        // And no other token's secret either (the owner's).
        assert!(
            !text.contains(&s.owner_token),
            "{} leaks the owner token",
            r.what
        );
    }
    let listed = list.json();
    let tokens = listed["tokens"].as_array().expect("tokens array");
    let mine = tokens
        .iter()
        .find(|t| t["id"] == json!(id))
        .unwrap_or_else(|| panic!("new token not listed: {listed}"));
    assert!(
        mine.get("token").is_none(),
        "listed token has a `token` field: {mine}"
    );
    for k in [
        "id",
        "name",
        "principal_id",
        "scopes",
        "workspaces",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_addr",
        "revoked_at",
    ] {
        assert!(mine.get(k).is_some(), "listed token lacks {k}: {mine}");
    }
    let shown = one.json();
    assert!(
        shown.get("token").is_none(),
        "shown token has a `token` field: {shown}"
    );
    assert_eq!(shown["id"], json!(id));
}

async fn revoked_token_is_refused(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, t) = s
        .create_token(&s.owner_token, json!({"name": "rev", "scopes": ["workspaces:read", "tokens:write"], "expires_in_days": 1}))
        .await;
    s.get(&t, "/me").await.expect(200);
    s.delete(&s.owner_token, &format!("/tokens/{id}"))
        .await
        .expect(204);
    assert_invalid_token(&s.get(&t, "/me").await);
    assert_invalid_token(&s.get(&t, "/workspaces").await);
    let shown = s
        .get(&s.owner_token, &format!("/tokens/{id}"))
        .await
        .expect_json(200);
    assert!(
        shown["revoked_at"].is_string(),
        "revoked_at not set: {shown}"
    );
    // A token can revoke itself, after which it is dead too.
    let (id2, t2) = s
        .create_token(
            &s.owner_token,
            json!({"name": "self", "scopes": ["tokens:write"], "expires_in_days": 1}),
        )
        .await;
    s.delete(&t2, &format!("/tokens/{id2}")).await.expect(204);
    assert_invalid_token(&s.get(&t2, "/me").await);
}

/// Another replica's revocation reaches this one only through the database: the remembered
/// lookup is trusted for 5 s at most (the bound docs/rest-shapes.md states).
async fn a_revocation_by_another_replica_is_seen_within_seconds(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, t) = s
        .create_token(
            &s.owner_token,
            json!({"name": "elsewhere", "scopes": ["workspaces:read"], "expires_in_days": 1}),
        )
        .await;
    s.get(&t, "/me").await.expect(200);
    // What another replica's `DELETE /tokens/{id}` writes, with nobody told.
    s.revoke_token_in_database(&id).await;
    let start = std::time::Instant::now();
    loop {
        let r = s.get(&t, "/me").await;
        if r.code() == 401 {
            assert_invalid_token(&r);
            break;
        }
        r.expect(200);
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "a revoked token was still accepted after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn expiry_is_capped_by_the_org_maximum(backend: Backend) {
    let s = TestServer::start(backend).await;
    let org = s
        .get(&s.owner_token, &format!("/orgs/{}", s.org_id))
        .await
        .expect_json(200);
    let max = org["max_token_days"]
        .as_i64()
        .unwrap_or_else(|| panic!("org has no numeric max_token_days: {org}"));
    assert!(max > 0, "organisation maximum is {max} days");
    // Exactly the maximum is fine.
    s.create_token(
        &s.owner_token,
        json!({"name": "max", "scopes": ["files:read"], "expires_in_days": max}),
    )
    .await;
    let mut over = vec![max + 1, max + 365, 100_000];
    if max < 400 {
        over.push(400);
    }
    for days in over {
        s.post(
            &s.owner_token,
            "/tokens",
            json!({"name": "long", "scopes": ["files:read"], "expires_in_days": days}),
        )
        .await
        .problem(422, "unprocessable");
    }
    // No expiry given: a default within the maximum.
    let v = s
        .post(
            &s.owner_token,
            "/tokens",
            json!({"name": "default", "scopes": ["files:read"]}),
        )
        .await
        .expect_json(201);
    assert!(v["expires_at"].is_string(), "every token expires: {v}");
}

async fn non_positive_expiry_is_rejected(backend: Backend) {
    let s = TestServer::start(backend).await;
    for days in [json!(0), json!(-1), json!(-365)] {
        let r = s
            .post(
                &s.owner_token,
                "/tokens",
                json!({"name": "neg", "scopes": ["files:read"], "expires_in_days": days}),
            )
            .await;
        assert!(
            matches!(r.code(), 400 | 422),
            "expires_in_days {days}: {} {}",
            r.status,
            r.text()
        );
        r.assert_problem_shape();
    }
}

async fn token_cannot_mint_a_broader_scope(backend: Backend) {
    let s = TestServer::start(backend).await;
    // Only files:read: it may not mint at all (no tokens:write), and certainly not files:write.
    let (_, read_only) = s
        .create_token(
            &s.owner_token,
            json!({"name": "ro", "scopes": ["files:read"], "expires_in_days": 1}),
        )
        .await;
    let v = s
        .post(
            &read_only,
            "/tokens",
            json!({"name": "up", "scopes": ["files:write"], "expires_in_days": 1}),
        )
        .await
        .forbidden("scope");
    assert!(v["required_scope"].is_string(), "{v}");
    // files:read + tokens:write: may mint files:read, not files:write.
    let (_, minter) = s
        .create_token(&s.owner_token, json!({"name": "minter", "scopes": ["files:read", "tokens:write"], "expires_in_days": 1}))
        .await;
    s.create_token(
        &minter,
        json!({"name": "sub", "scopes": ["files:read"], "expires_in_days": 1}),
    )
    .await;
    for scopes in [
        json!(["files:write"]),
        json!(["files:read", "files:write"]),
        json!(["org:admin"]),
        json!(["workspaces:admin"]),
    ] {
        s.post(
            &minter,
            "/tokens",
            json!({"name": "up", "scopes": scopes, "expires_in_days": 1}),
        )
        .await
        .forbidden("scope");
    }
}

async fn token_cannot_mint_a_broader_workspace_set(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws1 = s.create_workspace(&s.owner_token, "one").await;
    let ws2 = s.create_workspace(&s.owner_token, "two").await;
    let (_, limited) = s
        .create_token(
            &s.owner_token,
            json!({"name": "ws1", "scopes": ["files:read", "tokens:write"], "workspaces": [ws1], "expires_in_days": 1}),
        )
        .await;
    // Same workspace: fine.
    let (_, sub) = s
        .create_token(&limited, json!({"name": "sub", "scopes": ["files:read"], "workspaces": [ws1], "expires_in_days": 1}))
        .await;
    let me = s.get(&sub, "/me").await.expect_json(200);
    assert_eq!(me["workspaces"], json!([ws1]), "{me}");
    // Another workspace, or both: refused by the workspace layer.
    for set in [json!([ws2]), json!([ws1, ws2])] {
        s.post(&limited, "/tokens", json!({"name": "wider", "scopes": ["files:read"], "workspaces": set, "expires_in_days": 1}))
            .await
            .forbidden("workspace");
    }
    // No list at all means every workspace: refused, or narrowed to the creator's limits.
    let r = s
        .post(
            &limited,
            "/tokens",
            json!({"name": "all", "scopes": ["files:read"], "expires_in_days": 1}),
        )
        .await;
    match r.code() {
        403 => {
            r.forbidden("workspace");
        }
        201 => {
            let v = r.json();
            assert_eq!(
                v["workspaces"],
                json!([ws1]),
                "an unlimited token minted by a limited one: {v}"
            );
        }
        _ => panic!("{}: {} {}", r.what, r.status, r.text()),
    }
}

async fn workspace_limited_token_on_other_workspaces(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ws1 = s.create_workspace(&s.owner_token, "allowed").await;
    let ws2 = s
        .create_workspace(&s.owner_token, "member-but-not-allowed")
        .await;
    let ws3 = s.create_workspace(&s.owner_token, "stranger").await;
    s.put_file(&s.owner_token, &ws2, "secret.txt", "two")
        .await
        .expect(201);
    s.put_file(&s.owner_token, &ws3, "secret.txt", "three")
        .await
        .expect(201);
    let agent = s.create_agent(&s.owner_token, "bot").await;
    s.add_member(&s.owner_token, &ws1, &agent, "editor").await;
    s.add_member(&s.owner_token, &ws2, &agent, "editor").await;
    let (_, t) = s
        .create_token(
            &s.owner_token,
            json!({"name": "bot-ws1", "principal_id": agent, "workspaces": [ws1],
                   "scopes": ["files:read", "files:write", "workspaces:read"], "expires_in_days": 1}),
        )
        .await;
    // The allowed workspace works.
    s.put_file(&t, &ws1, "a.txt", "ok").await.expect(201);
    s.get(&t, &format!("/workspaces/{ws1}")).await.expect(200);
    // A workspace where the agent has a role, outside the token's limits: 403 layer workspace.
    s.get(&t, &format!("/workspaces/{ws2}"))
        .await
        .forbidden("workspace");
    s.get_file(&t, &ws2, "secret.txt")
        .await
        .forbidden("workspace");
    s.put_file(&t, &ws2, "b.txt", "no")
        .await
        .forbidden("workspace");
    s.get(&t, &format!("/workspaces/{ws2}/files"))
        .await
        .forbidden("workspace");
    // A workspace where the agent has no role: 404, as if it did not exist.
    s.get(&t, &format!("/workspaces/{ws3}")).await.not_found();
    s.get_file(&t, &ws3, "secret.txt").await.not_found();
    s.put_file(&t, &ws3, "b.txt", "no").await.not_found();
    // Nothing was written.
    let body = s.get_file(&s.owner_token, &ws3, "secret.txt").await;
    body.expect(200);
    assert_eq!(body.body, b"three");
    s.get_file(&s.owner_token, &ws2, "b.txt").await.expect(404);
    s.get_file(&s.owner_token, &ws3, "b.txt").await.expect(404);
}

async fn last_used_is_recorded(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, t) = s
        .create_token(
            &s.owner_token,
            json!({"name": "lu", "scopes": ["workspaces:read"], "expires_in_days": 1}),
        )
        .await;
    let before = s
        .get(&s.owner_token, &format!("/tokens/{id}"))
        .await
        .expect_json(200);
    assert!(
        before["last_used_at"].is_null(),
        "unused token has last_used_at: {before}"
    );
    s.get(&t, "/me").await.expect(200);
    let seen = poll_until(Duration::from_secs(3), || async {
        let v = s
            .get(&s.owner_token, &format!("/tokens/{id}"))
            .await
            .expect_json(200);
        v["last_used_at"].is_string().then_some(v)
    })
    .await
    .unwrap_or_else(|| panic!("last_used_at still unset 3 s after use"));
    let addr = seen["last_used_addr"]
        .as_str()
        .unwrap_or_else(|| panic!("last_used_addr unset: {seen}"));
    assert!(addr.contains("127.0.0.1"), "last_used_addr {addr:?}");
}

async fn plaintext_token_is_never_stored_or_logged(backend: Backend) {
    let s = TestServer::start_opts(
        backend,
        ServerOptions {
            env: vec![("RUST_LOG".into(), "debug".into())],
            ..Default::default()
        },
    )
    .await;
    let ws = s.create_workspace(&s.owner_token, "scan").await;
    let (id, t) = s
        .create_token(&s.owner_token, json!({"name": "scan", "scopes": ["files:read", "files:write", "workspaces:read"], "expires_in_days": 1}))
        .await;
    // Use it: success, a refusal, a bad checksum variant, a query-string attempt, revocation.
    s.get(&t, "/me").await.expect(200);
    s.put_file(&t, &ws, "f.txt", "x").await.expect(201);
    s.delete_file(&t, &ws, "f.txt").await.expect(403);
    let mut flipped = t.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    s.get(&flipped, "/me").await.expect(401);
    let _ = send(
        s.req(Method::GET, "/me", None)
            .query(&[("access_token", t.as_str())]),
    )
    .await;
    let _ = poll_until(Duration::from_secs(3), || async {
        let v = s
            .get(&s.owner_token, &format!("/tokens/{id}"))
            .await
            .expect_json(200);
        v["last_used_at"].is_string().then_some(())
    })
    .await;
    s.delete(&s.owner_token, &format!("/tokens/{id}"))
        .await
        .expect(204);
    s.get(&t, "/me").await.expect(401);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let secrets = [
        t.as_str(),
        &t[8..40],
        s.owner_token.as_str(),
        &s.owner_token[8..40],
        flipped.as_str(),
    ];
    let logs = s.logs();
    for secret in secrets {
        assert!(
            !logs.contains(secret),
            "the server logs contain a plaintext token ({secret})"
        );
    }
    if backend == Backend::Sqlite {
        let db = s.db_file_bytes();
        assert!(!db.is_empty());
        for secret in secrets {
            assert!(
                !contains_bytes(&db, secret.as_bytes()),
                "the SQLite database contains a plaintext token ({secret})"
            );
        }
    }
}

async fn admin_creates_agent_and_its_token(backend: Backend) {
    let s = TestServer::start(backend).await;
    let agent = s
        .post(
            &s.owner_token,
            "/agents",
            json!({"org_id": s.org_id, "name": "builder"}),
        )
        .await
        .expect_json(201);
    assert_eq!(agent["kind"], json!("agent"), "{agent}");
    assert_eq!(agent["name"], json!("builder"), "{agent}");
    assert_eq!(agent["org_id"], json!(s.org_id), "{agent}");
    assert_eq!(agent["created_by"], json!(s.owner_id), "{agent}");
    let agent_id = agent["id"].as_str().unwrap().to_string();
    let listed = s.get(&s.owner_token, "/agents").await.expect_json(200);
    assert!(
        listed["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .any(|a| a["id"] == json!(agent_id)),
        "{listed}"
    );
    let v = s
        .post(&s.owner_token, "/tokens", json!({"name": "for-agent", "scopes": ["workspaces:read"], "principal_id": agent_id, "expires_in_days": 1}))
        .await
        .expect_json(201);
    assert_eq!(v["principal_id"], json!(agent_id), "{v}");
    let t = v["token"].as_str().unwrap();
    assert_pat_format(t);
    let me = s.get(t, "/me").await.expect_json(200);
    assert_eq!(me["principal_id"], json!(agent_id), "{me}");
    assert_eq!(me["principal_kind"], json!("agent"), "{me}");
    assert_eq!(me["token_id"], v["id"], "{me}");
}

async fn token_without_agents_admin_cannot_mint_for_an_agent(backend: Backend) {
    let s = TestServer::start(backend).await;
    let agent = s.create_agent(&s.owner_token, "managed").await;
    let (_, minter) = s
        .create_token(&s.owner_token, json!({"name": "minter", "scopes": ["tokens:write", "workspaces:read"], "expires_in_days": 1}))
        .await;
    // It can mint for its own principal...
    s.create_token(
        &minter,
        json!({"name": "self", "scopes": ["workspaces:read"], "expires_in_days": 1}),
    )
    .await;
    // ...but not for the agent.
    let r = s
        .post(&minter, "/tokens", json!({"name": "steal", "scopes": ["workspaces:read"], "principal_id": agent, "expires_in_days": 1}))
        .await;
    r.expect(403);
    r.assert_problem_shape();
    // And the agent's own token cannot mint for another agent, nor for the owner.
    let other = s.create_agent(&s.owner_token, "other").await;
    let agent_token = s
        .agent_token(&agent, &["tokens:write", "workspaces:read"])
        .await;
    for target in [other.as_str(), s.owner_id.as_str()] {
        let r = s
            .post(&agent_token, "/tokens", json!({"name": "steal", "scopes": ["workspaces:read"], "principal_id": target, "expires_in_days": 1}))
            .await;
        assert!(
            matches!(r.code(), 403 | 404),
            "{}: {} {}",
            r.what,
            r.status,
            r.text()
        );
    }
}

async fn deleting_an_agent_kills_its_tokens(backend: Backend) {
    let s = TestServer::start(backend).await;
    let agent = s.create_agent(&s.owner_token, "doomed").await;
    let t = s.agent_token(&agent, &["workspaces:read"]).await;
    s.get(&t, "/me").await.expect(200);
    s.delete(&s.owner_token, &format!("/agents/{agent}"))
        .await
        .expect(204);
    assert_invalid_token(&s.get(&t, "/me").await);
}
