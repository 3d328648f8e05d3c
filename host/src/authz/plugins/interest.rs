//! Which requests a plugin judges: the optional `interest` export of `wit/policy.wit`. A fresh
//! instance costs microseconds on every request it is started for; a plugin that declares
//! it judges only writes, or only agents, is not started for the workspace's other requests.

use serde::Serialize;

use super::bindings::selective::exports::warrant::policy::interest::Interest;
use super::reuse::RequestFields;

/// The most entries a plugin may declare in one list; a longer one refuses the attachment.
const MAX_ENTRIES: usize = 256;

/// The requests a plugin, with one configuration, is asked about. Empty lists admit all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PluginInterest {
    /// The actions it judges; empty: every action.
    pub actions: Vec<String>,
    /// The principal kinds it judges; empty: every kind.
    pub principal_kinds: Vec<String>,
    /// The request fields its verdicts depend on, if it declared them (its `reuse` export):
    /// it is shown only these, and a verdict is given again to a request equal in them.
    /// None: every verdict comes from an evaluation of its own.
    #[schema(value_type = Option<Vec<String>>, example = json!(["principal-kind", "action", "path"]))]
    pub decided_by: Option<RequestFields>,
}

impl PluginInterest {
    /// Every request: for plugins that do not export `interest`, and the safe answer whenever
    /// asking a plugin failed.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Whether a request for `action` by a principal of `principal_kind` is to be judged.
    pub fn covers(&self, action: &str, principal_kind: &str) -> bool {
        admits(&self.actions, action) && admits(&self.principal_kinds, principal_kind)
    }

    /// A plugin's declaration, refused when a list is absurdly long or holds an empty entry
    /// (which could only be a mistake: it matches nothing).
    pub(super) fn checked(declared: Interest) -> Result<Self, String> {
        for (what, list) in [
            ("actions", &declared.actions),
            ("principal kinds", &declared.principal_kinds),
        ] {
            if list.len() > MAX_ENTRIES {
                return Err(format!(
                    "the plugin declared {} {what}; at most {MAX_ENTRIES} are accepted",
                    list.len()
                ));
            }
            if list.iter().any(|e| e.trim().is_empty()) {
                return Err(format!(
                    "the plugin declared an empty entry among its {what}"
                ));
            }
        }
        Ok(PluginInterest {
            actions: declared.actions,
            principal_kinds: declared.principal_kinds,
            decided_by: None,
        })
    }
}

fn admits(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|e| e == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interest(actions: &[&str], kinds: &[&str]) -> Interest {
        Interest {
            actions: actions.iter().map(|s| s.to_string()).collect(),
            principal_kinds: kinds.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn empty_lists_admit_every_request() {
        let all = PluginInterest::everything();
        assert!(all.covers("files:read", "user"));
        assert!(all.covers("anything:else", "agent"));
    }

    #[test]
    fn a_request_is_judged_only_when_both_lists_admit_it() {
        let writes_by_agents =
            PluginInterest::checked(interest(&["files:write", "files:move"], &["agent"])).unwrap();
        assert!(writes_by_agents.covers("files:write", "agent"));
        assert!(writes_by_agents.covers("files:move", "agent"));
        assert!(!writes_by_agents.covers("files:read", "agent"));
        assert!(!writes_by_agents.covers("files:write", "user"));
        let agents = PluginInterest::checked(interest(&[], &["agent"])).unwrap();
        assert!(agents.covers("files:read", "agent"));
        assert!(!agents.covers("files:read", "client"));
    }

    #[test]
    fn absurd_declarations_are_refused() {
        let long: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("a:{i}")).collect();
        let too_long = Interest {
            actions: long,
            principal_kinds: Vec::new(),
        };
        assert!(
            PluginInterest::checked(too_long)
                .unwrap_err()
                .contains("at most 256")
        );
        let blank = interest(&["files:read"], &[" "]);
        assert!(
            PluginInterest::checked(blank)
                .unwrap_err()
                .contains("empty entry")
        );
    }
}
