//! Request extractors: the authenticated caller, and JSON bodies and query strings whose
//! errors are problems.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::{AppState, problem::ApiError};
use crate::Error;
use crate::authz::{Caller, Transport};

/// The authenticated caller of a request.
pub struct Authenticated(pub Caller);

/// Query parameters that would carry a credential where logs and referrers can see it.
const CREDENTIAL_QUERY_PARAMS: [&str; 3] = ["access_token", "token", "api_key"];

/// Refuses a request that offers a credential in its query string, where logs and referrers
/// would keep it (every authenticated route, and routes that take a token in the body).
pub fn refuse_credential_in_query(uri: &axum::http::Uri) -> Result<(), Error> {
    let offers_credential = uri.query().is_some_and(|query| {
        query.split('&').any(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            CREDENTIAL_QUERY_PARAMS
                .iter()
                .any(|p| key.eq_ignore_ascii_case(p))
        })
    });
    if offers_credential {
        Err(Error::TokenInQuery)
    } else {
        Ok(())
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        refuse_credential_in_query(&parts.uri)?;
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(Error::Unauthenticated)?;
        let value = value
            .to_str()
            .map_err(|_| Error::InvalidToken("the Authorization header is not valid text"))?;
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(Error::InvalidToken("use the Bearer scheme"))?;
        let client_addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let caller = state
            .warrant
            .authenticate(token, client_addr, Transport::Rest)
            .await?;
        Ok(Authenticated(caller))
    }
}

/// A JSON body; malformed JSON is a 400 and JSON of the wrong shape a 422, as problem+json.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(Error::Unprocessable(e.body_text()).into()),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Error::BadRequest(
                "expected a JSON body with Content-Type: application/json".into(),
            )
            .into()),
            Err(other) => Err(Error::BadRequest(other.body_text()).into()),
        }
    }
}

/// Query parameters; a malformed or wrongly typed one is a 400 as problem+json (axum's own
/// rejection is plain text).
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => Err(Error::BadRequest(rejection.body_text()).into()),
        }
    }
}
