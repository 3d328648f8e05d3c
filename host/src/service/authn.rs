//! Authentication: a bearer credential becomes a [`Caller`]. A token whose checksum fails is
//! refused before any database lookup. OAuth access tokens (JWTs) are verified in
//! `service::oauth`, with the audience the transport requires.
//!
//! A PAT that resolved is remembered for [`PAT_RECHECK_SECS`] (keyed by its hash), so a busy
//! client costs one lookup per few seconds, not one per request. This process forgets every
//! entry the moment it revokes a token, deletes a principal or changes an organisation's
//! limits; another replica sees such a change within [`PAT_RECHECK_SECS`], the same bound as
//! the OAuth deny-list's refresh.

use std::net::IpAddr;
use std::sync::Arc;

use super::Warrant;
use crate::authz::{Caller, CredentialKind, Grant, ScopeSet, Transport};
use crate::credentials::pat;
use crate::identity::{Principal, TokenId};
use crate::store;
use crate::{Error, Result};

/// How often, at most, a token's last-used time and address are written.
const LAST_USE_WRITE_INTERVAL_SECS: i64 = 60;
/// How long a looked-up PAT is trusted before it is read again, in seconds.
pub(super) const PAT_RECHECK_SECS: i64 = 5;
/// How many PATs are remembered at most.
pub(super) const PAT_CACHE_CAPACITY: usize = 65_536;

/// What a live PAT resolved to: shared by every request that presents it, each taking a copy
/// of only what its [`Caller`] holds.
pub(super) struct ResolvedPat {
    principal: Arc<Principal>,
    /// The grant; its credential id is the token's id.
    grant: Grant,
    /// The token's id again, as the rate limiter counts it.
    rate_key: Arc<str>,
    last_used_at: Option<i64>,
    rate_limit_per_minute: Option<i64>,
}

impl Warrant {
    /// Authenticates a bearer token presented on `transport` from `client_addr`.
    pub async fn authenticate(
        &self,
        bearer: &str,
        client_addr: Option<IpAddr>,
        transport: Transport,
    ) -> Result<Caller> {
        let outcome = if crate::oauth::jwt::looks_like_jwt(bearer) {
            self.authenticate_jwt(bearer, client_addr, transport).await
        } else {
            self.authenticate_pat(bearer, client_addr, transport).await
        };
        match outcome {
            Err(Error::InvalidToken(why)) => {
                // Guessing tokens costs the guesser: past the limit, it must wait.
                self.limits.check_failed_auth(client_addr)?;
                Err(Error::InvalidToken(why))
            }
            other => other,
        }
    }

    async fn authenticate_pat(
        &self,
        bearer: &str,
        client_addr: Option<IpAddr>,
        transport: Transport,
    ) -> Result<Caller> {
        pat::check_format(bearer).map_err(|e| match e {
            pat::FormatError::NotAPat => Error::InvalidToken("unrecognised token format"),
            pat::FormatError::Malformed => Error::InvalidToken("malformed token"),
            pat::FormatError::BadChecksum => Error::InvalidToken("token checksum mismatch"),
        })?;
        let hash = pat::Hash::of(bearer);
        let now = store::now();
        let pat = match self.pats.get(hash.as_str(), now) {
            Some(p) => p,
            None => self.look_up_pat(hash.as_str(), now).await?,
        };
        self.limits
            .check_credential(&pat.rate_key, pat.rate_limit_per_minute)?;
        self.note_use(&pat.grant.credential_id, pat.last_used_at, now, client_addr);
        Ok(Caller {
            principal: pat.principal.clone(),
            grant: pat.grant.clone(),
            client_addr,
            transport,
        })
    }

    /// Reads a PAT from the database; a live one is remembered.
    async fn look_up_pat(&self, hash: &str, now: i64) -> Result<Arc<ResolvedPat>> {
        let ticket = self.pats.ticket();
        let (record, principal, org_rate_limit) =
            store::tokens::find_by_hash(self.store.pool(), hash)
                .await?
                .ok_or(Error::InvalidToken("unknown token"))?;
        if record.revoked_at.is_some() {
            return Err(Error::InvalidToken("the token has been revoked"));
        }
        if record.expires_at <= now {
            return Err(Error::InvalidToken("the token has expired"));
        }
        let scopes = ScopeSet::parse(record.scopes.split_whitespace())
            .map_err(|s| Error::Internal(format!("stored token has unknown scope {s}")))?;
        let until = record.expires_at.min(now + PAT_RECHECK_SECS);
        let resolved = Arc::new(ResolvedPat {
            rate_key: Arc::from(record.id.as_str()),
            principal: Arc::new(principal),
            grant: Grant {
                kind: CredentialKind::Pat,
                credential_id: record.id.0,
                scopes,
                workspaces: record.workspaces,
            },
            last_used_at: record.last_used_at,
            rate_limit_per_minute: record.rate_limit_per_minute.or(org_rate_limit),
        });
        self.pats.put(ticket, hash, resolved.clone(), until, now);
        Ok(resolved)
    }

    /// Forgets every remembered credential, after a change that may concern any of them, and
    /// tells the other replicas to do the same.
    pub(super) async fn credentials_changed(&self) {
        self.forget_credentials();
        self.announce_credentials_changed().await;
    }

    /// Tells every replica that credentials changed (see `store::changes`). The change is
    /// already stored: a failure to tell is logged, and the others then see it when what they
    /// remember expires (within [`PAT_RECHECK_SECS`] for PATs).
    pub(super) async fn announce_credentials_changed(&self) {
        if let Err(e) = self.store.announce_credentials_changed().await {
            tracing::warn!(error = %e, "could not tell the other replicas that credentials changed");
        }
    }

    fn forget_credentials(&self) {
        self.pats.clear();
        self.oauth.forget_tokens();
    }

    /// Listens for the changes other processes announce, for as long as this service lives:
    /// each one (or a sign that one may have been missed) makes it forget every remembered
    /// credential and reload the deny-list and keys. Nothing to listen to on SQLite.
    pub async fn hear_other_replicas(self: &Arc<Self>) -> Result<()> {
        let Some(mut listener) = self.store.listen_for_changes().await? else {
            return Ok(());
        };
        // What changed between loading at start and listening from now on.
        self.catch_up_with_others().await?;
        let service = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                listener.next().await;
                let Some(service) = service.upgrade() else {
                    return;
                };
                if let Err(e) = service.catch_up_with_others().await {
                    tracing::warn!(error = %e, "could not reload the OAuth deny-list and keys");
                }
            }
        });
        Ok(())
    }

    /// Forgets every remembered credential and reloads the OAuth deny-list and keys.
    async fn catch_up_with_others(&self) -> Result<()> {
        self.forget_credentials();
        self.oauth.catch_up(&self.store).await
    }

    /// Records a use off the request path, at most once a minute per token.
    fn note_use(&self, id: &str, stored: Option<i64>, now: i64, addr: Option<IpAddr>) {
        // The stored time (read at most PAT_RECHECK_SECS ago) is recent: nothing to write, and
        // no lock shared by every request to find that out.
        if stored.is_some_and(|t| now.saturating_sub(t) < LAST_USE_WRITE_INTERVAL_SECS) {
            return;
        }
        {
            let Ok(mut written) = self.last_use_written.lock() else {
                return;
            };
            let last = written.get(id).copied().or(stored).unwrap_or(i64::MIN);
            if now.saturating_sub(last) < LAST_USE_WRITE_INTERVAL_SECS {
                return;
            }
            written.insert(id.to_string(), now);
        }
        let pool = self.store.pool().clone();
        let id = TokenId(id.to_string());
        tokio::spawn(async move {
            let addr = addr.map(|a| a.to_string());
            if let Err(e) = store::tokens::touch(&pool, &id, now, addr.as_deref()).await {
                tracing::warn!(token = %id, error = %e, "could not record a token's last use");
            }
        });
    }
}
