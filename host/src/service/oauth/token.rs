//! The token endpoint (authorization code, refresh token, client credentials), revocation
//! (RFC 7009), introspection (RFC 7662) and dynamic client registration (RFC 7591).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::super::Warrant;
use super::clients::check_redirect_uris;
use crate::authz::ScopeSet;
use crate::identity::{Principal, PrincipalId, PrincipalKind};
use crate::oauth::secrets::{self, REFRESH_TOKEN_PREFIX, Secret};
use crate::oauth::{OAuthError, REFRESH_ABSOLUTE_TTL, REFRESH_IDLE_TTL, audience_for, jwt, pkce};
use crate::store::{
    self,
    oauth::{ClientRecord, GrantRecord, RefreshRecord},
};

type OResult<T> = std::result::Result<T, OAuthError>;

/// How the client authenticated at the token, revocation or introspection endpoint.
#[derive(Default)]
pub struct ClientAuth {
    /// The client id (from the Basic header or the body).
    pub client_id: Option<String>,
    /// The secret, if one was presented.
    pub secret: Option<String>,
    /// True when the credentials came in an `Authorization: Basic` header.
    pub basic: bool,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: String,
    /// A new refresh token, when the grant has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// An RFC 7591 registration request (public clients only).
#[derive(Debug, Deserialize)]
pub struct Registration {
    /// Redirect URIs (required).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Display name.
    pub client_name: Option<String>,
    /// `authorization_code` and optionally `refresh_token`.
    pub grant_types: Option<Vec<String>>,
    /// `code` only.
    pub response_types: Option<Vec<String>>,
    /// `none` only: dynamically registered clients are public.
    pub token_endpoint_auth_method: Option<String>,
    /// Space-separated scopes the client may ask for.
    pub scope: Option<String>,
}

/// One value of a form; a repeated parameter is an `invalid_request` (RFC 6749 §3.1).
pub fn single<'a>(form: &'a [(String, String)], key: &str) -> OResult<Option<&'a str>> {
    let mut found = None;
    for (k, v) in form {
        if k == key {
            if found.is_some() {
                return Err(OAuthError::invalid_request(format!("`{key}` is repeated")));
            }
            found = Some(v.as_str());
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

fn required<'a>(form: &'a [(String, String)], key: &str) -> OResult<&'a str> {
    single(form, key)?.ok_or_else(|| OAuthError::invalid_request(format!("`{key}` is required")))
}

/// Parses a scope string against what the client may ask for; absent means all of it.
pub(super) fn requested_scopes(requested: Option<&str>, allowed: &str) -> OResult<ScopeSet> {
    let allowed = ScopeSet::parse(allowed.split_whitespace())
        .map_err(|s| OAuthError::server_error(format!("stored client has unknown scope {s}")))?;
    let Some(requested) = requested else {
        return Ok(allowed);
    };
    let scopes = ScopeSet::parse(requested.split_whitespace())
        .map_err(|s| OAuthError::invalid_scope(format!("unknown scope `{s}`")))?;
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope("no scope requested"));
    }
    if let Some(s) = scopes.iter().find(|s| !allowed.iter().any(|a| a == *s)) {
        return Err(OAuthError::invalid_scope(format!(
            "the client may not ask for `{s}`"
        )));
    }
    Ok(scopes)
}

impl Warrant {
    /// Authenticates the client of a back-channel request: confidential clients by secret
    /// (`client_secret_basic` or `client_secret_post`), public clients by id alone.
    pub async fn authenticate_client(
        &self,
        auth: &ClientAuth,
        client_addr: Option<IpAddr>,
    ) -> OResult<ClientRecord> {
        let id = auth
            .client_id
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
        let client = store::oauth::get_client(self.store.pool(), id).await?;
        let ok = match (&client, &auth.secret) {
            (Some(c), Some(secret)) => c
                .secret_hash
                .as_deref()
                .is_some_and(|h| secrets::matches(secret, h)),
            (Some(c), None) => !c.is_confidential(),
            (None, _) => false,
        };
        match client {
            Some(c) if ok => Ok(c),
            _ => {
                self.limits.check_failed_auth(client_addr)?;
                Err(OAuthError::invalid_client("client authentication failed"))
            }
        }
    }

    /// The token endpoint.
    pub async fn token(
        &self,
        auth: &ClientAuth,
        form: &[(String, String)],
        client_addr: Option<IpAddr>,
    ) -> OResult<TokenResponse> {
        let grant_type = required(form, "grant_type")?;
        if !crate::oauth::GRANT_TYPES.contains(&grant_type) {
            return Err(OAuthError::unsupported_grant_type(format!(
                "grant type `{grant_type}` is not offered"
            )));
        }
        let client = self.authenticate_client(auth, client_addr).await?;
        if !client.allows_grant(grant_type) {
            return Err(OAuthError::unauthorized_client(format!(
                "this client may not use the {grant_type} grant"
            )));
        }
        match grant_type {
            "authorization_code" => self.redeem_code(&client, form, client_addr).await,
            "refresh_token" => self.redeem_refresh(&client, form, client_addr).await,
            _ => self.client_credentials(&client, form, client_addr).await,
        }
    }

    async fn client_credentials(
        &self,
        client: &ClientRecord,
        form: &[(String, String)],
        client_addr: Option<IpAddr>,
    ) -> OResult<TokenResponse> {
        if !client.is_confidential() {
            return Err(OAuthError::unauthorized_client(
                "public clients cannot use client credentials",
            ));
        }
        let scopes = requested_scopes(single(form, "scope")?, &client.scopes)?;
        let audience = audience_for(self.oauth.issuer(), single(form, "resource")?)?;
        let principal = client.principal_id.as_ref().ok_or_else(|| {
            OAuthError::unauthorized_client("this client has no principal to act as")
        })?;
        let kind = if principal.as_str().starts_with("cli_") {
            PrincipalKind::Client
        } else {
            PrincipalKind::Agent
        };
        let scope = scopes.to_space_separated();
        let issued = self.issue_access_token(
            principal,
            kind,
            &client.id,
            &scope,
            client.workspaces.as_deref(),
            &audience,
            None,
        )?;
        self.audit_oauth(
            Some(principal.as_str()),
            Some(&issued.jti),
            "oauth.grant.client_credentials",
            &client.id,
            Some(format!("scopes {scope} aud {audience}")),
            client_addr,
        )
        .await;
        Ok(TokenResponse {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope,
            refresh_token: None,
        })
    }

    async fn redeem_code(
        &self,
        client: &ClientRecord,
        form: &[(String, String)],
        client_addr: Option<IpAddr>,
    ) -> OResult<TokenResponse> {
        let code = required(form, "code")?;
        let hash = secrets::hash(code);
        let record = store::oauth::get_code(self.store.pool(), &hash)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("unknown authorization code"))?;
        let now = store::now();
        if !store::oauth::claim_code(self.store.pool(), &hash, now).await? {
            // A replay: whatever the first redemption issued is revoked (RFC 9700 §4.2.4... 6749 §4.1.2).
            if let Some(gid) = &record.grant_id {
                self.revoke_family(gid, "oauth.code_replay", client_addr)
                    .await?;
            } else {
                self.audit_oauth(
                    None,
                    None,
                    "oauth.code_replay",
                    &client.id,
                    None,
                    client_addr,
                )
                .await;
            }
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used",
            ));
        }
        if record.client_id != client.id {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if record.expires_at <= now {
            return Err(OAuthError::invalid_grant(
                "the authorization code has expired",
            ));
        }
        match single(form, "redirect_uri")? {
            Some(uri) if uri == record.redirect_uri => {}
            _ => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri must be the one of the authorization request",
                ));
            }
        }
        let verifier = single(form, "code_verifier")?.ok_or_else(|| {
            OAuthError::invalid_grant(
                "code_verifier is required: the code was issued with a PKCE challenge",
            )
        })?;
        if !pkce::verify(verifier, &record.code_challenge) {
            return Err(OAuthError::invalid_grant(
                "the PKCE code_verifier does not match",
            ));
        }
        self.check_resource(form, &record.resource, "the authorization request")?;
        let principal = self.grant_principal(&record.principal_id).await?;
        let grant = GrantRecord {
            id: crate::identity::new_id("grt"),
            client_id: client.id.clone(),
            principal_id: record.principal_id.clone(),
            scopes: record.scopes.clone(),
            workspaces: record.workspaces.clone(),
            resource: record.resource.clone(),
            created_at: now,
            expires_at: now + REFRESH_ABSOLUTE_TTL,
            revoked_at: None,
        };
        let mut tx = self.store.pool().begin().await?;
        store::oauth::insert_grant(&mut *tx, &grant).await?;
        store::oauth::set_code_grant(&mut *tx, &hash, &grant.id).await?;
        let refresh = if client.allows_grant("refresh_token") {
            Some(self.new_refresh(&mut tx, &grant, now).await?)
        } else {
            None
        };
        tx.commit().await?;
        let issued = self.issue_access_token(
            &principal.id,
            principal.kind,
            &client.id,
            &grant.scopes,
            grant.workspaces.as_deref(),
            &grant.resource,
            Some(&grant.id),
        )?;
        self.audit_oauth(
            Some(principal.id.as_str()),
            Some(&issued.jti),
            "oauth.grant.authorization_code",
            &client.id,
            Some(format!(
                "grant {} scopes {} aud {}",
                grant.id, grant.scopes, grant.resource
            )),
            client_addr,
        )
        .await;
        Ok(TokenResponse {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: grant.scopes,
            refresh_token: refresh.map(|s| s.expose().to_string()),
        })
    }

    /// A `resource` parameter, when given again, must name what the grant was bound to.
    fn check_resource(
        &self,
        form: &[(String, String)],
        bound: &str,
        bound_by: &str,
    ) -> OResult<()> {
        if let Some(r) = single(form, "resource")?
            && audience_for(self.oauth.issuer(), Some(r))? != bound
        {
            return Err(OAuthError::invalid_target(format!(
                "resource differs from {bound_by}"
            )));
        }
        Ok(())
    }

    /// The user a grant acts for, who must still exist.
    async fn grant_principal(&self, id: &PrincipalId) -> OResult<Principal> {
        store::principals::get(self.store.pool(), id)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))
    }

    async fn new_refresh(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        grant: &GrantRecord,
        now: i64,
    ) -> OResult<Secret> {
        let secret = Secret::generate(REFRESH_TOKEN_PREFIX);
        store::oauth::insert_refresh(
            &mut **tx,
            &secret.hash(),
            &RefreshRecord {
                grant_id: grant.id.clone(),
                created_at: now,
                expires_at: (now + REFRESH_IDLE_TTL).min(grant.expires_at),
                used_at: None,
            },
        )
        .await?;
        Ok(secret)
    }

    async fn redeem_refresh(
        &self,
        client: &ClientRecord,
        form: &[(String, String)],
        client_addr: Option<IpAddr>,
    ) -> OResult<TokenResponse> {
        let presented = required(form, "refresh_token")?;
        let hash = secrets::hash(presented);
        let (record, grant) = store::oauth::find_refresh(self.store.pool(), &hash)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
        if grant.client_id != client.id {
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        let now = store::now();
        if grant.revoked_at.is_some() {
            return Err(OAuthError::invalid_grant("the grant has been revoked"));
        }
        if record.used_at.is_some()
            || !store::oauth::claim_refresh(self.store.pool(), &hash, now).await?
        {
            // Reuse of a rotated token: someone holds a copy. Revoke the whole family.
            self.revoke_family(&grant.id, "oauth.refresh_reuse", client_addr)
                .await?;
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; the grant has been revoked",
            ));
        }
        if record.expires_at <= now || grant.expires_at <= now {
            return Err(OAuthError::invalid_grant("the refresh token has expired"));
        }
        let scopes = requested_scopes(single(form, "scope")?, &grant.scopes)?.to_space_separated();
        self.check_resource(form, &grant.resource, "the grant's")?;
        let principal = self.grant_principal(&grant.principal_id).await?;
        let mut tx = self.store.pool().begin().await?;
        let refresh = self.new_refresh(&mut tx, &grant, now).await?;
        tx.commit().await?;
        let issued = self.issue_access_token(
            &principal.id,
            principal.kind,
            &client.id,
            &scopes,
            grant.workspaces.as_deref(),
            &grant.resource,
            Some(&grant.id),
        )?;
        self.audit_oauth(
            Some(principal.id.as_str()),
            Some(&issued.jti),
            "oauth.refresh",
            &client.id,
            Some(format!("grant {} scopes {scopes}", grant.id)),
            client_addr,
        )
        .await;
        Ok(TokenResponse {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: scopes,
            refresh_token: Some(refresh.expose().to_string()),
        })
    }

    /// Revokes a grant: its refresh tokens stop working and its access tokens are denied.
    pub(crate) async fn revoke_family(
        &self,
        grant_id: &str,
        why: &str,
        client_addr: Option<IpAddr>,
    ) -> OResult<()> {
        store::oauth::revoke_grant(self.store.pool(), grant_id, store::now()).await?;
        self.deny(grant_id).await?;
        self.audit_oauth(None, Some(grant_id), why, grant_id, None, client_addr)
            .await;
        Ok(())
    }

    /// RFC 7009: revokes a refresh token (with its grant) or an access token the client holds.
    /// Unknown tokens, or tokens of other clients, are ignored, as the RFC asks.
    pub async fn revoke(
        &self,
        auth: &ClientAuth,
        form: &[(String, String)],
        client_addr: Option<IpAddr>,
    ) -> OResult<()> {
        let client = self.authenticate_client(auth, client_addr).await?;
        let token = required(form, "token")?;
        if token.starts_with(REFRESH_TOKEN_PREFIX) {
            if let Some((_, grant)) =
                store::oauth::find_refresh(self.store.pool(), &secrets::hash(token)).await?
                && grant.client_id == client.id
            {
                self.revoke_family(&grant.id, "oauth.revoke", client_addr)
                    .await?;
            }
        } else if jwt::looks_like_jwt(token)
            && let Ok(claims) = jwt::verify(&self.oauth.ring(), token, self.oauth.issuer(), None)
            && claims.client_id == client.id
        {
            self.deny(&claims.jti).await?;
            self.audit_oauth(
                Some(&claims.sub),
                Some(&claims.jti),
                "oauth.revoke",
                &client.id,
                Some("access token".into()),
                client_addr,
            )
            .await;
        }
        Ok(())
    }

    /// RFC 7662: what a token is, for a confidential client of the same organisation as the
    /// token's client (or the token's own client).
    pub async fn introspect(
        &self,
        auth: &ClientAuth,
        form: &[(String, String)],
        client_addr: Option<IpAddr>,
    ) -> OResult<Value> {
        let caller = self.authenticate_client(auth, client_addr).await?;
        if !caller.is_confidential() {
            return Err(OAuthError::invalid_client(
                "introspection needs a confidential client",
            ));
        }
        let token = required(form, "token")?;
        let inactive = json!({"active": false});
        let now = store::now();
        if token.starts_with(REFRESH_TOKEN_PREFIX) {
            let Some((r, g)) =
                store::oauth::find_refresh(self.store.pool(), &secrets::hash(token)).await?
            else {
                return Ok(inactive);
            };
            if g.client_id != caller.id
                || r.used_at.is_some()
                || g.revoked_at.is_some()
                || r.expires_at <= now
            {
                return Ok(inactive);
            }
            return Ok(json!({
                "active": true, "token_type": "refresh_token", "client_id": g.client_id,
                "sub": g.principal_id.0, "scope": g.scopes, "exp": r.expires_at, "iat": r.created_at,
                "aud": g.resource, "iss": self.oauth.issuer(),
            }));
        }
        if !jwt::looks_like_jwt(token) {
            return Ok(inactive);
        }
        let Ok(c) = jwt::verify(&self.oauth.ring(), token, self.oauth.issuer(), None) else {
            return Ok(inactive);
        };
        let mut ids = vec![c.jti.as_str(), c.client_id.as_str()];
        if let Some(g) = &c.gid {
            ids.push(g);
        }
        if self.oauth.deny.denies(&ids) {
            return Ok(inactive);
        }
        if c.client_id != caller.id {
            let token_client = store::oauth::get_client(self.store.pool(), &c.client_id).await?;
            let same_org = match (token_client.and_then(|t| t.org_id), &caller.org_id) {
                (Some(a), Some(b)) => &a == b,
                (None, Some(b)) => {
                    store::principals::get(self.store.pool(), &PrincipalId(c.sub.clone()))
                        .await?
                        .is_some_and(|p| &p.org_id == b)
                }
                _ => false,
            };
            if !same_org {
                return Ok(inactive);
            }
        }
        Ok(json!({
            "active": true, "token_type": "Bearer", "scope": c.scope, "client_id": c.client_id,
            "sub": c.sub, "aud": c.aud, "iss": c.iss, "exp": c.exp, "iat": c.iat, "jti": c.jti,
            "principal_kind": c.principal_kind, "workspaces": c.workspaces,
        }))
    }

    /// RFC 7591 dynamic registration of a public client.
    pub async fn register_client(
        &self,
        req: Registration,
        client_addr: Option<IpAddr>,
    ) -> OResult<Value> {
        if !store::oauth::any_org_allows_dynamic(self.store.pool()).await? {
            return Err(OAuthError::access_denied(
                "dynamic client registration is turned off",
            ));
        }
        match req.token_endpoint_auth_method.as_deref() {
            None | Some("none") => {}
            Some(m) => {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "token_endpoint_auth_method `{m}`: dynamically registered clients are public (`none`)"
                )));
            }
        }
        if req.redirect_uris.is_empty() {
            return Err(OAuthError::invalid_redirect_uri(
                "redirect_uris is required",
            ));
        }
        check_redirect_uris(&req.redirect_uris).map_err(OAuthError::invalid_redirect_uri)?;
        let grant_types = req
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
        if !grant_types.iter().any(|g| g == "authorization_code")
            || grant_types
                .iter()
                .any(|g| g != "authorization_code" && g != "refresh_token")
        {
            return Err(OAuthError::invalid_client_metadata(
                "grant_types must be authorization_code, optionally with refresh_token",
            ));
        }
        if req
            .response_types
            .as_ref()
            .is_some_and(|r| r.iter().any(|t| t != "code"))
        {
            return Err(OAuthError::invalid_client_metadata(
                "response_types must be [\"code\"]",
            ));
        }
        let scopes = match req.scope.as_deref() {
            None => ScopeSet::all(),
            Some(s) => ScopeSet::parse(s.split_whitespace())
                .map_err(|s| OAuthError::invalid_client_metadata(format!("unknown scope `{s}`")))?,
        };
        let name = req
            .client_name
            .unwrap_or_else(|| "Unnamed application".into());
        super::super::check_name("client_name", &name)
            .map_err(|e| OAuthError::invalid_client_metadata(e.to_string()))?;
        let now = store::now();
        let record = ClientRecord {
            id: crate::identity::new_id("oac"),
            org_id: None,
            name: name.trim().to_string(),
            secret_hash: None,
            redirect_uris: req.redirect_uris,
            grant_types,
            scopes: scopes.to_space_separated(),
            workspaces: None,
            principal_id: None,
            dynamic: true,
            created_by: None,
            created_at: now,
            secret_rotated_at: None,
        };
        store::oauth::insert_client(self.store.pool(), &record).await?;
        self.audit_oauth(
            None,
            None,
            "oauth.client.register",
            &record.id,
            Some(format!("name {}", record.name)),
            client_addr,
        )
        .await;
        Ok(json!({
            "client_id": record.id,
            "client_id_issued_at": now,
            "client_name": record.name,
            "redirect_uris": record.redirect_uris,
            "grant_types": record.grant_types,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": record.scopes,
        }))
    }
}
