//! `content-rules`: refuses uploads by extension, declared content type or size, e.g. no
//! executables from agents.
//!
//! ```json
//! {"kinds": ["agent"], "deny_extensions": ["exe", "dll", "sh"],
//!  "deny_content_types": ["application/x-msdownload"], "max_size": 10485760}
//! ```
//! `kinds` defaults to every principal kind. Applies to writes, imports and moves (a move
//! cannot rename `a.txt` to `a.exe`).

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
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    deny_extensions: Vec<String>,
    #[serde(default)]
    deny_content_types: Vec<String>,
    #[serde(default)]
    max_size: Option<u64>,
}

fn validate(c: &Config) -> Result<(), String> {
    if c.deny_extensions.is_empty() && c.deny_content_types.is_empty() && c.max_size.is_none() {
        return Err("name at least one of `deny_extensions`, `deny_content_types`, `max_size`".into());
    }
    if let Some(e) = c.deny_extensions.iter().find(|e| e.starts_with('.') || e.is_empty()) {
        return Err(format!("extension `{e}`: write it without the dot"));
    }
    Ok(())
}

struct ContentRules;

impl interest::Guest for ContentRules {
    fn declare_interest(config: String) -> Interest {
        let kinds = support::parse_config::<Config>(&config).map(|c| c.kinds).unwrap_or_default();
        Interest { actions: support::WRITE_ACTIONS.map(String::from).to_vec(), principal_kinds: kinds }
    }
}

impl reuse::Guest for ContentRules {
    /// A write's kind of principal, path, declared type and size: nothing else matters.
    fn declare_reuse(_config: String) -> Option<Vec<RequestField>> {
        Some(Vec::from([
            RequestField::PrincipalKind,
            RequestField::Action,
            RequestField::Path,
            RequestField::ContentType,
            RequestField::Size,
        ]))
    }
}

impl Guest for ContentRules {
    fn configure(config: String) -> Result<(), String> {
        validate(&support::parse_config(&config)?)
    }

    fn evaluate(r: Request) -> Verdict {
        let c: Config = match support::parse_config(&r.config) {
            Ok(c) => c,
            Err(e) => return Verdict::Deny(e),
        };
        if !support::is_write(&r.action)
            || !c.kinds.is_empty() && !c.kinds.contains(&r.principal.kind)
        {
            return Verdict::Abstain;
        }
        let ext = support::extension(&r.resource.path);
        if !ext.is_empty() && c.deny_extensions.iter().any(|d| d.eq_ignore_ascii_case(&ext)) {
            return Verdict::Deny(format!("content-rules: `.{ext}` files are not accepted here"));
        }
        if let Some(ct) = &r.resource.content_type {
            let essence = ct.split(';').next().unwrap_or("").trim();
            if c.deny_content_types.iter().any(|d| d.eq_ignore_ascii_case(essence)) {
                return Verdict::Deny(format!("content-rules: content type `{essence}` is not accepted here"));
            }
        }
        match (c.max_size, r.resource.size) {
            (Some(max), Some(size)) if size > max => Verdict::Deny(format!(
                "content-rules: {size} bytes is over the limit of {max} bytes"
            )),
            _ => Verdict::Allow,
        }
    }
}

export!(ContentRules);
