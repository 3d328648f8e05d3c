//! What the request path keeps of OAuth: the verified-token entry (held in a
//! [`crate::credentials::cache::CredentialCache`]) and the revocation deny-list. A cached
//! token is still checked against the deny-list on every use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use super::jwt::AccessClaims;
use crate::authz::ScopeSet;
use crate::identity::{Principal, WorkspaceId};

/// What a verified token resolved to.
#[derive(Clone)]
pub struct Verified {
    /// The token's claims.
    pub claims: AccessClaims,
    /// The principal it acts as (loaded once, on first verification).
    pub principal: Arc<Principal>,
    /// The token's id again, as the rate limiter counts it.
    pub rate_key: Arc<str>,
    /// The parsed scopes.
    pub scopes: ScopeSet,
    /// The parsed workspace limits.
    pub workspaces: Option<Vec<WorkspaceId>>,
    /// Until when this entry may be used (unix seconds): the token's expiry, or sooner so the
    /// principal is reloaded now and then.
    pub until: i64,
}

/// Revoked token ids, grant ids and client ids, each until the last token it could cover has
/// expired. Loaded from the database at start and kept in step with it.
#[derive(Default)]
pub struct DenyList {
    ids: RwLock<HashMap<String, i64>>,
    /// The newest `revoked_at` seen in the database, for incremental refreshes.
    pub(crate) watermark: Mutex<i64>,
}

impl DenyList {
    /// Adds an id, denied until `expires_at`.
    pub fn insert(&self, id: &str, expires_at: i64) {
        if let Ok(mut ids) = self.ids.write() {
            ids.insert(id.to_string(), expires_at);
        }
    }

    /// True when any of `ids` is denied. A poisoned lock denies (fail closed).
    pub fn denies(&self, ids: &[&str]) -> bool {
        match self.ids.read() {
            Ok(map) => ids.iter().any(|id| map.contains_key(*id)),
            Err(_) => true,
        }
    }

    /// Forgets entries whose tokens have all expired.
    pub fn prune(&self, now: i64) {
        if let Ok(mut ids) = self.ids.write() {
            ids.retain(|_, exp| *exp > now);
        }
    }
}
