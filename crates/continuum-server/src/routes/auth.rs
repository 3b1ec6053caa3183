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
        let source = client_addr(state, parts.extensions.get::<ClientAddr>(), &parts.headers);
        let presented = presented_key(&parts.headers)?;
        let key = check_key(state, source, &presented).await?;
        if let Some(slot) = parts.extensions.get::<crate::observe::RequestTenant>() {
            let _ = slot.0.set(key.tenant.as_str().to_string());
        }
        let c = &state.config;
        let tier = state.engine.tier_of(&key.tenant).await?;
        // The tier's rate per key, when lower than the server's.
        let (rate, burst) = match tier.rate_per_key {
            Some(r) if r < c.rate_per_second => (r, (2.0 * r).max(1.0)),
            _ => (c.rate_per_second, c.rate_burst),
        };
        state
            .limiter
            .take(&key.prefix, rate, burst)
            .map_err(ApiError::RateLimited)?;
        let caller = Caller::of_key(&key);
        // The route's declared scope, checked before anything else of the request is read.
        // Then it is counted (and held to the daily request quota).
        if let Some((RequiredScope(needed), Metered(kind))) =
            parts.extensions.get::<(RequiredScope, Metered)>()
        {
            caller.require(*needed)?;
            if let Some(kind) = kind {
                state.engine.admit(&caller, *kind, &tier)?;
            }
        }
        Ok(Auth { caller })
    }
}

/// Audit writes of failed authentications in flight at most; past it they are dropped (and
/// counted in `continuum_audit_failures_total`) rather than queued without bound.
const MAX_AUDIT_IN_FLIGHT: usize = 256;

/// Records a failed authentication in the audit log, off the request's path.
fn audit_failure(state: &AppState, prefix: &str, source: Option<ClientAddr>, e: &Error) {
    use std::sync::atomic::Ordering;
    let in_flight = state.audit_in_flight.clone();
    if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_AUDIT_IN_FLIGHT {
        in_flight.fetch_sub(1, Ordering::AcqRel);
        metrics::counter!(continuum_ops::metrics::AUDIT_FAILURES).increment(1);
        tracing::warn!("too many audit writes in flight; a failed authentication was not audited");
        return;
    }
    let engine = state.engine.clone();
    let prefix = (prefix != "-").then(|| prefix.to_string());
    let source = source.map(|ClientAddr(ip)| ip.to_string());
    let reason = e.to_string();
    tokio::spawn(async move {
        engine
            .audit_auth_failure(prefix.as_deref(), source, &reason)
            .await;
        in_flight.fetch_sub(1, Ordering::AcqRel);
    });
}

/// The address a connection comes from (put into each request by [`crate::serve_with`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) std::net::IpAddr);

/// The request's client address: the connection's peer, or the one a trusted proxy names
/// (see [`crate::proxy`]).
pub(super) fn client_addr(
    state: &AppState,
    peer: Option<&ClientAddr>,
    headers: &axum::http::HeaderMap,
) -> Option<ClientAddr> {
    peer.map(|p| {
        ClientAddr(crate::proxy::client_ip(
            p.0,
            &state.config.trusted_proxies,
            headers,
        ))
    })
}

/// Failed authentications per source address: a token bucket each, refilled at
/// `ServerConfig::auth_failures_per_minute` and as deep. An address with an empty bucket is
/// answered 429 before its key is even looked at, so that keys cannot be guessed at speed;
/// other addresses are not affected.
#[derive(Default)]
pub(crate) struct AuthFailures {
    buckets: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (f64, Instant)>>,
}

/// Addresses tracked at most; past it, addresses whose bucket has refilled are forgotten.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

impl AuthFailures {
    fn refill(entry: &mut (f64, Instant), now: Instant, per_minute: f64) {
        entry.0 = (entry.0 + now.duration_since(entry.1).as_secs_f64() * per_minute / 60.0)
            .min(per_minute);
        entry.1 = now;
    }

    /// `Err(seconds to wait)` when `ip` has no failure left to spend.
    fn check(&self, ip: std::net::IpAddr, per_minute: f64) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = buckets.get_mut(&ip) else {
            return Ok(());
        };
        Self::refill(entry, now, per_minute);
        if entry.0 >= 1.0 {
            Ok(())
        } else {
            Err(((1.0 - entry.0) * 60.0 / per_minute).ceil().max(1.0) as u64)
        }
    }

    /// Spends one of `ip`'s failures.
    fn charge(&self, ip: std::net::IpAddr, per_minute: f64) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_ADDRESSES && !buckets.contains_key(&ip) {
            buckets.retain(|_, e| {
                Self::refill(e, now, per_minute);
                e.0 < per_minute
            });
        }
        let entry = buckets.entry(ip).or_insert((per_minute, now));
        Self::refill(entry, now, per_minute);
        entry.0 = (entry.0 - 1.0).max(0.0);
    }
}

/// The stored key behind `presented`, with the limits on failed attempts: a source address
/// that failed too often is refused (429) before the key is looked at, and a failure is
/// charged to its address and logged (the key's prefix at most, never the secret).
pub(super) async fn check_key(
    state: &AppState,
    source: Option<ClientAddr>,
    presented: &str,
) -> AppResult<ApiKey> {
    let per_minute = state.config.auth_failures_per_minute;
    if let Some(ClientAddr(ip)) = source
        && per_minute > 0.0
        && let Err(wait) = state.auth_failures.check(ip, per_minute)
    {
        metrics::counter!(continuum_ops::metrics::AUTH_THROTTLED).increment(1);
        return Err(ApiError::AuthThrottled(wait));
    }
    match state.engine.authenticate(presented).await {
        Ok(key) => Ok(key),
        Err(e @ Error::Unauthorized(_)) => {
            metrics::counter!(continuum_ops::metrics::AUTH_FAILURES).increment(1);
            let prefix = continuum_core::keys::key_prefix(presented.trim()).unwrap_or("-");
            audit_failure(state, prefix, source, &e);
            match source {
                Some(ClientAddr(ip)) => {
                    if per_minute > 0.0 {
                        state.auth_failures.charge(ip, per_minute);
                    }
                    tracing::warn!(source = %ip, key_prefix = prefix, reason = %e, "authentication failed");
                }
                None => tracing::warn!(key_prefix = prefix, reason = %e, "authentication failed"),
            }
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}
