//! Client administration by organisation admins, and the organisation's OAuth settings.

use serde::{Deserialize, Serialize};

use super::super::tokens::{parse_scopes, rfc3339};
use super::super::{Warrant, check_name};
use crate::authz::{Action, Caller, Layer};
use crate::identity::{OrgId, OrgRole, Principal, PrincipalId, PrincipalKind, WorkspaceId};
use crate::oauth::redirect;
use crate::oauth::secrets::{CLIENT_SECRET_PREFIX, Secret};
use crate::store::{self, oauth::ClientRecord};
use crate::{Error, Result};

/// A client to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// The organisation (default: the caller's).
    pub org_id: Option<String>,
    /// Shown to users on the consent page.
    pub name: String,
    /// `confidential` (default: gets a secret) or `public` (PKCE only, no secret).
    #[serde(rename = "type")]
    pub client_type: Option<String>,
    /// Exact redirect URIs: https, or http on a loopback address (any port matches).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials` (default: the code flow
    /// with refresh when redirect URIs are given, client credentials otherwise).
    pub grant_types: Option<Vec<String>>,
    /// The scopes tokens may carry at most.
    pub scopes: Vec<String>,
    /// The workspaces tokens may be limited to at most (omit for no client-side limit).
    pub workspaces: Option<Vec<String>>,
    /// For client credentials: the agent the client acts as. Without it, the client gets its
    /// own `client` principal, to which workspace roles can be given.
    pub principal_id: Option<String>,
}

/// A client as shown to admins; the secret only in the response that created or rotated it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    /// The `client_id`.
    pub client_id: String,
    /// The secret (`wrt_cs_…`), shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Display name.
    pub name: String,
    /// `confidential` or `public`.
    #[serde(rename = "type")]
    pub client_type: &'static str,
    /// The owning organisation (null for dynamically registered clients).
    pub org_id: Option<String>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Workspace limit, or null.
    pub workspaces: Option<Vec<String>>,
    /// The principal client-credentials tokens act as.
    pub principal_id: Option<String>,
    /// True for clients registered through RFC 7591 dynamic registration.
    pub dynamically_registered: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, or null.
    pub secret_rotated_at: Option<String>,
}

impl ClientView {
    pub(super) fn from_record(c: &ClientRecord, secret: Option<&Secret>) -> Self {
        ClientView {
            client_id: c.id.clone(),
            client_secret: secret.map(|s| s.expose().to_string()),
            name: c.name.clone(),
            client_type: if c.is_confidential() {
                "confidential"
            } else {
                "public"
            },
            org_id: c.org_id.as_ref().map(|o| o.0.clone()),
            redirect_uris: c.redirect_uris.clone(),
            grant_types: c.grant_types.clone(),
            scopes: c.scopes.split_whitespace().map(str::to_string).collect(),
            workspaces: c
                .workspaces
                .as_ref()
                .map(|ws| ws.iter().map(|w| w.0.clone()).collect()),
            principal_id: c.principal_id.as_ref().map(|p| p.0.clone()),
            dynamically_registered: c.dynamic,
            created_at: rfc3339(c.created_at),
            secret_rotated_at: c.secret_rotated_at.map(rfc3339),
        }
    }
}

/// An organisation's OAuth settings.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthOrgSettings {
    /// Whether the organisation's users may authorize dynamically registered clients
    /// (RFC 7591). On by default.
    pub dynamic_registration: bool,
}

/// Checks redirect URIs for registration.
pub(super) fn check_redirect_uris(uris: &[String]) -> std::result::Result<(), String> {
    if uris.len() > 20 {
        return Err("at most 20 redirect URIs".into());
    }
    for u in uris {
        redirect::check_registrable(u)?;
    }
    Ok(())
}

impl Warrant {
    /// Registers a client in an organisation the caller administers.
    pub async fn create_client(&self, caller: &Caller, req: NewClient) -> Result<ClientView> {
        let org = OrgId(
            req.org_id
                .unwrap_or_else(|| caller.principal.org_id.0.clone()),
        );
        self.org_access(caller, &org, Action::ManageOrg).await?;
        check_name("a client name", &req.name)?;
        let confidential = match req.client_type.as_deref() {
            None | Some("confidential") => true,
            Some("public") => false,
            Some(other) => {
                return Err(Error::Unprocessable(format!(
                    "type `{other}`: use `confidential` or `public`"
                )));
            }
        };
        check_redirect_uris(&req.redirect_uris).map_err(Error::Unprocessable)?;
        let grant_types = req.grant_types.unwrap_or_else(|| {
            if req.redirect_uris.is_empty() {
                vec!["client_credentials".into()]
            } else {
                vec!["authorization_code".into(), "refresh_token".into()]
            }
        });
        if grant_types.is_empty() {
            return Err(Error::Unprocessable("grant_types must not be empty".into()));
        }
        for g in &grant_types {
            if !crate::oauth::GRANT_TYPES.contains(&g.as_str()) {
                return Err(Error::Unprocessable(format!(
                    "grant type `{g}` is not offered; use authorization_code, refresh_token or client_credentials"
                )));
            }
        }
        let has = |g: &str| grant_types.iter().any(|x| x == g);
        if has("client_credentials") && !confidential {
            return Err(Error::Unprocessable(
                "a public client cannot use client_credentials: it has no secret".into(),
            ));
        }
        if has("authorization_code") && req.redirect_uris.is_empty() {
            return Err(Error::Unprocessable(
                "the authorization_code grant needs at least one redirect URI".into(),
            ));
        }
        if req.principal_id.is_some() && !has("client_credentials") {
            return Err(Error::Unprocessable(
                "principal_id applies only to clients using client_credentials".into(),
            ));
        }
        let scopes = parse_scopes(&req.scopes)?;
        if let Some(missing) = caller.grant.scopes.first_missing(scopes) {
            return Err(Error::forbidden(
                Layer::Scope,
                format!("cannot allow `{missing}`: the registering credential does not hold it"),
            ));
        }
        let workspaces = match req.workspaces {
            None => None,
            Some(list) if list.is_empty() => {
                return Err(Error::Unprocessable(
                    "workspaces, when given, must name at least one workspace".into(),
                ));
            }
            Some(list) => {
                let mut out = Vec::new();
                for w in list {
                    let ws = WorkspaceId(w);
                    let found = store::workspaces::get_with_role(
                        self.store.pool(),
                        &ws,
                        &caller.principal.id,
                    )
                    .await?
                    .filter(|(w, role)| w.org_id == org && role.is_some());
                    if found.is_none() {
                        return Err(Error::NotFound("workspace"));
                    }
                    if !out.contains(&ws) {
                        out.push(ws);
                    }
                }
                Some(out)
            }
        };
        let now = store::now();
        let client_id = crate::identity::new_id("oac");
        let mut tx = self.store.pool().begin().await?;
        let principal_id = if has("client_credentials") {
            Some(match req.principal_id {
                Some(agent) => {
                    let agent = store::principals::get(self.store.pool(), &PrincipalId(agent))
                        .await?
                        .filter(|p| p.kind == PrincipalKind::Agent)
                        .ok_or(Error::NotFound("agent"))?;
                    self.org_access(caller, &agent.org_id, Action::ManageAgents)
                        .await?;
                    agent.id
                }
                None => {
                    let p = Principal {
                        id: PrincipalId(crate::identity::new_id("cli")),
                        kind: PrincipalKind::Client,
                        name: req.name.trim().to_string(),
                        email: None,
                        org_id: org.clone(),
                        created_by: Some(caller.principal.id.clone()),
                        created_at: now,
                        groups: Vec::new(),
                    };
                    store::principals::insert(&mut *tx, &p, None).await?;
                    store::orgs::set_member(&mut *tx, &org, &p.id, OrgRole::Member).await?;
                    p.id
                }
            })
        } else {
            None
        };
        let secret = confidential.then(|| Secret::generate(CLIENT_SECRET_PREFIX));
        let record = ClientRecord {
            id: client_id,
            org_id: Some(org.clone()),
            name: req.name.trim().to_string(),
            secret_hash: secret.as_ref().map(Secret::hash),
            redirect_uris: req.redirect_uris,
            grant_types,
            scopes: scopes.to_space_separated(),
            workspaces,
            principal_id,
            dynamic: false,
            created_by: Some(caller.principal.id.0.clone()),
            created_at: now,
            secret_rotated_at: None,
        };
        store::oauth::insert_client(&mut *tx, &record).await?;
        tx.commit().await?;
        self.audit(
            caller,
            "oauth.client.create",
            &record.id,
            Some(format!(
                "in {org}, grants {}, scopes {}",
                record.grant_types.join(" "),
                record.scopes
            )),
        )
        .await;
        Ok(ClientView::from_record(&record, secret.as_ref()))
    }

    /// A client the caller administers (404 otherwise).
    async fn administered_client(&self, caller: &Caller, id: &str) -> Result<ClientRecord> {
        let client = store::oauth::get_client(self.store.pool(), id)
            .await?
            .ok_or(Error::NotFound("client"))?;
        let org = match &client.org_id {
            Some(o) => o.clone(),
            // Dynamically registered clients are administered by the caller's organisation.
            None => caller.principal.org_id.clone(),
        };
        self.org_access(caller, &org, Action::ManageOrg).await?;
        Ok(client)
    }

    /// The clients of an organisation (default: the caller's), and dynamically registered ones.
    pub async fn list_clients(
        &self,
        caller: &Caller,
        org: Option<&str>,
    ) -> Result<Vec<ClientView>> {
        let org = OrgId(org.map_or_else(|| caller.principal.org_id.0.clone(), str::to_string));
        self.org_access(caller, &org, Action::ManageOrg).await?;
        let mut clients = store::oauth::list_clients(self.store.pool(), &org).await?;
        clients.extend(store::oauth::list_dynamic_clients(self.store.pool()).await?);
        Ok(clients
            .iter()
            .map(|c| ClientView::from_record(c, None))
            .collect())
    }

    /// One client.
    pub async fn get_client(&self, caller: &Caller, id: &str) -> Result<ClientView> {
        let c = self.administered_client(caller, id).await?;
        Ok(ClientView::from_record(&c, None))
    }

    /// Replaces a confidential client's secret; the old one stops working at once.
    pub async fn rotate_client_secret(&self, caller: &Caller, id: &str) -> Result<ClientView> {
        let mut c = self.administered_client(caller, id).await?;
        if !c.is_confidential() {
            return Err(Error::Conflict(
                "a public client has no secret to rotate".into(),
            ));
        }
        let secret = Secret::generate(CLIENT_SECRET_PREFIX);
        let now = store::now();
        store::oauth::set_client_secret(self.store.pool(), &c.id, &secret.hash(), now).await?;
        c.secret_hash = Some(secret.hash());
        c.secret_rotated_at = Some(now);
        self.audit(caller, "oauth.client.rotate_secret", &c.id, None)
            .await;
        Ok(ClientView::from_record(&c, Some(&secret)))
    }

    /// Deletes a client: its grants and refresh tokens go with it, and its access tokens are
    /// refused from now on.
    pub async fn delete_client(&self, caller: &Caller, id: &str) -> Result<()> {
        let c = self.administered_client(caller, id).await?;
        self.deny(&c.id).await?;
        store::oauth::delete_client(self.store.pool(), &c.id).await?;
        if let Some(p) = c
            .principal_id
            .as_ref()
            .filter(|p| p.as_str().starts_with("cli_"))
        {
            store::principals::delete(self.store.pool(), p).await?;
            self.credentials_changed().await;
        }
        self.audit(caller, "oauth.client.delete", &c.id, None).await;
        Ok(())
    }

    /// An organisation's OAuth settings.
    pub async fn oauth_org_settings(&self, caller: &Caller, org: &str) -> Result<OAuthOrgSettings> {
        let org = OrgId(org.to_string());
        self.org_access(caller, &org, Action::ReadOrg).await?;
        Ok(OAuthOrgSettings {
            dynamic_registration: store::oauth::dynamic_registration(self.store.pool(), &org)
                .await?,
        })
    }

    /// Changes an organisation's OAuth settings.
    pub async fn set_oauth_org_settings(
        &self,
        caller: &Caller,
        org: &str,
        settings: OAuthOrgSettings,
    ) -> Result<OAuthOrgSettings> {
        let org = OrgId(org.to_string());
        self.org_access(caller, &org, Action::ManageOrg).await?;
        store::oauth::set_dynamic_registration(
            self.store.pool(),
            &org,
            settings.dynamic_registration,
        )
        .await?;
        self.audit(
            caller,
            "oauth.settings.update",
            org.as_str(),
            Some(format!(
                "dynamic_registration={}",
                settings.dynamic_registration
            )),
        )
        .await;
        Ok(settings)
    }
}
