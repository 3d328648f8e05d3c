//! What the example plugins share: path globs, action classes, strict config parsing, and the
//! few items a `no_std` plugin must bring itself ([`fresh_instance_runtime!`]). Apart from
//! that macro, plain Rust with no Wasm specifics, so it is unit-tested on the host.
//!
//! `no_std` (with `alloc`): the example plugins are built without Rust's standard library,
//! which imports WASI interfaces a plugin never gets; each import is linked and lowered on
//! every instantiation, and a fresh instance is made for every evaluation. Without them a
//! plugin's fresh instance + call costs ~3 µs less (docs/performance.md).

#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

#[cfg(target_arch = "wasm32")]
pub mod fresh_instance;

use serde::de::DeserializeOwned;

/// Parses a plugin's JSON configuration, with a message fit for the person attaching it.
pub fn parse_config<T: DeserializeOwned>(config: &str) -> Result<T, String> {
    serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))
}

/// Actions that only read.
pub fn is_read(action: &str) -> bool {
    matches!(
        action,
        "files:read" | "files:list" | "workspace:read" | "members:list" | "policies:read"
    )
}

/// Actions that put bytes into a file.
pub const WRITE_ACTIONS: [&str; 3] = ["files:write", "files:import", "files:move"];

/// Whether `action` is one of [`WRITE_ACTIONS`].
pub fn is_write(action: &str) -> bool {
    WRITE_ACTIONS.contains(&action)
}

/// The lower-case extension of a path's last segment, without the dot ("" when none).
pub fn extension(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or("");
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// Checks a glob: `*` matches within one path segment, `**` any number of whole segments.
pub fn check_glob(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.starts_with('/') {
        return Err(format!("glob `{pattern}` must be a relative path pattern"));
    }
    for seg in pattern.split('/') {
        if seg.contains("**") && seg != "**" {
            return Err(format!("glob `{pattern}`: `**` must be a whole path segment"));
        }
    }
    Ok(())
}

/// Whether `path` matches `pattern` (see [`check_glob`]). A folder path ends in `/`.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    match_segments(&pat, &segs)
}

fn match_segments(pat: &[&str], segs: &[&str]) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((&"**", rest)) => (0..=segs.len()).any(|skip| match_segments(rest, &segs[skip..])),
        Some((p, rest)) => match segs.split_first() {
            Some((s, more)) => match_segment(p, s) && match_segments(rest, more),
            None => false,
        },
    }
}

fn match_segment(pattern: &str, seg: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == seg,
        Some((head, tail)) => {
            let Some(after) = seg.strip_prefix(head) else {
                return false;
            };
            (0..=after.len())
                .filter(|i| after.is_char_boundary(*i))
                .any(|i| match_segment(tail, &after[i..]))
        }
    }
}

/// Whether something under the folder `prefix` (`""` is the top) could match `pattern`:
/// listing a folder is allowed when the glob reaches into it or it lies inside the glob.
pub fn could_contain(prefix: &str, pattern: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    if glob_match(pattern, prefix) || glob_match(pattern, prefix.trim_end_matches('/')) {
        return true;
    }
    let literal = pattern.split('*').next().unwrap_or("");
    literal.starts_with(prefix) || prefix.starts_with(literal) && pattern.contains("**")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("drafts/**", "drafts/a.txt"));
        assert!(glob_match("drafts/**", "drafts/x/y/z.md"));
        assert!(glob_match("drafts/**", "drafts/"));
        assert!(!glob_match("drafts/**", "draftsx/a.txt"));
        assert!(!glob_match("drafts/**", "other/drafts/a.txt"));
        assert!(glob_match("**/*.md", "a/b/c.md"));
        assert!(glob_match("**/*.md", "c.md"));
        assert!(glob_match("reports/*.csv", "reports/q1.csv"));
        assert!(!glob_match("reports/*.csv", "reports/2024/q1.csv"));
        assert!(glob_match("*", "a.txt"));
        assert!(!glob_match("*", "a/b.txt"));
    }

    #[test]
    fn listing() {
        assert!(could_contain("", "drafts/**"));
        assert!(could_contain("drafts/", "drafts/**"));
        assert!(could_contain("drafts/x/", "drafts/**"));
        assert!(!could_contain("secret/", "drafts/**"));
    }

    #[test]
    fn extensions_and_globs_checked() {
        assert_eq!(extension("a/b/Setup.EXE"), "exe");
        assert_eq!(extension("a/.bashrc"), "");
        assert_eq!(extension("a/noext"), "");
        assert!(check_glob("a/**").is_ok());
        assert!(check_glob("/abs").is_err());
        assert!(check_glob("a/x**").is_err());
    }
}
