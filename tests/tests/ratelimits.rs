//! Rate limits: 429 with Retry-After and RateLimit-* headers, recovery after the window,
//! per-token overrides, and brute-force protection for failed authentications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use warrant_e2e::*;

both_backends!(
    a_credential_over_its_limit_gets_429_then_recovers,
    a_token_override_is_stricter_than_the_default,
    guessing_tokens_is_slowed_down,
);

async fn a_credential_over_its_limit_gets_429_then_recovers(backend: Backend) {
    // 120 per minute: a bucket of 120 that refills one request every half second.
    let s = TestServer::start_with(backend, &["--rate-limit-per-credential", "120"]).await;
    let mut codes = Vec::new();
    for _ in 0..125 {
        codes.push(s.get(&s.owner_token, "/me").await.code());
    }
    assert!(codes[..120].iter().all(|c| *c == 200), "{codes:?}");
    let limited = s.get(&s.owner_token, "/me").await;
    let body = limited.problem(429, "rate_limited");
    assert!(body["detail"].as_str().unwrap().contains("120"), "{body}");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(limited.header("ratelimit-limit").as_deref(), Some("120"));
    assert_eq!(limited.header("ratelimit-remaining").as_deref(), Some("0"));
    assert!(limited.header("ratelimit-reset").is_some());
    // After the advertised wait, requests go through again.
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    s.get(&s.owner_token, "/me").await.expect(200);
}

async fn a_token_override_is_stricter_than_the_default(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, limited) = s
        .create_token(
            &s.owner_token,
            json!({"name": "slow", "scopes": ["files:read"], "rate_limit_per_minute": 3}),
        )
        .await;
    for _ in 0..3 {
        s.get(&limited, "/me").await.expect(200);
    }
    s.get(&limited, "/me").await.problem(429, "rate_limited");
    // Other credentials are not affected.
    s.get(&s.owner_token, "/me").await.expect(200);
    // Out-of-range overrides are refused.
    s.post(
        &s.owner_token,
        "/tokens",
        json!({"name": "x", "scopes": ["files:read"], "rate_limit_per_minute": 0}),
    )
    .await
    .problem(422, "unprocessable");
}

async fn guessing_tokens_is_slowed_down(backend: Backend) {
    let s = TestServer::start_with(backend, &["--rate-limit-failed-auth", "5"]).await;
    let wrong = format!("wrt_pat_{}", "A".repeat(38));
    for _ in 0..5 {
        s.get(&wrong, "/me").await.problem(401, "invalid_token");
    }
    let limited = s.get(&wrong, "/me").await;
    limited.problem(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    // A valid token from the same address still works: only failures are counted.
    s.get(&s.owner_token, "/me").await.expect(200);
}
