//! Access tokens: JWTs (RFC 9068 profile, `typ: at+jwt`) signed with Ed25519.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::KeyRing;

/// The claims of a Warrant access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The issuer: the server's public URL.
    pub iss: String,
    /// The principal the token acts as.
    pub sub: String,
    /// The resource the token is for (RFC 8707).
    pub aud: String,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// The token's unique id (the deny-list key).
    pub jti: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The workspaces the token is limited to; absent means every workspace of the principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<Vec<String>>,
    /// `user`, `agent` or `client`.
    pub principal_kind: String,
    /// The grant (refresh-token family) the token came from, for revocation with its family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

/// Why a token did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a JWT of ours at all (no `kid`, unknown `kid`, wrong algorithm, bad signature).
    Invalid,
    /// Signed by us, but expired.
    Expired,
    /// Signed by us, for another resource.
    WrongAudience,
}

/// Signs `claims` with the ring's signing key.
pub fn sign(ring: &KeyRing, claims: &AccessClaims) -> Result<String, String> {
    let (kid, key) = ring.signing().ok_or("no signing key")?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_string());
    header.typ = Some("at+jwt".to_string());
    jsonwebtoken::encode(&header, claims, key).map_err(|e| format!("signing failed: {e}"))
}

/// True when `token` has the shape of a JWT (three dot-separated parts), before any work.
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Verifies signature, issuer and expiry, and — when `audience` is given — the audience.
pub fn verify(
    ring: &KeyRing,
    token: &str,
    issuer: &str,
    audience: Option<&str>,
) -> Result<AccessClaims, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Invalid)?;
    if header.alg != Algorithm::EdDSA {
        return Err(VerifyError::Invalid);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| ring.verifying(kid))
        .ok_or(VerifyError::Invalid)?;
    let mut v = Validation::new(Algorithm::EdDSA);
    v.leeway = 0;
    v.set_issuer(&[issuer]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    match audience {
        Some(aud) => v.set_audience(&[aud]),
        None => v.validate_aud = false,
    }
    jsonwebtoken::decode::<AccessClaims>(token, key, &v)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => VerifyError::Expired,
            jsonwebtoken::errors::ErrorKind::InvalidAudience => VerifyError::WrongAudience,
            _ => VerifyError::Invalid,
        })
}

#[cfg(test)]
mod tests {
    use super::super::keys::StoredKey;
    use super::*;

    fn claims(exp: i64, aud: &str) -> AccessClaims {
        AccessClaims {
            iss: "https://w.example".into(),
            sub: "usr_1".into(),
            aud: aud.into(),
            exp,
            iat: exp - 60,
            jti: "at_1".into(),
            scope: "files:read".into(),
            client_id: "oac_1".into(),
            workspaces: Some(vec!["ws_1".into()]),
            principal_kind: "user".into(),
            gid: None,
        }
    }

    #[test]
    fn signs_and_verifies_and_refuses_the_rest() {
        let now = crate::store::now();
        let ring = KeyRing::from_stored(&[StoredKey::generate(now)], 0).unwrap();
        let other = KeyRing::from_stored(&[StoredKey::generate(now)], 0).unwrap();
        let c = claims(now + 60, "https://w.example");
        let t = sign(&ring, &c).unwrap();
        assert!(looks_like_jwt(&t));
        assert_eq!(
            verify(&ring, &t, "https://w.example", Some("https://w.example")).unwrap(),
            c
        );
        assert_eq!(
            verify(
                &ring,
                &t,
                "https://w.example",
                Some("https://w.example/mcp")
            ),
            Err(VerifyError::WrongAudience)
        );
        assert_eq!(
            verify(&other, &t, "https://w.example", None),
            Err(VerifyError::Invalid)
        );
        assert_eq!(
            verify(&ring, &t, "https://evil.example", None),
            Err(VerifyError::Invalid)
        );
        let expired = sign(&ring, &claims(now - 1, "https://w.example")).unwrap();
        assert_eq!(
            verify(&ring, &expired, "https://w.example", None),
            Err(VerifyError::Expired)
        );
        let mut tampered = t.clone();
        tampered.insert(t.find('.').unwrap() + 2, 'x');
        assert!(verify(&ring, &tampered, "https://w.example", None).is_err());
    }
}
