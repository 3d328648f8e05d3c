//! The Wasm plugin runtime: one wasmtime `Engine` per process, each uploaded component
//! compiled once (off the request path) into an `InstancePre`, and a fresh, capped `Store`
//! for every evaluation so no state leaks between requests. Plugins get no WASI capability:
//! the few WASI interfaces Rust's standard library always imports are linked as traps, and
//! a component that imports anything else (files, sockets, clocks, random) is refused.
//!
//! A plugin may declare which requests it judges (the optional `interest` export); it is not
//! started for the others, and the decision records it as `skipped`. It may also declare on
//! which request fields its verdicts depend (the optional `reuse` export); it is then shown
//! only those, and its verdict is given again to requests equal in them (see [`reuse`]).
//!
//! Everything that goes wrong inside a plugin — a trap, a panic, running past the deadline,
//! growing past the memory cap — is a deny with a reason (fail closed), counted per plugin.

mod artefact;
mod bindings;
mod clock;
pub mod counters;
mod interest;
pub mod reuse;
mod sandbox;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    UpdateDeadline,
};

use artefact::ArtefactCache;
pub use artefact::COMPONENT_HEADER;
use bindings::reusable::exports::warrant::policy::reuse::GuestIndices as ReuseIndices;
use bindings::selective::exports::warrant::policy::interest::GuestIndices as InterestIndices;
use bindings::warrant::policy::types;
use bindings::{PolicyPlugin, PolicyPluginPre};
use clock::EpochClock;
use counters::Counters;
pub use interest::PluginInterest;
use reuse::{Budget, Kept, RequestField, RequestFields, VerdictMemo};
use sandbox::{Sandbox, cut};

/// The longest deny reason kept; longer ones are cut.
pub const MAX_REASON_BYTES: usize = 1024;
/// How many deadlines of wall-clock time an evaluation may take when its thread is starved
/// of CPU (its CPU budget is the deadline itself).
const WALL_CLOCK_CEILING: u32 = 20;

/// The name of the optional export that says which requests a plugin judges.
const INTEREST_EXPORT: &str = "warrant:policy/interest@0.1.0";
/// The name of the optional export that says on what a plugin's verdicts depend.
const REUSE_EXPORT: &str = "warrant:policy/reuse@0.1.0";

/// Imports a plugin may have: Warrant's own, and the WASI interfaces Rust's standard library
/// always imports (linked as traps: calling them stops the plugin).
const ALLOWED_IMPORTS: [&str; 3] = ["warrant:policy/", "wasi:cli/", "wasi:io/"];

/// CPU time this thread has used. An evaluation runs start to end on one thread, so the
/// difference of two readings is what it spent.
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Gives the evaluation about to run in `store` its deadline: `budget` of CPU time spent by
/// the evaluating thread, and a wall-clock ceiling of [`WALL_CLOCK_CEILING`] budgets.
///
/// CPU time, not time on the wall: on a busy machine the thread can be preempted in the middle
/// of a 10 µs evaluation for longer than the whole budget, and refusing that request would
/// punish an innocent plugin; the ceiling still bounds how long a starved evaluation holds a
/// request. Both are counted from the first tick of the engine's clock during the evaluation
/// (at most one tick in): reading the thread's CPU clock is a system call that takes the
/// scheduler's lock, and nearly every evaluation ends before the next tick, so only the few
/// that do not pay for it. A plugin that loops is thus stopped after at most budget + two
/// ticks of work.
fn arm_deadline(store: &mut Store<Sandbox>, budget: Duration) {
    let ceiling = budget.saturating_mul(WALL_CLOCK_CEILING);
    let mut since: Option<(Duration, Instant)> = None;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        let Some((cpu_at_start, started)) = since else {
            since = Some((thread_cpu_time(), Instant::now()));
            return Ok(UpdateDeadline::Continue(1));
        };
        let spent = thread_cpu_time().saturating_sub(cpu_at_start);
        Ok(if spent >= budget || started.elapsed() >= ceiling {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Continue(1)
        })
    });
}

/// Limits of the runtime.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// The linear memory cap of one evaluation.
    pub memory_bytes: usize,
    /// The CPU time one evaluation may use (on the wall clock it may take 20 times this when
    /// its thread is starved).
    pub deadline: Duration,
    /// How many plugin instances may be alive at once (the pooling allocator's size).
    pub max_instances: u32,
    /// Where compiled artefacts are cached (None: nowhere).
    pub cache_dir: Option<PathBuf>,
}

impl Default for PluginSettings {
    fn default() -> Self {
        PluginSettings {
            memory_bytes: 16 << 20,
            deadline: Duration::from_millis(5),
            max_instances: 128,
            cache_dir: None,
        }
    }
}

/// Why a component was refused at upload.
#[derive(Debug, thiserror::Error)]
pub enum RefusedComponent {
    /// Not a component at all (e.g. a core module).
    #[error("{0}")]
    NotAComponent(String),
    /// It imports capabilities Warrant does not grant.
    #[error("{0}")]
    ForbiddenImports(String),
    /// It does not implement the `warrant:policy/policy-plugin` world.
    #[error("{0}")]
    WrongWorld(String),
}

/// A compiled plugin version, ready to instantiate.
pub struct CompiledPlugin {
    /// SHA-256 of the component, hex.
    pub digest: String,
    pre: PolicyPluginPre<Sandbox>,
    /// Where its `interest` export is, if it has one.
    interest: Option<InterestIndices>,
    /// Where its `reuse` export is, if it has one.
    reuse: Option<ReuseIndices>,
}

/// Per-plugin counters, for the API and `/metrics`.
#[derive(Default, Debug)]
pub struct PluginStats {
    /// Evaluations run.
    pub evaluations: AtomicU64,
    /// Deny verdicts returned by the plugin.
    pub denies: AtomicU64,
    /// Evaluations that failed (trap, deadline, memory): each one a deny.
    pub failures: AtomicU64,
    /// Time spent evaluating, in microseconds.
    pub total_us: AtomicU64,
    /// Verdicts given again instead of evaluating (see [`reuse`]); not among `evaluations`.
    pub reused: AtomicU64,
}

/// Whether a plugin's deny refuses requests.
pub use super::Mode as PluginMode;

/// A plugin attached to a workspace, as the pipeline runs it.
#[derive(Clone)]
pub struct AttachedPlugin {
    /// The plugin's id.
    pub plugin_id: Arc<str>,
    /// Its name.
    pub name: Arc<str>,
    /// The version in force.
    pub version: i64,
    /// Enforce or shadow.
    pub mode: PluginMode,
    /// The JSON configuration for this workspace.
    pub config: Arc<str>,
    /// The requests it is asked about (what its `interest` export declared for `config`).
    pub interest: PluginInterest,
    /// The compiled component.
    pub compiled: Arc<CompiledPlugin>,
    /// Its counters.
    pub stats: Arc<PluginStats>,
    /// Its kept verdicts, when it declared on what they depend
    /// ([`PluginRuntime::verdict_memo`]).
    pub memo: Option<Arc<VerdictMemo>>,
}

/// What one plugin said about one request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PluginVerdict {
    /// The plugin's id (shared with the attached plugin: a verdict is made per request).
    #[schema(value_type = String)]
    pub plugin_id: Arc<str>,
    /// Its name.
    #[schema(value_type = String)]
    pub name: Arc<str>,
    /// The version that ran.
    pub version: i64,
    /// `enforce` or `shadow`.
    pub mode: PluginMode,
    /// `allow`, `deny`, `abstain`, `skipped` (not asked: the request is outside what the
    /// plugin declared it judges), or `error` (a failure, treated as deny).
    pub verdict: &'static str,
    /// The plugin's reason for a deny, or what went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Time the evaluation took, in microseconds.
    pub elapsed_us: u64,
    /// True when the verdict was given again, without evaluating: an earlier request equal
    /// in every field the plugin declared its verdicts depend on got it from the plugin.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reused: bool,
}

impl PluginVerdict {
    fn of(
        plugin: &AttachedPlugin,
        verdict: &'static str,
        reason: Option<String>,
        elapsed_us: u64,
    ) -> Self {
        PluginVerdict {
            plugin_id: plugin.plugin_id.clone(),
            name: plugin.name.clone(),
            version: plugin.version,
            mode: plugin.mode,
            verdict,
            reason,
            elapsed_us,
            reused: false,
        }
    }

    /// True when this verdict refuses the request (a deny or failure in enforce mode).
    pub fn refuses(&self) -> bool {
        self.mode == PluginMode::Enforce && matches!(self.verdict, "deny" | "error")
    }

    /// Its fields as the decision log stores them.
    pub fn logged(&self) -> crate::store::verdicts::Verdict<'_> {
        crate::store::verdicts::Verdict {
            plugin_id: &self.plugin_id,
            name: &self.name,
            version: self.version,
            mode: self.mode.as_str(),
            verdict: self.verdict,
            reason: self.reason.as_deref(),
            elapsed_us: self.elapsed_us,
            reused: self.reused,
        }
    }
}

/// The request a plugin sees, built by the pipeline. It borrows or copies what it holds:
/// the owned strings a plugin receives are made only if some plugin is asked ([`lower`]).
pub struct PluginRequest<'a> {
    /// Principal id, kind, name, groups.
    pub principal: (&'a str, &'a str, &'a str, &'a [String]),
    /// Credential kind, id, scopes.
    pub credential: (&'a str, &'a str, super::ScopeSet),
    /// The Cedar action id.
    pub action: &'a str,
    /// The workspace id.
    pub workspace: &'a str,
    /// The path ("" for the workspace itself).
    pub path: &'a str,
    /// Declared size of a write.
    pub size: Option<u64>,
    /// Declared content type of a write.
    pub content_type: Option<&'a str>,
    /// `rest`, `mcp` or `what-if`.
    pub transport: &'a str,
    /// The caller's address.
    pub client_address: Option<std::net::IpAddr>,
    /// Request time, Unix ms.
    pub time_ms: u64,
    /// A what-if question: counters are read, never advanced.
    pub dry_run: bool,
}

/// The runtime: the engine, the compiled plugins, the counters.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<Sandbox>,
    settings: PluginSettings,
    artefacts: ArtefactCache,
    counters: Arc<Counters>,
    compiled: RwLock<HashMap<String, Arc<CompiledPlugin>>>,
    stats: RwLock<HashMap<String, Arc<PluginStats>>>,
    memo_budget: Arc<Budget>,
    clock: EpochClock,
}

impl PluginRuntime {
    /// Builds the engine (pooling allocator, epoch interruption) and starts its clock.
    pub fn new(settings: PluginSettings) -> wasmtime::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(settings.max_instances)
            .total_core_instances(settings.max_instances * 8)
            .total_memories(settings.max_instances * 2)
            .total_tables(settings.max_instances * 4)
            .max_memory_size(settings.memory_bytes)
            // Reset small memories with memset instead of madvise: far cheaper per request,
            // and it keeps fresh instantiation fast when both cores are busy.
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(64 << 10)
            // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), reset only the pages a plugin
            // touched instead of memsetting the whole resident region.
            .pagemap_scan(Enabled::Auto);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .max_wasm_stack(512 << 10)
            // Small reservations: a plugin's memory never grows past the cap anyway.
            .memory_reservation(settings.memory_bytes as u64)
            .memory_guard_size(64 << 10)
            .memory_reservation_for_growth(0);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        PolicyPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let clock = EpochClock::start(engine.clone())?;
        let artefacts = ArtefactCache::new(&engine, settings.cache_dir.clone());
        Ok(PluginRuntime {
            engine,
            linker,
            settings,
            artefacts,
            counters: Arc::new(Counters::default()),
            compiled: RwLock::new(HashMap::new()),
            stats: RwLock::new(HashMap::new()),
            memo_budget: Budget::new(reuse::MAX_KEPT_VERDICTS),
            clock,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &PluginSettings {
        &self.settings
    }

    /// The compiled plugin with `digest`, if this process holds it.
    pub fn cached(&self, digest: &str) -> Option<Arc<CompiledPlugin>> {
        self.compiled.read().ok()?.get(digest).cloned()
    }

    /// Checks and compiles a component (blocking: call it off the async runtime). Refuses
    /// what is not a component of the `policy-plugin` world or imports what is not granted.
    pub fn compile(
        &self,
        digest: &str,
        bytes: &[u8],
    ) -> Result<Arc<CompiledPlugin>, RefusedComponent> {
        if let Some(c) = self.cached(digest) {
            return Ok(c);
        }
        if bytes.get(..8) != Some(&COMPONENT_HEADER[..]) {
            let why = if bytes.get(..8)
                == Some(&[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00][..])
            {
                "this is a core WebAssembly module, not a component: build the plugin for wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
            } else {
                "this is not a WebAssembly component (bad header)"
            };
            return Err(RefusedComponent::NotAComponent(why.into()));
        }
        let component = self
            .artefacts
            .load(&self.engine, digest, bytes)
            .map_err(|e| {
                RefusedComponent::NotAComponent(format!(
                    "the component does not compile: {}",
                    root_cause(&e)
                ))
            })?;
        let forbidden: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .filter(|name| !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)))
            .collect();
        if !forbidden.is_empty() {
            return Err(RefusedComponent::ForbiddenImports(format!(
                "the component imports capabilities Warrant never grants to plugins: {}",
                forbidden.join(", ")
            )));
        }
        let wrong_world = |e: wasmtime::Error| {
            RefusedComponent::WrongWorld(format!(
                "the component does not implement the warrant:policy/policy-plugin world: {}",
                root_cause(&e)
            ))
        };
        let pre = self.instance_pre(&component).map_err(wrong_world)?;
        let interest = match component.get_export_index(None, INTEREST_EXPORT) {
            None => None,
            Some(_) => Some(InterestIndices::new(pre.instance_pre()).map_err(wrong_world)?),
        };
        let reuse = match component.get_export_index(None, REUSE_EXPORT) {
            None => None,
            Some(_) => Some(ReuseIndices::new(pre.instance_pre()).map_err(wrong_world)?),
        };
        let compiled = Arc::new(CompiledPlugin {
            digest: digest.to_string(),
            pre,
            interest,
            reuse,
        });
        if let Ok(mut map) = self.compiled.write() {
            map.insert(digest.to_string(), compiled.clone());
        }
        Ok(compiled)
    }

    fn instance_pre(&self, component: &Component) -> wasmtime::Result<PolicyPluginPre<Sandbox>> {
        let mut linker = self.linker.clone();
        // What is left unresolved is one of the allowed WASI interfaces: calling it traps.
        linker.define_unknown_imports_as_traps(component)?;
        PolicyPluginPre::new(linker.instantiate_pre(component)?)
    }

    /// An empty memo for the verdicts of an attachment with `interest`, if it declared on what
    /// they depend; each loaded attachment gets its own.
    pub fn verdict_memo(&self, interest: &PluginInterest) -> Option<Arc<VerdictMemo>> {
        let fields = interest.decided_by?;
        Some(Arc::new(VerdictMemo::new(fields, self.memo_budget.clone())))
    }

    /// The counters of a plugin (created on first use).
    pub fn stats_of(&self, plugin_id: &str) -> Arc<PluginStats> {
        if let Some(s) = self
            .stats
            .read()
            .ok()
            .and_then(|m| m.get(plugin_id).cloned())
        {
            return s;
        }
        match self.stats.write() {
            Ok(mut m) => m.entry(plugin_id.to_string()).or_default().clone(),
            Err(_) => Arc::new(PluginStats::default()),
        }
    }

    fn store(&self, plugin_id: &Arc<str>, name: &Arc<str>) -> Store<Sandbox> {
        let sandbox = Sandbox::new(
            self.settings.memory_bytes,
            plugin_id.clone(),
            name.clone(),
            self.counters.clone(),
            self.clock.running(),
        );
        let mut store = Store::new(&self.engine, sandbox);
        store.limiter(|s| &mut s.limits);
        arm_deadline(&mut store, self.settings.deadline);
        store
    }

    /// Runs a plugin's `configure` on `config`, then asks the same instance which requests it
    /// judges with it and on what its verdicts depend (blocking: call it off the async
    /// runtime). Err is the plugin's refusal of the config, or what went wrong.
    pub fn configure(
        &self,
        plugin_id: &Arc<str>,
        name: &Arc<str>,
        compiled: &CompiledPlugin,
        config: &str,
    ) -> Result<PluginInterest, String> {
        let mut store = self.store(plugin_id, name);
        let failed = |doing: &str, e: &wasmtime::Error| {
            format!("the plugin failed while {doing}: {}", self.failure(e))
        };
        let instance = compiled
            .pre
            .instance_pre()
            .instantiate(&mut store)
            .map_err(|e| failed("checking its configuration", &e))?;
        let outcome = PolicyPlugin::new(&mut store, &instance)
            .and_then(|p| p.call_configure(&mut store, config));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Err(cut(&why, MAX_REASON_BYTES)),
            Err(e) => return Err(failed("checking its configuration", &e)),
        }
        let mut interest = match &compiled.interest {
            None => PluginInterest::everything(),
            Some(indices) => indices
                .load(&mut store, &instance)
                .and_then(|i| i.call_declare_interest(&mut store, config))
                .map_err(|e| failed("declaring which requests it judges", &e))
                .and_then(PluginInterest::checked)?,
        };
        if let Some(indices) = &compiled.reuse {
            let declared = indices
                .load(&mut store, &instance)
                .and_then(|r| r.call_declare_reuse(&mut store, config))
                .map_err(|e| failed("declaring on what its verdicts depend", &e))?;
            interest.decided_by = declared.as_deref().map(RequestFields::declared);
        }
        Ok(interest)
    }

    /// Evaluates one attached plugin on `request`, the plugin's view of `req`; true with it
    /// when the plugin asked the host for the time or a counter (its verdict then depends on
    /// more than the request).
    fn evaluate(
        &self,
        plugin: &AttachedPlugin,
        request: &types::Request,
        req: &PluginRequest<'_>,
    ) -> (PluginVerdict, bool) {
        let started = Instant::now();
        let mut store = self.store(&plugin.plugin_id, &plugin.name);
        {
            let data = store.data_mut();
            data.workspace = request.resource.workspace.clone();
            // The real time: the request's field is 0 for a plugin not shown it.
            data.now_ms = req.time_ms;
            data.dry_run = req.dry_run;
        }
        let outcome = plugin
            .compiled
            .pre
            .instantiate(&mut store)
            .and_then(|p| p.call_evaluate(&mut store, request));
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let consulted_host = store.data().consulted_host;
        let (verdict, reason) = match outcome {
            Ok(types::Verdict::Allow) => ("allow", None),
            Ok(types::Verdict::Abstain) => ("abstain", None),
            Ok(types::Verdict::Deny(why)) => {
                plugin.stats.denies.fetch_add(1, Ordering::Relaxed);
                let why = if why.trim().is_empty() {
                    "(no reason given)".to_string()
                } else {
                    cut(&why, MAX_REASON_BYTES)
                };
                ("deny", Some(why))
            }
            Err(e) => {
                plugin.stats.failures.fetch_add(1, Ordering::Relaxed);
                let why = self.failure(&e);
                tracing::warn!(plugin = %plugin.name, workspace = %request.resource.workspace, reason = %why, "plugin failed; the request is refused");
                (
                    "error",
                    Some(format!(
                        "the plugin failed, so the request is refused: {why}"
                    )),
                )
            }
        };
        plugin.stats.evaluations.fetch_add(1, Ordering::Relaxed);
        plugin
            .stats
            .total_us
            .fetch_add(elapsed_us, Ordering::Relaxed);
        (
            PluginVerdict::of(plugin, verdict, reason, elapsed_us),
            consulted_host,
        )
    }

    /// Gives the verdict kept for a request equal in the fields the plugin declared, or
    /// evaluates it (shown only those fields) and keeps what it says unless it failed or
    /// asked the host for the time or a counter.
    fn evaluate_reusing(
        &self,
        plugin: &AttachedPlugin,
        memo: &VerdictMemo,
        req: &PluginRequest<'_>,
    ) -> PluginVerdict {
        let key = memo.key(req);
        if let Some(kept) = key.as_deref().and_then(|k| memo.get(k)) {
            plugin.stats.reused.fetch_add(1, Ordering::Relaxed);
            let mut v = PluginVerdict::of(plugin, kept.verdict, kept.reason, 0);
            v.reused = true;
            return v;
        }
        let request = view_of(plugin, req, Some(memo.fields()));
        let (v, consulted_host) = self.evaluate(plugin, &request, req);
        if let Some(key) = key
            && !consulted_host
            && v.verdict != "error"
        {
            let kept = Kept {
                verdict: v.verdict,
                reason: v.reason.clone(),
            };
            memo.keep(key, kept);
        }
        v
    }

    /// A short explanation of a failed call.
    fn failure(&self, e: &wasmtime::Error) -> String {
        if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
            return match trap {
                wasmtime::Trap::Interrupt => format!(
                    "it ran past its deadline of {} ms of CPU time",
                    self.settings.deadline.as_millis()
                ),
                wasmtime::Trap::StackOverflow => {
                    "it overflowed its stack (runaway recursion?)".into()
                }
                wasmtime::Trap::UnreachableCodeReached => {
                    "it trapped (a panic or `unreachable`)".into()
                }
                other => format!("it trapped: {other}"),
            };
        }
        let text = format!("{e:#}");
        if let Some(rest) = text.split("unknown import: `").nth(1) {
            let import = rest.split('`').next().unwrap_or("?");
            return format!(
                "it trapped calling `{import}`, a WASI function plugins do not get (a Rust panic does this)"
            );
        }
        if text.contains("forcing trap when growing memory") {
            return format!(
                "it tried to use more than its memory cap of {} MiB",
                self.settings.memory_bytes >> 20
            );
        }
        if text.contains("instance count too high") || text.contains("maximum concurrent") {
            return "too many plugin instances are running at once".into();
        }
        cut(&root_cause(e), MAX_REASON_BYTES)
    }

    /// Runs every plugin attached to a workspace, in order, until an enforced one refuses;
    /// a plugin that declared it does not judge the request is skipped, not started.
    pub fn run_all(
        &self,
        plugins: &[AttachedPlugin],
        req: &PluginRequest<'_>,
    ) -> Vec<PluginVerdict> {
        let mut lowered = None;
        let mut verdicts = Vec::with_capacity(plugins.len());
        for plugin in plugins {
            if !plugin.interest.covers(req.action, req.principal.1) {
                verdicts.push(PluginVerdict::of(plugin, "skipped", None, 0));
                continue;
            }
            let v = match &plugin.memo {
                Some(memo) => self.evaluate_reusing(plugin, memo, req),
                None => {
                    let request = lowered.get_or_insert_with(|| lower(req, None));
                    request.config.clear();
                    request.config.push_str(&plugin.config);
                    self.evaluate(plugin, request, req).0
                }
            };
            let refuses = v.refuses();
            verdicts.push(v);
            if refuses {
                break;
            }
        }
        verdicts
    }

    /// Instantiates a plugin once and keeps it, to measure the floor of a bare call (shown what
    /// the pipeline shows it: only what it declared, if it did). The
    /// pipeline never does this: a kept instance would carry state from one request to the
    /// next.
    pub fn live_instance(
        &self,
        plugin: &AttachedPlugin,
        req: &PluginRequest<'_>,
    ) -> wasmtime::Result<LiveInstance> {
        let mut store = self.store(&plugin.plugin_id, &plugin.name);
        let instance = plugin.compiled.pre.instantiate(&mut store)?;
        let request = view_of(plugin, req, plugin.interest.decided_by);
        Ok(LiveInstance {
            store,
            instance,
            request,
            budget: self.settings.deadline,
        })
    }
}

/// A kept plugin instance (benchmarks only; see [`PluginRuntime::live_instance`]).
pub struct LiveInstance {
    store: Store<Sandbox>,
    instance: PolicyPlugin,
    request: types::Request,
    budget: Duration,
}

impl LiveInstance {
    /// Calls `evaluate` again on the same instance; true when it did not deny.
    pub fn call(&mut self) -> wasmtime::Result<bool> {
        arm_deadline(&mut self.store, self.budget);
        let v = self
            .instance
            .call_evaluate(&mut self.store, &self.request)?;
        Ok(!matches!(v, types::Verdict::Deny(_)))
    }
}

/// What `plugin` is shown of `req`: the fields it `declared` (all when None), and its config.
fn view_of(
    plugin: &AttachedPlugin,
    req: &PluginRequest<'_>,
    declared: Option<RequestFields>,
) -> types::Request {
    let mut request = lower(req, declared);
    request.config = plugin.config.to_string();
    request
}

/// The WIT request of a pipeline request (the config is filled in per plugin). A plugin that
/// declared the fields its verdicts depend on is shown only `Some(those)`: every other field
/// is empty and the time is 0.
fn lower(req: &PluginRequest<'_>, declared: Option<RequestFields>) -> types::Request {
    let shown = declared.unwrap_or(RequestFields::ALL);
    let shows = |field: RequestField| shown.shows(field);
    let text = |field: RequestField, value: &str| {
        if shows(field) {
            value.to_string()
        } else {
            String::new()
        }
    };
    types::Request {
        principal: types::Principal {
            id: text(RequestField::PrincipalId, req.principal.0),
            kind: text(RequestField::PrincipalKind, req.principal.1),
            name: text(RequestField::PrincipalName, req.principal.2),
            groups: if shows(RequestField::PrincipalGroups) {
                req.principal.3.to_vec()
            } else {
                Vec::new()
            },
        },
        credential: types::Credential {
            kind: text(RequestField::CredentialKind, req.credential.0),
            id: text(RequestField::CredentialId, req.credential.1),
            scopes: if shows(RequestField::CredentialScopes) {
                req.credential
                    .2
                    .names()
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            } else {
                Vec::new()
            },
        },
        action: text(RequestField::Action, req.action),
        resource: types::Resource {
            workspace: req.workspace.to_string(),
            path: text(RequestField::Path, req.path),
            size: req.size.filter(|_| shows(RequestField::Size)),
            content_type: req
                .content_type
                .filter(|_| shows(RequestField::ContentType))
                .map(str::to_string),
        },
        transport: text(RequestField::Transport, req.transport),
        client_address: req
            .client_address
            .filter(|_| shows(RequestField::ClientAddress))
            .map(|a| a.to_string()),
        time_ms: if declared.is_none() { req.time_ms } else { 0 },
        config: String::new(),
    }
}

/// The innermost cause, without wasm backtraces.
fn root_cause(e: &wasmtime::Error) -> String {
    e.root_cause().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verdict read back from the decision log is the verdict the API gave when it was
    /// made, field for field.
    #[test]
    fn a_logged_verdict_reads_back_as_the_verdict() {
        let verdicts = [
            PluginVerdict {
                plugin_id: "plg_1".into(),
                name: "path-guard".into(),
                version: 2,
                mode: PluginMode::Shadow,
                verdict: "deny",
                reason: Some("\"secrets/\" is off limits".into()),
                elapsed_us: 31,
                reused: false,
            },
            PluginVerdict {
                plugin_id: "plg_2".into(),
                name: "content-rules".into(),
                version: 1,
                mode: PluginMode::Enforce,
                verdict: "allow",
                reason: None,
                elapsed_us: 0,
                reused: true,
            },
        ];
        #[derive(Serialize)]
        struct Row(
            #[serde(serialize_with = "crate::store::verdicts::serialize_stored")] Option<String>,
        );
        let text = crate::store::verdicts::stored(verdicts.iter().map(PluginVerdict::logged));
        assert_eq!(
            serde_json::to_value(Row(text)).unwrap(),
            serde_json::to_value(&verdicts).unwrap()
        );
    }

    /// The deadline's clock: waiting (preempted, or blocked) costs a plugin nothing, working
    /// does.
    #[test]
    fn the_deadline_clock_counts_work_not_waiting() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(30));
        let waited = thread_cpu_time().saturating_sub(before);
        assert!(waited < Duration::from_millis(5), "{waited:?}");

        let before = thread_cpu_time();
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let worked = thread_cpu_time().saturating_sub(before);
        assert!(worked >= Duration::from_millis(10), "{worked:?}");
    }
}
