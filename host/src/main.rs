//! The `warrant` binary: parses the command line and hands over to [`warrant::cli`].

use std::process::ExitCode;

/// mimalloc, not glibc's malloc: every request allocates and frees on the tokio workers, the
/// blocking pool and SQLite's threads, and glibc's arenas are each behind a lock those
/// threads share. On a loaded server the waits for that lock (futex sleeps and wake-ups) were
/// the largest single cost of an authorised read in a profile (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    limit_malloc_arenas();
    match warrant::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the chain of causes on one line, without a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc's malloc still serves what C code allocates (SQLite's pages and statements). It gives
/// every thread that allocates an arena of its own, up to eight per core; when it served Rust
/// too, under the load benchmark RSS reached 186 MiB with the default and 117 MiB with two
/// arenas, at the same throughput. One arena per core, unless `MALLOC_ARENA_MAX` says
/// otherwise (glibc reads it itself); with mimalloc serving Rust, 16 arenas measured the same
/// as two (docs/performance.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(2);
    // SAFETY: `mallopt` only sets an allocator parameter; it is called before any other
    // thread exists, and a refused value (return 0) leaves glibc's default in place.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
