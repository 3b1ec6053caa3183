//! Usage, tiers and billing: `/v1/usage`, `/v1/plan`, `/v1/tiers`, an operator's
//! `/v1/tenants/{id}/tier`, and Stripe's webhooks at `/v1/billing/stripe`.

use super::*;
use continuum_core::account::{BillingRecord, Tier};
use continuum_engine::{BillingChange, PlanView, UsageReport};
use continuum_webhooks::stripe::{self, Decision, StripeEvent};

#[derive(Deserialize, JsonSchema)]
pub(super) struct UsageQuery {
    /// First day (`YYYY-MM-DD`, UTC; default: 29 days before `to`). A `from` after `to` is an
    /// empty span.
    #[schemars(extend("format" = "date"))]
    from: Option<String>,
    /// Last day (`YYYY-MM-DD`, UTC; default: today).
    #[schemars(extend("format" = "date"))]
    to: Option<String>,
    /// Another tenant (operator keys only). An operator that names none sees every tenant.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]{1,64}$"))]
    tenant: Option<String>,
}

pub(super) async fn usage_get(
    State(s): St,
    auth: Auth,
    Q(q): Q<UsageQuery>,
) -> AppResult<Json<UsageReport>> {
    let tenant = q.tenant.map(TenantId::new).transpose()?;
    Ok(Json(
        s.engine
            .usage(
                &auth.caller,
                tenant.as_ref(),
                q.from.as_deref(),
                q.to.as_deref(),
            )
            .await?,
    ))
}

pub(super) async fn plan_get(State(s): St, auth: Auth) -> AppResult<Json<PlanView>> {
    Ok(Json(s.engine.plan(&auth.caller, None).await?))
}

#[derive(Serialize, JsonSchema)]
pub(super) struct TiersOut {
    tiers: Vec<Tier>,
    /// The tier of tenants that were never given one.
    default: String,
}

pub(super) async fn tiers_list(State(s): St, _auth: Auth) -> AppResult<Json<TiersOut>> {
    let tiers = s.engine.tiers();
    Ok(Json(TiersOut {
        tiers: tiers.all().cloned().collect(),
        default: tiers.default_tier().name.clone(),
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TierSet {
    /// A tier this server defines (see `GET /v1/tiers`).
    #[schemars(regex(pattern = r"^[a-z0-9_-]{1,32}$"))]
    tier: String,
}

pub(super) async fn tenant_tier_set(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
    Body(b): Body<TierSet>,
) -> AppResult<Json<PlanView>> {
    let tenant = TenantId::new(id)?;
    Ok(Json(
        s.engine.set_tier(&auth.caller, &tenant, &b.tier).await?,
    ))
}

pub(super) async fn tenant_plan_get(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
) -> AppResult<Json<PlanView>> {
    let tenant = TenantId::new(id)?;
    auth.require(Scope::Operator)?;
    Ok(Json(s.engine.plan(&auth.caller, Some(&tenant)).await?))
}

/// What was done with a Stripe event.
#[derive(Serialize, JsonSchema)]
pub(super) struct StripeReceipt {
    received: bool,
    /// The event's id.
    event: String,
    /// `applied`, `duplicate` (seen before: nothing done), `stale` (older than the event that
    /// set the tenant's plan: nothing done) or `ignored`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<TenantId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<String>,
    /// Why an event was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// `POST /v1/billing/stripe`: verified with the endpoint secret, never with an API key.
pub(super) async fn stripe_hook(
    State(s): St,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> AppResult<Json<StripeReceipt>> {
    let Some(config) = s.config.stripe.as_ref() else {
        return Err(Error::NotFound("billing is not configured on this server".into()).into());
    };
    let refused = |code: &'static str, message: String| ApiError::Http {
        status: StatusCode::BAD_REQUEST,
        code,
        message,
    };
    let now = continuum_core::Clock::now(&continuum_core::SystemClock).millis() / 1000;
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(r) = stripe::verify(&config.secret, header, &body, now, config.tolerance_secs) {
        metrics::counter!(continuum_ops::metrics::BILLING_REFUSED).increment(1);
        tracing::warn!(reason = %r, "a Stripe webhook was refused");
        let code = match r {
            stripe::Refusal::Timestamp { .. } => "stale_signature",
            _ => "invalid_signature",
        };
        return Err(refused(code, r.to_string()));
    }
    let event = StripeEvent::parse(&body).map_err(|why| refused("invalid_input", why))?;
    let receipt = |outcome, tenant, tier, reason| StripeReceipt {
        received: true,
        event: event.id.clone(),
        outcome,
        tenant,
        tier,
        reason,
    };
    match stripe::decide(&event, config) {
        Decision::Ignore(reason) => {
            // Recorded all the same, so that a replay reads as one.
            let outcome = match s.engine.record_billing_event(&event.id).await? {
                BillingRecord::Duplicate => "duplicate",
                _ => "ignored",
            };
            tracing::info!(event = %event.id, kind = %event.kind, %reason, "Stripe event ignored");
            Ok(Json(receipt(outcome, None, None, Some(reason))))
        }
        Decision::SetTier {
            tenant,
            tier,
            status,
            customer,
            subscription,
        } => {
            let change = BillingChange {
                event_id: event.id.clone(),
                event_at: continuum_core::Timestamp(event.created.saturating_mul(1000)),
                tenant: tenant.clone(),
                tier: tier.clone(),
                status: Some(status),
                customer,
                subscription,
                source: continuum_core::account::PLAN_SOURCE_STRIPE,
            };
            let outcome = match s.engine.apply_billing(change).await? {
                BillingRecord::Applied => "applied",
                BillingRecord::Duplicate => "duplicate",
                BillingRecord::Stale => "stale",
            };
            Ok(Json(receipt(outcome, Some(tenant), Some(tier), None)))
        }
    }
}
