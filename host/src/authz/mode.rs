//! Whether a tenant rule — a Cedar policy set or a plugin — is enforced or only tried.

use serde::{Deserialize, Serialize};

/// `enforce` or `shadow`: a shadow rule is evaluated on real traffic and logged, never
/// enforced, so a tenant can see what it would do before it does it.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Takes effect on the next request.
    #[default]
    Enforce,
    /// Evaluated and logged, never enforced.
    Shadow,
}

impl Mode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "shadow" => Some(Mode::Shadow),
            _ => None,
        }
    }
}
