//! Rate limits: token buckets (the `governor` crate) per client address, per credential,
//! stricter ones for sensitive endpoints and for failed authentications (brute force).
//! Per-credential limits follow the token's own override, else its organisation's, else the
//! server default; each distinct limit has its own keyed bucket store.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::Error;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// What the per-address limits count by: the client's address, or None when the transport
/// gave none (all such requests then share one bucket). An address, not its text: every
/// request is counted, and formatting one would be an allocation per request.
pub type ClientKey = Option<IpAddr>;

/// Requests per minute for each class; 0 turns a class off.
#[derive(Debug, Clone)]
pub struct RateConfig {
    /// Every request, per client address.
    pub per_ip: u32,
    /// Authenticated requests, per credential (unless the token or org overrides it).
    pub per_credential: u32,
    /// Sensitive endpoints (token minting, sign-in, OAuth token endpoint), per client address.
    pub sensitive_per_ip: u32,
    /// Failed authentications, per client address.
    pub failed_auth_per_ip: u32,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            per_ip: 12_000,
            per_credential: 6_000,
            sensitive_per_ip: 60,
            failed_auth_per_ip: 60,
        }
    }
}

/// A family of keyed limiters, one per distinct per-minute limit.
#[derive(Default)]
struct Buckets<K: Hash + Eq + Clone> {
    by_limit: RwLock<HashMap<u32, Arc<Keyed<K>>>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn limiter(&self, per_minute: NonZeroU32) -> Arc<Keyed<K>> {
        if let Some(l) = self
            .by_limit
            .read()
            .ok()
            .and_then(|m| m.get(&per_minute.get()).cloned())
        {
            return l;
        }
        let fresh = Arc::new(
            RateLimiter::keyed(Quota::per_minute(per_minute))
                .with_middleware::<StateInformationMiddleware>(),
        );
        match self.by_limit.write() {
            Ok(mut m) => m.entry(per_minute.get()).or_insert(fresh).clone(),
            Err(_) => fresh,
        }
    }

    fn check(&self, key: &K, per_minute: u32) -> Result<(), Error> {
        let Some(limit) = NonZeroU32::new(per_minute) else {
            return Ok(());
        };
        match self.limiter(limit).check_key(key) {
            Ok(_) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(Error::RateLimited {
                    limit: per_minute,
                    retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                })
            }
        }
    }

    fn prune(&self) {
        if let Ok(m) = self.by_limit.read() {
            for l in m.values() {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    }
}

/// All the limiters of one server.
pub struct RateLimits {
    config: RateConfig,
    ip: Buckets<ClientKey>,
    credential: Buckets<Arc<str>>,
    sensitive: Buckets<ClientKey>,
    failed_auth: Buckets<ClientKey>,
}

impl RateLimits {
    /// Limiters with `config`; a task forgets idle keys every minute.
    pub fn new(config: RateConfig) -> Arc<Self> {
        let limits = Arc::new(RateLimits {
            config,
            ip: Buckets::default(),
            credential: Buckets::default(),
            sensitive: Buckets::default(),
            failed_auth: Buckets::default(),
        });
        let weak = Arc::downgrade(&limits);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let Some(l) = weak.upgrade() else { return };
                    for b in [&l.ip, &l.sensitive, &l.failed_auth] {
                        b.prune();
                    }
                    l.credential.prune();
                }
            });
        }
        limits
    }

    /// Counts a request from `ip`.
    pub fn check_ip(&self, ip: ClientKey) -> Result<(), Error> {
        self.ip.check(&ip, self.config.per_ip)
    }

    /// Counts a request to a sensitive endpoint from `ip`.
    pub fn check_sensitive(&self, ip: ClientKey) -> Result<(), Error> {
        self.sensitive.check(&ip, self.config.sensitive_per_ip)
    }

    /// Counts a request made with a credential (by its id); `override_per_minute` comes from
    /// the token or its organisation. The id is shared: a resolved token keeps it, so that
    /// counting a request allocates nothing.
    pub fn check_credential(
        &self,
        credential: &Arc<str>,
        override_per_minute: Option<i64>,
    ) -> Result<(), Error> {
        let limit = override_per_minute
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(self.config.per_credential);
        self.credential.check(credential, limit)
    }

    /// Counts a failed authentication from `ip`; past the limit, the caller is told to wait.
    pub fn check_failed_auth(&self, ip: ClientKey) -> Result<(), Error> {
        self.failed_auth.check(&ip, self.config.failed_auth_per_ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bucket_empties_and_says_how_long_to_wait() {
        let limits = RateLimits::new(RateConfig {
            per_ip: 3,
            ..RateConfig::default()
        });
        let (a, b) = (Some([10, 0, 0, 1].into()), Some([10, 0, 0, 2].into()));
        for _ in 0..3 {
            limits.check_ip(a).unwrap();
        }
        match limits.check_ip(a) {
            Err(Error::RateLimited {
                limit,
                retry_after_secs,
            }) => {
                assert_eq!(limit, 3);
                assert!((1..=20).contains(&retry_after_secs), "{retry_after_secs}");
            }
            other => panic!("{other:?}"),
        }
        // Another address has its own bucket.
        limits.check_ip(b).unwrap();
        // So has a request whose transport gave no address.
        limits.check_ip(None).unwrap();
    }

    #[tokio::test]
    async fn overrides_get_their_own_buckets_and_zero_turns_off() {
        let limits = RateLimits::new(RateConfig {
            per_credential: 1,
            ..RateConfig::default()
        });
        limits.check_credential(&"tok_a".into(), Some(2)).unwrap();
        limits.check_credential(&"tok_a".into(), Some(2)).unwrap();
        assert!(limits.check_credential(&"tok_a".into(), Some(2)).is_err());
        limits.check_credential(&"tok_b".into(), None).unwrap();
        assert!(limits.check_credential(&"tok_b".into(), None).is_err());
        let off = RateLimits::new(RateConfig {
            per_ip: 0,
            ..RateConfig::default()
        });
        for _ in 0..100 {
            off.check_ip(None).unwrap();
        }
    }
}
