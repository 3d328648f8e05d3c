//! The tool catalogue: one tool per service operation. Each tool names the scope a credential
//! needs for it (so `tools/list` can leave out what the token can never use), takes an input
//! whose JSON Schema is derived with `schemars` from the same Rust types as the REST API, and
//! calls the one [`Warrant`] method that REST calls too. Nothing here decides anything.

pub(crate) mod files;
mod identity;
mod invitations;
mod locks;
mod plugins;
mod policies;
mod workspaces;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::authz::{Caller, Scope};
use crate::service::Warrant;
use crate::{Error, Result};

/// What a tool call produces before it becomes an MCP result.
pub(crate) type ToolFuture = BoxFuture<'static, Result<CallToolResult>>;

type Handler = dyn Fn(Arc<Warrant>, Caller, Value) -> ToolFuture + Send + Sync;

/// One tool.
pub(crate) struct ToolSpec {
    /// The MCP definition (name, description, input schema, hints).
    pub tool: Tool,
    /// The scope a credential needs to ever use the tool; `None`: any credential.
    pub scope: Option<Scope>,
    handler: Arc<Handler>,
}

/// Every tool, by name, in a stable order.
pub(crate) struct Catalogue {
    tools: Vec<ToolSpec>,
    by_name: HashMap<String, usize>,
}

impl Catalogue {
    /// Builds the catalogue (once, at start).
    pub fn new() -> Catalogue {
        let mut tools = Vec::new();
        identity::register(&mut tools);
        workspaces::register(&mut tools);
        files::register(&mut tools);
        locks::register(&mut tools);
        policies::register(&mut tools);
        plugins::register(&mut tools);
        invitations::register(&mut tools);
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.tool.name.to_string(), i))
            .collect();
        Catalogue { tools, by_name }
    }

    /// The tools a caller's scopes can ever use.
    pub fn visible<'a>(&'a self, caller: &'a Caller) -> impl Iterator<Item = &'a ToolSpec> + 'a {
        self.tools
            .iter()
            .filter(|t| t.scope.is_none_or(|s| caller.grant.scopes.allows(s)))
    }

    /// A tool by name.
    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// Every tool.
    #[cfg(test)]
    pub fn all(&self) -> &[ToolSpec] {
        &self.tools
    }
}

impl ToolSpec {
    /// Runs the tool for `caller`.
    pub fn call(&self, warrant: Arc<Warrant>, caller: Caller, args: Value) -> ToolFuture {
        (self.handler)(warrant, caller, args)
    }
}

/// How a tool behaves, for the client's hints.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// Reads only.
    Read,
    /// Changes state; repeating it has the same effect.
    Idempotent,
    /// Changes state.
    Write,
    /// Removes something.
    Destructive,
}

/// The JSON Schema (2020-12, as MCP asks) of a tool's input.
fn input_schema<I: JsonSchema>() -> Arc<JsonObject> {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<I>();
    let mut object = match serde_json::to_value(schema) {
        Ok(Value::Object(o)) => o,
        _ => JsonObject::new(),
    };
    object.remove("$schema");
    object
        .entry("type")
        .or_insert_with(|| Value::String("object".into()));
    Arc::new(object)
}

/// Adds a tool whose input is `I` and whose work is `f`.
pub(crate) fn add<I, F, Fut>(
    tools: &mut Vec<ToolSpec>,
    name: &'static str,
    description: &'static str,
    scope: Option<Scope>,
    kind: Kind,
    f: F,
) where
    I: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(Arc<Warrant>, Caller, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<CallToolResult>> + Send + 'static,
{
    let mut annotations = ToolAnnotations::default();
    annotations.read_only_hint = Some(matches!(kind, Kind::Read));
    annotations.destructive_hint = Some(matches!(kind, Kind::Destructive));
    annotations.idempotent_hint = Some(matches!(kind, Kind::Read | Kind::Idempotent));
    annotations.open_world_hint = Some(false);
    let tool = Tool::new(name, description, input_schema::<I>()).annotate(annotations);
    let f = Arc::new(f);
    let handler: Arc<Handler> = Arc::new(move |warrant, caller, args| {
        let f = f.clone();
        Box::pin(async move {
            let input: I = serde_json::from_value(args)
                .map_err(|e| Error::Unprocessable(format!("invalid arguments: {e}")))?;
            f(warrant, caller, input).await
        })
    });
    tools.push(ToolSpec {
        tool,
        scope,
        handler,
    });
}

/// A successful result with `value` as structured content (and as JSON text for older
/// clients).
pub(crate) fn structured<T: Serialize>(value: &T) -> Result<CallToolResult> {
    let value = serde_json::to_value(value)
        .map_err(|e| Error::Internal(format!("cannot serialise a tool result: {e}")))?;
    Ok(CallToolResult::structured(value))
}

/// A successful result with a short confirmation.
pub(crate) fn done(message: impl Into<String>) -> Result<CallToolResult> {
    let message = message.into();
    let mut result =
        CallToolResult::structured(serde_json::json!({ "ok": true, "message": message }));
    result.content = vec![ContentBlock::text(message)];
    Ok(result)
}

/// A refused or failed call as a tool error (`isError: true`), rendered by the same
/// error-to-problem mapping as REST, with text that says which layer refused and why.
pub(crate) fn tool_error(err: &Error) -> CallToolResult {
    let (_, body, _) = crate::api::problem(err);
    CallToolResult::structured_error(body.clone()).with_text(describe(err, &body))
}

/// One sentence a model can repeat to its user: who refused, why, and what would help.
pub(crate) fn describe(err: &Error, body: &Value) -> String {
    let detail = body["detail"].as_str().unwrap_or("the call failed");
    let code = err.code();
    match err {
        Error::Forbidden(decision) => {
            let layer = decision.layer.map(|l| l.as_str()).unwrap_or("policy");
            let mut text = format!("refused by the {layer} layer ({code}): {detail}");
            if decision.reasons.len() > 1 {
                text.push_str(&format!(" [{}]", decision.reasons.join("; ")));
            }
            if !decision.policy_ids.is_empty() {
                text.push_str(&format!(" (policies: {})", decision.policy_ids.join(", ")));
            }
            if let Some(scope) = decision.required_scope {
                text.push_str(&format!(" — the token needs the scope {scope}"));
            }
            text
        }
        _ => format!("{code}: {detail}"),
    }
}

trait WithText {
    fn with_text(self, text: String) -> Self;
}

impl WithText for CallToolResult {
    fn with_text(mut self, text: String) -> Self {
        self.content = vec![ContentBlock::text(text)];
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_and_a_unique_name() {
        let catalogue = Catalogue::new();
        let mut names = std::collections::HashSet::new();
        for spec in catalogue.all() {
            assert!(
                names.insert(spec.tool.name.to_string()),
                "{}",
                spec.tool.name
            );
            assert_eq!(
                spec.tool.input_schema.get("type"),
                Some(&Value::String("object".into())),
                "{}",
                spec.tool.name
            );
            assert!(
                spec.tool
                    .description
                    .as_deref()
                    .is_some_and(|d| d.len() > 20)
            );
        }
        assert!(catalogue.get("read_file").is_some());
        assert!(catalogue.get("write_file").is_some());
    }
}
