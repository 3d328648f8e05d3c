//! The decision log's writer, the largest cost of an authorised read that the server owns
//! (docs/performance.md): what one logged decision costs the SQLite file, by the size of the
//! batch it is written in. The writer gathers for `GATHER` before it writes, so under load a
//! batch holds that long's decisions; each batch is one transaction and WAL commit, and the
//! pages it dirties (the table's end, and a leaf of the per-workspace index for each workspace
//! it touches) are written to the WAL and later checkpointed, whatever the batch's size.
//!
//! The records are the load benchmark's: an agent reading one file in one of 116 workspaces,
//! two plugin verdicts, one determining policy; the table holds 200 000 of them first.
//!
//! `cargo bench -p warrant --bench decision_log`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use warrant::authz::decision_log::write_batch;
use warrant::identity::new_ordered_id;
use warrant::store::Store;
use warrant::store::decisions::{self, DecisionRecord};
use warrant::store::verdicts;

/// The allocator the server runs with (`host/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The load benchmark's workspaces (100 with plugins, 16 without).
const WORKSPACES: usize = 116;
/// Rows in the table before measuring, so its B-trees have a realistic depth.
const PREFILL: usize = 200_000;

/// Two plugin verdicts, as the decision log stores them.
fn plugins() -> Option<String> {
    let verdict = |plugin_id, name, verdict| verdicts::Verdict {
        plugin_id,
        name,
        version: 1,
        mode: "enforce",
        verdict,
        reason: None,
        elapsed_us: 3,
        reused: true,
    };
    verdicts::stored([
        verdict(
            "plg_0194f1b2c3d4e5f6a7b8c9d0e1f2a3b4",
            "path-guard",
            "allow",
        ),
        verdict(
            "plg_0194f1b2c3d4e5f6a7b8c9d0e1f2a3b5",
            "content-rules",
            "abstain",
        ),
    ])
}

/// A decision as the load benchmark's PAT read logs it, in workspace `i % WORKSPACES`.
fn record(i: usize) -> DecisionRecord {
    DecisionRecord {
        id: new_ordered_id(decisions::ID_PREFIX),
        at_ms: warrant::store::now_ms(),
        workspace_id: Some(format!(
            "ws_0194f1b2c3d4e5f6a7b8c9d0e1f2{:04x}",
            i % WORKSPACES
        )),
        principal_id: format!("agt_0194f1b2c3d4e5f6a7b8c9d0e1f2{:04x}", i % WORKSPACES),
        principal_kind: "agent".into(),
        credential_id: format!("tok_0194f1b2c3d4e5f6a7b8c9d0e1f2{:04x}", i % WORKSPACES),
        action: "files:read".into(),
        resource: "reports/q1.txt".into(),
        transport: "rest".into(),
        allowed: true,
        layer: None,
        policy_ids: vec!["base-member-read".into()],
        reasons: vec!["permitted by base-member-read".into()],
        elapsed_us: 9,
        policy_version: Some(1),
        shadow_version: None,
        shadow_allowed: None,
        shadow_policy_ids: None,
        plugins: plugins(),
    }
}

fn batch(from: usize, n: usize) -> Vec<DecisionRecord> {
    (from..from + n).map(record).collect()
}

/// The CPU time all of the process's threads have spent, the writer's included. Measured
/// instead of the wall clock: what the log costs a loaded server is the CPU it takes from
/// requests, and the wall clock also counts the checkpoints' waits for the disk, which vary
/// by several milliseconds from one batch to the next and take no CPU.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    #[allow(unsafe_code)]
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn benches(c: &mut Criterion) {
    let rt = common::runtime();
    let (dir, url) = common::fresh_database("log");
    let store = rt.block_on(Store::open(&url)).unwrap();
    rt.block_on(async {
        for from in (0..PREFILL).step_by(4096) {
            write_batch(&store, batch(from, 4096)).await.unwrap();
        }
    });
    let mut g = c.benchmark_group("decision_log");
    g.measurement_time(Duration::from_secs(10));
    // 20 ms and 100 ms of a 20 000 req/s load; 4096 is the writer's largest batch.
    for size in [400, 2000, 4096] {
        g.throughput(Throughput::Elements(size as u64));
        g.bench_function(format!("write_batch_of_{size}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for i in 0..iters as usize {
                    let rows = batch(i * size, size);
                    let start = cpu_time();
                    rt.block_on(write_batch(&store, rows)).unwrap();
                    spent += cpu_time() - start;
                }
                spent
            });
        });
    }
    g.finish();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
}
