//! Files: path rules, blob storage on disk (small blobs also kept in memory), and the SSRF-safe fetcher of URL imports.
//! Metadata lives in `store::files`; the operations that combine them, behind the decision
//! pipeline, live in `service::files` and `service::imports`.

pub mod blob_cache;
pub mod blobs;
pub mod import;
pub mod path;

pub use blobs::{BlobContents, BlobStore, StoredBlob};
pub use path::{FilePath, FolderPrefix};
