//! Personal access tokens: `wrt_pat_` + 32 base62 characters of randomness + 6 base62
//! characters of a CRC32 of everything before them. The checksum lets a secret scanner (and
//! our own front door) recognise a real token offline, before any database lookup.
//! Tokens carry ~190 bits of randomness, so one fast SHA-256 is the right hash: a slow
//! password hash would add nothing but latency to every request.

use rand::Rng;
use sha2::{Digest, Sha256};

/// The prefix of every personal access token.
pub const PREFIX: &str = "wrt_pat_";
const RANDOM_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
/// The full length of a token.
pub const TOKEN_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A token secret. It has no `Debug` or `Display`, so it cannot end up in a log by accident.
pub struct TokenSecret(String);

impl TokenSecret {
    /// A fresh random token.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut token = String::with_capacity(TOKEN_LEN);
        token.push_str(PREFIX);
        for _ in 0..RANDOM_LEN {
            token.push(BASE62[rng.random_range(0..BASE62.len())] as char);
        }
        let checksum = checksum(&token);
        token.push_str(&checksum);
        TokenSecret(token)
    }

    /// The secret, to show once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash stored in place of the secret.
    pub fn hash(&self) -> String {
        hash(&self.0)
    }
}

/// Why a presented string is not a well-formed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Not a Warrant personal access token at all.
    #[error("not a personal access token")]
    NotAPat,
    /// Right prefix, wrong length or alphabet.
    #[error("malformed personal access token")]
    Malformed,
    /// The checksum does not match: a typo or a forgery.
    #[error("personal access token checksum mismatch")]
    BadChecksum,
}

/// Checks prefix, length, alphabet and checksum of a presented token, without any I/O.
pub fn check_format(token: &str) -> Result<(), FormatError> {
    if !token.starts_with(PREFIX) {
        return Err(FormatError::NotAPat);
    }
    if token.len() != TOKEN_LEN
        || !token
            .bytes()
            .skip(PREFIX.len())
            .all(|b| b.is_ascii_alphanumeric())
    {
        return Err(FormatError::Malformed);
    }
    let (body, sum) = token.split_at(TOKEN_LEN - CHECKSUM_LEN);
    if super::constant_time_eq(checksum(body).as_bytes(), sum.as_bytes()) {
        Ok(())
    } else {
        Err(FormatError::BadChecksum)
    }
}

/// The stored hash of a token: hex SHA-256.
pub fn hash(token: &str) -> String {
    Hash::of(token).as_str().to_owned()
}

/// [`hash`] on the stack: a presented token is looked up in the cache of resolved tokens on
/// every request, without allocating.
pub struct Hash([u8; 64]);

impl Hash {
    /// The hash of `token`.
    pub fn of(token: &str) -> Self {
        let mut hex = [0u8; 64];
        // 32 bytes always fit 64 hex digits.
        let _ = hex::encode_to_slice(Sha256::digest(token.as_bytes()), &mut hex);
        Hash(hex)
    }

    /// As text.
    pub fn as_str(&self) -> &str {
        // Hex digits are ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// CRC32 of `body`, as 6 base62 characters, left-padded with `0`.
fn checksum(body: &str) -> String {
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|b| *b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored hashes are lowercase hex SHA-256, as every earlier version stored them: a token
    /// minted before still resolves.
    #[test]
    fn the_hash_is_lowercase_hex_sha256() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash("abc"), abc);
        assert_eq!(Hash::of("abc").as_str(), abc);
    }

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let t = TokenSecret::generate();
        assert_eq!(t.expose().len(), TOKEN_LEN);
        assert!(t.expose().starts_with("wrt_pat_"));
        assert_eq!(check_format(t.expose()), Ok(()));
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let t = TokenSecret::generate();
        let mut s = t.expose().to_string();
        let i = PREFIX.len() + 3;
        let c = if &s[i..=i] == "a" { "b" } else { "a" };
        s.replace_range(i..=i, c);
        assert_eq!(check_format(&s), Err(FormatError::BadChecksum));
    }

    #[test]
    fn wrong_shapes_are_refused() {
        assert_eq!(check_format("ghp_abc"), Err(FormatError::NotAPat));
        assert_eq!(check_format("wrt_pat_short"), Err(FormatError::Malformed));
        let t = TokenSecret::generate();
        let with_symbol = format!("{}-{}", &t.expose()[..20], &t.expose()[21..]);
        assert_eq!(check_format(&with_symbol), Err(FormatError::Malformed));
    }

    #[test]
    fn hash_is_not_the_secret() {
        let t = TokenSecret::generate();
        assert!(!t.hash().contains(&t.expose()[PREFIX.len()..]));
        assert_eq!(t.hash(), hash(t.expose()));
    }
}
