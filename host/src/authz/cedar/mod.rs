//! Cedar evaluation: the schema, the built-in role policies, and requests built directly in
//! Rust (parsing entities from JSON costs ~350 µs; building them costs a few µs).
//!
//! Policy text, schemas and entities go through `cedar-policy`'s public API. The request's
//! context and the evaluation use `cedar-policy-core` (the same crate `cedar-policy` wraps,
//! pinned to the same version): the public API can only build a context by evaluating
//! restricted expressions and can only authorize by rebuilding every policy's condition,
//! which together were half of a decision's cost (see [`compiled`]).

mod compiled;
pub mod memo;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use cedar_policy::{
    Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet, Schema,
    ValidationMode, Validator,
};
use cedar_policy_core::ast::{self, EntityUIDEntry, Name, RestrictedExpr, Value};
use cedar_policy_core::evaluator::RestrictedEvaluator;
use cedar_policy_core::extensions::Extensions;
use smol_str::SmolStr;

use super::action::Action;
pub use compiled::CompiledSet;

/// The Cedar schema every policy set is validated against.
pub const SCHEMA_SRC: &str = include_str!("../../../../policies/warrant.cedarschema");
/// The built-in role policies.
pub const BASE_POLICIES_SRC: &str = include_str!("../../../../policies/base.cedar");

/// A problem found in Cedar text, located for the author.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostic {
    /// The policy id, when the problem belongs to one policy.
    pub policy_id: Option<String>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The offending text, when known.
    pub snippet: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Failure to load Cedar text.
#[derive(Debug, thiserror::Error)]
#[error("{} Cedar error(s); first: {}", .0.len(), .0.first().map(|d| d.message.as_str()).unwrap_or(""))]
pub struct CedarTextError(pub Vec<Diagnostic>);

/// The resource of a decision, from the organisation down to a file.
#[derive(Debug, Clone, Copy)]
pub enum CedarResource<'a> {
    /// An organisation.
    Org {
        /// Its id.
        org: &'a str,
    },
    /// A workspace, a folder in it, or a file in it.
    Workspace {
        /// The owning org.
        org: &'a str,
        /// The workspace.
        workspace: &'a str,
        /// A file path (`a/b.txt`) or a folder path ending in `/` (`a/`), or None.
        path: Option<&'a str>,
    },
}

/// The principal of a decision.
#[derive(Debug, Clone, Copy)]
pub struct CedarPrincipal<'a> {
    /// Human, agent or client.
    pub kind: crate::identity::PrincipalKind,
    /// Its id.
    pub id: &'a str,
    /// The groups it belongs to (`Group::"<name>"` parents), e.g. `contractor`.
    pub groups: &'a [String],
}

/// The request context (see `RequestContext` in the schema).
#[derive(Debug, Clone)]
pub struct CedarContext<'a> {
    /// The principal's role where the resource lives ("" when none).
    pub role: &'a str,
    /// Scope names the credential carries.
    pub scopes: Vec<&'static str>,
    /// pat | oauth | session | operator.
    pub token_kind: &'a str,
    /// user | agent | client.
    pub principal_kind: &'static str,
    /// rest | mcp | what-if.
    pub transport: &'a str,
    /// The caller's address.
    pub client_ip: Option<std::net::IpAddr>,
    /// When the request happened.
    pub time: SystemTime,
    /// The body size of a write, when known.
    pub size: Option<u64>,
    /// The file's tags.
    pub tags: &'a [String],
    /// Also render the context as JSON (what-if answers show it; enforcement never needs it).
    pub explain: bool,
}

/// What Cedar decided.
#[derive(Debug, Clone)]
pub struct CedarOutcome {
    /// Allowed by some permit, and no forbid or error.
    pub allowed: bool,
    /// The determining policies (permits when allowed, forbids when denied).
    pub policy_ids: Vec<String>,
    /// Evaluation errors; any error fails the decision closed.
    pub errors: Vec<String>,
}

/// A request and its entities, built once and evaluated against one or more policy sets
/// (the enforced set and, in shadow mode, the candidate).
pub struct CedarQuery {
    request: ast::Request,
    entities: Arc<Entities>,
    /// The context as evaluated, when asked for with [`CedarContext::explain`].
    pub context_json: Option<serde_json::Value>,
}

/// Who wrote a policy set, which decides what it may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// Warrant's own role policies.
    Builtin,
    /// A tenant's workspace set; `permits_allowed` when an org admin enabled tenant permits.
    Tenant {
        /// Whether `permit` policies are accepted.
        permits_allowed: bool,
    },
}

/// Parses Cedar policy text, naming each policy by its `@id("…")` annotation (Cedar does not
/// use annotations as ids by itself), and validates it against the schema in strict mode.
/// Every problem is reported, each with its location, not just the first.
pub fn parse_policies(
    schema: &Schema,
    src: &str,
    author: Author,
) -> Result<PolicySet, CedarTextError> {
    let parsed = PolicySet::from_str(src).map_err(|errs| {
        CedarTextError(
            errs.iter()
                .map(|e| diagnostic_from_miette(src, None, e))
                .collect(),
        )
    })?;
    let mut named = PolicySet::new();
    let mut diags = Vec::new();
    let mut claimed: Vec<usize> = Vec::new();
    if parsed.templates().next().is_some() {
        diags.push(Diagnostic {
            policy_id: None,
            line: None,
            column: None,
            snippet: None,
            message: "policy templates are not supported; write static policies".into(),
        });
    }
    for policy in parsed.policies() {
        let id = policy
            .annotation("id")
            .map(PolicyId::new)
            .unwrap_or_else(|| policy.id().clone());
        // Cedar keeps each policy's own text: find it in the source (skipping texts already
        // claimed, so identical duplicates are told apart), so even a policy without an
        // `@id` or with an odd spelling of one is located where the author wrote it.
        let text = policy.to_string();
        let offset = src
            .match_indices(text.as_str())
            .map(|(i, _)| i)
            .find(|i| !claimed.contains(i));
        if let Some(i) = offset {
            claimed.push(i);
        }
        let at = || locate(src, offset);
        let mut refuse = |message: String| {
            let (line, column, snippet) = at();
            diags.push(Diagnostic {
                policy_id: Some(id.to_string()),
                line,
                column,
                snippet,
                message,
            });
        };
        if let Author::Tenant { permits_allowed } = author {
            if id.to_string().starts_with("base/") {
                refuse(
                    "policy ids starting with `base/` are reserved for Warrant's role policies"
                        .into(),
                );
                continue;
            }
            if !permits_allowed && policy.effect() == cedar_policy::Effect::Permit {
                refuse(
                    "workspace policies may only `forbid` (they narrow what roles grant); an \
                     organisation admin can allow tenant `permit` policies"
                        .into(),
                );
                continue;
            }
        }
        if let Err(e) = named.add(policy.new_id(id.clone())) {
            refuse(e.to_string());
        }
    }
    let result = Validator::new(schema.clone()).validate(&named, ValidationMode::Strict);
    for err in result.validation_errors() {
        diags.push(diagnostic_from_miette(
            src,
            Some(err.policy_id().to_string()),
            err,
        ));
    }
    if diags.is_empty() {
        Ok(named)
    } else {
        Err(CedarTextError(diags))
    }
}

fn diagnostic_from_miette(
    src: &str,
    policy_id: Option<String>,
    err: &dyn miette::Diagnostic,
) -> Diagnostic {
    let offset = err
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset());
    let (line, column, snippet) = locate(src, offset);
    let mut message = err.to_string();
    if let Some(help) = err.help() {
        message = format!("{message} ({help})");
    }
    Diagnostic {
        policy_id,
        line,
        column,
        snippet,
        message,
    }
}

/// Turns a byte offset into a 1-based line and column and the text of that line.
fn locate(src: &str, offset: Option<usize>) -> (Option<usize>, Option<usize>, Option<String>) {
    let Some(offset) = offset.filter(|o| *o <= src.len()) else {
        return (None, None, None);
    };
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = src[line_start..offset].chars().count() + 1;
    let snippet = src[line_start..]
        .lines()
        .next()
        .unwrap_or("")
        .trim_end()
        .to_string();
    (Some(line), Some(column), Some(snippet))
}

/// The Cedar half of the pipeline: schema, base policies and prebuilt names.
pub struct CedarEngine {
    schema: Schema,
    base: PolicySet,
    base_compiled: Arc<CompiledSet>,
    /// The base policies' conditions, shared by every compiled set.
    base_policies: compiled::CompiledPolicies,
    types: EntityTypes,
    actions: HashMap<Action, EntityUid>,
    entity_cache: EntityCache,
    extension_values: ExtensionValues,
}

/// The most client addresses whose `ipaddr` value is kept; past it the map starts over.
const IP_VALUE_CAP: usize = 4_096;

/// The context's `datetime` (per second) and `ipaddr` (per address) values, made once and
/// cloned: making one calls Cedar's extension constructor, which parses its argument (and,
/// through the public API, the function's name too). Read-write locks: every decision reads
/// them, on every worker thread at once.
#[derive(Default)]
struct ExtensionValues {
    time: std::sync::RwLock<Option<(u64, Value)>>,
    ips: std::sync::RwLock<HashMap<std::net::IpAddr, Value>>,
}

/// `name("arg")` evaluated by Cedar's extension function `name`.
fn extension_value(name: &str, arg: String) -> Result<Value, String> {
    let name = Name::parse_unqualified_name(name).map_err(|e| e.to_string())?;
    let call = RestrictedExpr::call_extension_fn(name, [RestrictedExpr::val(arg)]);
    RestrictedEvaluator::new(Extensions::all_available())
        .interpret(call.as_borrowed())
        .map_err(|e| e.to_string())
}

impl ExtensionValues {
    /// `datetime("…")` of `time`, to the second.
    fn time(&self, time: SystemTime) -> Result<Value, String> {
        let secs = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Ok(cached) = self.time.read()
            && let Some((at, value)) = cached.as_ref()
            && *at == secs
        {
            return Ok(value.clone());
        }
        let value = extension_value(
            "datetime",
            humantime::format_rfc3339_seconds(time).to_string(),
        )?;
        if let Ok(mut cached) = self.time.write() {
            *cached = Some((secs, value.clone()));
        }
        Ok(value)
    }

    /// `ip("…")` of `addr`.
    fn ip(&self, addr: std::net::IpAddr) -> Result<Value, String> {
        if let Some(value) = self.ips.read().ok().and_then(|m| m.get(&addr).cloned()) {
            return Ok(value);
        }
        let value = extension_value("ip", addr.to_string())?;
        if let Ok(mut ips) = self.ips.write() {
            if ips.len() >= IP_VALUE_CAP {
                ips.clear();
            }
            ips.insert(addr, value.clone());
        }
        Ok(value)
    }
}

/// The most entity sets kept; past it the cache starts over.
const ENTITY_CACHE_CAP: usize = 16_384;

/// Entity sets by what determines them (principal, its groups, resource): building one costs
/// ~15 µs in Cedar (mostly fixed overhead), a lookup well under 1 µs. Nothing needs
/// invalidating: the key holds everything the set is made of.
#[derive(Default)]
struct EntityCache {
    sets: std::sync::RwLock<HashMap<String, (Arc<Entities>, EntityUid)>>,
}

impl EntityCache {
    fn get(&self, key: &str) -> Option<(Arc<Entities>, EntityUid)> {
        self.sets.read().ok()?.get(key).cloned()
    }

    fn put(&self, key: String, value: (Arc<Entities>, EntityUid)) {
        if let Ok(mut sets) = self.sets.write() {
            if sets.len() >= ENTITY_CACHE_CAP {
                sets.clear();
            }
            sets.insert(key, value);
        }
    }
}

struct EntityTypes {
    org: EntityTypeName,
    workspace: EntityTypeName,
    folder: EntityTypeName,
    file: EntityTypeName,
    user: EntityTypeName,
    agent: EntityTypeName,
    client: EntityTypeName,
    group: EntityTypeName,
}

fn text_error(message: String) -> CedarTextError {
    CedarTextError(vec![Diagnostic {
        policy_id: None,
        line: None,
        column: None,
        snippet: None,
        message,
    }])
}

impl CedarEngine {
    /// Loads the built-in schema and role policies; fails when they do not validate.
    pub fn builtin() -> Result<Self, CedarTextError> {
        let schema = Schema::from_cedarschema_str(SCHEMA_SRC)
            .map_err(|e| CedarTextError(vec![diagnostic_from_miette(SCHEMA_SRC, None, &e)]))?
            .0;
        let base = parse_policies(&schema, BASE_POLICIES_SRC, Author::Builtin)?;
        let name = |n: &str| EntityTypeName::from_str(n).map_err(|e| text_error(e.to_string()));
        let action_type = name("Action")?;
        let actions: HashMap<Action, EntityUid> = Action::ALL
            .into_iter()
            .map(|a| {
                (
                    a,
                    EntityUid::from_type_name_and_id(
                        action_type.clone(),
                        EntityId::new(a.cedar_id()),
                    ),
                )
            })
            .collect();
        let base_policies = compiled::compile_policies(&base);
        let base_compiled = Arc::new(CompiledSet::new(
            &actions,
            &base,
            &base_policies,
            None,
            None,
        ));
        Ok(CedarEngine {
            types: EntityTypes {
                org: name("Org")?,
                workspace: name("Workspace")?,
                folder: name("Folder")?,
                file: name("File")?,
                user: name("User")?,
                agent: name("Agent")?,
                client: name("Client")?,
                group: name("Group")?,
            },
            schema,
            base,
            base_compiled,
            base_policies,
            entity_cache: EntityCache::default(),
            extension_values: ExtensionValues::default(),
            actions,
        })
    }

    /// The schema, for validating tenant policy sets.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The built-in role policies.
    pub fn base(&self) -> &PolicySet {
        &self.base
    }

    /// The base policies alone, compiled (for workspaces without a tenant set, and org actions).
    pub fn base_compiled(&self) -> Arc<CompiledSet> {
        self.base_compiled.clone()
    }

    /// Parses, validates and compiles a tenant set together with the base policies.
    pub fn compile_tenant(
        &self,
        src: &str,
        version: i64,
        permits_allowed: bool,
    ) -> Result<CompiledSet, CedarTextError> {
        let tenant = parse_policies(&self.schema, src, Author::Tenant { permits_allowed })?;
        Ok(CompiledSet::new(
            &self.actions,
            &self.base,
            &self.base_policies,
            Some(&tenant),
            Some(version),
        ))
    }

    /// Evaluates a built query against a compiled set. Any evaluation error denies.
    pub fn authorize(&self, set: &CompiledSet, action: Action, query: &CedarQuery) -> CedarOutcome {
        set.authorize(action, query)
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }

    /// The principal with its groups, and the resource with its ancestors, as Cedar
    /// entities; and the resource's uid.
    fn entities(
        &self,
        principal_uid: EntityUid,
        principal_groups: &[String],
        resource: CedarResource<'_>,
    ) -> Result<(Entities, EntityUid), String> {
        let mut entities = Vec::with_capacity(8);
        let mut groups = HashSet::with_capacity(principal_groups.len());
        for g in principal_groups {
            let uid = Self::uid(&self.types.group, g);
            entities.push(Entity::new_no_attrs(uid.clone(), HashSet::new()));
            groups.insert(uid);
        }
        entities.push(Entity::new_no_attrs(principal_uid.clone(), groups));
        let resource_uid = match resource {
            CedarResource::Org { org } => {
                let uid = Self::uid(&self.types.org, org);
                entities.push(Entity::new_no_attrs(uid.clone(), HashSet::new()));
                uid
            }
            CedarResource::Workspace {
                org,
                workspace,
                path,
            } => {
                let org_uid = Self::uid(&self.types.org, org);
                let ws_uid = Self::uid(&self.types.workspace, workspace);
                entities.push(Entity::new_no_attrs(org_uid.clone(), HashSet::new()));
                entities.push(Entity::new_no_attrs(
                    ws_uid.clone(),
                    HashSet::from([org_uid]),
                ));
                let path = path.unwrap_or("");
                let mut parent = ws_uid.clone();
                // Each folder on the way down is an entity whose parent is the one above it.
                for (i, _) in path.match_indices('/') {
                    let folder =
                        Self::uid(&self.types.folder, &format!("{workspace}/{}", &path[..=i]));
                    entities.push(Entity::new_no_attrs(
                        folder.clone(),
                        HashSet::from([parent]),
                    ));
                    parent = folder;
                }
                if path.is_empty() {
                    ws_uid
                } else if path.ends_with('/') {
                    parent
                } else {
                    let file = Self::uid(&self.types.file, &format!("{workspace}/{path}"));
                    entities.push(Entity::new_no_attrs(file.clone(), HashSet::from([parent])));
                    file
                }
            }
        };
        let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
        Ok((entities, resource_uid))
    }

    /// Builds the request and the few entities a decision needs: the principal with its
    /// groups, and the resource with its ancestors. Nothing is parsed from JSON.
    pub fn query(
        &self,
        principal: CedarPrincipal<'_>,
        action: Action,
        resource: CedarResource<'_>,
        ctx: &CedarContext<'_>,
    ) -> Result<CedarQuery, String> {
        use crate::identity::PrincipalKind;
        let principal_type = match principal.kind {
            PrincipalKind::User => &self.types.user,
            PrincipalKind::Agent => &self.types.agent,
            PrincipalKind::Client => &self.types.client,
        };
        let principal_uid = Self::uid(principal_type, principal.id);
        let key = entity_key(principal, resource);
        let (entities, resource_uid) = match self.entity_cache.get(&key) {
            Some(hit) => hit,
            None => {
                let built = self.entities(principal_uid.clone(), principal.groups, resource)?;
                let built = (Arc::new(built.0), built.1);
                self.entity_cache.put(key, built.clone());
                built
            }
        };
        let path = match resource {
            CedarResource::Org { .. } => "",
            CedarResource::Workspace { path, .. } => path.unwrap_or(""),
        };
        let (folder, name) = match path.rfind('/') {
            Some(i) => (&path[..=i], &path[i + 1..]),
            None => ("", path),
        };
        let extension = name
            .rsplit_once('.')
            .filter(|(stem, _)| !stem.is_empty())
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .unwrap_or_default();
        let mut context_json = ctx.explain.then(|| {
            let time = humantime::format_rfc3339_seconds(ctx.time).to_string();
            serde_json::json!({
                "role": ctx.role,
                "scopes": ctx.scopes,
                "token_kind": ctx.token_kind,
                "principal_kind": ctx.principal_kind,
                "transport": ctx.transport,
                "time": time,
                "path": path,
                "folder": folder,
                "extension": extension,
                "tags": ctx.tags,
            })
        });
        let string = |s: &str| Value::from(s);
        let mut values: BTreeMap<SmolStr, Value> = BTreeMap::from([
            ("role".into(), string(ctx.role)),
            (
                "scopes".into(),
                Value::set(ctx.scopes.iter().map(|s| string(s)), None),
            ),
            ("token_kind".into(), string(ctx.token_kind)),
            ("principal_kind".into(), string(ctx.principal_kind)),
            ("transport".into(), string(ctx.transport)),
            ("time".into(), self.extension_values.time(ctx.time)?),
            ("path".into(), string(path)),
            ("folder".into(), string(folder)),
            ("extension".into(), string(&extension)),
            (
                "tags".into(),
                Value::set(ctx.tags.iter().map(|t| string(t)), None),
            ),
        ]);
        if let Some(ip) = ctx.client_ip {
            values.insert("client_ip".into(), self.extension_values.ip(ip)?);
            if let Some(j) = context_json.as_mut() {
                j["client_ip"] = serde_json::json!(ip.to_string());
            }
        }
        if let Some(size) = ctx.size {
            let size = i64::try_from(size).unwrap_or(i64::MAX);
            values.insert("size".into(), Value::from(size));
            if let Some(j) = context_json.as_mut() {
                j["size"] = serde_json::json!(size);
            }
        }
        let action_uid = self
            .actions
            .get(&action)
            .ok_or_else(|| format!("unknown action {}", action.cedar_id()))?;
        let known = |uid: &EntityUid| EntityUIDEntry::known(uid.as_ref().clone(), None);
        // Like `cedar_policy::Request::new` without a schema: the context is a record of
        // concrete values, built here instead of evaluated from expressions.
        let request = ast::Request::new_unchecked(
            known(&principal_uid),
            known(action_uid),
            known(&resource_uid),
            Some(ast::Context::Value(Arc::new(values))),
        );
        Ok(CedarQuery {
            request,
            entities,
            context_json,
        })
    }
}

/// The cache key of an entity set: everything it is built from, NUL-separated.
fn entity_key(principal: CedarPrincipal<'_>, resource: CedarResource<'_>) -> String {
    let mut key = format!(
        "{}\0{}\0{}",
        principal.kind.as_str(),
        principal.id,
        principal.groups.join("\u{1}")
    );
    match resource {
        CedarResource::Org { org } => {
            key.push_str("\0org\0");
            key.push_str(org);
        }
        CedarResource::Workspace {
            org,
            workspace,
            path,
        } => {
            key.push_str("\0ws\0");
            key.push_str(org);
            key.push('\0');
            key.push_str(workspace);
            key.push('\0');
            key.push_str(path.unwrap_or(""));
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_sets_may_only_forbid_unless_permits_are_enabled() {
        let engine = CedarEngine::builtin().unwrap();
        let src = "@id(\"open\")\npermit (principal, action, resource);";
        assert!(engine.compile_tenant(src, 1, false).is_err());
        assert!(engine.compile_tenant(src, 1, true).is_ok());
    }

    #[test]
    fn compiled_sets_hold_only_the_policies_of_each_action() {
        let engine = CedarEngine::builtin().unwrap();
        let set = engine
            .compile_tenant("@id(\"no-deletes\")\nforbid (principal, action == Action::\"files:delete\", resource);", 3, false)
            .unwrap();
        let delete = set.policy_ids(Action::DeleteFile);
        assert!(delete.contains(&"no-deletes"));
        let read = set.policy_ids(Action::ReadFile);
        assert!(!read.contains(&"no-deletes"));
        assert!(read.contains(&"base/viewer-reads"));
    }

    #[test]
    fn builtin_schema_and_base_policies_validate() {
        let engine = CedarEngine::builtin().unwrap();
        assert!(
            engine
                .base()
                .policy(&PolicyId::new("base/viewer-reads"))
                .is_some()
        );
    }

    #[test]
    fn invalid_policy_reports_every_error_with_location() {
        let engine = CedarEngine::builtin().unwrap();
        let src = "@id(\"a\")\nforbid (principal, action == Action::\"files:nope\", resource);\n@id(\"b\")\nforbid (principal, action, resource) when { context.nope };\n";
        let err = parse_policies(
            engine.schema(),
            src,
            Author::Tenant {
                permits_allowed: false,
            },
        )
        .unwrap_err();
        assert!(err.0.len() >= 2, "{:?}", err.0);
        assert!(err.0.iter().all(|d| d.line.is_some()), "{:?}", err.0);
    }

    #[test]
    fn parse_error_has_line_and_column() {
        let engine = CedarEngine::builtin().unwrap();
        let err = parse_policies(
            engine.schema(),
            "forbid (principal, action, resource)\nwhen { ;",
            Author::Tenant {
                permits_allowed: false,
            },
        )
        .unwrap_err();
        assert_eq!(err.0[0].line, Some(2), "{:?}", err.0);
    }
}
