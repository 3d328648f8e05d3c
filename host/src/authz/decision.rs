//! The outcome of the pipeline, with everything needed to explain it.

use serde::Serialize;

/// The stage of the pipeline that refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// The credential lacks the scope the action needs.
    Scope,
    /// The credential is limited to other workspaces.
    Workspace,
    /// A Cedar policy forbade it, or none permitted it.
    Policy,
    /// A Wasm policy plugin refused it.
    Plugin,
}

impl Layer {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Scope => "scope",
            Layer::Workspace => "workspace",
            Layer::Policy => "policy",
            Layer::Plugin => "plugin",
        }
    }
}

/// What a shadow (candidate) policy set would have decided.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowOutcome {
    /// The candidate version.
    pub version: Option<i64>,
    /// Whether the candidate would allow.
    pub allowed: bool,
    /// Its determining policies.
    pub policy_ids: Vec<String>,
    /// Its evaluation errors.
    pub errors: Vec<String>,
}

/// What the pipeline decided and why.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// True when every stage allowed the request.
    pub allowed: bool,
    /// The stage that refused (None when allowed).
    pub layer: Option<Layer>,
    /// Human-readable reasons, most specific first.
    pub reasons: Vec<String>,
    /// The ids of the Cedar policies that determined the outcome.
    pub policy_ids: Vec<String>,
    /// Cedar evaluation errors (each one refuses the request).
    pub errors: Vec<String>,
    /// For a scope refusal: the scope that was missing.
    pub required_scope: Option<&'static str>,
    /// The tenant policy version in force (None: base policies only).
    pub policy_version: Option<i64>,
    /// The shadow candidate's verdict, when one is being tried.
    pub shadow: Option<ShadowOutcome>,
    /// What each plugin that ran said, in order (enforced and shadow).
    pub plugins: Vec<super::plugins::PluginVerdict>,
    /// Time spent deciding, in microseconds.
    pub elapsed_us: u64,
}

impl Decision {
    /// An allow determined by `policy_ids`.
    pub fn allow(policy_ids: Vec<String>) -> Self {
        Decision {
            allowed: true,
            layer: None,
            reasons: Vec::new(),
            policy_ids,
            errors: Vec::new(),
            required_scope: None,
            policy_version: None,
            shadow: None,
            plugins: Vec::new(),
            elapsed_us: 0,
        }
    }

    /// A refusal by `layer`.
    pub fn deny(layer: Layer, reason: String) -> Self {
        Decision {
            allowed: false,
            layer: Some(layer),
            reasons: vec![reason],
            ..Decision::allow(Vec::new())
        }
    }
}
