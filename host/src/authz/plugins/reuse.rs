//! Reusing plugin verdicts: the optional `reuse` export of `wit/policy.wit`. A plugin that
//! declares the request fields its verdicts depend on is shown only those fields, so its
//! verdict is a function of them (and of its config, fixed per attachment); the host keeps
//! the verdict and gives it again to a request equal in those fields instead of starting a
//! fresh instance. An evaluation that asked the host for the time or a counter is not kept,
//! nor is a failure.
//!
//! Kept verdicts live with one attachment as loaded (a new version, configuration or order
//! loads a new list, and the old verdicts go with the old list), under a budget shared by the
//! whole process so memory stays bounded however many workspaces there are.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::PluginRequest;
pub use super::bindings::reusable::exports::warrant::policy::reuse::RequestField;

/// Verdicts kept in the whole process, at most.
pub const MAX_KEPT_VERDICTS: usize = 16_384;
/// Verdicts kept for one attachment, at most (a quarter of the process's budget).
const MAX_KEPT_PER_ATTACHMENT: usize = MAX_KEPT_VERDICTS / 4;
/// Requests whose fields take more bytes than this are evaluated every time (a key this long
/// is a rare request; keeping it would cost more memory than it saves time).
const MAX_KEY_BYTES: usize = 1024;

/// The names of the fields as `wit/policy.wit` spells them, in its order (which is each
/// [`RequestField`]'s discriminant, and its bit in [`RequestFields`]).
const FIELD_NAMES: [&str; 13] = [
    "principal-id",
    "principal-kind",
    "principal-name",
    "principal-groups",
    "credential-kind",
    "credential-id",
    "credential-scopes",
    "action",
    "path",
    "size",
    "content-type",
    "transport",
    "client-address",
];

/// A set of request fields, one bit per [`RequestField`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFields(u16);

impl RequestFields {
    /// Every field: what a plugin that did not declare reuse is shown.
    pub const ALL: RequestFields = RequestFields((1 << FIELD_NAMES.len()) - 1);

    /// The fields a plugin declared.
    pub(super) fn declared(fields: &[RequestField]) -> Self {
        RequestFields(fields.iter().fold(0, |bits, f| bits | 1 << *f as u16))
    }

    /// Whether the plugin is shown `field`.
    pub fn shows(self, field: RequestField) -> bool {
        self.0 & (1 << field as u16) != 0
    }

    /// The names of the fields, in the WIT's order.
    pub fn names(self) -> Vec<&'static str> {
        FIELD_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    /// What identifies `req` in these fields: each shown field's value, tagged and
    /// length-prefixed so no two different requests encode alike. None when it is too long
    /// to keep.
    fn key(self, req: &PluginRequest<'_>) -> Option<Vec<u8>> {
        let mut key = Vec::with_capacity(128);
        // Each shown field in place: its tag, its length, then its value, written straight
        // into the key (and only for a field shown: on every request that asks a memo).
        let mut put = |field: RequestField, value: &dyn Fn(&mut Vec<u8>)| {
            if self.shows(field) {
                key.push(field as u8);
                let at = key.len();
                key.extend_from_slice(&[0; 4]);
                value(&mut key);
                let len = (key.len() - at - 4) as u32;
                key[at..at + 4].copy_from_slice(&len.to_le_bytes());
            }
        };
        let (id, kind, name, groups) = req.principal;
        put(RequestField::PrincipalId, &|k| {
            k.extend_from_slice(id.as_bytes())
        });
        put(RequestField::PrincipalKind, &|k| {
            k.extend_from_slice(kind.as_bytes())
        });
        put(RequestField::PrincipalName, &|k| {
            k.extend_from_slice(name.as_bytes())
        });
        put(RequestField::PrincipalGroups, &|k| {
            for g in groups {
                k.extend_from_slice(&(g.len() as u32).to_le_bytes());
                k.extend_from_slice(g.as_bytes());
            }
        });
        let (credential_kind, credential_id, scopes) = req.credential;
        put(RequestField::CredentialKind, &|k| {
            k.extend_from_slice(credential_kind.as_bytes())
        });
        put(RequestField::CredentialId, &|k| {
            k.extend_from_slice(credential_id.as_bytes())
        });
        put(RequestField::CredentialScopes, &|k| {
            k.extend_from_slice(scopes.names().join(" ").as_bytes())
        });
        put(RequestField::Action, &|k| {
            k.extend_from_slice(req.action.as_bytes())
        });
        put(RequestField::Path, &|k| {
            k.extend_from_slice(req.path.as_bytes())
        });
        put(RequestField::Size, &|k| {
            optional(k, req.size.map(u64::to_le_bytes).as_ref().map(|b| &b[..]))
        });
        put(RequestField::ContentType, &|k| {
            optional(k, req.content_type.map(str::as_bytes))
        });
        put(RequestField::Transport, &|k| {
            k.extend_from_slice(req.transport.as_bytes())
        });
        // The octets as the address is shown: 4 for IPv4, 16 for IPv6, so an IPv4 address and
        // its IPv4-mapped IPv6 form (shown to the plugin as different text) stay apart.
        put(RequestField::ClientAddress, &|k| match req.client_address {
            None => optional(k, None),
            Some(std::net::IpAddr::V4(v4)) => optional(k, Some(&v4.octets())),
            Some(std::net::IpAddr::V6(v6)) => optional(k, Some(&v6.octets())),
        });
        (key.len() <= MAX_KEY_BYTES).then_some(key)
    }
}

/// Appends an optional value: absent and present-but-empty differ.
fn optional(key: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => key.push(0),
        Some(v) => {
            key.push(1);
            key.extend_from_slice(v);
        }
    }
}

impl Serialize for RequestFields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

/// A verdict as kept: what the plugin said, and its reason for a deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// `allow`, `deny` or `abstain`.
    pub verdict: &'static str,
    /// The deny reason.
    pub reason: Option<String>,
}

/// How many more verdicts the process may keep; shared by every attachment's memo.
#[derive(Debug)]
pub struct Budget(AtomicUsize);

impl Budget {
    /// The process's budget.
    pub fn new(verdicts: usize) -> Arc<Self> {
        Arc::new(Budget(AtomicUsize::new(verdicts)))
    }

    fn take_one(&self) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.0.fetch_add(n, Ordering::AcqRel);
    }
}

/// The kept verdicts of one attachment (one plugin version, with one config, in one
/// workspace).
#[derive(Debug)]
pub struct VerdictMemo {
    fields: RequestFields,
    kept: Mutex<HashMap<Box<[u8]>, Kept>>,
    budget: Arc<Budget>,
}

impl VerdictMemo {
    /// An empty memo for a plugin that declared `fields`.
    pub fn new(fields: RequestFields, budget: Arc<Budget>) -> Self {
        VerdictMemo {
            fields,
            kept: Mutex::new(HashMap::new()),
            budget,
        }
    }

    /// The fields the plugin is shown.
    pub fn fields(&self) -> RequestFields {
        self.fields
    }

    /// What identifies `req` to this memo (None: too long to keep).
    pub fn key(&self, req: &PluginRequest<'_>) -> Option<Vec<u8>> {
        self.fields.key(req)
    }

    /// The verdict kept for `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<Kept> {
        self.kept.lock().ok()?.get(key).cloned()
    }

    /// Keeps a verdict. When this attachment or the process is at its bound, this
    /// attachment's verdicts are dropped first (they are relearnt as requests come).
    pub fn keep(&self, key: Vec<u8>, kept: Kept) {
        let Ok(mut map) = self.kept.lock() else {
            return;
        };
        if map.contains_key(key.as_slice()) {
            map.insert(key.into(), kept);
            return;
        }
        if map.len() >= MAX_KEPT_PER_ATTACHMENT || !self.budget.take_one() {
            self.budget.give_back(map.len());
            map.clear();
            if !self.budget.take_one() {
                return;
            }
        }
        map.insert(key.into(), kept);
    }

    /// How many verdicts are kept.
    pub fn len(&self) -> usize {
        self.kept.lock().map_or(0, |m| m.len())
    }

    /// True when none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for VerdictMemo {
    fn drop(&mut self) {
        let n = self.kept.get_mut().map_or(0, |m| m.len());
        self.budget.give_back(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::ScopeSet;

    fn request<'a>(path: &'a str, kind: &'a str, groups: &'a [String]) -> PluginRequest<'a> {
        PluginRequest {
            principal: ("agt_1", kind, "bot", groups),
            credential: ("pat", "tok_1", ScopeSet::default()),
            action: "files:read",
            workspace: "ws_1",
            path,
            size: None,
            content_type: None,
            transport: "rest",
            client_address: Some("127.0.0.1".parse().unwrap()),
            time_ms: 1,
            dry_run: false,
        }
    }

    fn fields(list: &[RequestField]) -> RequestFields {
        RequestFields::declared(list)
    }

    #[test]
    fn requests_equal_in_the_declared_fields_share_a_key() {
        let f = fields(&[RequestField::Path, RequestField::Action]);
        let none: [String; 0] = [];
        let a = f.key(&request("a.md", "agent", &none)).unwrap();
        // The kind is not declared: a user reading the same path shares the key.
        assert_eq!(a, f.key(&request("a.md", "user", &none)).unwrap());
        assert_ne!(a, f.key(&request("b.md", "agent", &none)).unwrap());
        assert_eq!(f.names(), ["action", "path"]);
        // The names follow the WIT's order, as the generated enum's discriminants do.
        assert_eq!(
            fields(&[RequestField::PrincipalId]).names(),
            ["principal-id"]
        );
        assert_eq!(
            fields(&[RequestField::ClientAddress, RequestField::CredentialScopes]).names(),
            ["credential-scopes", "client-address"]
        );
        assert_eq!(RequestFields::ALL.names(), FIELD_NAMES);
    }

    #[test]
    fn no_two_different_requests_encode_alike() {
        let f = RequestFields::ALL;
        let g1 = ["a\nb".to_string()];
        let g2 = ["a".to_string(), "b".to_string()];
        // Values that run into each other when concatenated, and absent against empty.
        assert_ne!(
            f.key(&request("x", "agent", &g1)),
            f.key(&request("x", "agent", &g2))
        );
        let mut with_empty_type = request("x", "agent", &g1);
        with_empty_type.content_type = Some("");
        assert_ne!(f.key(&with_empty_type), f.key(&request("x", "agent", &g1)));
        let mut v6 = request("x", "agent", &g1);
        v6.client_address = Some("::1".parse().unwrap());
        assert_ne!(f.key(&v6), f.key(&request("x", "agent", &g1)));
        // An IPv4 address and its IPv4-mapped IPv6 form are shown as different text.
        let mut v4 = request("x", "agent", &g1);
        v4.client_address = Some("1.2.3.4".parse().unwrap());
        let mut mapped = request("x", "agent", &g1);
        mapped.client_address = Some("::ffff:1.2.3.4".parse().unwrap());
        assert_ne!(f.key(&v4), f.key(&mapped));
    }

    #[test]
    fn a_request_too_long_to_keep_has_no_key() {
        let long = "p/".repeat(MAX_KEY_BYTES);
        assert!(
            RequestFields::ALL
                .key(&request(&long, "agent", &[]))
                .is_none()
        );
    }

    #[test]
    fn memory_stays_within_the_process_budget() {
        let budget = Budget::new(3);
        let f = fields(&[RequestField::Path]);
        let a = VerdictMemo::new(f, budget.clone());
        let b = VerdictMemo::new(f, budget.clone());
        let allow = Kept {
            verdict: "allow",
            reason: None,
        };
        for k in [b"1", b"2", b"3"] {
            a.keep(k.to_vec(), allow.clone());
        }
        assert_eq!(a.len(), 3);
        // The process is at its bound: `b` cannot take from `a`, and keeps nothing.
        b.keep(b"4".to_vec(), allow.clone());
        assert!(b.is_empty());
        assert_eq!(a.get(b"2"), Some(allow.clone()));
        // `a` at the bound starts afresh with the new verdict.
        a.keep(b"5".to_vec(), allow.clone());
        assert_eq!(a.len(), 1);
        assert_eq!(a.get(b"2"), None);
        // Dropping a memo gives its share back.
        drop(a);
        for k in [b"6", b"7", b"8"] {
            b.keep(k.to_vec(), allow.clone());
        }
        assert_eq!(b.len(), 3);
    }
}
