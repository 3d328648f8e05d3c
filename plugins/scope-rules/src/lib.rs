//! `scope-rules`: custom pseudo-scopes. Each rule says that some actions on some paths need,
//! on top of what Cedar allows, one of a set of real scopes or membership of a group — e.g.
//! `reports:publish` = writing under `reports/` needs `shares:write` or the `publishers` group.
//!
//! ```json
//! {"rules": [{"name": "reports:publish", "paths": ["reports/**"],
//!             "actions": ["files:write", "files:delete", "files:move"],
//!             "any_scope": ["shares:write"], "any_group": ["publishers"]}]}
//! ```

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
    name: String,
    paths: Vec<String>,
    actions: Vec<String>,
    #[serde(default)]
    any_scope: Vec<String>,
    #[serde(default)]
    any_group: Vec<String>,
}

fn validate(c: &Config) -> Result<(), String> {
    if c.rules.is_empty() {
        return Err("`rules` must name at least one rule".into());
    }
    for rule in &c.rules {
        if rule.name.trim().is_empty() {
            return Err("each rule needs a `name` (the pseudo-scope it stands for)".into());
        }
        if rule.any_scope.is_empty() && rule.any_group.is_empty() {
            return Err(format!("rule `{}` must list `any_scope` or `any_group`", rule.name));
        }
        if rule.actions.is_empty() || rule.paths.is_empty() {
            return Err(format!("rule `{}` must list `actions` and `paths`", rule.name));
        }
        for p in &rule.paths {
            support::check_glob(p)?;
        }
    }
    Ok(())
}

struct ScopeRules;

impl interest::Guest for ScopeRules {
    fn declare_interest(config: String) -> Interest {
        let mut actions: Vec<String> = support::parse_config::<Config>(&config)
            .map(|c| c.rules.into_iter().flat_map(|r| r.actions).collect())
            .unwrap_or_default();
        actions.sort();
        actions.dedup();
        Interest { actions, principal_kinds: Vec::new() }
    }
}

impl reuse::Guest for ScopeRules {
    /// The action and path pick the rules; scopes and groups satisfy them.
    fn declare_reuse(_config: String) -> Option<Vec<RequestField>> {
        Some(Vec::from([
            RequestField::Action,
            RequestField::Path,
            RequestField::CredentialScopes,
            RequestField::PrincipalGroups,
        ]))
    }
}

impl Guest for ScopeRules {
    fn configure(config: String) -> Result<(), String> {
        validate(&support::parse_config(&config)?)
    }

    fn evaluate(r: Request) -> Verdict {
        let c: Config = match support::parse_config(&r.config) {
            Ok(c) => c,
            Err(e) => return Verdict::Deny(e),
        };
        let mut applied = false;
        for rule in &c.rules {
            if !rule.actions.contains(&r.action)
                || !rule.paths.iter().any(|g| support::glob_match(g, &r.resource.path))
            {
                continue;
            }
            applied = true;
            let has_scope = rule.any_scope.iter().any(|s| r.credential.scopes.contains(s));
            let in_group = rule.any_group.iter().any(|g| r.principal.groups.contains(g));
            if !has_scope && !in_group {
                return Verdict::Deny(format!(
                    "scope-rules: `{}` on `{}` needs the `{}` permission (a scope in [{}] or a group in [{}])",
                    r.action,
                    r.resource.path,
                    rule.name,
                    rule.any_scope.join(", "),
                    rule.any_group.join(", ")
                ));
            }
        }
        if applied { Verdict::Allow } else { Verdict::Abstain }
    }
}

export!(ScopeRules);
