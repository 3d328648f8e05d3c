//! Files: path rules and blob storage on disk. Metadata lives in `store::files`; the
//! operations that combine both, behind the decision pipeline, live in `service::files`.

pub mod blobs;
pub mod path;

pub use blobs::{BlobStore, StoredBlob};
pub use path::{FilePath, FolderPrefix};
