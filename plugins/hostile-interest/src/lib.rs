//! Test fixture: a plugin whose `declare-interest` misbehaves or narrows as its config says,
//! and which denies every request it is asked about, so tests can see exactly which requests
//! the host asked it about. `{"declare": "trap"}` panics in `declare-interest`, `"loop"`
//! never returns from it, and an action id (e.g. `"files:write"`) declares that one action.

wit_bindgen::generate!({ world: "selective-policy-plugin", path: "../../wit" });

use exports::warrant::policy::interest::{self, Interest};

fn declared(config: &str) -> Result<String, String> {
    let v: serde_json::Value = support::parse_config(config)?;
    match v.get("declare").and_then(|d| d.as_str()) {
        Some(d) if !d.is_empty() => Ok(d.to_string()),
        _ => Err("`declare` must be `trap`, `loop` or an action id".into()),
    }
}

struct HostileInterest;

impl Guest for HostileInterest {
    fn configure(config: String) -> Result<(), String> {
        declared(&config).map(|_| ())
    }

    fn evaluate(r: Request) -> Verdict {
        Verdict::Deny(format!("hostile-interest was asked about `{}`", r.action))
    }
}

impl interest::Guest for HostileInterest {
    fn declare_interest(config: String) -> Interest {
        match declared(&config).as_deref() {
            Ok("trap") => panic!("declare-interest traps, as configured"),
            Ok("loop") => {
                #[allow(clippy::empty_loop)]
                loop {
                    std::hint::black_box(());
                }
            }
            Ok(action) => Interest { actions: vec![action.to_string()], principal_kinds: Vec::new() },
            Err(_) => Interest { actions: Vec::new(), principal_kinds: Vec::new() },
        }
    }
}

export!(HostileInterest);
