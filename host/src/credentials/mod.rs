//! Secrets: personal access tokens (format, checksum, hashing) and password hashing.

pub mod cache;
pub mod password;
pub mod pat;

use subtle::ConstantTimeEq;

/// Compares two secrets (or hashes) in constant time.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
