//! `path-guard`: confines chosen principals to path globs, read-only or read-write.
//!
//! ```json
//! {"rules": [
//!   {"kinds": ["agent"], "paths": ["drafts/**", "shared/*.md"], "access": "read-write"},
//!   {"ids": ["agt_42"], "paths": ["reports/**"], "access": "read-only"}
//! ]}
//! ```
//! A principal named by no rule is not this plugin's business (abstain). A confined
//! principal may act only on paths its rules cover: reads where any covering rule allows
//! reading, writes, moves and deletes only where a covering rule is `read-write`.

#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

support::fresh_instance_runtime!();

wit_bindgen::generate!({ world: "reusable-policy-plugin", path: "../../wit" });

use exports::warrant::policy::interest::{self, Interest};
use exports::warrant::policy::reuse::{self, RequestField};

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    ids: Vec<String>,
    paths: Vec<String>,
    access: Access,
}

#[derive(Deserialize, PartialEq, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Access {
    ReadOnly,
    ReadWrite,
}

impl Rule {
    fn names(&self, r: &Request) -> bool {
        self.kinds.contains(&r.principal.kind) || self.ids.contains(&r.principal.id)
    }
}

fn validate(config: &Config) -> Result<(), String> {
    if config.rules.is_empty() {
        return Err("`rules` must name at least one rule".into());
    }
    for rule in &config.rules {
        if rule.kinds.is_empty() && rule.ids.is_empty() {
            return Err("each rule must name principal `kinds` or `ids`".into());
        }
        if let Some(k) = rule.kinds.iter().find(|k| !["user", "agent", "client"].contains(&k.as_str())) {
            return Err(format!("unknown principal kind `{k}` (user, agent or client)"));
        }
        if rule.paths.is_empty() {
            return Err("each rule must list at least one path glob".into());
        }
        for p in &rule.paths {
            support::check_glob(p)?;
        }
    }
    Ok(())
}

struct PathGuard;

impl interest::Guest for PathGuard {
    /// Every action, but only the kinds its rules confine, unless a rule names principals by
    /// id (those may be of any kind).
    fn declare_interest(config: String) -> Interest {
        let rules = support::parse_config::<Config>(&config).map(|c| c.rules).unwrap_or_default();
        let mut kinds: Vec<String> = if rules.is_empty() || rules.iter().any(|r| !r.ids.is_empty()) {
            Vec::new()
        } else {
            rules.into_iter().flat_map(|r| r.kinds).collect()
        };
        kinds.sort();
        kinds.dedup();
        Interest { actions: Vec::new(), principal_kinds: kinds }
    }
}

impl reuse::Guest for PathGuard {
    /// Who (the id only when a rule names ids), what and where; the name is in deny reasons.
    fn declare_reuse(config: String) -> Option<Vec<RequestField>> {
        let rules = support::parse_config::<Config>(&config).ok()?.rules;
        let mut fields = Vec::from([
            RequestField::PrincipalKind,
            RequestField::PrincipalName,
            RequestField::Action,
            RequestField::Path,
        ]);
        if rules.iter().any(|r| !r.ids.is_empty()) {
            fields.push(RequestField::PrincipalId);
        }
        Some(fields)
    }
}

impl Guest for PathGuard {
    fn configure(config: String) -> Result<(), String> {
        validate(&support::parse_config(&config)?)
    }

    fn evaluate(r: Request) -> Verdict {
        let config: Config = match support::parse_config(&r.config) {
            Ok(c) => c,
            Err(e) => return Verdict::Deny(e),
        };
        let rules: Vec<&Rule> = config.rules.iter().filter(|rule| rule.names(&r)).collect();
        if rules.is_empty() {
            return Verdict::Abstain;
        }
        let path = r.resource.path.as_str();
        if path.is_empty() {
            // Actions on the workspace itself: confined principals may only look.
            return if support::is_read(&r.action) {
                Verdict::Allow
            } else {
                Verdict::Deny(format!(
                    "path-guard confines {} to certain paths; `{}` on the whole workspace is outside them",
                    r.principal.name, r.action
                ))
            };
        }
        let listing = r.action == "files:list";
        let read = support::is_read(&r.action);
        let covering = rules.iter().filter(|rule| {
            rule.paths.iter().any(|g| {
                if listing {
                    support::could_contain(path, g)
                } else {
                    support::glob_match(g, path)
                }
            })
        });
        let mut best: Option<Access> = None;
        for rule in covering {
            if best != Some(Access::ReadWrite) {
                best = Some(rule.access);
            }
        }
        match best {
            Some(Access::ReadWrite) => Verdict::Allow,
            Some(Access::ReadOnly) if read => Verdict::Allow,
            Some(Access::ReadOnly) => Verdict::Deny(format!(
                "path-guard: {} has read-only access to `{path}`",
                r.principal.name
            )),
            None => Verdict::Deny(format!(
                "path-guard: {} may not touch `{path}` (outside its allowed paths)",
                r.principal.name
            )),
        }
    }
}

export!(PathGuard);
