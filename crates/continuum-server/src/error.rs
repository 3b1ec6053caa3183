//! Errors as HTTP responses: one exhaustive mapping from error kind to status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use continuum_core::Error;
use serde_json::json;

/// An error answered to a client: `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub enum ApiError {
    /// An engine or store error.
    Engine(Error),
    /// A request the HTTP layer refused before the engine saw it (bad JSON, too large, …).
    Http {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// Too many requests for this key; retry after this many seconds.
    RateLimited(u64),
    /// Too many failed authentications from this address; retry after this many seconds.
    AuthThrottled(u64),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Engine(e)
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::Http {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_input",
            message: message.into(),
        }
    }
}

impl ApiError {
    /// The status, stable code and client-safe message (internal details are logged, not
    /// returned), and for a rate limit the seconds to wait.
    pub(crate) fn parts(self) -> (StatusCode, &'static str, String, Option<u64>) {
        match self {
            ApiError::Engine(e) => {
                let status = match &e {
                    Error::InvalidInput(_) => StatusCode::BAD_REQUEST,
                    Error::NotFound(_) => StatusCode::NOT_FOUND,
                    Error::Conflict(_) => StatusCode::CONFLICT,
                    Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                    Error::Forbidden(_) => StatusCode::FORBIDDEN,
                    Error::Gone(_) => StatusCode::GONE,
                    Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    Error::QuotaExceeded(..) => StatusCode::TOO_MANY_REQUESTS,
                    Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let message = match &e {
                    Error::Internal(detail) => {
                        tracing::error!(error = %detail, "internal error");
                        "internal error (see the server log)".to_string()
                    }
                    Error::Unavailable(detail) => {
                        tracing::error!(error = %detail, "store unavailable");
                        "the store is unavailable; try again".to_string()
                    }
                    other => other.to_string(),
                };
                let retry_after = match &e {
                    Error::QuotaExceeded(_, wait) => *wait,
                    _ => None,
                };
                (status, e.code(), message, retry_after)
            }
            ApiError::Http {
                status,
                code,
                message,
            } => (status, code, message, None),
            ApiError::RateLimited(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests for this key; retry in {secs} s"),
                Some(secs),
            ),
            ApiError::AuthThrottled(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "auth_throttled",
                format!("too many failed authentications from this address; retry in {secs} s"),
                Some(secs),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, retry_after) = self.parts();
        let mut r = (
            status,
            axum::Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}
