//! File paths inside a workspace. Only canonical paths are accepted, so one file has exactly
//! one name: relative, `/`-separated, no empty, `.` or `..` segments, no control characters or
//! backslashes, at most 1024 bytes (255 per segment).

use crate::Error;

const MAX_PATH_BYTES: usize = 1024;
const MAX_SEGMENT_BYTES: usize = 255;

/// A validated file path (`reports/2026/q3.pdf`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePath(String);

/// A validated folder prefix for listings: empty, or a canonical path ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPrefix(String);

fn check_segments(path: &str) -> Result<(), Error> {
    if path.len() > MAX_PATH_BYTES {
        return Err(Error::InvalidPath(format!(
            "a path may have at most {MAX_PATH_BYTES} bytes"
        )));
    }
    if path.starts_with('/') {
        return Err(Error::InvalidPath(
            "a path must be relative (no leading `/`)".into(),
        ));
    }
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(Error::InvalidPath(format!(
            "a path may not contain control characters (found U+{:04X})",
            u32::from(c)
        )));
    }
    if path.contains('\\') {
        return Err(Error::InvalidPath("a path may not contain `\\`".into()));
    }
    for segment in path.split('/') {
        match segment {
            "" => {
                return Err(Error::InvalidPath(
                    "a path may not contain empty segments (`//`)".into(),
                ));
            }
            "." | ".." => {
                return Err(Error::InvalidPath(
                    "a path may not contain `.` or `..` segments".into(),
                ));
            }
            s if s.len() > MAX_SEGMENT_BYTES => {
                return Err(Error::InvalidPath(format!(
                    "a path segment may have at most {MAX_SEGMENT_BYTES} bytes"
                )));
            }
            s if s.trim() != s => {
                return Err(Error::InvalidPath(
                    "a path segment may not start or end with whitespace".into(),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

impl FilePath {
    /// Validates a file path.
    pub fn parse(path: &str) -> Result<Self, Error> {
        if path.is_empty() {
            return Err(Error::InvalidPath("the path is empty".into()));
        }
        if path.ends_with('/') {
            return Err(Error::InvalidPath(
                "a file path may not end with `/`".into(),
            ));
        }
        check_segments(path)?;
        Ok(FilePath(path.to_string()))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FolderPrefix {
    /// Validates a listing prefix (empty for the whole workspace).
    pub fn parse(prefix: &str) -> Result<Self, Error> {
        if prefix.is_empty() {
            return Ok(FolderPrefix(String::new()));
        }
        if !prefix.ends_with('/') {
            return Err(Error::InvalidPath(
                "a folder prefix must end with `/`".into(),
            ));
        }
        check_segments(&prefix[..prefix.len() - 1])?;
        Ok(FolderPrefix(prefix.to_string()))
    }

    /// The prefix as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_are_accepted() {
        for p in [
            "a",
            "a/b.txt",
            "reports/2026/q3 final.pdf",
            "ünïcode/ファイル",
        ] {
            assert!(FilePath::parse(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn traversal_and_odd_paths_are_refused() {
        let long = "a".repeat(2000);
        for p in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "./a",
            "a/.",
            "a\0b",
            "a\u{1}b",
            "a\\b",
            "dir/",
            " a",
            long.as_str(),
        ] {
            assert!(FilePath::parse(p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn folder_prefixes_end_with_slash() {
        assert!(FolderPrefix::parse("").is_ok());
        assert!(FolderPrefix::parse("a/b/").is_ok());
        assert!(FolderPrefix::parse("a/b").is_err());
        assert!(FolderPrefix::parse("../").is_err());
    }
}
