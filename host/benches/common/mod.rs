//! What the benches that run on a real database share: the runtime the server runs on, and a
//! SQLite file of their own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

/// The server's runtime on this machine: two workers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh, empty folder `warrant-<name>-bench-<pid>` in the temporary directory, and the URL
/// of a SQLite file in it. The bench removes the folder when it is done.
pub fn fresh_database(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("warrant-{name}-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/bench.db", dir.display());
    (dir, url)
}
