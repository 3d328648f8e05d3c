//! The authorization endpoint: request checks, sign-in sessions and consent. An unknown client
//! or a redirect URI that is not registered exactly is shown an error page and never
//! redirected to; every other error goes back to the client's (verified) redirect URI.

use std::net::IpAddr;
use std::sync::OnceLock;

use super::super::Warrant;
use super::token::requested_scopes;
use crate::authz::ScopeSet;
use crate::credentials::{constant_time_eq, password};
use crate::identity::{Principal, WorkspaceId};
use crate::oauth::secrets::{self, Secret};
use crate::oauth::{CODE_TTL, OAuthError, audience_for, pkce, redirect};
use crate::store::{
    self,
    oauth::{ClientRecord, CodeRecord},
};
use crate::{Error, Result};

/// How long a sign-in session lasts, in seconds (8 hours).
pub const SESSION_TTL: i64 = 8 * 3600;

/// The parameters of an authorization request.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// Where to send the answer (must match a registered URI).
    pub redirect_uri: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// Echoed back unchanged.
    pub state: Option<String>,
    /// PKCE S256 challenge (required).
    pub code_challenge: Option<String>,
    /// Must be `S256` when given.
    pub code_challenge_method: Option<String>,
    /// RFC 8707 resource.
    pub resource: Option<String>,
}

impl AuthorizeParams {
    /// Reads the parameters from decoded pairs; a repeated parameter is refused.
    pub fn from_pairs(pairs: &[(String, String)]) -> std::result::Result<Self, String> {
        let mut p = AuthorizeParams::default();
        for (k, v) in pairs {
            let slot = match k.as_str() {
                "response_type" => &mut p.response_type,
                "client_id" => &mut p.client_id,
                "redirect_uri" => &mut p.redirect_uri,
                "scope" => &mut p.scope,
                "state" => &mut p.state,
                "code_challenge" => &mut p.code_challenge,
                "code_challenge_method" => &mut p.code_challenge_method,
                "resource" => &mut p.resource,
                _ => continue,
            };
            if slot.is_some() {
                return Err(format!("the parameter `{k}` is repeated"));
            }
            *slot = Some(v.clone()).filter(|v| !v.is_empty());
        }
        Ok(p)
    }

    /// The parameters as pairs, to carry through the sign-in and consent forms.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        for (k, v) in [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("resource", &self.resource),
        ] {
            if let Some(v) = v {
                out.push((k, v.as_str()));
            }
        }
        out
    }
}

/// Why an authorization request cannot go on.
#[derive(Debug)]
pub enum AuthorizeProblem {
    /// Show this message on an error page; do not redirect.
    Page(String),
    /// Send the browser to this URL (the client's redirect URI with `error`).
    Redirect(String),
}

impl From<Error> for AuthorizeProblem {
    fn from(e: Error) -> Self {
        tracing::error!(error = %e, "authorization request failed");
        AuthorizeProblem::Page("An internal error occurred; it has been logged.".into())
    }
}

impl From<sqlx::Error> for AuthorizeProblem {
    fn from(e: sqlx::Error) -> Self {
        Error::Database(e).into()
    }
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct ValidAuthorize {
    /// The client.
    pub client: ClientRecord,
    /// The verified redirect URI, as presented.
    pub redirect_uri: String,
    /// The scopes asked for.
    pub scopes: ScopeSet,
    /// The client's state.
    pub state: Option<String>,
    /// The PKCE challenge.
    pub challenge: String,
    /// The token audience.
    pub audience: String,
}

/// What the consent page shows.
#[derive(Debug)]
pub struct ConsentPage {
    /// The client's name.
    pub client_name: String,
    /// The host the answer goes to.
    pub redirect_host: String,
    /// Registered through dynamic registration (shown as unverified).
    pub dynamic: bool,
    /// The scopes asked for.
    pub scopes: Vec<&'static str>,
    /// The workspaces the user may grant: (id, name).
    pub workspaces: Vec<(String, String)>,
    /// The resource the token is for.
    pub audience: String,
}

/// What happens after the user is known.
pub enum AuthorizeStep {
    /// Consent is remembered: go straight back to the client.
    Redirect(String),
    /// Ask the user.
    Consent(ConsentPage),
}

/// The result of a sign-in attempt.
pub enum LoginOutcome {
    /// Signed in: the new session's cookie value.
    SignedIn(String),
    /// Wrong e-mail or password (one message for both).
    Refused,
}

fn append_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

impl Warrant {
    /// The redirect that carries an error back to the client (with `state` and `iss`).
    fn error_redirect(&self, redirect_uri: &str, state: Option<&str>, e: &OAuthError) -> String {
        let mut pairs = vec![
            ("error", e.error),
            ("error_description", e.description.as_str()),
        ];
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", self.oauth.issuer()));
        append_query(redirect_uri, &pairs)
    }

    /// Checks an authorization request.
    pub async fn check_authorize(
        &self,
        p: &AuthorizeParams,
    ) -> std::result::Result<ValidAuthorize, AuthorizeProblem> {
        let client_id = p.client_id.as_deref().ok_or_else(|| {
            AuthorizeProblem::Page("The request names no client (client_id).".into())
        })?;
        let client = store::oauth::get_client(self.store.pool(), client_id)
            .await?
            .ok_or_else(|| AuthorizeProblem::Page("This application is not registered.".into()))?;
        let redirect_uri = match p.redirect_uri.as_deref() {
            Some(uri) => redirect::find_match(&client.redirect_uris, uri)
                .map(|_| uri.to_string())
                .ok_or_else(|| {
                    AuthorizeProblem::Page(
                        "The redirect URI does not match any registered for this application."
                            .into(),
                    )
                })?,
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => {
                return Err(AuthorizeProblem::Page(
                    "The request names no redirect URI (redirect_uri).".into(),
                ));
            }
        };
        let state = p.state.clone();
        let fail = |e: OAuthError| {
            AuthorizeProblem::Redirect(self.error_redirect(&redirect_uri, state.as_deref(), &e))
        };
        if p.response_type.as_deref() != Some("code") {
            return Err(fail(OAuthError::unsupported_response_type(
                "only response_type=code is offered",
            )));
        }
        if !client.allows_grant("authorization_code") {
            return Err(fail(OAuthError::unauthorized_client(
                "this client may not use the authorization code grant",
            )));
        }
        match p.code_challenge_method.as_deref() {
            Some("S256") => {}
            Some(other) => {
                return Err(fail(OAuthError::invalid_request(format!(
                    "code_challenge_method `{other}` is refused; use S256"
                ))));
            }
            None => {
                return Err(fail(OAuthError::invalid_request(
                    "code_challenge_method=S256 is required (PKCE)",
                )));
            }
        }
        let challenge = match p.code_challenge.as_deref() {
            Some(c) if pkce::valid_challenge(c) => c.to_string(),
            Some(_) => {
                return Err(fail(OAuthError::invalid_request(
                    "code_challenge is not an S256 challenge",
                )));
            }
            None => {
                return Err(fail(OAuthError::invalid_request(
                    "code_challenge is required (PKCE S256)",
                )));
            }
        };
        let scopes = requested_scopes(p.scope.as_deref(), &client.scopes).map_err(fail)?;
        let audience = audience_for(self.oauth.issuer(), p.resource.as_deref()).map_err(fail)?;
        Ok(ValidAuthorize {
            client,
            redirect_uri,
            scopes,
            state: p.state.clone(),
            challenge,
            audience,
        })
    }

    /// The signed-in user of a session cookie, with the session's CSRF token.
    pub async fn session_user(&self, cookie: Option<&str>) -> Result<Option<(Principal, String)>> {
        let Some(cookie) = cookie.filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let Some((pid, csrf)) =
            store::oauth::get_session(self.store.pool(), &secrets::hash(cookie), store::now())
                .await?
        else {
            return Ok(None);
        };
        Ok(store::principals::get(self.store.pool(), &pid)
            .await?
            .map(|p| (p, csrf)))
    }

    /// Checks an e-mail address and password; on success, opens a new session.
    pub async fn login(
        &self,
        email: &str,
        password_given: &str,
        client_addr: Option<IpAddr>,
    ) -> Result<LoginOutcome> {
        static DUMMY: OnceLock<String> = OnceLock::new();
        let found = store::oauth::user_password(self.store.pool(), email.trim()).await?;
        let (pid, phc) = match found {
            Some((pid, Some(phc))) => (Some(pid), phc),
            // Spend the same effort on unknown users, so timing reveals nothing.
            _ => (
                None,
                match DUMMY.get() {
                    Some(d) => d.clone(),
                    None => {
                        let d = tokio::task::spawn_blocking(|| {
                            password::hash("not a real password at all")
                        })
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))??;
                        DUMMY.get_or_init(|| d).clone()
                    }
                },
            ),
        };
        let given = password_given.to_string();
        let ok = tokio::task::spawn_blocking(move || password::verify(&given, &phc))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let Some(pid) = pid.filter(|_| ok) else {
            self.audit_oauth(None, None, "login.failed", "web", None, client_addr)
                .await;
            self.limits.check_failed_auth(client_addr)?;
            return Ok(LoginOutcome::Refused);
        };
        let session = Secret::generate("");
        let csrf = Secret::generate("");
        let now = store::now();
        store::oauth::insert_session(
            self.store.pool(),
            &session.hash(),
            &pid,
            csrf.expose(),
            now,
            now + SESSION_TTL,
        )
        .await?;
        self.audit_oauth(Some(pid.as_str()), None, "login", "web", None, client_addr)
            .await;
        Ok(LoginOutcome::SignedIn(session.expose().to_string()))
    }

    /// The workspaces `user` may grant `client`.
    async fn grantable_workspaces(
        &self,
        client: &ClientRecord,
        user: &Principal,
    ) -> Result<Vec<(String, String)>> {
        Ok(
            store::workspaces::list_for_principal(self.store.pool(), &user.id)
                .await?
                .into_iter()
                .filter(|(w, _)| {
                    client
                        .workspaces
                        .as_ref()
                        .is_none_or(|allowed| allowed.contains(&w.id))
                })
                .map(|(w, _)| (w.id.0, w.name))
                .collect(),
        )
    }

    async fn check_user_may_use(
        &self,
        client: &ClientRecord,
        user: &Principal,
    ) -> std::result::Result<(), AuthorizeProblem> {
        if let Some(org) = &client.org_id
            && org != &user.org_id
        {
            return Err(AuthorizeProblem::Page(
                "This application is registered by another organisation.".into(),
            ));
        }
        if client.dynamic
            && !store::oauth::dynamic_registration(self.store.pool(), &user.org_id).await?
        {
            return Err(AuthorizeProblem::Page(
                "Your organisation does not allow dynamically registered applications.".into(),
            ));
        }
        Ok(())
    }

    /// After sign-in: approve at once when consent is remembered, else describe the consent page.
    pub async fn authorize_signed_in(
        &self,
        v: &ValidAuthorize,
        user: &Principal,
    ) -> std::result::Result<AuthorizeStep, AuthorizeProblem> {
        self.check_user_may_use(&v.client, user).await?;
        let grantable = self.grantable_workspaces(&v.client, user).await?;
        if grantable.is_empty() {
            return Err(AuthorizeProblem::Redirect(self.error_redirect(
                &v.redirect_uri,
                v.state.as_deref(),
                &OAuthError::access_denied("the user has no workspace this client may use"),
            )));
        }
        let scope = v.scopes.to_space_separated();
        if let Some(remembered) =
            store::oauth::get_consent(self.store.pool(), &user.id, &v.client.id, &scope).await?
            && !remembered.is_empty()
            && remembered
                .iter()
                .all(|w| grantable.iter().any(|(id, _)| id == w.as_str()))
        {
            let url = self.issue_code(v, user, remembered, None).await?;
            return Ok(AuthorizeStep::Redirect(url));
        }
        Ok(AuthorizeStep::Consent(ConsentPage {
            client_name: v.client.name.clone(),
            redirect_host: redirect::display_host(&v.redirect_uri),
            dynamic: v.client.dynamic,
            scopes: v.scopes.names(),
            workspaces: grantable,
            audience: v.audience.clone(),
        }))
    }

    /// The user's answer on the consent page. `csrf` must be the session's token.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_consent(
        &self,
        v: &ValidAuthorize,
        user: &Principal,
        session_csrf: &str,
        csrf: &str,
        approve: bool,
        workspaces: &[String],
        remember: bool,
        client_addr: Option<IpAddr>,
    ) -> std::result::Result<String, AuthorizeProblem> {
        if !constant_time_eq(session_csrf.as_bytes(), csrf.as_bytes()) {
            return Err(AuthorizeProblem::Page(
                "The form has expired or did not come from this site (CSRF check failed). Start again from the application.".into(),
            ));
        }
        self.check_user_may_use(&v.client, user).await?;
        if !approve {
            self.audit_oauth(
                Some(user.id.as_str()),
                None,
                "oauth.consent.deny",
                &v.client.id,
                None,
                client_addr,
            )
            .await;
            return Ok(self.error_redirect(
                &v.redirect_uri,
                v.state.as_deref(),
                &OAuthError::access_denied("the user denied the request"),
            ));
        }
        let grantable = self.grantable_workspaces(&v.client, user).await?;
        let mut chosen: Vec<WorkspaceId> = Vec::new();
        for w in workspaces {
            if !grantable.iter().any(|(id, _)| id == w) {
                return Err(AuthorizeProblem::Page(
                    "A chosen workspace is not available.".into(),
                ));
            }
            let w = WorkspaceId(w.clone());
            if !chosen.contains(&w) {
                chosen.push(w);
            }
        }
        if chosen.is_empty() {
            return Err(AuthorizeProblem::Page(
                "Choose at least one workspace to grant.".into(),
            ));
        }
        if remember {
            store::oauth::put_consent(
                self.store.pool(),
                &user.id,
                &v.client.id,
                &v.scopes.to_space_separated(),
                &chosen,
                store::now(),
            )
            .await?;
        }
        self.issue_code(v, user, chosen, client_addr).await
    }

    async fn issue_code(
        &self,
        v: &ValidAuthorize,
        user: &Principal,
        workspaces: Vec<WorkspaceId>,
        client_addr: Option<IpAddr>,
    ) -> std::result::Result<String, AuthorizeProblem> {
        let code = Secret::generate("");
        let now = store::now();
        let scopes = v.scopes.to_space_separated();
        let detail = format!(
            "scopes {scopes} workspaces {} aud {}",
            workspaces
                .iter()
                .map(WorkspaceId::as_str)
                .collect::<Vec<_>>()
                .join(","),
            v.audience
        );
        store::oauth::insert_code(
            self.store.pool(),
            &code.hash(),
            &CodeRecord {
                client_id: v.client.id.clone(),
                principal_id: user.id.clone(),
                redirect_uri: v.redirect_uri.clone(),
                code_challenge: v.challenge.clone(),
                resource: v.audience.clone(),
                scopes,
                workspaces: Some(workspaces),
                created_at: now,
                expires_at: now + CODE_TTL,
                used_at: None,
                grant_id: None,
            },
        )
        .await?;
        self.audit_oauth(
            Some(user.id.as_str()),
            None,
            "oauth.consent.approve",
            &v.client.id,
            Some(detail),
            client_addr,
        )
        .await;
        let mut pairs = vec![("code", code.expose())];
        if let Some(s) = v.state.as_deref() {
            pairs.push(("state", s));
        }
        pairs.push(("iss", self.oauth.issuer()));
        Ok(append_query(&v.redirect_uri, &pairs))
    }
}
