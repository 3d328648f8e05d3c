//! Test fixture: a plugin whose declarations misbehave or narrow as its config says, and which
//! denies every request it is asked about with a reason that shows what it was shown, so tests
//! can see exactly which requests the host asked it about, and with which fields.
//!
//! `{"declare": "trap"}` panics in `declare-interest`, `"loop"` never returns from it, and an
//! action id (e.g. `"files:write"`) declares that one action. `"reuse": ["path", …]` declares
//! the request fields its verdicts depend on (`"trap"` panics instead); `"clock": true` makes
//! every evaluation ask the host for the time.

wit_bindgen::generate!({ world: "reusable-policy-plugin", path: "../../wit" });

use exports::warrant::policy::interest::{self, Interest};
use exports::warrant::policy::reuse::{self, RequestField};

fn declared(config: &str) -> Result<String, String> {
    let v: serde_json::Value = support::parse_config(config)?;
    match v.get("declare").and_then(|d| d.as_str()) {
        Some(d) if !d.is_empty() => Ok(d.to_string()),
        _ => Err("`declare` must be `trap`, `loop` or an action id".into()),
    }
}

fn field(name: &str) -> Option<RequestField> {
    Some(match name {
        "principal-id" => RequestField::PrincipalId,
        "principal-kind" => RequestField::PrincipalKind,
        "principal-name" => RequestField::PrincipalName,
        "principal-groups" => RequestField::PrincipalGroups,
        "credential-kind" => RequestField::CredentialKind,
        "credential-id" => RequestField::CredentialId,
        "credential-scopes" => RequestField::CredentialScopes,
        "action" => RequestField::Action,
        "path" => RequestField::Path,
        "size" => RequestField::Size,
        "content-type" => RequestField::ContentType,
        "transport" => RequestField::Transport,
        "client-address" => RequestField::ClientAddress,
        _ => return None,
    })
}

struct HostileInterest;

impl Guest for HostileInterest {
    fn configure(config: String) -> Result<(), String> {
        declared(&config).map(|_| ())
    }

    fn evaluate(r: Request) -> Verdict {
        let clock = serde_json::from_str::<serde_json::Value>(&r.config)
            .is_ok_and(|c| c["clock"] == true);
        let time = if clock { warrant::policy::host::now() } else { r.time_ms };
        Verdict::Deny(format!(
            "hostile-interest was asked about `{}` (path `{}`, kind `{}`, credential `{}`, time {})",
            r.action, r.resource.path, r.principal.kind, r.credential.id, time
        ))
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

impl reuse::Guest for HostileInterest {
    fn declare_reuse(config: String) -> Option<Vec<RequestField>> {
        let v: serde_json::Value = serde_json::from_str(&config).ok()?;
        let names = v.get("reuse")?;
        if names == "trap" {
            panic!("declare-reuse traps, as configured");
        }
        Some(names.as_array()?.iter().filter_map(|n| field(n.as_str()?)).collect())
    }
}

export!(HostileInterest);
