//! Files: path rules, blob storage on disk, and the SSRF-safe fetcher of URL imports.
//! Metadata lives in `store::files`; the operations that combine them, behind the decision
//! pipeline, live in `service::files` and `service::imports`.

pub mod blobs;
pub mod import;
pub mod path;

pub use blobs::{BlobContents, BlobStore, StoredBlob};
pub use path::{FilePath, FolderPrefix};
