//! Signing keys: Ed25519 (JWS `EdDSA`), each with a `kid`. The newest key signs; older public
//! keys stay published in the JWKS until every token they signed has expired.
//!
//! Keys live in the database (table `oauth_signing_keys`), so every replica of a PostgreSQL
//! deployment signs and verifies with the same set; the private half is a PKCS#8 document.
//! Protect the database as you protect the server's secrets (see docs/oauth.md).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;
use serde::Serialize;

/// The PKCS#8 (RFC 8410) prefix of an Ed25519 private key; the 32-byte seed follows it.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A stored key, as the database holds it.
#[derive(Clone)]
pub struct StoredKey {
    /// The key id (`kid` header).
    pub kid: String,
    /// The private key: PKCS#8 DER, standard base64.
    pub private_pkcs8: String,
    /// The public key: the JWK `x` (base64url of the 32 bytes).
    pub public_x: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When a newer key took over signing.
    pub retired_at: Option<i64>,
}

impl StoredKey {
    /// A fresh random Ed25519 key.
    pub fn generate(now: i64) -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = signing.verifying_key().to_bytes();
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&PKCS8_ED25519_PREFIX);
        der.extend_from_slice(&seed);
        StoredKey {
            kid: crate::identity::new_id("key"),
            private_pkcs8: STANDARD.encode(&der),
            public_x: URL_SAFE_NO_PAD.encode(public),
            created_at: now,
            retired_at: None,
        }
    }
}

/// One public key in the JWKS (RFC 7517, OKP key type of RFC 8037).
#[derive(Debug, Clone, Serialize)]
pub struct PublicJwk {
    /// `OKP`
    pub kty: &'static str,
    /// `Ed25519`
    pub crv: &'static str,
    /// The public key.
    pub x: String,
    /// The key id.
    pub kid: String,
    /// `EdDSA`
    pub alg: &'static str,
    /// `sig`
    #[serde(rename = "use")]
    pub use_: &'static str,
}

/// The keys in force: the one that signs, and every one that may still verify.
pub struct KeyRing {
    signing: Option<(String, EncodingKey)>,
    verifying: HashMap<String, DecodingKey>,
    jwks: Vec<PublicJwk>,
}

impl KeyRing {
    /// A ring from stored keys; `publish_after` drops keys retired before it (their tokens
    /// have all expired).
    pub fn from_stored(keys: &[StoredKey], publish_after: i64) -> Result<Self, String> {
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        let mut signing: Option<(&StoredKey, EncodingKey)> = None;
        for k in keys {
            if k.retired_at.is_some_and(|r| r < publish_after) {
                continue;
            }
            let decoding = DecodingKey::from_ed_components(&k.public_x)
                .map_err(|e| format!("key {}: bad public key: {e}", k.kid))?;
            verifying.insert(k.kid.clone(), decoding);
            jwks.push(PublicJwk {
                kty: "OKP",
                crv: "Ed25519",
                x: k.public_x.clone(),
                kid: k.kid.clone(),
                alg: "EdDSA",
                use_: "sig",
            });
            if k.retired_at.is_none()
                && signing
                    .as_ref()
                    .is_none_or(|(s, _)| k.created_at >= s.created_at)
            {
                let der = STANDARD
                    .decode(&k.private_pkcs8)
                    .map_err(|e| format!("key {}: bad private key: {e}", k.kid))?;
                signing = Some((k, EncodingKey::from_ed_der(&der)));
            }
        }
        Ok(KeyRing {
            signing: signing.map(|(k, e)| (k.kid.clone(), e)),
            verifying,
            jwks,
        })
    }

    /// The key that signs new tokens, with its id.
    pub fn signing(&self) -> Option<(&str, &EncodingKey)> {
        self.signing.as_ref().map(|(k, e)| (k.as_str(), e))
    }

    /// The public key with this id.
    pub fn verifying(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying.get(kid)
    }

    /// The published public keys.
    pub fn jwks(&self) -> &[PublicJwk] {
        &self.jwks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_unretired_key_signs_and_retired_keys_are_dropped_when_stale() {
        let mut old = StoredKey::generate(100);
        let new = StoredKey::generate(200);
        old.retired_at = Some(200);
        let ring = KeyRing::from_stored(&[old.clone(), new.clone()], 150).unwrap();
        assert_eq!(ring.signing().unwrap().0, new.kid);
        assert_eq!(ring.jwks().len(), 2);
        let ring = KeyRing::from_stored(&[old.clone(), new.clone()], 250).unwrap();
        assert_eq!(ring.jwks().len(), 1);
        assert!(ring.verifying(&old.kid).is_none());
    }
}
