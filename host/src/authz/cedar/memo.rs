//! Cedar's outcomes, remembered by everything they are computed from.
//!
//! An outcome is a function of the policy set and the request: the principal (kind, id,
//! groups), the action, the resource (org, workspace, path) and the context (role, scopes,
//! credential kind, principal kind, transport, client address, the time to the second, size,
//! tags) — the entities Cedar sees are built from those alone (the entity cache's key says the
//! same). A request equal in all of them is given the same outcome again without building the
//! request or evaluating it: a client repeating a request within the same second (polling, a
//! busy agent, retries) costs a lookup. Nothing needs invalidating: a pushed or edited policy
//! set is a new set with a new [`CompiledSet`] instance number, part of the key, and the memo
//! keeps one second's outcomes (the time is part of the request), so a new second starts it
//! afresh. Decisions are still made, logged and explained as before — only Cedar's evaluation
//! is skipped. What-if requests (which show the context as evaluated) are not remembered.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::SystemTime;

use super::{CedarContext, CedarOutcome, CedarPrincipal, CedarResource, CompiledSet};
use crate::authz::Action;

/// The enforced set's outcome and, in shadow mode, the candidate's.
pub type Outcomes = (CedarOutcome, Option<CedarOutcome>);

/// The most outcomes kept for one second; past it the memo starts over.
const CAPACITY: usize = 16_384;

/// One second's outcomes by request.
#[derive(Default)]
pub struct OutcomeMemo {
    inner: RwLock<Second>,
}

#[derive(Default)]
struct Second {
    second: u64,
    outcomes: HashMap<String, Outcomes>,
}

/// The second of `at`, the time's granularity in the context.
pub fn second_of(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl OutcomeMemo {
    /// The outcomes of a request made in `second` with `key`, if one was evaluated.
    pub fn get(&self, second: u64, key: &str) -> Option<Outcomes> {
        let inner = self.inner.read().ok()?;
        if inner.second != second {
            return None;
        }
        inner.outcomes.get(key).cloned()
    }

    /// Remembers the outcomes of a request made in `second` (not of an earlier second).
    pub fn put(&self, second: u64, key: String, outcomes: Outcomes) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        if second < inner.second {
            return;
        }
        if second > inner.second || inner.outcomes.len() >= CAPACITY {
            inner.outcomes.clear();
            inner.second = second;
        }
        inner.outcomes.insert(key, outcomes);
    }

    /// How many outcomes of `second` are kept.
    #[cfg(test)]
    pub fn inner_len_for_tests(&self, second: u64) -> usize {
        self.inner.read().map_or(0, |i| {
            if i.second == second {
                i.outcomes.len()
            } else {
                0
            }
        })
    }
}

/// Everything an outcome is computed from but the second, each field written with its length
/// (or count) first, so no two different requests share a key.
pub fn key(
    enforced: &CompiledSet,
    shadow: Option<&CompiledSet>,
    principal: &CedarPrincipal<'_>,
    action: Action,
    resource: &CedarResource<'_>,
    ctx: &CedarContext<'_>,
) -> String {
    // Room for a typical request (ids, path, tags, address) without growing.
    let mut k = Key(String::with_capacity(320));
    k.num(enforced.instance, '/');
    match shadow {
        Some(s) => k.num(s.instance, '/'),
        None => k.mark("-/"),
    }
    k.field(principal.kind.as_str());
    k.field(principal.id);
    k.num(principal.groups.len(), 'g');
    for g in principal.groups {
        k.field(g);
    }
    k.field(action.cedar_id());
    match resource {
        CedarResource::Org { org } => {
            k.mark("o");
            k.field(org);
        }
        CedarResource::Workspace {
            org,
            workspace,
            path,
        } => {
            k.mark("w");
            k.field(org);
            k.field(workspace);
            match path {
                Some(p) => {
                    k.mark("p");
                    k.field(p);
                }
                None => k.mark("n"),
            }
        }
    }
    k.field(ctx.role);
    k.num(ctx.scopes.len(), 's');
    for s in &ctx.scopes {
        k.field(s);
    }
    k.field(ctx.token_kind);
    k.field(ctx.principal_kind);
    k.field(ctx.transport);
    match ctx.client_ip {
        Some(std::net::IpAddr::V4(ip)) => {
            k.mark("4");
            k.num(ip.to_bits(), '/');
        }
        Some(std::net::IpAddr::V6(ip)) => {
            k.mark("6");
            k.num(ip.to_bits(), '/');
        }
        None => k.mark("-/"),
    }
    match ctx.size {
        Some(size) => {
            k.mark("z");
            k.num(size, '/');
        }
        None => k.mark("-/"),
    }
    k.num(ctx.tags.len(), 't');
    for t in ctx.tags {
        k.field(t);
    }
    k.0
}

/// A key being built. Numbers go through `itoa`: with `write!` the formatting machinery was
/// most of the key's cost, which every request pays.
struct Key(String);

impl Key {
    /// A marker: which of the alternatives follows, or that a value is absent.
    fn mark(&mut self, m: &str) {
        self.0.push_str(m);
    }

    /// A number and the character that ends it.
    fn num(&mut self, n: impl itoa::Integer, end: char) {
        self.0.push_str(itoa::Buffer::new().format(n));
        self.0.push(end);
    }

    /// A string, prefixed with its length so no string can stand for the fields after it.
    fn field(&mut self, s: &str) {
        self.num(s.len(), ':');
        self.0.push_str(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PrincipalKind;

    fn outcome(allowed: bool) -> Outcomes {
        (
            CedarOutcome {
                allowed,
                policy_ids: vec!["p".into()],
                errors: vec![],
            },
            None,
        )
    }

    #[test]
    fn outcomes_are_kept_for_their_second_only() {
        let memo = OutcomeMemo::default();
        memo.put(10, "k".into(), outcome(true));
        assert!(memo.get(10, "k").is_some_and(|o| o.0.allowed));
        assert!(
            memo.get(11, "k").is_none(),
            "another second is another request"
        );
        memo.put(11, "k".into(), outcome(false));
        assert!(memo.get(11, "k").is_some_and(|o| !o.0.allowed));
        // A slow request of an earlier second does not bring that second back.
        memo.put(10, "j".into(), outcome(true));
        assert!(memo.get(10, "j").is_none() && memo.get(11, "k").is_some());
    }

    #[test]
    fn every_part_of_the_request_is_in_the_key() {
        let engine = super::super::CedarEngine::builtin().unwrap();
        let base = engine.base_compiled();
        let other_set = engine.compile_tenant("", 1, false).unwrap();
        let groups = vec!["a".to_string()];
        let more_groups = vec!["a".to_string(), "b".to_string()];
        let tags = vec!["secret".to_string()];
        let principal = CedarPrincipal {
            kind: PrincipalKind::Agent,
            id: "agt_1",
            groups: &groups,
        };
        let resource = CedarResource::Workspace {
            org: "org_1",
            workspace: "ws_1",
            path: Some("a/b.txt"),
        };
        let ctx = CedarContext {
            role: "viewer",
            scopes: vec!["files:read"],
            token_kind: "pat",
            principal_kind: "agent",
            transport: "rest",
            client_ip: Some("127.0.0.1".parse().unwrap()),
            time: SystemTime::UNIX_EPOCH,
            size: None,
            tags: &[],
            explain: false,
        };
        let action = Action::ReadFile;
        let original = key(&base, None, &principal, action, &resource, &ctx);
        assert_eq!(
            original,
            key(&base, None, &principal, action, &resource, &ctx)
        );
        // A field that could run into the next: a group name holding what follows it.
        let tricky = vec!["a1:b".to_string()];
        let principals = [
            CedarPrincipal {
                kind: PrincipalKind::User,
                ..principal
            },
            CedarPrincipal {
                id: "agt_2",
                ..principal
            },
            CedarPrincipal {
                groups: &more_groups,
                ..principal
            },
            CedarPrincipal {
                groups: &tricky,
                ..principal
            },
        ];
        let workspace = |org, workspace, path| CedarResource::Workspace {
            org,
            workspace,
            path,
        };
        let resources = [
            CedarResource::Org { org: "org_1" },
            workspace("org_1", "ws_1", None),
            workspace("org_1", "ws_1", Some("a/c.txt")),
            workspace("org_2", "ws_1", Some("a/b.txt")),
            workspace("org_1", "ws_2", Some("a/b.txt")),
        ];
        let contexts = [
            CedarContext {
                role: "editor",
                ..ctx.clone()
            },
            CedarContext {
                scopes: vec!["files:read", "files:write"],
                ..ctx.clone()
            },
            CedarContext {
                token_kind: "oauth",
                ..ctx.clone()
            },
            CedarContext {
                principal_kind: "user",
                ..ctx.clone()
            },
            CedarContext {
                transport: "mcp",
                ..ctx.clone()
            },
            CedarContext {
                client_ip: None,
                ..ctx.clone()
            },
            CedarContext {
                client_ip: Some("::ffff:127.0.0.1".parse().unwrap()),
                ..ctx.clone()
            },
            CedarContext {
                size: Some(1),
                ..ctx.clone()
            },
            CedarContext {
                tags: &tags,
                ..ctx.clone()
            },
        ];
        let variants = [
            key(&other_set, None, &principal, action, &resource, &ctx),
            key(&base, Some(&base), &principal, action, &resource, &ctx),
            key(&base, None, &principal, Action::WriteFile, &resource, &ctx),
        ]
        .into_iter()
        .chain(
            principals
                .iter()
                .map(|p| key(&base, None, p, action, &resource, &ctx)),
        )
        .chain(
            resources
                .iter()
                .map(|r| key(&base, None, &principal, action, r, &ctx)),
        )
        .chain(
            contexts
                .iter()
                .map(|c| key(&base, None, &principal, action, &resource, c)),
        );
        let mut seen = std::collections::HashSet::new();
        assert!(seen.insert(original.clone()));
        for v in variants {
            assert!(seen.insert(v.clone()), "two requests share the key {v}");
        }
    }
}
