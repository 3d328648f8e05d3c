//! Workspace roles (viewer / editor / admin / owner) through the base Cedar policies, the scope
//! layer, and users versus agents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use warrant_e2e::*;

both_backends!(
    viewer_reads_but_cannot_change,
    editor_changes_files_but_not_members,
    admin_manages_members_but_not_owners,
    only_the_owner_deletes_the_workspace,
    no_role_means_not_found,
    missing_scope_is_refused_by_the_scope_layer,
    user_viewer_with_cli_token_reads_but_cannot_write,
    members_listing_shows_roles,
    a_change_is_seen_by_the_very_next_read,
);

const AGENT_SCOPES: &[&str] = &[
    "files:read",
    "files:write",
    "files:delete",
    "workspaces:read",
    "members:admin",
];

/// A workspace with a file, and three agents holding viewer / editor / admin roles.
struct Fixture {
    s: TestServer,
    ws: String,
    viewer: (String, String),
    editor: (String, String),
    admin: (String, String),
}

async fn fixture(backend: Backend) -> Fixture {
    let s = TestServer::start(backend).await;
    let ws = s.create_workspace(&s.owner_token, "team").await;
    s.put_file(&s.owner_token, &ws, "shared/readme.txt", "hello team")
        .await
        .expect(201);
    let mut agents = Vec::new();
    for role in ["viewer", "editor", "admin"] {
        let id = s.create_agent(&s.owner_token, &format!("{role}-bot")).await;
        s.add_member(&s.owner_token, &ws, &id, role).await;
        let token = s.agent_token(&id, AGENT_SCOPES).await;
        agents.push((id, token));
    }
    let admin = agents.pop().unwrap();
    let editor = agents.pop().unwrap();
    let viewer = agents.pop().unwrap();
    Fixture {
        s,
        ws,
        viewer,
        editor,
        admin,
    }
}

#[track_caller]
fn assert_policy_denied(r: &Reply) {
    let v = r.forbidden("policy");
    assert!(
        v["policy_ids"].is_array(),
        "a policy refusal names the determining policies: {v}"
    );
}

async fn viewer_reads_but_cannot_change(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws, t) = (&f.s, &f.ws, &f.viewer.1);
    s.get(t, &format!("/workspaces/{ws}")).await.expect(200);
    let get = s.get_file(t, ws, "shared/readme.txt").await;
    get.expect(200);
    assert_eq!(get.body, b"hello team");
    assert_eq!(
        s.list_paths(t, ws, None).await,
        vec!["shared/readme.txt".to_string()]
    );
    s.get(t, &format!("/workspaces/{ws}/members"))
        .await
        .expect(200);

    assert_policy_denied(&s.put_file(t, ws, "shared/readme.txt", "defaced").await);
    assert_policy_denied(&s.put_file(t, ws, "new.txt", "new").await);
    assert_policy_denied(&s.delete_file(t, ws, "shared/readme.txt").await);
    assert_policy_denied(&s.move_file(t, ws, "shared/readme.txt", "moved.txt").await);
    let other = s.create_agent(&s.owner_token, "newcomer").await;
    assert_policy_denied(
        &s.put_json(
            t,
            &format!("/workspaces/{ws}/members/{other}"),
            json!({"role": "viewer"}),
        )
        .await,
    );
    // Nothing changed.
    assert_eq!(
        s.get_file(&s.owner_token, ws, "shared/readme.txt")
            .await
            .body,
        b"hello team"
    );
    s.get_file(&s.owner_token, ws, "new.txt").await.expect(404);
    s.get_file(&s.owner_token, ws, "moved.txt")
        .await
        .expect(404);
}

async fn editor_changes_files_but_not_members(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws, t) = (&f.s, &f.ws, &f.editor.1);
    s.put_file(t, ws, "drafts/plan.md", "v1").await.expect(201);
    s.put_file(t, ws, "shared/readme.txt", "edited")
        .await
        .expect(200);
    s.move_file(t, ws, "drafts/plan.md", "final/plan.md")
        .await
        .expect(200);
    s.delete_file(t, ws, "final/plan.md").await.expect(204);
    assert_eq!(
        s.get_file(&s.owner_token, ws, "shared/readme.txt")
            .await
            .body,
        b"edited"
    );

    let other = s.create_agent(&s.owner_token, "newcomer").await;
    assert_policy_denied(
        &s.put_json(
            t,
            &format!("/workspaces/{ws}/members/{other}"),
            json!({"role": "viewer"}),
        )
        .await,
    );
    assert_policy_denied(
        &s.delete(t, &format!("/workspaces/{ws}/members/{}", f.viewer.0))
            .await,
    );
    // The editor cannot promote itself either.
    assert_policy_denied(
        &s.put_json(
            t,
            &format!("/workspaces/{ws}/members/{}", f.editor.0),
            json!({"role": "admin"}),
        )
        .await,
    );
}

async fn admin_manages_members_but_not_owners(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws, t) = (&f.s, &f.ws, &f.admin.1);
    let newcomer = s.create_agent(&s.owner_token, "newcomer").await;
    let v = s
        .put_json(
            t,
            &format!("/workspaces/{ws}/members/{newcomer}"),
            json!({"role": "editor"}),
        )
        .await
        .expect_json(200);
    assert_eq!(v["workspace_id"], json!(ws), "{v}");
    assert_eq!(v["principal_id"], json!(newcomer), "{v}");
    assert_eq!(v["role"], json!("editor"), "{v}");
    // Change and remove a non-owner member.
    s.put_json(
        t,
        &format!("/workspaces/{ws}/members/{newcomer}"),
        json!({"role": "viewer"}),
    )
    .await
    .expect(200);
    s.delete(t, &format!("/workspaces/{ws}/members/{newcomer}"))
        .await
        .expect(204);
    // Making anyone an owner, or touching the owner, is refused.
    let r = s
        .put_json(
            t,
            &format!("/workspaces/{ws}/members/{newcomer}"),
            json!({"role": "owner"}),
        )
        .await;
    r.expect(403);
    r.assert_problem_shape();
    let r = s
        .put_json(
            t,
            &format!("/workspaces/{ws}/members/{}", f.admin.0),
            json!({"role": "owner"}),
        )
        .await;
    r.expect(403);
    let r = s
        .put_json(
            t,
            &format!("/workspaces/{ws}/members/{}", s.owner_id),
            json!({"role": "viewer"}),
        )
        .await;
    r.expect(403);
    let r = s
        .delete(t, &format!("/workspaces/{ws}/members/{}", s.owner_id))
        .await;
    r.expect(403);
    // The owner is still the owner.
    let members = s
        .get(&s.owner_token, &format!("/workspaces/{ws}/members"))
        .await
        .expect_json(200);
    let owner = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["principal_id"] == json!(s.owner_id))
        .unwrap_or_else(|| panic!("owner missing: {members}"))
        .clone();
    assert_eq!(owner["role"], json!("owner"), "{members}");
    // An unknown role is bad input.
    let r = s
        .put_json(
            t,
            &format!("/workspaces/{ws}/members/{newcomer}"),
            json!({"role": "superuser"}),
        )
        .await;
    assert!(matches!(r.code(), 400 | 422), "{} {}", r.status, r.text());
}

async fn only_the_owner_deletes_the_workspace(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, &f.ws);
    // Give each agent a token that passes the scope layer, so the refusal is the policy's.
    for (who, (id, _)) in [
        ("viewer", &f.viewer),
        ("editor", &f.editor),
        ("admin", &f.admin),
    ] {
        let t = s
            .agent_token(id, &["workspaces:admin", "workspaces:read"])
            .await;
        let r = s.delete(&t, &format!("/workspaces/{ws}")).await;
        assert_eq!(
            r.code(),
            403,
            "{who} deleting the workspace: {} {}",
            r.status,
            r.text()
        );
        assert_policy_denied(&r);
    }
    s.get(&s.owner_token, &format!("/workspaces/{ws}"))
        .await
        .expect(200);
    s.delete(&s.owner_token, &format!("/workspaces/{ws}"))
        .await
        .expect(204);
    s.get(&s.owner_token, &format!("/workspaces/{ws}"))
        .await
        .not_found();
    s.get_file(&f.admin.1, ws, "shared/readme.txt")
        .await
        .not_found();
}

async fn no_role_means_not_found(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, &f.ws);
    let stranger = s.create_agent(&s.owner_token, "stranger").await;
    let mut scopes = AGENT_SCOPES.to_vec();
    scopes.push("workspaces:admin");
    let t = s.agent_token(&stranger, &scopes).await;
    s.get(&t, &format!("/workspaces/{ws}")).await.not_found();
    s.get(&t, &format!("/workspaces/{ws}/files"))
        .await
        .not_found();
    s.get(&t, &format!("/workspaces/{ws}/members"))
        .await
        .not_found();
    s.get_file(&t, ws, "shared/readme.txt").await.not_found();
    s.get_file(&t, ws, "does/not/exist.txt").await.not_found();
    s.put_file(&t, ws, "planted.txt", "x").await.not_found();
    s.delete_file(&t, ws, "shared/readme.txt").await.not_found();
    s.move_file(&t, ws, "shared/readme.txt", "stolen.txt")
        .await
        .not_found();
    s.put_json(
        &t,
        &format!("/workspaces/{ws}/members/{stranger}"),
        json!({"role": "owner"}),
    )
    .await
    .not_found();
    s.delete(&t, &format!("/workspaces/{ws}")).await.not_found();
    // Indistinguishable from a workspace that does not exist.
    s.get(&t, "/workspaces/ws_00000000000000000000000000000000")
        .await
        .not_found();
    let listed = s.get(&t, "/workspaces").await.expect_json(200);
    assert!(
        !listed["workspaces"]
            .as_array()
            .expect("workspaces")
            .iter()
            .any(|w| w["id"] == json!(ws)),
        "a stranger sees the workspace in its listing: {listed}"
    );
    // Nothing happened.
    s.get_file(&s.owner_token, ws, "planted.txt")
        .await
        .expect(404);
    assert_eq!(
        s.get_file(&s.owner_token, ws, "shared/readme.txt")
            .await
            .body,
        b"hello team"
    );
}

async fn missing_scope_is_refused_by_the_scope_layer(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, &f.ws);
    let t = s
        .agent_token(&f.editor.0, &["files:read", "workspaces:read"])
        .await;
    s.get_file(&t, ws, "shared/readme.txt").await.expect(200);
    let r = s.put_file(&t, ws, "shared/readme.txt", "nope").await;
    let v = r.forbidden("scope");
    assert_eq!(v["required_scope"], json!("files:write"), "{v}");
    let www = r
        .header_all("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate on insufficient scope"));
    assert!(www.contains("error=\"insufficient_scope\""), "{www}");
    assert!(www.contains("scope=\"files:write\""), "{www}");
    // Delete needs files:delete.
    let v = s
        .delete_file(&t, ws, "shared/readme.txt")
        .await
        .forbidden("scope");
    assert_eq!(v["required_scope"], json!("files:delete"), "{v}");
    // Reading needs files:read, whatever the role.
    let t2 = s.agent_token(&f.admin.0, &["workspaces:read"]).await;
    let v = s
        .get_file(&t2, ws, "shared/readme.txt")
        .await
        .forbidden("scope");
    assert_eq!(v["required_scope"], json!("files:read"), "{v}");
    assert_eq!(
        s.get_file(&s.owner_token, ws, "shared/readme.txt")
            .await
            .body,
        b"hello team"
    );
}

async fn user_viewer_with_cli_token_reads_but_cannot_write(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, &f.ws);
    let v = s
        .post(
            &s.owner_token,
            "/users",
            json!({"org_id": s.org_id, "email": "reader@example.com", "name": "Reader"}),
        )
        .await
        .expect_json(201);
    assert_eq!(v["kind"], json!("user"), "{v}");
    assert_eq!(v["email"], json!("reader@example.com"), "{v}");
    assert_eq!(v["org_id"], json!(s.org_id), "{v}");
    let user = v["id"].as_str().unwrap().to_string();
    s.add_member(&s.owner_token, ws, &user, "viewer").await;
    let (_, t) = s
        .issue_user_token(
            "reader@example.com",
            "cli",
            &["files:read", "files:write", "workspaces:read"],
            None,
        )
        .await;
    assert_pat_format(&t);
    let me = s.get(&t, "/me").await.expect_json(200);
    assert_eq!(me["principal_id"], json!(user), "{me}");
    assert_eq!(me["principal_kind"], json!("user"), "{me}");
    let get = s.get_file(&t, ws, "shared/readme.txt").await;
    get.expect(200);
    assert_eq!(get.body, b"hello team");
    assert_policy_denied(
        &s.put_file(&t, ws, "shared/readme.txt", "user was here")
            .await,
    );
    assert_policy_denied(&s.put_file(&t, ws, "user.txt", "user was here").await);
    assert_eq!(
        s.get_file(&s.owner_token, ws, "shared/readme.txt")
            .await
            .body,
        b"hello team"
    );
    // A workspace-limited CLI token.
    let other = s.create_workspace(&s.owner_token, "other").await;
    s.add_member(&s.owner_token, &other, &user, "viewer").await;
    let (_, limited) = s
        .issue_user_token(
            "reader@example.com",
            "cli-limited",
            &["files:read", "workspaces:read"],
            Some(&[ws.as_str()]),
        )
        .await;
    let me = s.get(&limited, "/me").await.expect_json(200);
    assert_eq!(me["workspaces"], json!([ws]), "{me}");
    s.get_file(&limited, ws, "shared/readme.txt")
        .await
        .expect(200);
    s.get(&limited, &format!("/workspaces/{other}"))
        .await
        .forbidden("workspace");
    // A user that does not exist gets nothing.
    let out = s
        .cli(&[
            "token",
            "issue",
            "--database-url",
            s.database_url(),
            "--email",
            "nobody@example.com",
            "--name",
            "x",
            "--scopes",
            "files:read",
        ])
        .await;
    assert!(
        !out.status.success(),
        "token issue for an unknown user:\n{}",
        describe_output(&out)
    );
}

async fn members_listing_shows_roles(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws) = (&f.s, &f.ws);
    let v = s
        .get(&f.viewer.1, &format!("/workspaces/{ws}/members"))
        .await
        .expect_json(200);
    let members = v["members"].as_array().expect("members");
    let role_of = |id: &str| {
        members
            .iter()
            .find(|m| m["principal_id"] == json!(id))
            .map(|m| m["role"].clone())
            .unwrap_or_else(|| panic!("{id} not listed: {v}"))
    };
    assert_eq!(role_of(&s.owner_id), json!("owner"));
    assert_eq!(role_of(&f.viewer.0), json!("viewer"));
    assert_eq!(role_of(&f.editor.0), json!("editor"));
    assert_eq!(role_of(&f.admin.0), json!("admin"));
    let m = members
        .iter()
        .find(|m| m["principal_id"] == json!(f.admin.0))
        .unwrap();
    assert_eq!(m["kind"], json!("agent"), "{m}");
    assert_eq!(m["name"], json!("admin-bot"), "{m}");
    // GET /workspaces shows each caller its own role.
    let listed = s.get(&f.editor.1, "/workspaces").await.expect_json(200);
    let mine = listed["workspaces"]
        .as_array()
        .expect("workspaces")
        .iter()
        .find(|w| w["id"] == json!(ws))
        .unwrap_or_else(|| panic!("{listed}"))
        .clone();
    assert_eq!(mine["role"], json!("editor"), "{mine}");
}

/// The hot read (workspace, role, file) may be remembered between writes (on SQLite): each of
/// these changes must be seen by the request right after it, never up to a cache's lifetime
/// later.
async fn a_change_is_seen_by_the_very_next_read(backend: Backend) {
    let f = fixture(backend).await;
    let (s, ws, (agent, t)) = (&f.s, &f.ws, &f.viewer);
    let meta = format!("/workspaces/{ws}/files/shared/readme.txt?metadata=true");
    let read = || s.get(t, &meta);
    for _ in 0..3 {
        read().await.expect(200);
    }
    // The file replaced: its new version at once.
    let before = read().await.expect_json(200)["etag"].clone();
    s.put_file(&s.owner_token, ws, "shared/readme.txt", "hello again")
        .await
        .expect(200);
    let after = read().await.expect_json(200);
    assert_ne!(after["etag"], before, "{after}");
    assert_eq!(after["size"], json!(11), "{after}");
    // The member removed: not found at once.
    s.delete(&s.owner_token, &format!("/workspaces/{ws}/members/{agent}"))
        .await
        .expect(204);
    read().await.expect(404);
    // Back as a viewer: readable at once.
    s.add_member(&s.owner_token, ws, agent, "viewer").await;
    for _ in 0..3 {
        read().await.expect(200);
    }
    // A viewer made editor may write at once, and made viewer again may not.
    s.add_member(&s.owner_token, ws, agent, "editor").await;
    s.put_file(t, ws, "shared/readme.txt", "edited")
        .await
        .expect(200);
    read().await.expect(200);
    s.add_member(&s.owner_token, ws, agent, "viewer").await;
    read().await.expect(200);
    assert_policy_denied(&s.put_file(t, ws, "shared/readme.txt", "again").await);
    // The file deleted: gone at once.
    s.delete_file(&s.owner_token, ws, "shared/readme.txt")
        .await
        .expect(204);
    read().await.expect(404);
}
