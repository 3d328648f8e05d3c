//! A bounded map from a presented credential to what it resolved to, each entry trusted until
//! a time of its own. Both token kinds use it so that the hot path does not read the database
//! for a credential it has just seen; what may change behind an entry (revocation, a deleted
//! principal) bounds how long the entry is trusted.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Credentials and what they resolved to; at most `capacity` of them. Read on every request
/// by every worker thread at once, written once per credential every few seconds: a
/// read-write lock, so the readers do not queue behind each other.
pub struct CredentialCache<V> {
    map: RwLock<HashMap<String, (V, i64)>>,
    capacity: usize,
    /// How many times everything was forgotten (changed only under the write lock).
    clears: AtomicU64,
}

/// Taken before a credential is looked up, given back to [`CredentialCache::put`]: what was
/// read before a [`CredentialCache::clear`] (a revocation that committed while the lookup was
/// in flight) is not remembered after it.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl<V: Clone> CredentialCache<V> {
    /// A cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        CredentialCache {
            map: RwLock::new(HashMap::with_capacity(capacity.min(1024))),
            capacity,
            clears: AtomicU64::new(0),
        }
    }

    /// The entry for `key`, if present and still trusted at `now` (unix seconds).
    pub fn get(&self, key: &str, now: i64) -> Option<V> {
        let map = self.map.read().ok()?;
        map.get(key)
            .filter(|(_, until)| *until > now)
            .map(|(v, _)| v.clone())
    }

    /// Take one before looking a credential up, for [`CredentialCache::put`].
    pub fn ticket(&self) -> Ticket {
        Ticket(self.clears.load(Ordering::SeqCst))
    }

    /// Remembers `v` for `key` until `until`, unless everything was forgotten since `ticket`
    /// was taken (`v` may then predate the change that made the cache forget); when full,
    /// stale entries go first, then an arbitrary half (a miss only costs a lookup).
    pub fn put(&self, ticket: Ticket, key: &str, v: V, until: i64, now: i64) {
        let Ok(mut map) = self.map.write() else {
            return;
        };
        if self.clears.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        if map.len() >= self.capacity {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.capacity {
                let drop: Vec<String> = map.keys().take(map.len() / 2 + 1).cloned().collect();
                for k in drop {
                    map.remove(&k);
                }
            }
        }
        map.insert(key.to_string(), (v, until));
    }

    /// Forgets everything: after a change that may concern any entry (a revocation, a deleted
    /// principal), so this process never serves a stale answer.
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
            self.clears.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_trusted_until_their_time_only() {
        let c = CredentialCache::new(4);
        c.put(c.ticket(), "a", 1, 100, 50);
        assert_eq!(c.get("a", 99), Some(1));
        assert_eq!(c.get("a", 100), None);
        assert_eq!(c.get("b", 50), None);
    }

    #[test]
    fn a_full_cache_drops_stale_entries_first_and_stays_bounded() {
        let c = CredentialCache::new(3);
        c.put(c.ticket(), "old", 0, 10, 0);
        c.put(c.ticket(), "a", 1, 100, 0);
        c.put(c.ticket(), "b", 2, 100, 0);
        c.put(c.ticket(), "c", 3, 100, 20);
        assert_eq!(c.get("old", 20), None);
        assert_eq!((c.get("a", 20), c.get("c", 20)), (Some(1), Some(3)));
        for i in 0..100 {
            c.put(c.ticket(), &format!("k{i}"), i, 1000, 20);
            assert!(c.len() <= 3);
        }
    }

    #[test]
    fn what_was_looked_up_before_a_clear_is_not_remembered_after_it() {
        let c = CredentialCache::new(3);
        let before = c.ticket();
        c.clear();
        c.put(before, "revoked", 1, 100, 0);
        assert_eq!(c.get("revoked", 0), None);
        c.put(c.ticket(), "fresh", 2, 100, 0);
        assert_eq!(c.get("fresh", 0), Some(2));
    }

    #[test]
    fn clear_forgets_everything() {
        let c = CredentialCache::new(3);
        c.put(c.ticket(), "a", 1, 100, 0);
        c.clear();
        assert!(c.is_empty());
    }
}
