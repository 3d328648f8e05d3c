//! Typed identifiers, so a workspace id can never be passed where a principal id is meant.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A fresh random id with a readable prefix, e.g. `ws_9f1c…`.
pub fn new_id(prefix: &str) -> String {
    with_prefix(prefix, uuid::Uuid::new_v4())
}

/// `prefix_` and the UUID's 32 hex digits, built without `format!` (one is made per request).
fn with_prefix(prefix: &str, id: uuid::Uuid) -> String {
    let mut out = String::with_capacity(prefix.len() + 1 + uuid::fmt::Simple::LENGTH);
    out.push_str(prefix);
    out.push('_');
    out.push_str(id.simple().encode_lower(&mut uuid::Uuid::encode_buffer()));
    out
}

/// A fresh id that sorts by creation time (a UUIDv7: 48 bits of milliseconds, then random),
/// for the decision log: its ids order decisions made in the same millisecond, for paging.
pub fn new_ordered_id(prefix: &str) -> String {
    with_prefix(prefix, uuid::Uuid::now_v7())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A new random id.
            pub fn generate() -> Self {
                Self(new_id($prefix))
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

id_type!(
    /// Identifies an organisation.
    OrgId, "org");
id_type!(
    /// Identifies a workspace.
    WorkspaceId, "ws");
id_type!(
    /// Identifies a credential (never its secret).
    TokenId, "tok");

/// Identifies a user, agent or client; the prefix depends on the kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrincipalId(pub String);

impl PrincipalId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for PrincipalId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_ids_sort_by_creation_and_stay_unique() {
        let ids: Vec<String> = (0..10_000).map(|_| new_ordered_id("dec")).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
        assert!(
            ids.iter()
                .all(|id| id.starts_with("dec_") && id.len() == 36)
        );
    }
}
