//! The clock behind plugin deadlines. wasmtime checks a store's deadline only when the engine's
//! epoch advances, so a thread advances it every [`TICK`] — but only while plugins run: on an
//! idle server it would wake a thousand times a second for nothing (on a virtual machine each
//! wake-up is an exit to the hypervisor). After [`IDLE_TICKS`] ticks without a plugin store it
//! sleeps, and the next store made wakes it before the plugin's first instruction can run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::thread::Thread;
use std::time::Duration;

use wasmtime::Engine;

/// The epoch ticks once a millisecond; deadlines are checked on ticks.
pub(super) const TICK: Duration = Duration::from_millis(1);
/// Ticks without a store before the clock sleeps.
const IDLE_TICKS: u32 = 100;

/// What the clock and the stores share. `made` and `done` count stores made and dropped:
/// their difference is how many exist, and a change in `made` is activity.
#[derive(Default)]
struct Shared {
    made: AtomicU64,
    done: AtomicU64,
    asleep: AtomicBool,
    stop: AtomicBool,
    /// Ticks so far, counted for the tests only.
    #[cfg(test)]
    ticks: AtomicU64,
}

/// The ticking thread of one engine; it stops when this is dropped.
pub(super) struct EpochClock {
    shared: Arc<Shared>,
    thread: Thread,
}

/// Held by every plugin store: while one exists, the clock ticks.
pub(super) struct Running(Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.done.fetch_add(1, SeqCst);
    }
}

impl EpochClock {
    /// Starts the clock of `engine`.
    pub(super) fn start(engine: Engine) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let ticking = shared.clone();
        let handle = std::thread::Builder::new()
            .name("warrant-plugin-clock".into())
            .spawn(move || tick(&engine, &ticking))?;
        Ok(EpochClock {
            shared,
            thread: handle.thread().clone(),
        })
    }

    /// Marks a store as existing (until the result is dropped), waking the clock if it sleeps.
    pub(super) fn running(&self) -> Running {
        // SeqCst on both sides (here: count, then look; the clock: say it sleeps, then look at
        // the count): either the clock sees this store and stays awake, or this sees it asleep
        // and wakes it. An unpark before the park makes the park return at once.
        self.shared.made.fetch_add(1, SeqCst);
        if self.shared.asleep.load(SeqCst) {
            self.thread.unpark();
        }
        Running(self.shared.clone())
    }

    /// Epoch ticks so far.
    #[cfg(test)]
    fn ticks(&self) -> u64 {
        self.shared.ticks.load(SeqCst)
    }
}

impl Drop for EpochClock {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        self.thread.unpark();
    }
}

/// The clock's thread.
fn tick(engine: &Engine, shared: &Shared) {
    let mut seen = 0;
    let mut idle = 0;
    while !shared.stop.load(SeqCst) {
        let made = shared.made.load(SeqCst);
        if made != seen || made != shared.done.load(SeqCst) {
            seen = made;
            idle = 0;
        } else {
            idle += 1;
        }
        if idle >= IDLE_TICKS {
            shared.asleep.store(true, SeqCst);
            if shared.made.load(SeqCst) == seen && !shared.stop.load(SeqCst) {
                std::thread::park();
            }
            shared.asleep.store(false, SeqCst);
            idle = 0;
            continue;
        }
        std::thread::sleep(TICK);
        engine.increment_epoch();
        #[cfg(test)]
        shared.ticks.fetch_add(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle() {
        std::thread::sleep(TICK * (IDLE_TICKS + 150));
    }

    #[test]
    fn sleeps_without_stores_and_ticks_while_one_exists() {
        let clock = EpochClock::start(Engine::default()).unwrap();
        settle();
        assert!(clock.shared.asleep.load(SeqCst), "asleep after idling");
        let before = clock.ticks();
        std::thread::sleep(TICK * 50);
        assert_eq!(clock.ticks(), before, "no ticks while asleep");

        let running = clock.running();
        std::thread::sleep(TICK * 50);
        let woken = clock.ticks();
        assert!(woken > before, "a store wakes the clock");
        // A store that lives long keeps it ticking, past the idle bound.
        std::thread::sleep(TICK * (IDLE_TICKS + 50));
        assert!(clock.ticks() > woken + u64::from(IDLE_TICKS) / 2);
        assert!(!clock.shared.asleep.load(SeqCst));
        drop(running);
        settle();
        assert!(
            clock.shared.asleep.load(SeqCst),
            "asleep again once it is gone"
        );
    }

    #[test]
    fn stores_made_and_dropped_in_a_burst_always_find_it_awake_or_wake_it() {
        let clock = EpochClock::start(Engine::default()).unwrap();
        for _ in 0..5 {
            settle();
            let before = clock.ticks();
            // Short stores, as evaluations are: each wakes the clock if it sleeps.
            let running = clock.running();
            std::thread::sleep(TICK * 20);
            assert!(clock.ticks() > before, "ticked while a store existed");
            drop(running);
        }
    }
}
