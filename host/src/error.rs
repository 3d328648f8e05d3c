//! The one error type of the library. Each variant has a stable machine `code`; the REST
//! transport maps it to problem+json in one place (`api::problem`).

use crate::authz::{Decision, Layer};

/// Result with the library error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No credential at all.
    #[error("authentication required")]
    Unauthenticated,
    /// A credential that is malformed, unknown, expired or revoked.
    #[error("invalid credential: {0}")]
    InvalidToken(&'static str),
    /// A credential offered in the query string, where it would leak into logs.
    #[error("credentials are accepted only in the Authorization header, never in the query string")]
    TokenInQuery,
    /// The pipeline refused the action.
    #[error("{}", .0.reasons.first().map(String::as_str).unwrap_or("forbidden"))]
    Forbidden(Box<Decision>),
    /// Missing, or not visible to the caller.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The route exists, the method does not.
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Something that existed is no longer usable (a used, expired or withdrawn invitation).
    #[error("{0}")]
    Gone(String),
    /// The path is locked by someone else (or the holder did not pass its `Lock-Token`).
    #[error("{path} is locked by {holder} until {expires_at}")]
    Locked {
        /// The locked path (a folder when it ends in `/`).
        path: String,
        /// Who holds the lock.
        holder: String,
        /// RFC 3339.
        expires_at: String,
    },
    /// `If-Match` did not match the current version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A body over the configured limit.
    #[error("the body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A write that would take the organisation over its storage quota.
    #[error(
        "the organisation's storage quota would be exceeded: this write needs at least {needed} \
         more bytes, and {used} of {quota} bytes are in use"
    )]
    QuotaExceeded {
        /// Bytes in use before the write.
        used: i64,
        /// The quota in bytes.
        quota: i64,
        /// The growth the write asked for.
        needed: i64,
    },
    /// A URL import refused before any request: scheme, credentials, or a non-public address.
    #[error("import refused: {0}")]
    ImportRefused(String),
    /// The server a URL import fetches from failed, or took too long.
    #[error("{detail}")]
    Upstream {
        /// What went wrong.
        detail: String,
        /// True when the import's time cap ran out.
        timed_out: bool,
    },
    /// A file path that is not allowed.
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// Malformed input.
    #[error("{0}")]
    BadRequest(String),
    /// Cedar text that does not parse or validate; every problem, located.
    #[error("the policy set does not parse or validate: {} problem(s)", .0.len())]
    InvalidPolicy(Vec<crate::authz::cedar::Diagnostic>),
    /// Well-formed input that cannot be processed.
    #[error("{0}")]
    Unprocessable(String),
    /// Too many requests: wait `retry_after_secs`.
    #[error("rate limit of {limit} requests per minute exceeded; retry in {retry_after_secs} s")]
    RateLimited {
        /// Requests per minute allowed.
        limit: u32,
        /// Seconds until a request will be accepted.
        retry_after_secs: u64,
    },
    /// A database failure.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A storage failure.
    #[error("storage error")]
    Io(#[from] std::io::Error),
    /// Anything else that is the server's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A refusal by the pipeline at `layer` with one reason.
    pub fn forbidden(layer: Layer, reason: impl Into<String>) -> Self {
        Error::Forbidden(Box::new(Decision::deny(layer, reason.into())))
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated => "unauthenticated",
            Error::InvalidToken(_) => "invalid_token",
            Error::TokenInQuery => "token_in_query",
            Error::Forbidden(d) => match d.layer {
                Some(Layer::Scope) => "insufficient_scope",
                Some(Layer::Workspace) => "workspace_not_allowed",
                Some(Layer::Plugin) => "plugin_denied",
                Some(Layer::Policy) | None => "policy_denied",
            },
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::Conflict(_) => "conflict",
            Error::Gone(_) => "gone",
            Error::PreconditionFailed(_) => "precondition_failed",
            Error::Locked { .. } => "locked",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::QuotaExceeded { .. } => "quota_exceeded",
            Error::ImportRefused(_) => "import_refused",
            Error::Upstream {
                timed_out: false, ..
            } => "upstream_failed",
            Error::Upstream {
                timed_out: true, ..
            } => "upstream_timeout",
            Error::InvalidPath(_) => "invalid_path",
            Error::BadRequest(_) => "bad_request",
            Error::InvalidPolicy(_) => "invalid_policy",
            Error::Unprocessable(_) => "unprocessable",
            Error::RateLimited { .. } => "rate_limited",
            Error::Database(_) | Error::Io(_) | Error::Internal(_) => "internal",
        }
    }

    /// The HTTP status this error means.
    pub fn status(&self) -> u16 {
        match self {
            Error::Unauthenticated | Error::InvalidToken(_) => 401,
            Error::TokenInQuery
            | Error::InvalidPath(_)
            | Error::BadRequest(_)
            | Error::InvalidPolicy(_) => 400,
            Error::Forbidden(_) => 403,
            Error::NotFound(_) => 404,
            Error::MethodNotAllowed => 405,
            Error::Conflict(_) => 409,
            Error::Gone(_) => 410,
            Error::PreconditionFailed(_) => 412,
            Error::Locked { .. } => 423,
            Error::PayloadTooLarge { .. } => 413,
            Error::Unprocessable(_) | Error::ImportRefused(_) => 422,
            Error::Upstream {
                timed_out: false, ..
            } => 502,
            Error::Upstream {
                timed_out: true, ..
            } => 504,
            Error::QuotaExceeded { .. } => 507,
            Error::RateLimited { .. } => 429,
            Error::Database(_) | Error::Io(_) | Error::Internal(_) => 500,
        }
    }
}
