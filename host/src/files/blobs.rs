//! Blob storage on disk. Every version of a file is its own blob, written to a temporary file,
//! fsynced and renamed into place, so a crash never leaves a half-written blob visible and
//! readers of an older version are never disturbed by a writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::fs;
use tokio::io::AsyncWriteExt;

use super::blob_cache::BlobCache;
use crate::Error;

/// A blob's bytes as a read hands them over.
pub enum BlobContents {
    /// All of it, read in one go.
    Whole(bytes::Bytes),
    /// An open file, to stream.
    Stream(fs::File),
}

/// A blob written to disk.
#[derive(Debug, Clone)]
pub struct StoredBlob {
    /// Its id (also its file name).
    pub id: String,
    /// Bytes written.
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

/// The folder of blobs under the data directory, and the small ones kept in memory.
#[derive(Clone)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
    cache: Arc<BlobCache>,
}

impl BlobStore {
    /// Names `<data_dir>/blobs` and `<data_dir>/tmp`; touches nothing on disk until
    /// [`BlobStore::prepare`], so admin commands that never store files create no folders.
    /// Small blobs read whole are kept in memory, up to `cache_bytes` of them
    /// ([`super::blob_cache`]).
    pub fn new(data_dir: &Path, cache_bytes: usize) -> Self {
        BlobStore {
            root: data_dir.join("blobs"),
            tmp: data_dir.join("tmp"),
            cache: Arc::new(BlobCache::new(cache_bytes)),
        }
    }

    /// Creates the folders and clears temporary files a crash left behind.
    pub async fn prepare(&self) -> Result<(), Error> {
        fs::create_dir_all(&self.root).await?;
        if fs::try_exists(&self.tmp).await? {
            fs::remove_dir_all(&self.tmp).await?;
        }
        fs::create_dir_all(&self.tmp).await?;
        Ok(())
    }

    fn path_of(&self, id: &str) -> PathBuf {
        // Two levels of fan-out keep folders small.
        self.root.join(&id[id.len().saturating_sub(2)..]).join(id)
    }

    /// Streams `body` to a new blob, hashing as it goes; refuses more than `limit` bytes.
    pub async fn write<S, E>(&self, body: S, limit: u64) -> Result<StoredBlob, Error>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tmp_path = self.tmp.join(&id);
        let result = self.write_tmp(&tmp_path, body, limit).await;
        let (size, sha256) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_file(&tmp_path).await;
                return Err(e);
            }
        };
        let final_path = self.path_of(&id);
        if let Some(parent) = final_path.parent() {
            fs::create_dir_all(parent).await?;
        }
        fs::rename(&tmp_path, &final_path).await?;
        if let Some(parent) = final_path.parent() {
            // Make the rename itself durable.
            fs::File::open(parent).await?.sync_all().await?;
        }
        Ok(StoredBlob { id, size, sha256 })
    }

    async fn write_tmp<S, E>(
        &self,
        path: &Path,
        mut body: S,
        limit: u64,
    ) -> Result<(u64, String), Error>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut file = fs::File::create(path).await?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| classify_body_error(&e.to_string(), limit))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(Error::PayloadTooLarge { limit });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// Opens a blob of `size` bytes for reading: read whole when it is at most `whole_up_to`
    /// bytes (from memory when kept, else one trip to the blocking pool for open, read and
    /// close, where streaming costs one per read), else as an open file to stream.
    pub async fn read_blob(
        &self,
        id: &str,
        size: u64,
        whole_up_to: u64,
    ) -> Result<BlobContents, Error> {
        let path = self.path_of(id);
        let read = if size <= whole_up_to {
            if let Some(bytes) = self.cache.get(id) {
                return Ok(BlobContents::Whole(bytes));
            }
            fs::read(path).await.map(|v| {
                let bytes = bytes::Bytes::from(v);
                self.cache.put(id, &bytes);
                BlobContents::Whole(bytes)
            })
        } else {
            fs::File::open(path).await.map(BlobContents::Stream)
        };
        match read {
            Ok(contents) => Ok(contents),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound("file")),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a blob no version points at any more; a missing blob is not an error.
    pub async fn remove(&self, id: &str) {
        self.cache.forget(id);
        if let Err(e) = fs::remove_file(self.path_of(id)).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(blob = id, error = %e, "could not remove an unused blob");
        }
    }
}

/// A body stream error caused by the transport's own length limit is a 413, not a 400.
fn classify_body_error(message: &str, limit: u64) -> Error {
    if message.contains("length limit") {
        Error::PayloadTooLarge { limit }
    } else {
        Error::BadRequest(format!("the request body could not be read: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store_with(cache_bytes: usize) -> BlobStore {
        let dir = std::env::temp_dir().join(crate::identity::new_id("blobs-test"));
        let store = BlobStore::new(&dir, cache_bytes);
        store.prepare().await.unwrap();
        store
    }

    async fn put(store: &BlobStore, bytes: &'static [u8]) -> StoredBlob {
        let body =
            futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(bytes))]);
        store.write(body, 1 << 20).await.unwrap()
    }

    async fn read(store: &BlobStore, blob: &StoredBlob) -> Result<Vec<u8>, Error> {
        match store.read_blob(&blob.id, blob.size, 1 << 10).await? {
            BlobContents::Whole(b) => Ok(b.to_vec()),
            BlobContents::Stream(_) => panic!("a small blob is read whole"),
        }
    }

    #[tokio::test]
    async fn a_small_blob_read_again_comes_from_memory_until_removed() {
        let store = store_with(1 << 20).await;
        let blob = put(&store, b"kept").await;
        assert_eq!(read(&store, &blob).await.unwrap(), b"kept");
        // Gone from disk behind the store's back: the second read never touches the disk.
        std::fs::remove_file(store.path_of(&blob.id)).unwrap();
        assert_eq!(read(&store, &blob).await.unwrap(), b"kept");
        store.remove(&blob.id).await;
        assert!(matches!(read(&store, &blob).await, Err(Error::NotFound(_))));
    }

    #[tokio::test]
    async fn without_memory_every_read_is_from_disk() {
        let store = store_with(0).await;
        let blob = put(&store, b"not kept").await;
        assert_eq!(read(&store, &blob).await.unwrap(), b"not kept");
        std::fs::remove_file(store.path_of(&blob.id)).unwrap();
        assert!(matches!(read(&store, &blob).await, Err(Error::NotFound(_))));
    }

    #[tokio::test]
    async fn a_blob_streamed_is_not_kept() {
        let store = store_with(1 << 20).await;
        let blob = put(&store, b"streamed, not whole").await;
        let contents = store.read_blob(&blob.id, blob.size, 4).await.unwrap();
        assert!(matches!(contents, BlobContents::Stream(_)));
        assert!(store.cache.get(&blob.id).is_none());
    }
}
