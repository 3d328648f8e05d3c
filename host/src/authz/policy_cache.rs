//! Compiled tenant policy sets, cached per workspace and keyed by version. The workspace row
//! that every request reads anyway names the versions in force, so a change made by any
//! replica takes effect on the next request here without a restart, and a request always
//! holds one whole compiled set (an `Arc`), never a half-updated one.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::cedar::CompiledSet;
use crate::identity::WorkspaceId;

/// Which slot of a workspace a set fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The enforced set.
    Enforced,
    /// The shadow candidate.
    Shadow,
}

/// The cache: at most one compiled set per workspace and slot.
#[derive(Default)]
pub struct PolicyCache {
    sets: RwLock<HashMap<(WorkspaceId, Slot), Arc<CompiledSet>>>,
}

impl PolicyCache {
    /// The compiled set of `version`, if that is what the cache holds.
    pub fn get(&self, ws: &WorkspaceId, slot: Slot, version: i64) -> Option<Arc<CompiledSet>> {
        let sets = self.sets.read().ok()?;
        sets.get(&(ws.clone(), slot))
            .filter(|s| s.version == Some(version))
            .cloned()
    }

    /// Stores a freshly compiled set, replacing the slot's previous one.
    pub fn put(&self, ws: &WorkspaceId, slot: Slot, set: Arc<CompiledSet>) {
        if let Ok(mut sets) = self.sets.write() {
            sets.insert((ws.clone(), slot), set);
        }
    }
}
