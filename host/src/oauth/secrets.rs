//! Opaque OAuth secrets: client secrets (`wrt_cs_`), refresh tokens (`wrt_rt_`),
//! authorization codes and session ids. Each carries 256 bits of randomness, so one fast
//! SHA-256 is the right stored hash (argon2 is for low-entropy human passwords).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The prefix of client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "wrt_cs_";
/// The prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "wrt_rt_";

/// A secret to show once. No `Debug` or `Display`: it cannot reach a log by accident.
pub struct Secret(String);

impl Secret {
    /// `prefix` followed by 32 random bytes in base64url.
    pub fn generate(prefix: &str) -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Secret(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The secret itself, to hand to its holder once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored in its place.
    pub fn hash(&self) -> String {
        hash(&self.0)
    }
}

/// The stored hash of a secret: hex SHA-256.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Checks a presented secret against a stored hash in constant time.
pub fn matches(presented: &str, stored_hash: &str) -> bool {
    crate::credentials::constant_time_eq(hash(presented).as_bytes(), stored_hash.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_verify_by_hash() {
        let a = Secret::generate(CLIENT_SECRET_PREFIX);
        let b = Secret::generate(CLIENT_SECRET_PREFIX);
        assert!(a.expose().starts_with("wrt_cs_"));
        assert_ne!(a.expose(), b.expose());
        assert!(matches(a.expose(), &a.hash()));
        assert!(!matches(b.expose(), &a.hash()));
    }
}
