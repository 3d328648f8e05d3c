//! `delete-budget`: at most `max` deletes (or other chosen actions) per principal per window,
//! counted by the host's sliding-window counter, so a runaway agent cannot empty a workspace.
//!
//! ```json
//! {"max": 10, "window_seconds": 3600, "actions": ["files:delete"], "kinds": ["agent"]}
//! ```
//! `actions` defaults to `["files:delete"]`; `kinds` (principal kinds the budget applies to)
//! defaults to every kind.

#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

support::fresh_instance_runtime!();

wit_bindgen::generate!({ world: "selective-policy-plugin", path: "../../wit" });

use exports::warrant::policy::interest::{self, Interest};

use serde::Deserialize;
use warrant::policy::host::count;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    max: u64,
    window_seconds: u32,
    #[serde(default = "default_actions")]
    actions: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
}

fn default_actions() -> Vec<String> {
    vec!["files:delete".into()]
}

fn validate(c: &Config) -> Result<(), String> {
    if c.window_seconds == 0 || c.window_seconds > 86_400 {
        return Err("`window_seconds` must be between 1 and 86400".into());
    }
    if c.actions.is_empty() {
        return Err("`actions` must name at least one action".into());
    }
    if let Some(a) = c.actions.iter().find(|a| !a.contains(':')) {
        return Err(format!("`{a}` is not an action id like `files:delete`"));
    }
    Ok(())
}

struct DeleteBudget;

impl interest::Guest for DeleteBudget {
    fn declare_interest(config: String) -> Interest {
        match support::parse_config::<Config>(&config) {
            Ok(c) => Interest { actions: c.actions, principal_kinds: c.kinds },
            // Not reached (`configure` accepted the config); judging everything is the safe answer.
            Err(_) => Interest { actions: Vec::new(), principal_kinds: Vec::new() },
        }
    }
}

impl Guest for DeleteBudget {
    fn configure(config: String) -> Result<(), String> {
        validate(&support::parse_config(&config)?)
    }

    fn evaluate(r: Request) -> Verdict {
        let c: Config = match support::parse_config(&r.config) {
            Ok(c) => c,
            Err(e) => return Verdict::Deny(e),
        };
        if !c.actions.contains(&r.action)
            || !c.kinds.is_empty() && !c.kinds.contains(&r.principal.kind)
        {
            return Verdict::Abstain;
        }
        let used = count(&format!("{}:{}", r.principal.id, r.action), c.window_seconds);
        if used > c.max {
            Verdict::Deny(format!(
                "delete-budget: {} has used its budget of {} `{}` per {} s; try again later",
                r.principal.name, c.max, r.action, c.window_seconds
            ))
        } else {
            Verdict::Allow
        }
    }
}

export!(DeleteBudget);
