//! The `Auth` extractor: an API key becomes a `Caller`, and the route's declared scope is
//! enforced before anything else of the request is read.

use super::*;

/// The caller, from its API key (`X-API-Key`, or `Authorization: Bearer`). The tenant comes
/// from the key and from nowhere else.
pub(crate) struct Auth {
    pub(super) caller: Caller,
}

impl Auth {
    pub(super) fn require(&self, needed: Scope) -> AppResult<&TenantId> {
        Ok(self.caller.require(needed)?)
    }
}

/// The key a request presents, in `X-API-Key` or as an `Authorization: Bearer` token (the
/// scheme in any case, RFC 9110 section 11.1). Credentials that are ambiguous are refused: an
/// `Authorization` header that is not a Bearer token, an empty one, or two different keys.
pub(super) fn presented_key(headers: &axum::http::HeaderMap) -> AppResult<String> {
    let unreadable = || Error::Unauthorized("the API key header is not readable text".into());
    let api_key = match headers.get("x-api-key") {
        Some(v) => Some(v.to_str().map_err(|_| unreadable())?.trim().to_string()),
        None => None,
    };
    let bearer = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v.to_str().map_err(|_| unreadable())?;
            let token = v
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim())
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    Error::Unauthorized("the Authorization header must be 'Bearer <key>'".into())
                })?;
            Some(token.to_string())
        }
        None => None,
    };
    match (api_key, bearer) {
        (Some(a), Some(b)) if a != b => Err(Error::Unauthorized(
            "X-API-Key and Authorization name different keys".into(),
        )
        .into()),
        (Some(k), _) | (None, Some(k)) if k.is_empty() => {
            Err(Error::Unauthorized("the X-API-Key header is empty".into()).into())
        }
        (Some(k), _) | (None, Some(k)) => Ok(k),
        (None, None) => Err(Error::Unauthorized(
            "missing API key (send it in X-API-Key or Authorization: Bearer)".into(),
        )
        .into()),
    }
}

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> AppResult<Self> {
        let presented = presented_key(&parts.headers)?;
        let key = state.engine.authenticate(&presented).await?;
        if let Some(slot) = parts.extensions.get::<crate::observe::RequestTenant>() {
            let _ = slot.0.set(key.tenant.as_str().to_string());
        }
        let c = &state.config;
        state
            .limiter
            .take(&key.prefix, c.rate_per_second, c.rate_burst)
            .map_err(ApiError::RateLimited)?;
        let caller = Caller::of_key(&key);
        // The route's declared scope, checked before anything else of the request is read.
        if let Some(RequiredScope(needed)) = parts.extensions.get::<RequiredScope>() {
            caller.require(*needed)?;
        }
        Ok(Auth { caller })
    }
}
