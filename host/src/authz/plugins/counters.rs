//! The sliding-window counters behind the host's `count` import, scoped per plugin and
//! workspace. Exact (a log of timestamps per key) for budgets up to [`MAX_EVENTS`] within a
//! window; beyond that the count saturates, which still refuses any smaller budget.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The most events remembered per key.
pub const MAX_EVENTS: usize = 10_000;
/// The longest window a plugin may ask for.
pub const MAX_WINDOW_SECS: u32 = 86_400;
/// When the table grows past this many keys, idle keys are swept out.
const SWEEP_AT: usize = 50_000;

/// Where a counter lives: the plugin, the workspace, the plugin's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterKey {
    /// The plugin's id (stable across its versions, so a new version keeps the budgets).
    pub plugin: String,
    /// The workspace.
    pub workspace: String,
    /// The key the plugin chose.
    pub key: String,
}

struct Series {
    events: VecDeque<u64>,
    window_ms: u64,
}

/// Every counter of this process.
#[derive(Default)]
pub struct Counters {
    table: Mutex<HashMap<CounterKey, Series>>,
}

impl Counters {
    /// Counts one event at `now_ms` (unless `dry_run`) and returns the events within the
    /// window ending now, this one included.
    pub fn count(&self, key: CounterKey, window_secs: u32, now_ms: u64, dry_run: bool) -> u64 {
        let window_ms = u64::from(window_secs.clamp(1, MAX_WINDOW_SECS)) * 1000;
        let Ok(mut table) = self.table.lock() else {
            // A poisoned table means a panic elsewhere; count as if the budget were spent.
            return u64::MAX;
        };
        if table.len() >= SWEEP_AT && !table.contains_key(&key) {
            table.retain(|_, s| {
                s.events
                    .back()
                    .is_some_and(|t| now_ms.saturating_sub(*t) < s.window_ms)
            });
        }
        let series = table.entry(key).or_insert_with(|| Series {
            events: VecDeque::new(),
            window_ms,
        });
        series.window_ms = window_ms;
        while series
            .events
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) >= window_ms)
        {
            series.events.pop_front();
        }
        if dry_run {
            return series.events.len() as u64 + 1;
        }
        if series.events.len() >= MAX_EVENTS {
            series.events.pop_front();
        }
        series.events.push_back(now_ms);
        series.events.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> CounterKey {
        CounterKey {
            plugin: "plg_1".into(),
            workspace: "ws_1".into(),
            key: k.into(),
        }
    }

    #[test]
    fn counts_within_the_window_and_forgets_after_it() {
        let c = Counters::default();
        assert_eq!(c.count(key("a"), 10, 1_000, false), 1);
        assert_eq!(c.count(key("a"), 10, 2_000, false), 2);
        assert_eq!(c.count(key("b"), 10, 2_000, false), 1);
        assert_eq!(c.count(key("a"), 10, 10_999, false), 3);
        // The first event (t=1000) has left the 10 s window at t=11000.
        assert_eq!(c.count(key("a"), 10, 11_000, false), 3);
        assert_eq!(c.count(key("a"), 10, 30_000, false), 1);
    }

    #[test]
    fn dry_runs_add_nothing() {
        let c = Counters::default();
        c.count(key("a"), 10, 1_000, false);
        assert_eq!(c.count(key("a"), 10, 1_001, true), 2);
        assert_eq!(c.count(key("a"), 10, 1_002, true), 2);
    }

    #[test]
    fn scopes_do_not_mix() {
        let c = Counters::default();
        let mut other = key("a");
        other.workspace = "ws_2".into();
        c.count(key("a"), 10, 1_000, false);
        assert_eq!(c.count(other, 10, 1_000, false), 1);
    }
}
