//! Ownership hand-over end to end: an agent founds an organisation, builds a workspace, brings
//! in a human and hands the organisation over; afterwards the agent is a maintainer with only
//! its documented upkeep rights and cannot take the organisation back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use warrant_e2e::*;

both_backends!(an_agent_builds_an_org_and_hands_it_to_a_human);

const BUILDER_SCOPES: &[&str] = &[
    "org:admin",
    "agents:admin",
    "workspaces:admin",
    "workspaces:read",
    "members:admin",
    "files:read",
    "files:write",
    "tokens:write",
];

async fn an_agent_builds_an_org_and_hands_it_to_a_human(backend: Backend) {
    let s = TestServer::start(backend).await;
    let builder = s.create_agent(&s.owner_token, "org-builder").await;
    let agent = s.agent_token(&builder, BUILDER_SCOPES).await;

    // The agent founds an organisation (it becomes its owner) and builds it up.
    let org = s
        .post(&agent, "/orgs", json!({"name": "Acme Research"}))
        .await
        .expect_json(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ws = s
        .post(&agent, "/workspaces", json!({"org_id": org, "name": "lab"}))
        .await
        .expect_json(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.put_file(&agent, &ws, "notes/readme.md", "welcome")
        .await
        .expect(201);
    let human = s
        .post(
            &agent,
            "/users",
            json!({"org_id": org, "email": "ada@acme.example", "name": "Ada",
                   "password": "a long enough password"}),
        )
        .await
        .expect_json(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let helper = s
        .post(
            &agent,
            "/agents",
            json!({"org_id": org, "name": "helper-bot"}),
        )
        .await
        .expect_json(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let outsider = s
        .create_user(&s.owner_token, "eve@example.com", "Eve")
        .await;

    // Only a human member can receive the organisation.
    let p = s
        .post(
            &agent,
            &format!("/orgs/{org}/transfer-ownership"),
            json!({"to": helper}),
        )
        .await
        .problem(422, "unprocessable");
    assert!(p["detail"].as_str().unwrap().contains("human"), "{p}");
    s.post(
        &agent,
        &format!("/orgs/{org}/transfer-ownership"),
        json!({"to": outsider}),
    )
    .await
    .expect(404);
    let (_, ada_before) = s
        .issue_user_token(
            "ada@acme.example",
            "ada",
            &["org:admin", "workspaces:read"],
            None,
        )
        .await;
    // A member who is not the owner cannot take it.
    s.post(
        &ada_before,
        &format!("/orgs/{org}/transfer-ownership"),
        json!({"to": human}),
    )
    .await
    .problem(403, "policy_denied");

    // The hand-over.
    let handed = s
        .post(
            &agent,
            &format!("/orgs/{org}/transfer-ownership"),
            json!({"to": human}),
        )
        .await
        .expect_json(200);
    assert_eq!(handed["id"], json!(org));

    // The human owns the organisation and its workspaces.
    let (_, ada) = s
        .issue_user_token(
            "ada@acme.example",
            "ada-owner",
            &[
                "org:admin",
                "workspaces:read",
                "workspaces:admin",
                "members:admin",
                "files:read",
                "files:write",
            ],
            None,
        )
        .await;
    s.send_json(
        Method::PATCH,
        &ada,
        &format!("/orgs/{org}"),
        json!({"max_token_days": 30}),
    )
    .await
    .expect(200);
    s.get_file(&ada, &ws, "notes/readme.md").await.expect(200);
    s.put_file(&ada, &ws, "notes/owner.md", "mine now")
        .await
        .expect(201);
    let members = s
        .get(&ada, &format!("/workspaces/{ws}/members"))
        .await
        .expect_json(200);
    let role_of = |who: &str| {
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["principal_id"] == json!(who))
            .map(|m| m["role"].clone())
    };
    assert_eq!(role_of(&human), Some(json!("owner")), "{members}");
    assert_eq!(role_of(&builder), Some(json!("viewer")), "{members}");

    // The agent is a maintainer: upkeep only.
    s.get(&agent, &format!("/orgs/{org}")).await.expect(200);
    s.get_file(&agent, &ws, "notes/readme.md").await.expect(200);
    for refused in [
        s.post(
            &agent,
            &format!("/orgs/{org}/transfer-ownership"),
            json!({"to": builder}),
        )
        .await,
        s.send_json(
            Method::PATCH,
            &agent,
            &format!("/orgs/{org}"),
            json!({"max_token_days": 366}),
        )
        .await,
        s.post(
            &agent,
            "/workspaces",
            json!({"org_id": org, "name": "shadow-lab"}),
        )
        .await,
        s.post(
            &agent,
            "/users",
            json!({"org_id": org, "email": "mallory@acme.example", "name": "M"}),
        )
        .await,
        s.put_json(
            &agent,
            &format!("/workspaces/{ws}/members/{builder}"),
            json!({"role": "owner"}),
        )
        .await,
        s.put_file(&agent, &ws, "notes/readme.md", "defaced").await,
    ] {
        let p = refused.problem(403, "policy_denied");
        assert_eq!(p["layer"], json!("policy"), "{p}");
    }
    s.get_file(&ada, &ws, "notes/readme.md").await.expect(200);
    assert_eq!(
        s.get_file(&ada, &ws, "notes/readme.md").await.text(),
        "welcome"
    );

    // The new owner can give the agent its writes back, deliberately.
    s.put_json(
        &ada,
        &format!("/workspaces/{ws}/members/{builder}"),
        json!({"role": "editor"}),
    )
    .await
    .expect(200);
    s.put_file(&agent, &ws, "notes/upkeep.md", "nightly job ran")
        .await
        .expect(201);
}
