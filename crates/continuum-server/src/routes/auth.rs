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

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> AppResult<Self> {
        let presented = parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| {
                parts
                    .headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| {
                        // The scheme is case-insensitive (RFC 9110, section 11.1).
                        let (scheme, token) = v.split_once(' ')?;
                        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                    })
                    .map(str::to_string)
            })
            .ok_or_else(|| Error::Unauthorized("missing API key (send it in X-API-Key)".into()))?;
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
