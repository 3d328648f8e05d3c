//! What one evaluation's store holds, and the host functions a plugin may call. A fresh
//! sandbox is made for every evaluation, so nothing a plugin does survives the request
//! except what it counts through `count`.

use std::sync::Arc;

use wasmtime::StoreLimits;

use super::bindings::warrant::policy::{host, types};
use super::clock::Running;
use super::counters::{CounterKey, Counters};

/// Messages longer than this are cut.
const MAX_LOG_BYTES: usize = 1024;
/// Log lines kept per evaluation.
const MAX_LOG_LINES: u8 = 16;
/// Keys longer than this trap.
const MAX_KEY_BYTES: usize = 256;

/// The data of one evaluation's store.
pub struct Sandbox {
    /// Memory, table and instance caps.
    pub limits: StoreLimits,
    /// The plugin being run (its id scopes the counters).
    pub plugin_id: Arc<str>,
    /// The plugin's name, for log lines.
    pub plugin_name: Arc<str>,
    /// The workspace the request is in ("" while configuring).
    pub workspace: String,
    /// The request's time, in Unix milliseconds.
    pub now_ms: u64,
    /// True for what-if evaluations: counters are read, never advanced.
    pub dry_run: bool,
    /// The process's counters.
    pub counters: Arc<Counters>,
    /// Log lines still allowed in this evaluation.
    pub logs_left: u8,
    /// Whether the plugin asked for the time or a counter: its verdict then depends on more
    /// than the request, and is not reused.
    pub consulted_host: bool,
    /// Keeps the deadline clock ticking while this store exists.
    _running: Running,
}

impl Sandbox {
    /// A sandbox with the given memory cap.
    pub fn new(
        memory_bytes: usize,
        plugin_id: Arc<str>,
        plugin_name: Arc<str>,
        counters: Arc<Counters>,
        running: Running,
    ) -> Self {
        Sandbox {
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .trap_on_grow_failure(true)
                .instances(64)
                .memories(8)
                .tables(16)
                .build(),
            plugin_id,
            plugin_name,
            workspace: String::new(),
            now_ms: 0,
            dry_run: false,
            counters,
            logs_left: MAX_LOG_LINES,
            consulted_host: false,
            _running: running,
        }
    }
}

impl types::Host for Sandbox {}

impl host::Host for Sandbox {
    fn log(&mut self, level: host::Level, message: String) {
        if self.logs_left == 0 {
            return;
        }
        self.logs_left -= 1;
        let message = cut(&message, MAX_LOG_BYTES);
        let (plugin, workspace) = (&*self.plugin_name, self.workspace.as_str());
        match level {
            host::Level::Debug => tracing::debug!(plugin, workspace, "{message}"),
            host::Level::Info => tracing::info!(plugin, workspace, "{message}"),
            host::Level::Warn => tracing::warn!(plugin, workspace, "{message}"),
            host::Level::Error => tracing::error!(plugin, workspace, "{message}"),
        }
    }

    fn now(&mut self) -> u64 {
        self.consulted_host = true;
        self.now_ms
    }

    fn count(&mut self, key: String, window_seconds: u32) -> wasmtime::Result<u64> {
        self.consulted_host = true;
        if key.len() > MAX_KEY_BYTES {
            wasmtime::bail!("count: key longer than {MAX_KEY_BYTES} bytes");
        }
        let key = CounterKey {
            plugin: self.plugin_id.to_string(),
            workspace: self.workspace.clone(),
            key,
        };
        Ok(self
            .counters
            .count(key, window_seconds, self.now_ms, self.dry_run))
    }
}

/// `s` cut to at most `max` bytes on a character boundary, marked when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut from {} bytes)", &s[..end], s.len())
}
