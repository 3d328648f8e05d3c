//! Compiling plugin components, and the on-disk cache of compiled artefacts.
//!
//! Compiling a component takes tens of milliseconds; loading an artefact compiled earlier
//! takes a fraction of one. Artefacts are keyed by the component's SHA-256 digest and by the
//! engine's compatibility hash (wasmtime version and settings), and only ever written by this
//! process: bytes from users are always compiled, never deserialized.
#![allow(unsafe_code)]

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// The first eight bytes of every component binary (a core module has version 1 instead).
pub const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// Where compiled artefacts are kept.
pub struct ArtefactCache {
    dir: Option<PathBuf>,
    engine_tag: String,
}

impl ArtefactCache {
    /// A cache in `dir` (None: compile every time, e.g. in unit tests and benches).
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        ArtefactCache {
            dir,
            engine_tag: format!("{:016x}", h.finish()),
        }
    }

    fn path_of(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_tag)))
    }

    /// The compiled component of `bytes` (whose digest is `digest`): from the cache when it
    /// holds it, else compiled now and cached.
    pub fn load(&self, engine: &Engine, digest: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
        if let Some(path) = self.path_of(digest)
            && path.exists()
        {
            // SAFETY: the file is one this process (or an earlier run of it with the same
            // engine tag) wrote below from a component it compiled itself, in the server's
            // private data directory; users never supply artefacts.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "discarding an unreadable plugin artefact")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Some(path) = self.path_of(digest)
            && let Err(e) = write_atomically(&path, &component.serialize()?)
        {
            tracing::warn!(error = %e, path = %path.display(), "could not cache a compiled plugin");
        }
        Ok(component)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
