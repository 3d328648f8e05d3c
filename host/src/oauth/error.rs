//! OAuth error responses (RFC 6749 §5.2): a machine `error` and a human `error_description`.

/// An OAuth protocol error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The RFC 6749 error code (`invalid_grant`, `invalid_client`, …).
    pub error: &'static str,
    /// What went wrong, for the developer.
    pub description: String,
    /// The HTTP status of the response.
    pub status: u16,
}

macro_rules! ctor {
    ($name:ident, $code:literal, $status:literal) => {
        #[doc = concat!("A `", $code, "` error.")]
        pub fn $name(description: impl Into<String>) -> Self {
            OAuthError {
                error: $code,
                description: description.into(),
                status: $status,
            }
        }
    };
}

impl OAuthError {
    ctor!(invalid_request, "invalid_request", 400);
    ctor!(invalid_client, "invalid_client", 401);
    ctor!(invalid_grant, "invalid_grant", 400);
    ctor!(unauthorized_client, "unauthorized_client", 400);
    ctor!(unsupported_grant_type, "unsupported_grant_type", 400);
    ctor!(unsupported_response_type, "unsupported_response_type", 400);
    ctor!(invalid_scope, "invalid_scope", 400);
    ctor!(invalid_target, "invalid_target", 400);
    ctor!(access_denied, "access_denied", 403);
    ctor!(invalid_client_metadata, "invalid_client_metadata", 400);
    ctor!(invalid_redirect_uri, "invalid_redirect_uri", 400);
    ctor!(unsupported_token_type, "unsupported_token_type", 400);
    ctor!(server_error, "server_error", 500);
}

impl From<crate::Error> for OAuthError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::RateLimited { .. } => OAuthError {
                error: "slow_down",
                description: e.to_string(),
                status: 429,
            },
            crate::Error::BadRequest(d) | crate::Error::Unprocessable(d) => {
                OAuthError::invalid_request(d)
            }
            other => {
                tracing::error!(error = %other, "OAuth endpoint failed");
                OAuthError::server_error("an internal error occurred; it has been logged")
            }
        }
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(e: sqlx::Error) -> Self {
        crate::Error::Database(e).into()
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl std::error::Error for OAuthError {}
