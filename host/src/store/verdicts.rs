//! What the plugins said about a logged decision, as the decision log stores it: a JSON array
//! of one compact array per verdict, `[plugin_id, name, version, mode, verdict, elapsed_us,
//! reused (0 or 1), reason?]`, written on the request path and expanded to the API's objects
//! only when a record is read back.
//!
//! Every request that reaches a plugin logs its verdicts. As serde's objects, two of them were
//! ~290 bytes, most of it keys, serialised on the request thread and then carried through the
//! log's B-tree, WAL and checkpoint: together a few percent of a logged request's cost. Rows
//! written before this form hold those objects; they are read back as they are.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// One verdict's fields, borrowed from whatever holds them.
#[derive(Debug, Clone, Copy)]
pub struct Verdict<'a> {
    /// The plugin's id.
    pub plugin_id: &'a str,
    /// Its name when it ran.
    pub name: &'a str,
    /// The version that ran.
    pub version: i64,
    /// `enforce` or `shadow`.
    pub mode: &'a str,
    /// `allow`, `deny`, `abstain`, `skipped` or `error`.
    pub verdict: &'a str,
    /// Its reason or error, if any.
    pub reason: Option<&'a str>,
    /// Time the evaluation took, in microseconds.
    pub elapsed_us: u64,
    /// Given again from the plugin's kept verdicts rather than evaluated.
    pub reused: bool,
}

/// The stored text of `verdicts`: None when there are none.
pub fn stored<'a>(verdicts: impl IntoIterator<Item = Verdict<'a>>) -> Option<String> {
    let list: Vec<Compact<'a>> = verdicts.into_iter().map(Compact::from).collect();
    if list.is_empty() {
        return None;
    }
    // Room for a typical verdict each, so that it is not grown as it is written.
    let mut out = Vec::with_capacity(list.len() * 96);
    serde_json::to_writer(&mut out, &list).ok()?;
    String::from_utf8(out).ok()
}

/// A verdict as stored: written borrowed, read back owned.
#[derive(Serialize, Deserialize)]
struct Compact<'a>(
    Cow<'a, str>,
    Cow<'a, str>,
    i64,
    Cow<'a, str>,
    Cow<'a, str>,
    u64,
    u8,
    #[serde(default, skip_serializing_if = "Option::is_none")] Option<Cow<'a, str>>,
);

impl<'a> From<Verdict<'a>> for Compact<'a> {
    fn from(v: Verdict<'a>) -> Self {
        Compact(
            v.plugin_id.into(),
            v.name.into(),
            v.version,
            v.mode.into(),
            v.verdict.into(),
            v.elapsed_us,
            u8::from(v.reused),
            v.reason.map(Cow::from),
        )
    }
}

/// A verdict as the API gives it (the fields and order of `authz::plugins::PluginVerdict`).
#[derive(Serialize)]
struct Expanded {
    plugin_id: Cow<'static, str>,
    name: Cow<'static, str>,
    version: i64,
    mode: Cow<'static, str>,
    verdict: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Cow<'static, str>>,
    elapsed_us: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reused: bool,
}

/// Either stored form, read back.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Compact(Vec<Compact<'static>>),
    /// Written before the compact form: the API's objects already.
    Objects(serde_json::Value),
}

/// Serializes stored verdicts as the API's objects (null if the text is not either form).
pub fn serialize_stored<S: serde::Serializer>(
    text: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match text.as_deref().and_then(|t| serde_json::from_str(t).ok()) {
        Some(Stored::Compact(list)) => serializer.collect_seq(list.into_iter().map(|c| Expanded {
            plugin_id: c.0,
            name: c.1,
            version: c.2,
            mode: c.3,
            verdict: c.4,
            elapsed_us: c.5,
            reused: c.6 != 0,
            reason: c.7,
        })),
        Some(Stored::Objects(value)) => value.serialize(serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(reason: Option<&'static str>, reused: bool) -> Verdict<'static> {
        Verdict {
            plugin_id: "plg_1",
            name: "path-guard",
            version: 3,
            mode: "enforce",
            verdict: "deny",
            reason,
            elapsed_us: 12,
            reused,
        }
    }

    /// Reads stored text back as the API gives it.
    fn read(text: Option<String>) -> serde_json::Value {
        #[derive(Serialize)]
        struct Row(#[serde(serialize_with = "serialize_stored")] Option<String>);
        serde_json::to_value(Row(text)).unwrap()
    }

    #[test]
    fn no_verdicts_store_nothing() {
        assert_eq!(stored(std::iter::empty()), None);
        assert_eq!(read(None), serde_json::Value::Null);
    }

    #[test]
    fn the_compact_form_reads_back_as_the_objects() {
        let text = stored([verdict(None, true), verdict(Some("no"), false)]).unwrap();
        assert_eq!(
            text,
            r#"[["plg_1","path-guard",3,"enforce","deny",12,1],["plg_1","path-guard",3,"enforce","deny",12,0,"no"]]"#
        );
        assert_eq!(
            read(Some(text)),
            serde_json::json!([
                {"plugin_id": "plg_1", "name": "path-guard", "version": 3, "mode": "enforce",
                 "verdict": "deny", "elapsed_us": 12, "reused": true},
                {"plugin_id": "plg_1", "name": "path-guard", "version": 3, "mode": "enforce",
                 "verdict": "deny", "reason": "no", "elapsed_us": 12},
            ])
        );
    }

    #[test]
    fn a_reason_with_quotes_and_control_characters_survives() {
        let reason = "a \"quoted\" \\ path\nwith\ta\u{1}control and ünïcode";
        let text = stored([verdict(Some(reason), false)]).unwrap();
        assert_eq!(read(Some(text))[0]["reason"], reason);
    }

    #[test]
    fn rows_written_as_objects_read_back_as_they_are() {
        let old = r#"[{"plugin_id":"plg_1","name":"path-guard","version":1,"mode":"enforce","verdict":"allow","elapsed_us":3}]"#;
        assert_eq!(
            read(Some(old.into())),
            serde_json::from_str::<serde_json::Value>(old).unwrap()
        );
        assert_eq!(read(Some("not json".into())), serde_json::Value::Null);
    }
}
