//! Ownership hand-over end to end: an agent founds an organisation, builds a workspace, brings
//! in a human and hands the organisation over; afterwards the agent is a maintainer with only
//! its documented upkeep rights and cannot take the organisation back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use warrant_e2e::*;

both_backends!(
    an_agent_builds_an_org_and_hands_it_to_a_human,
    invitations_are_single_use_expiring_and_revocable,
    an_existing_person_joins_with_an_invitation_addressed_to_them,
);

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
    // It invites a human, who signs up with the token.
    let inv = s
        .post(
            &agent,
            &format!("/orgs/{org}/invitations"),
            json!({"email": "ada@acme.example", "role": "member"}),
        )
        .await
        .expect_json(201);
    let token = inv["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("wrt_inv_"));
    let human = send(
        s.req(Method::POST, "/invitations/accept", None)
            .json(&json!({"token": token, "password": "a long enough password", "name": "Ada"})),
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

async fn invitations_are_single_use_expiring_and_revocable(backend: Backend) {
    let s = TestServer::start(backend).await;
    let invite = |email: &str| {
        let body = json!({"email": email});
        let s = &s;
        async move {
            s.post(
                &s.owner_token,
                &format!("/orgs/{}/invitations", s.org_id),
                body,
            )
            .await
            .expect_json(201)
        }
    };
    let accept = |token: String, query: &str| {
        send(
            s.req(Method::POST, &format!("/invitations/accept{query}"), None)
                .json(&json!({"token": token, "password": "a long enough password"})),
        )
    };

    // Used once; the second use is gone.
    let a = invite("a@example.com").await;
    let token = a["token"].as_str().unwrap().to_string();
    accept(token.clone(), "").await.expect(201);
    accept(token, "").await.problem(410, "gone");

    // Expired.
    let b = invite("b@example.com").await;
    s.execute_sql(&format!(
        "UPDATE invitations SET expires_at = 1 WHERE id = '{}'",
        b["id"].as_str().unwrap()
    ))
    .await;
    accept(b["token"].as_str().unwrap().to_string(), "")
        .await
        .problem(410, "gone");

    // Withdrawn.
    let c = invite("c@example.com").await;
    s.delete(
        &s.owner_token,
        &format!(
            "/orgs/{}/invitations/{}",
            s.org_id,
            c["id"].as_str().unwrap()
        ),
    )
    .await
    .expect(204);
    accept(c["token"].as_str().unwrap().to_string(), "")
        .await
        .problem(410, "gone");

    // Forged, and offered in a query string.
    accept("wrt_inv_forged".into(), "")
        .await
        .problem(401, "invalid_token");
    let d = invite("d@example.com").await;
    let dt = d["token"].as_str().unwrap().to_string();
    accept(dt.clone(), &format!("?token={dt}"))
        .await
        .problem(400, "token_in_query");
    // Weak passwords are refused and leave the invitation open.
    send(
        s.req(Method::POST, "/invitations/accept", None)
            .json(&json!({"token": dt, "password": "short"})),
    )
    .await
    .expect(422);
    accept(dt, "").await.expect(201);

    // The list shows each state, never a token.
    let list = s
        .get(&s.owner_token, &format!("/orgs/{}/invitations", s.org_id))
        .await
        .expect_json(200);
    let mut states: Vec<&str> = list["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert!(i.get("token").is_none(), "{i}");
            i["status"].as_str().unwrap()
        })
        .collect();
    states.sort_unstable();
    assert_eq!(states, vec!["accepted", "accepted", "expired", "revoked"]);

    // Another organisation's admin cannot see or withdraw them.
    let outsider = s.create_agent(&s.owner_token, "outsider").await;
    let t = s.agent_token(&outsider, &["org:admin"]).await;
    let other_org = s
        .post(&t, "/orgs", json!({"name": "Other"}))
        .await
        .expect_json(201);
    s.get(&t, &format!("/orgs/{}/invitations", s.org_id))
        .await
        .expect(403);
    s.post(
        &t,
        &format!("/orgs/{}/invitations", other_org["id"].as_str().unwrap()),
        json!({"email": "x@example.com", "role": "owner"}),
    )
    .await
    .problem(422, "unprocessable");
}

async fn an_existing_person_joins_with_an_invitation_addressed_to_them(backend: Backend) {
    let s = TestServer::start(backend).await;
    // A second organisation, founded by the owner, who invites Eve (a user of the first).
    let org = s
        .post(&s.owner_token, "/orgs", json!({"name": "Beta Labs"}))
        .await
        .expect_json(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let eve = s
        .create_user(&s.owner_token, "eve@example.com", "Eve")
        .await;
    s.create_user(&s.owner_token, "mallory@example.com", "Mallory")
        .await;
    let (_, eve_token) = s
        .issue_user_token(
            "eve@example.com",
            "Eve",
            &["workspaces:read", "files:read"],
            None,
        )
        .await;
    let (_, mallory_token) = s
        .issue_user_token("mallory@example.com", "Mallory", &["workspaces:read"], None)
        .await;
    let invite = |email: &'static str| {
        let s = &s;
        let org = org.clone();
        async move {
            s.post(
                &s.owner_token,
                &format!("/orgs/{org}/invitations"),
                json!({"email": email, "role": "admin"}),
            )
            .await
            .expect_json(201)["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let token = invite("EVE@example.com").await;
    let join = |credential: Option<String>, token: String| {
        let s = &s;
        async move {
            send(
                s.req(Method::POST, "/invitations/join", credential.as_deref())
                    .json(&json!({ "token": token })),
            )
            .await
        }
    };
    s.get(&eve_token, &format!("/orgs/{org}")).await.expect(404);

    // Who may not spend it: nobody signed in, another person, an agent.
    join(None, token.clone()).await.expect(401);
    let p = join(Some(mallory_token.clone()), token.clone())
        .await
        .problem(422, "unprocessable");
    assert!(
        p["detail"].as_str().unwrap().contains("another e-mail"),
        "{p}"
    );
    let bot = s.create_agent(&s.owner_token, "bot").await;
    let bot_token = s.agent_token(&bot, &["workspaces:read"]).await;
    join(Some(bot_token), token.clone())
        .await
        .problem(422, "unprocessable");
    join(Some(eve_token.clone()), "wrt_inv_not-a-real-one".into())
        .await
        .expect(401);

    // Eve joins (the address matches whatever its case) with the invited role.
    let joined = join(Some(eve_token.clone()), token.clone())
        .await
        .expect_json(200);
    assert_eq!(
        joined,
        json!({"org_id": org, "principal_id": eve, "role": "admin"})
    );
    s.get(&eve_token, &format!("/orgs/{org}")).await.expect(200);
    // The token is used up; a second invitation to a member is refused and stays open.
    join(Some(eve_token.clone()), token)
        .await
        .problem(410, "gone");
    let again = invite("eve@example.com").await;
    join(Some(eve_token.clone()), again)
        .await
        .problem(409, "conflict");
    let list = s
        .get(&s.owner_token, &format!("/orgs/{org}/invitations"))
        .await
        .expect_json(200);
    // (Both were made in the same second: their order is not the point.)
    let mut statuses: Vec<&str> = list["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec!["accepted", "open"], "{list}");

    // Membership is real: given a workspace role there, Eve reads its files.
    let ws = s
        .post(
            &s.owner_token,
            "/workspaces",
            json!({"org_id": org, "name": "beta"}),
        )
        .await
        .expect_json(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.put_file(&s.owner_token, &ws, "a.txt", "beta")
        .await
        .expect(201);
    s.add_member(&s.owner_token, &ws, &eve, "viewer").await;
    assert_eq!(
        s.get_file(&eve_token, &ws, "a.txt").await.expect(200).body,
        b"beta"
    );
}
