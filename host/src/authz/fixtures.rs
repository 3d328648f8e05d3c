//! ALLOW/DENY fixtures for policy sets: a security team writes the requests a set must allow
//! and refuse, and `warrant policy test` (and the test suite) runs them through the same
//! pipeline production uses, without a server or a database.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    Action, Assumed, Authz, Caller, Decision, Grant, ResourceFacts, Target, WorkspacePolicies,
};
use crate::identity::{OrgId, Principal, PrincipalId, PrincipalKind, Role, WorkspaceId};

/// The outcome a fixture expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The request must be allowed.
    Allow,
    /// The request must be refused.
    Deny,
}

/// One hypothetical request and what must happen to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// What it checks, in words.
    pub name: String,
    /// allow | deny
    pub expect: Expect,
    /// user | agent | client
    pub principal_kind: String,
    /// The principal's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The principal's role in the workspace.
    pub role: String,
    /// The Cedar action id.
    pub action: String,
    /// The path ("" for the workspace).
    #[serde(default)]
    pub resource: String,
    /// Credential scopes (default: every scope).
    pub scopes: Option<Vec<String>>,
    /// pat | oauth | session (default pat).
    pub token_kind: Option<String>,
    /// rest | mcp (default rest).
    pub transport: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
    /// RFC 3339 (default now).
    pub time: Option<String>,
    /// Declared body size.
    pub size: Option<u64>,
    /// File tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Policy ids that must determine the outcome (checked when given).
    pub policy_ids: Option<Vec<String>>,
}

/// A fixture's result.
#[derive(Debug, Clone)]
pub struct FixtureResult {
    /// The fixture's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What went wrong, when it failed.
    pub failure: Option<String>,
    /// The decision.
    pub decision: Option<Decision>,
}

/// Runs fixtures against `policy_src` (tenant permits allowed, as a test bench should not
/// refuse a set the org may enable).
pub fn run(
    authz: &Authz,
    policy_src: &str,
    fixtures: &[Fixture],
) -> Result<Vec<FixtureResult>, super::cedar::CedarTextError> {
    let enforced = Arc::new(authz.cedar().compile_tenant(policy_src, 1, true)?);
    let policies = WorkspacePolicies {
        enforced,
        shadow: None,
        plugins: Arc::new([]),
    };
    Ok(fixtures
        .iter()
        .map(|f| run_one(authz, &policies, f))
        .collect())
}

fn run_one(authz: &Authz, policies: &WorkspacePolicies, f: &Fixture) -> FixtureResult {
    match evaluate(authz, policies, f) {
        Ok(decision) => {
            let want_allow = f.expect == Expect::Allow;
            let mut failure = (decision.allowed != want_allow).then(|| {
                format!(
                    "expected {:?}, got {} ({})",
                    f.expect,
                    if decision.allowed { "allow" } else { "deny" },
                    decision.reasons.join("; ")
                )
            });
            if failure.is_none()
                && let Some(ids) = &f.policy_ids
                && ids != &decision.policy_ids
            {
                failure = Some(format!(
                    "expected policies {ids:?}, got {:?}",
                    decision.policy_ids
                ));
            }
            FixtureResult {
                name: f.name.clone(),
                passed: failure.is_none(),
                failure,
                decision: Some(decision),
            }
        }
        Err(e) => FixtureResult {
            name: f.name.clone(),
            passed: false,
            failure: Some(e),
            decision: None,
        },
    }
}

fn evaluate(authz: &Authz, policies: &WorkspacePolicies, f: &Fixture) -> Result<Decision, String> {
    let kind = PrincipalKind::parse(&f.principal_kind)
        .ok_or_else(|| format!("unknown principal_kind `{}`", f.principal_kind))?;
    let role = Role::parse(&f.role).ok_or_else(|| format!("unknown role `{}`", f.role))?;
    let action = Action::ALL
        .into_iter()
        .find(|a| a.cedar_id() == f.action)
        .ok_or_else(|| format!("unknown action `{}`", f.action))?;
    let Assumed {
        scopes,
        kind: token_kind,
        transport,
        client_addr,
        at,
    } = Assumed::parse(
        f.scopes.as_deref(),
        f.token_kind.as_deref(),
        f.transport.as_deref(),
        f.client_ip.as_deref(),
        f.time.as_deref(),
    )?;
    let caller = Caller {
        principal: Arc::new(Principal {
            id: PrincipalId(format!("{}_fixture", kind.as_str())),
            kind,
            name: "fixture".into(),
            email: None,
            org_id: OrgId("org_fixture".into()),
            created_by: None,
            created_at: 0,
            groups: f.groups.clone(),
        }),
        grant: Grant {
            kind: token_kind,
            credential_id: "fixture".into(),
            scopes,
            workspaces: None,
        },
        client_addr,
        transport,
    };
    let (org, ws) = (
        OrgId("org_fixture".into()),
        WorkspaceId("ws_fixture".into()),
    );
    let facts = ResourceFacts {
        size: f.size,
        tags: f.tags.clone(),
        content_type: None,
    };
    let target = Target::Workspace {
        org: &org,
        workspace: &ws,
        role: Some(role),
        path: Some(f.resource.as_str()).filter(|p| !p.is_empty()),
        policies,
        facts: &facts,
    };
    Ok(authz.explain(&caller, action, target, at).decision)
}

/// One example folder's results.
#[derive(Debug)]
pub struct DirReport {
    /// The folder.
    pub dir: String,
    /// Its results, or why it could not run.
    pub results: Result<Vec<FixtureResult>, String>,
}

/// Runs `dir/policy.cedar` against `dir/fixtures.json`; a folder without them runs each of
/// its sub-folders instead.
pub fn run_dir(authz: &Authz, dir: &Path) -> Vec<DirReport> {
    let policy = dir.join("policy.cedar");
    if policy.is_file() {
        let results = (|| {
            let src = std::fs::read_to_string(&policy)
                .map_err(|e| format!("{}: {e}", policy.display()))?;
            let fixtures_path = dir.join("fixtures.json");
            let fixtures: Vec<Fixture> = serde_json::from_str(
                &std::fs::read_to_string(&fixtures_path)
                    .map_err(|e| format!("{}: {e}", fixtures_path.display()))?,
            )
            .map_err(|e| format!("{}: {e}", fixtures_path.display()))?;
            run(authz, &src, &fixtures).map_err(|e| {
                e.0.iter()
                    .map(|d| {
                        format!(
                            "{}:{}:{}: {}",
                            policy.display(),
                            d.line.unwrap_or(0),
                            d.column.unwrap_or(0),
                            d.message
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        })();
        return vec![DirReport {
            dir: dir.display().to_string(),
            results,
        }];
    }
    let mut subdirs: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    subdirs.sort();
    subdirs.iter().flat_map(|d| run_dir(authz, d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policy_examples_pass_their_fixtures() {
        let authz = Authz::new().unwrap();
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/examples");
        let reports = run_dir(&authz, &examples);
        assert!(
            reports.len() >= 5,
            "expected the five examples, found {}",
            reports.len()
        );
        for report in reports {
            let results = report
                .results
                .unwrap_or_else(|e| panic!("{}: {e}", report.dir));
            assert!(
                results
                    .iter()
                    .any(|r| r.decision.as_ref().is_some_and(|d| d.allowed)),
                "{}: no ALLOW fixture",
                report.dir
            );
            assert!(
                results
                    .iter()
                    .any(|r| r.decision.as_ref().is_some_and(|d| !d.allowed)),
                "{}: no DENY fixture",
                report.dir
            );
            for r in results {
                assert!(r.passed, "{} / {}: {:?}", report.dir, r.name, r.failure);
            }
        }
    }

    #[test]
    fn a_wrong_expectation_fails() {
        let authz = Authz::new().unwrap();
        let fixture: Fixture = serde_json::from_value(serde_json::json!({
            "name": "viewer writes", "expect": "allow", "principal_kind": "user",
            "role": "viewer", "action": "files:write", "resource": "a.txt"
        }))
        .unwrap();
        let results = run(&authz, "", &[fixture]).unwrap();
        assert!(!results[0].passed);
    }
}
