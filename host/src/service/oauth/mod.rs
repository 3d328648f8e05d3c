//! The OAuth 2.1 authorization server's operations: client administration, the token,
//! revocation, introspection and registration endpoints, the authorization (sign-in and
//! consent) flow, and the verification of access tokens on the request path.

mod authorize;
mod clients;
mod token;

pub use authorize::{
    AuthorizeParams, AuthorizeProblem, AuthorizeStep, ConsentPage, LoginOutcome, SESSION_TTL,
    ValidAuthorize,
};
pub use clients::{ClientView, NewClient, OAuthOrgSettings};
pub use token::{ClientAuth, Registration, TokenResponse, single};

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use super::Warrant;
use crate::authz::{Caller, CredentialKind, Grant, ScopeSet, Transport};
use crate::credentials::cache::CredentialCache;
use crate::identity::{Principal, PrincipalId, PrincipalKind, WorkspaceId};
use crate::oauth::cache::{DenyList, Verified};
use crate::oauth::jwt::{self, AccessClaims, VerifyError};
use crate::oauth::keys::{KeyRing, StoredKey};
use crate::oauth::{MAX_ACCESS_TOKEN_TTL, OAuthError};
use crate::store::{self, Store, audit::AuditEntry};
use crate::{Error, Result};

/// How many verified access tokens the request path remembers.
const TOKEN_CACHE_CAPACITY: usize = 50_000;
/// How long a cached token's principal is trusted before it is loaded again, in seconds.
const PRINCIPAL_RECHECK_SECS: i64 = 300;
/// How often the deny-list and the keys are brought in step with the database.
const SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// The authorization server's in-memory state.
pub struct OAuthState {
    issuer: OnceLock<String>,
    keys: RwLock<Arc<KeyRing>>,
    cache: CredentialCache<Arc<Verified>>,
    deny: DenyList,
    access_ttl: i64,
    last_sync: AtomicI64,
}

impl OAuthState {
    /// Forgets every verified token (their principals are loaded again on next use).
    pub(crate) fn forget_tokens(&self) {
        self.cache.clear();
    }

    /// Loads (creating the first signing key if there is none) the keys and the deny-list,
    /// then keeps them in step with the database in the background.
    pub(crate) async fn start(store: &Store, access_ttl: i64) -> Result<Arc<Self>> {
        let keys = load_ring(store, true).await?;
        let state = Arc::new(OAuthState {
            issuer: OnceLock::new(),
            keys: RwLock::new(Arc::new(keys)),
            cache: CredentialCache::new(TOKEN_CACHE_CAPACITY),
            deny: DenyList::default(),
            access_ttl: access_ttl.clamp(1, MAX_ACCESS_TOKEN_TTL),
            last_sync: AtomicI64::new(0),
        });
        state.sync_deny_list(store).await?;
        let weak = Arc::downgrade(&state);
        let store = store.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut tick = tokio::time::interval(SYNC_INTERVAL);
                loop {
                    tick.tick().await;
                    let Some(s) = weak.upgrade() else { return };
                    if let Err(e) = s.sync_deny_list(&store).await {
                        tracing::warn!(error = %e, "could not refresh the OAuth deny-list");
                    }
                    if let Err(e) = s.reload_keys(&store).await {
                        tracing::warn!(error = %e, "could not reload the OAuth signing keys");
                    }
                }
            });
        }
        Ok(state)
    }

    /// Brings the deny-list and the keys in step with the database now, after another
    /// process announced a change (`store::changes`), instead of at the next periodic sync.
    pub(crate) async fn catch_up(&self, store: &Store) -> Result<()> {
        self.sync_deny_list(store).await?;
        self.reload_keys(store).await
    }

    async fn sync_deny_list(&self, store: &Store) -> Result<()> {
        let now = store::now();
        let since = self.deny.watermark.lock().map(|w| *w).unwrap_or(0);
        // One second of overlap: revocations made in the same second as the last sync.
        let rows =
            store::oauth::revocations_since(store.pool(), since.saturating_sub(1), now).await?;
        let mut newest = since;
        for (id, revoked_at, expires_at) in rows {
            self.deny.insert(&id, expires_at);
            newest = newest.max(revoked_at);
        }
        if let Ok(mut w) = self.deny.watermark.lock() {
            *w = newest;
        }
        // Once a minute: forget what can no longer matter.
        if now - self.last_sync.swap(now, Ordering::Relaxed) >= 60 {
            self.deny.prune(now);
            store::oauth::prune_revocations(store.pool(), now).await?;
            store::oauth::prune_expired(store.pool(), now).await?;
        }
        Ok(())
    }

    async fn reload_keys(&self, store: &Store) -> Result<()> {
        let ring = load_ring(store, false).await?;
        if let Ok(mut k) = self.keys.write() {
            *k = Arc::new(ring);
        }
        Ok(())
    }

    fn ring(&self) -> Arc<KeyRing> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The issuer (the public URL); set once when the server knows its address.
    pub fn issuer(&self) -> &str {
        self.issuer.get().map_or("", String::as_str)
    }
}

/// Makes a SQLite database file (which holds the OAuth signing keys) readable and writable by
/// the server's user only.
pub(crate) fn restrict_sqlite_file(database_url: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Some(rest) = database_url.strip_prefix("sqlite:") else {
            return;
        };
        let rest = rest.trim_start_matches("//");
        let path = rest.split('?').next().unwrap_or(rest);
        if path.is_empty() || path == ":memory:" {
            return;
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{path}{suffix}");
            if std::path::Path::new(&file).is_file()
                && let Err(e) =
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(file, error = %e, "could not make the database readable by the server's user only");
            }
        }
    }
}

async fn load_ring(store: &Store, create: bool) -> Result<KeyRing> {
    let now = store::now();
    let mut keys = store::oauth::list_keys(store.pool()).await?;
    if create && keys.iter().all(|k| k.retired_at.is_some()) {
        let k = StoredKey::generate(now);
        store::oauth::insert_key(store.pool(), &k).await?;
        keys.push(k);
    }
    KeyRing::from_stored(&keys, now - MAX_ACCESS_TOKEN_TTL).map_err(Error::Internal)
}

/// A freshly issued access token.
pub(crate) struct IssuedAccess {
    pub token: String,
    pub expires_in: i64,
    pub jti: String,
}

impl Warrant {
    /// Sets the public URL: the issuer of tokens and the base of the resource URLs.
    pub fn set_public_url(&self, url: &str) {
        let _ = self.oauth.issuer.set(url.trim_end_matches('/').to_string());
    }

    /// The OAuth issuer (the public URL).
    pub fn oauth_issuer(&self) -> &str {
        self.oauth.issuer()
    }

    /// The published signing keys (JWKS), reloaded from the database so a rotation shows at once.
    pub async fn jwks(&self) -> Result<Vec<crate::oauth::keys::PublicJwk>> {
        self.oauth.reload_keys(&self.store).await?;
        Ok(self.oauth.ring().jwks().to_vec())
    }

    /// `warrant keys rotate`: a new signing key takes over; the old public keys stay published
    /// until every token they signed has expired. Returns the new key id.
    pub async fn rotate_signing_key(&self) -> Result<String> {
        let now = store::now();
        let key = StoredKey::generate(now);
        let mut tx = self.store.pool().begin().await?;
        store::oauth::insert_key(&mut *tx, &key).await?;
        store::oauth::retire_keys_except(&mut *tx, &key.kid, now).await?;
        store::oauth::delete_keys_retired_before(&mut *tx, now - 2 * MAX_ACCESS_TOKEN_TTL).await?;
        tx.commit().await?;
        store::audit::record(
            self.store.pool(),
            &AuditEntry {
                principal_id: None,
                credential_id: None,
                action: "oauth.key.rotate",
                target: &key.kid,
                detail: None,
                client_addr: None,
            },
        )
        .await?;
        self.oauth.reload_keys(&self.store).await?;
        // The running servers sign with the new key and publish it at once.
        self.announce_credentials_changed().await;
        Ok(key.kid)
    }

    /// Signs an access token.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn issue_access_token(
        &self,
        principal: &PrincipalId,
        kind: PrincipalKind,
        client_id: &str,
        scopes: &str,
        workspaces: Option<&[WorkspaceId]>,
        audience: &str,
        grant_id: Option<&str>,
    ) -> std::result::Result<IssuedAccess, OAuthError> {
        let now = store::now();
        let jti = crate::identity::new_id("at");
        let claims = AccessClaims {
            iss: self.oauth.issuer().to_string(),
            sub: principal.0.clone(),
            aud: audience.to_string(),
            exp: now + self.oauth.access_ttl,
            iat: now,
            jti: jti.clone(),
            scope: scopes.to_string(),
            client_id: client_id.to_string(),
            workspaces: workspaces.map(|ws| ws.iter().map(|w| w.0.clone()).collect()),
            principal_kind: kind.as_str().to_string(),
            gid: grant_id.map(str::to_string),
        };
        let token = jwt::sign(&self.oauth.ring(), &claims).map_err(|e| {
            tracing::error!(error = %e, "could not sign an access token");
            OAuthError::server_error("could not sign the access token")
        })?;
        Ok(IssuedAccess {
            token,
            expires_in: self.oauth.access_ttl,
            jti,
        })
    }

    /// Denies an id (access token, grant or client) from now until its tokens have expired.
    pub(crate) async fn deny(&self, id: &str) -> Result<()> {
        let now = store::now();
        let until = now + MAX_ACCESS_TOKEN_TTL + 1;
        store::oauth::insert_revocation(self.store.pool(), id, now, until).await?;
        self.oauth.deny.insert(id, until);
        self.announce_credentials_changed().await;
        Ok(())
    }

    /// Verifies an OAuth access token presented on `transport`.
    pub(super) async fn authenticate_jwt(
        &self,
        bearer: &str,
        client_addr: Option<IpAddr>,
        transport: Transport,
    ) -> Result<Caller> {
        let now = store::now();
        let issuer = self.oauth.issuer();
        // The audience is the issuer for REST and the MCP resource for MCP, compared without
        // building it.
        let audience_suffix = match transport {
            Transport::Rest => "",
            Transport::Mcp => crate::oauth::MCP_RESOURCE_SUFFIX,
            Transport::WhatIf => return Err(Error::InvalidToken("not accepted here")),
        };
        let v = match self.oauth.cache.get(bearer, now) {
            Some(v) => v,
            None => {
                let ticket = self.oauth.cache.ticket();
                let claims =
                    jwt::verify(&self.oauth.ring(), bearer, issuer, None).map_err(|e| match e {
                        VerifyError::Expired => Error::InvalidToken("the token has expired"),
                        _ => {
                            Error::InvalidToken("the token's signature, issuer or shape is invalid")
                        }
                    })?;
                let principal =
                    store::principals::get(self.store.pool(), &PrincipalId(claims.sub.clone()))
                        .await?
                        .filter(|p| p.kind.as_str() == claims.principal_kind)
                        .ok_or(Error::InvalidToken(
                            "the token's principal no longer exists",
                        ))?;
                let v = Arc::new(verified(claims, principal, now)?);
                self.oauth
                    .cache
                    .put(ticket, bearer, v.clone(), v.until, now);
                v
            }
        };
        if v.claims.exp <= now {
            return Err(Error::InvalidToken("the token has expired"));
        }
        if v.claims.aud.strip_prefix(issuer) != Some(audience_suffix) {
            return Err(Error::InvalidToken(
                "the token was issued for another resource",
            ));
        }
        let mut ids = [v.claims.jti.as_str(), v.claims.client_id.as_str(), ""];
        if let Some(g) = &v.claims.gid {
            ids[2] = g.as_str();
        }
        if self.oauth.deny.denies(&ids) {
            return Err(Error::InvalidToken("the token has been revoked"));
        }
        self.limits.check_credential(&v.rate_key, None)?;
        Ok(Caller {
            principal: v.principal.clone(),
            grant: Grant {
                kind: CredentialKind::OAuth,
                credential_id: v.claims.jti.clone(),
                scopes: v.scopes,
                workspaces: v.workspaces.clone(),
            },
            client_addr,
            transport,
        })
    }

    /// The number of verified tokens cached (for benchmarks and metrics).
    pub fn oauth_cached_tokens(&self) -> usize {
        self.oauth.cache.len()
    }

    /// Appends an OAuth event to the audit log; a failure is logged, never hidden.
    pub(crate) async fn audit_oauth(
        &self,
        principal: Option<&str>,
        credential: Option<&str>,
        action: &str,
        target: &str,
        detail: Option<String>,
        client_addr: Option<IpAddr>,
    ) {
        let entry = AuditEntry {
            principal_id: principal,
            credential_id: credential,
            action,
            target,
            detail,
            client_addr: client_addr.map(|a| a.to_string()),
        };
        if let Err(e) = store::audit::record(self.store.pool(), &entry).await {
            tracing::error!(error = %e, action, target, "could not write the audit log");
        }
    }
}

fn verified(claims: AccessClaims, principal: Principal, now: i64) -> Result<Verified> {
    let scopes = ScopeSet::parse(claims.scope.split_whitespace())
        .map_err(|_| Error::InvalidToken("the token names an unknown scope"))?;
    let workspaces = claims
        .workspaces
        .as_ref()
        .map(|ws| ws.iter().map(|w| WorkspaceId(w.clone())).collect());
    let until = claims.exp.min(now + PRINCIPAL_RECHECK_SECS);
    Ok(Verified {
        rate_key: Arc::from(claims.jti.as_str()),
        claims,
        principal: Arc::new(principal),
        scopes,
        workspaces,
        until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Settings;
    use crate::service::oauth::NewClient;

    async fn open(dir: &std::path::Path) -> Warrant {
        let url = format!("sqlite://{}/w.db", dir.display());
        let w = Warrant::open(&url, dir, Settings::default()).await.unwrap();
        w.set_public_url("https://w.example");
        w
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn revocations_and_keys_survive_a_restart_and_the_file_is_private() {
        let dir = std::env::temp_dir().join(crate::identity::new_id("oauth-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let (token, auth_id, auth_secret) = {
            let w = open(&dir).await;
            let owner = w.bootstrap("o@example.com", None, "Org").await.unwrap();
            let caller = w
                .authenticate(&owner.token, None, Transport::Rest)
                .await
                .unwrap();
            let c = w
                .create_client(
                    &caller,
                    NewClient {
                        org_id: None,
                        name: "svc".into(),
                        client_type: None,
                        redirect_uris: vec![],
                        grant_types: None,
                        scopes: vec!["files:read".into()],
                        workspaces: None,
                        principal_id: None,
                    },
                )
                .await
                .unwrap();
            let auth = ClientAuth {
                client_id: Some(c.client_id.clone()),
                secret: c.client_secret.clone(),
                basic: true,
            };
            let form = vec![("grant_type".to_string(), "client_credentials".to_string())];
            let revoked = w.token(&auth, &form, None).await.unwrap().access_token;
            let kept = w.token(&auth, &form, None).await.unwrap().access_token;
            w.authenticate(&revoked, None, Transport::Rest)
                .await
                .unwrap();
            let form = vec![("token".to_string(), revoked.clone())];
            w.revoke(&auth, &form, None).await.unwrap();
            assert!(matches!(
                w.authenticate(&revoked, None, Transport::Rest).await,
                Err(Error::InvalidToken(_))
            ));
            w.shutdown().await;
            (vec![revoked, kept], auth.client_id, auth.secret)
        };
        let w = open(&dir).await;
        assert!(matches!(
            w.authenticate(&token[0], None, Transport::Rest).await,
            Err(Error::InvalidToken(_))
        ));
        // The same key verifies the other token after the restart, but not for MCP.
        let caller = w
            .authenticate(&token[1], None, Transport::Rest)
            .await
            .unwrap();
        assert_eq!(caller.grant.kind, CredentialKind::OAuth);
        assert!(
            w.authenticate(&token[1], None, Transport::Mcp)
                .await
                .is_err()
        );
        assert!(auth_id.is_some() && auth_secret.is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("w.db"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        w.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
