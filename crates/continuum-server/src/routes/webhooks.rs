//! `/v1/webhooks`: a tenant's webhook subscriptions (admin scope, the key's own tenant). The
//! delivery job sends them (see `continuum-webhooks`).

use super::*;
use continuum_core::webhook::Delivery;
use continuum_engine::{WebhookView, WebhookWithSecret};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WebhookCreate {
    /// The receiver: an http(s) URL on a public address, its host a name or an IPv4 address,
    /// without credentials.
    #[schemars(
        length(min = 8, max = 2048),
        regex(pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$")
    )]
    url: String,
    /// Event types to send (absent or empty: every type).
    #[serde(default)]
    #[schemars(
        length(max = continuum_core::Event::TYPES.len()),
        inner(regex(pattern = super::stream::ONE_TYPE_PATTERN))
    )]
    events: Vec<String>,
    /// At most 500 characters, no control characters.
    #[serde(default)]
    #[schemars(
        length(max = continuum_core::webhook::MAX_DESCRIPTION_CHARS),
        regex(pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    description: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct WebhooksOut {
    webhooks: Vec<WebhookView>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct WebhookDeleted {
    deleted: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateBody {
    /// Seconds the old secret still signs beside the new one (default 3600; 0: at once).
    #[serde(default, deserialize_with = "count")]
    #[schemars(range(max = 2_592_000))]
    overlap_secs: Option<usize>,
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct DeliveriesQuery {
    /// At most this many records, newest event first (1 to 100, default 20).
    #[schemars(range(min = 1, max = 100))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct DeliveriesOut {
    deliveries: Vec<Delivery>,
}

pub(super) async fn webhooks_create(
    State(s): St,
    auth: Auth,
    Body(b): Body<WebhookCreate>,
) -> AppResult<(StatusCode, Json<WebhookWithSecret>)> {
    auth.require(Scope::Admin)?;
    continuum_webhooks::check_target(&b.url, s.config.webhooks.allow_private)?;
    let created = s
        .engine
        .create_webhook(&auth.caller, &b.url, b.events, b.description)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(super) async fn webhooks_list(State(s): St, auth: Auth) -> AppResult<Json<WebhooksOut>> {
    Ok(Json(WebhooksOut {
        webhooks: s.engine.webhooks(&auth.caller).await?,
    }))
}

pub(super) async fn webhooks_delete(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
) -> AppResult<Json<WebhookDeleted>> {
    s.engine.delete_webhook(&auth.caller, &id).await?;
    Ok(Json(WebhookDeleted { deleted: id }))
}

pub(super) async fn webhooks_rotate(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
    Body(b): Body<RotateBody>,
) -> AppResult<Json<WebhookWithSecret>> {
    let overlap = b.overlap_secs.unwrap_or(3600) as i64 * 1000;
    Ok(Json(
        s.engine
            .rotate_webhook_secret(&auth.caller, &id, overlap)
            .await?,
    ))
}

pub(super) async fn webhooks_deliveries(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
    Q(q): Q<DeliveriesQuery>,
) -> AppResult<Json<DeliveriesOut>> {
    Ok(Json(DeliveriesOut {
        deliveries: s
            .engine
            .webhook_deliveries(&auth.caller, &id, q.limit.unwrap_or(20))
            .await?,
    }))
}

pub(super) async fn webhooks_retry(
    State(s): St,
    auth: Auth,
    P((id, delivery)): P<(String, String)>,
) -> AppResult<Json<Delivery>> {
    let (w, d) = s
        .engine
        .webhook_delivery(&auth.caller, &id, &delivery)
        .await?;
    let sender = continuum_webhooks::Deliverer::new(s.engine.clone(), s.config.webhooks.clone())?;
    Ok(Json(sender.retry(&w, d).await?))
}
