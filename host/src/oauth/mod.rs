//! The OAuth 2.1 authorization server's building blocks, below the service layer and free of
//! HTTP: signing keys and JWKS, access-token claims, PKCE, opaque secrets, redirect-URI rules,
//! resource indicators, the verified-token cache and the revocation deny-list.

pub mod cache;
pub mod error;
pub mod jwt;
pub mod keys;
pub mod pkce;
pub mod redirect;
pub mod secrets;

pub use error::OAuthError;

/// The longest life of an access token, in seconds (15 minutes).
pub const MAX_ACCESS_TOKEN_TTL: i64 = 900;
/// How long an authorization code may wait to be redeemed, in seconds.
pub const CODE_TTL: i64 = 60;
/// How long an unused refresh token stays valid, in seconds (14 days).
pub const REFRESH_IDLE_TTL: i64 = 14 * 86_400;
/// How long a refresh-token family lives at most, in seconds (90 days).
pub const REFRESH_ABSOLUTE_TTL: i64 = 90 * 86_400;

/// The grant types this server offers. No implicit grant, no password grant.
pub const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// What the MCP server's resource (and token audience) adds to the public URL.
pub const MCP_RESOURCE_SUFFIX: &str = "/mcp";

/// The resources (RFC 8707) tokens can be issued for: the REST API and the MCP server.
pub fn known_resources(public_url: &str) -> [String; 2] {
    [
        public_url.to_string(),
        format!("{public_url}{MCP_RESOURCE_SUFFIX}"),
    ]
}

/// Resolves a requested `resource` to a token audience: absent means the REST API; anything
/// that is not exactly a known resource is `invalid_target`.
pub fn audience_for(public_url: &str, requested: Option<&str>) -> Result<String, OAuthError> {
    match requested {
        None => Ok(public_url.to_string()),
        Some(r) => {
            let r = r.strip_suffix('/').unwrap_or(r);
            known_resources(public_url)
                .into_iter()
                .find(|k| k == r)
                .ok_or_else(|| OAuthError::invalid_target(format!("unknown resource `{r}`")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_exact() {
        let base = "https://w.example";
        assert_eq!(audience_for(base, None).unwrap(), base);
        assert_eq!(
            audience_for(base, Some("https://w.example/mcp")).unwrap(),
            "https://w.example/mcp"
        );
        assert_eq!(
            audience_for(base, Some("https://w.example/")).unwrap(),
            base
        );
        assert!(audience_for(base, Some("https://w.example/mcp/x")).is_err());
        assert!(audience_for(base, Some("https://evil.example")).is_err());
    }
}
