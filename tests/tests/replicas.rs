//! Several replicas on one PostgreSQL database, as behind a load balancer: what one of them
//! revokes, deletes or rotates, the others act on at once — they hear it over LISTEN/NOTIFY
//! — not when what they remember expires (a PAT's lookup after 5 s, the OAuth deny-list and
//! keys at their next 5-s sync, a token's principal after 5 min).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod oauth_support;

use std::time::{Duration, Instant};

use oauth_support::*;
use warrant_e2e::*;

/// Well under every bound above, and long enough for a notification on a loaded machine.
const AT_ONCE: Duration = Duration::from_millis(1500);

/// Two replicas of one deployment: the same database, data folder and public URL (so the
/// tokens either issues name the same issuer and audience).
async fn two_replicas() -> Option<(TestServer, TestServer)> {
    if skip_postgres() {
        eprintln!("WARRANT_E2E_SKIP_POSTGRES is set: skipped");
        return None;
    }
    let a = TestServer::start(Backend::Postgres).await;
    let public_url = a.base.clone();
    let b = a.start_replica(&["--public-url", &public_url]).await;
    Some((a, b))
}

/// A PAT of the owner's, minted on `srv`: (id, token).
async fn owner_pat(srv: &TestServer, name: &str) -> (String, String) {
    srv.create_token(
        &srv.owner_token,
        json!({"name": name, "scopes": ["workspaces:read"], "expires_in_days": 1}),
    )
    .await
}

/// Asks `srv` who holds `token` until it is refused with 401, failing past [`AT_ONCE`].
async fn refused_at_once(srv: &TestServer, token: &str) {
    let start = Instant::now();
    loop {
        let (status, body) = me(srv, token).await;
        if status == 401 {
            assert_eq!(body["code"], "invalid_token", "{body}");
            return;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            start.elapsed() < AT_ONCE,
            "the other replica still accepted the token after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pat_revoked_on_one_replica_is_refused_by_the_other_at_once() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let (id, t) = owner_pat(&a, "busy").await;
    // The other replica looks it up and remembers it.
    b.get(&t, "/me").await.expect(200);
    b.get(&t, "/me").await.expect(200);
    a.delete(&a.owner_token, &format!("/tokens/{id}"))
        .await
        .expect(204);
    refused_at_once(&b, &t).await;
    refused_at_once(&a, &t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_deleted_on_one_replica_loses_its_tokens_on_the_other_at_once() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let agent = a.create_agent(&a.owner_token, "short-lived").await;
    let t = a.agent_token(&agent, &["workspaces:read"]).await;
    b.get(&t, "/me").await.expect(200);
    a.delete(&a.owner_token, &format!("/agents/{agent}"))
        .await
        .expect(204);
    refused_at_once(&b, &t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_revoked_on_one_replica_is_refused_by_the_other_at_once() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let (client, id, secret) = confidential_client(&a, "Replicated", &["workspaces:read"]).await;
    let at = client_credentials_token(&client).await;
    // Issued by one replica, verified (and remembered) by the other.
    assert_eq!(me(&b, &at).await.0, 200);
    // RFC 7009 at the first replica (by hand: the `oauth2` crate revokes only over https).
    let r = a
        .client
        .post(a.root_url("/oauth/revoke"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", at.as_str()), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    refused_at_once(&b, &at).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_by_the_operator_signs_and_verifies_on_every_replica_at_once() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let (client, _, _) = confidential_client(&a, "Rotated", &["workspaces:read"]).await;
    let issue = || client_credentials_token(&client);
    let kid_of = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let before = issue().await;
    assert_eq!(me(&b, &before).await.0, 200);

    // The operator rotates from the command line: a third process on the database.
    let out = a
        .cli(&["keys", "rotate", "--database-url", a.database_url()])
        .await;
    assert!(out.status.success(), "{}", describe_output(&out));
    let new_kid = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|v| v["kid"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no kid printed: {}", describe_output(&out)));
    assert_ne!(kid_of(&before), new_kid);

    // The replica that issues signs with the new key at once …
    let start = Instant::now();
    let after = loop {
        let t = issue().await;
        if kid_of(&t) == new_kid {
            break t;
        }
        assert!(
            start.elapsed() < AT_ONCE,
            "still signing with the old key after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // … and the other verifies what it signed, as well as the tokens of the old key.
    let (status, body) = me(&b, &after).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(&b, &before).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_listener_drops_forgets_what_it_may_have_missed_and_listens_again() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let (id, t) = owner_pat(&a, "missed").await;
    b.get(&t, "/me").await.expect(200);
    // Revoked behind the replicas' backs (nobody announces it), while their listening
    // connections are cut: nothing tells them, but they cannot know they heard everything.
    a.revoke_token_in_database(&id).await;
    a.execute_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN %'",
    )
    .await;
    refused_at_once(&b, &t).await;

    // It listens again (after a pause of a second), and hears the next change at once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (id, t) = owner_pat(&a, "heard").await;
    b.get(&t, "/me").await.expect(200);
    a.delete(&a.owner_token, &format!("/tokens/{id}"))
        .await
        .expect(204);
    refused_at_once(&b, &t).await;
}
