//! Small blobs kept in memory after their first read.
//!
//! A blob never changes once written: every version of a file is a blob of its own, under a
//! new id, so a copy kept by id can never be stale, on this replica or any other sharing the
//! data folder — which blob a read wants is decided by the file's metadata, read (and
//! authorized) first every time. Reading a small blob from disk is a trip to tokio's blocking
//! pool (open, read, close): two thread hand-offs and wake-ups that cost a download of a
//! 59-byte file about as much CPU as the whole authorised metadata read, and MCP's
//! `read_file` the same (the load benchmark's profile: a quarter of MCP's samples).
//!
//! Bounded by bytes; when a new blob would exceed the budget, arbitrary entries go until half
//! of it is free (a miss only costs a read from disk). Read on every download by every worker
//! at once, written once per blob: a read-write lock, so readers do not queue.

use std::collections::HashMap;
use std::sync::RwLock;

use bytes::Bytes;

/// The largest blob kept: larger ones are rarer, read less often relative to their size, and
/// one of them would push many small ones out.
pub const MAX_ENTRY_BYTES: usize = 64 << 10;

/// Blob ids and their bytes, at most `budget` bytes of them.
pub struct BlobCache {
    map: RwLock<Held>,
    budget: usize,
}

#[derive(Default)]
struct Held {
    blobs: HashMap<String, Bytes>,
    bytes: usize,
}

impl BlobCache {
    /// A cache of at most `budget` bytes (0: keeps nothing).
    pub fn new(budget: usize) -> Self {
        BlobCache {
            map: RwLock::new(Held::default()),
            budget,
        }
    }

    /// The bytes of blob `id`, when held.
    pub fn get(&self, id: &str) -> Option<Bytes> {
        if self.budget == 0 {
            return None;
        }
        self.map.read().ok()?.blobs.get(id).cloned()
    }

    /// Keeps `bytes` as blob `id`'s, unless it is larger than [`MAX_ENTRY_BYTES`] or the
    /// budget.
    pub fn put(&self, id: &str, bytes: &Bytes) {
        let len = bytes.len();
        if len > MAX_ENTRY_BYTES || len > self.budget {
            return;
        }
        let Ok(mut held) = self.map.write() else {
            return;
        };
        if held.blobs.contains_key(id) {
            return;
        }
        if held.bytes + len > self.budget {
            let keep = self.budget / 2;
            let mut drop = Vec::new();
            let mut freed = 0;
            for (k, v) in &held.blobs {
                if held.bytes - freed <= keep.saturating_sub(len) {
                    break;
                }
                freed += v.len();
                drop.push(k.clone());
            }
            for k in drop {
                held.blobs.remove(&k);
            }
            held.bytes -= freed;
        }
        held.bytes += len;
        held.blobs.insert(id.to_string(), bytes.clone());
    }

    /// Forgets blob `id` (it was removed from disk).
    pub fn forget(&self, id: &str) {
        if let Ok(mut held) = self.map.write()
            && let Some(v) = held.blobs.remove(id)
        {
            held.bytes -= v.len();
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.map.read().map(|h| h.bytes).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(len: usize) -> Bytes {
        Bytes::from(vec![b'x'; len])
    }

    #[test]
    fn keeps_what_it_was_given_under_its_id() {
        let cache = BlobCache::new(1 << 20);
        assert!(cache.get("a").is_none());
        cache.put("a", &Bytes::from_static(b"hello"));
        assert_eq!(cache.get("a").as_deref(), Some(&b"hello"[..]));
        assert!(cache.get("b").is_none());
        assert_eq!(cache.bytes(), 5);
    }

    #[test]
    fn never_holds_more_than_its_budget() {
        let cache = BlobCache::new(10_000);
        for i in 0..100 {
            cache.put(&format!("b{i}"), &blob(900));
            assert!(cache.bytes() <= 10_000, "{} bytes held", cache.bytes());
        }
        // The newest is always kept.
        assert!(cache.get("b99").is_some());
        let held = (0..100)
            .filter(|i| cache.get(&format!("b{i}")).is_some())
            .count();
        assert_eq!(cache.bytes(), held * 900);
    }

    #[test]
    fn large_blobs_and_a_zero_budget_are_not_kept() {
        let cache = BlobCache::new(1 << 30);
        cache.put("big", &blob(MAX_ENTRY_BYTES + 1));
        assert!(cache.get("big").is_none());
        cache.put("edge", &blob(MAX_ENTRY_BYTES));
        assert!(cache.get("edge").is_some());
        let off = BlobCache::new(0);
        off.put("a", &blob(1));
        assert!(off.get("a").is_none());
        assert_eq!(off.bytes(), 0);
    }

    #[test]
    fn forgets_a_removed_blob_and_its_bytes() {
        let cache = BlobCache::new(1 << 20);
        cache.put("a", &blob(100));
        cache.put("b", &blob(50));
        cache.put("a", &blob(7)); // already held: unchanged
        assert_eq!(cache.bytes(), 150);
        cache.forget("a");
        cache.forget("nothing");
        assert!(cache.get("a").is_none());
        assert_eq!(cache.bytes(), 50);
    }
}
