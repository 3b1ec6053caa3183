//! Webhook subscriptions and their deliveries, as stored.
//!
//! A subscription follows its tenant's event log from a position, in order: the delivery job
//! sends the next event it wants (by type), retries it on failure on a fixed schedule, and
//! moves on when it is delivered or has used up its attempts (a dead letter, kept and shown).
//! Signing follows the Standard Webhooks specification; the secrets live here because the
//! server must sign with them (they are shown to the tenant once, at creation and rotation).

use crate::{Error, Result, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

/// Subscriptions a tenant may hold.
pub const MAX_WEBHOOKS_PER_TENANT: usize = 20;
/// The longest target URL, description and error text kept.
pub const MAX_URL_BYTES: usize = 2048;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_ERROR_BYTES: usize = 500;

/// Whether a subscription is being delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookState {
    Active,
    /// Failing for too long, or told to stop by its receiver (410): nothing is sent.
    Disabled,
}

/// A subscription, as stored (secrets included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub tenant: TenantId,
    pub url: String,
    /// Event types sent; empty: every type.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// `whsec_` and the base64 of 32 random bytes.
    pub secret: String,
    /// The secret before the last rotation, still used to sign until `previous_until`.
    pub previous_secret: Option<String>,
    pub previous_until: Option<Timestamp>,
    pub state: WebhookState,
    pub disabled_reason: Option<String>,
    /// The last event position handled (delivered, dead-lettered or filtered out).
    pub position: u64,
    /// Since when every attempt has failed, if they do.
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Failed so far; tried again at `next_attempt_at`.
    Pending,
    Delivered,
    /// Every attempt failed: a dead letter, sent again only when asked (`retry`).
    Failed,
}

/// One event's delivery to one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    /// `{webhook id}.{event position}`.
    pub id: String,
    pub webhook: String,
    /// The event's position; its `webhook-id` header is `evt_{seq}`.
    pub seq: u64,
    pub event_type: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Delivery {
    pub fn id_for(webhook: &str, seq: u64) -> String {
        format!("{webhook}.{seq}")
    }
}

/// Checks a description's and an event-type list's limits; the URL is the delivery crate's
/// to check (it knows the network rules).
pub fn check_subscription(events: &[String], description: Option<&str>) -> Result<()> {
    if events.len() > crate::Event::TYPES.len() {
        return Err(Error::InvalidInput(format!(
            "events: at most {} types",
            crate::Event::TYPES.len()
        )));
    }
    for e in events {
        if !crate::Event::TYPES.contains(&e.as_str()) {
            return Err(Error::InvalidInput(format!(
                "events: {:?} is not an event type (known: {})",
                e.chars().take(64).collect::<String>(),
                crate::Event::TYPES.join(", ")
            )));
        }
    }
    if let Some(d) = description
        && (d.chars().count() > MAX_DESCRIPTION_CHARS || d.chars().any(char::is_control))
    {
        return Err(Error::InvalidInput(format!(
            "description: at most {MAX_DESCRIPTION_CHARS} characters, no control characters"
        )));
    }
    Ok(())
}

/// A record's stored form: stores keep subscriptions and deliveries as JSON documents.
pub fn encode<T: Serialize>(record: &T) -> Result<String> {
    serde_json::to_string(record).map_err(|e| Error::Internal(format!("encoding a record: {e}")))
}

/// A record from its stored form.
pub fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Internal(format!("a stored record: {e}")))
}
