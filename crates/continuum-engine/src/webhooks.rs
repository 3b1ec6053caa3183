//! Webhook subscriptions: created, listed, rotated and deleted by a tenant's admin; read and
//! advanced by the delivery job (the `continuum-webhooks` crate), which does the sending.
//!
//! A subscription starts at the log's head when it is created and follows its tenant's events
//! from there. It holds a named event cursor (`webhook:{id}`), so events it has not handled
//! are never compacted away, however long its receiver is down.

use crate::Engine;
use continuum_core::keys::{Caller, Scope};
use continuum_core::webhook::{
    Delivery, MAX_URL_BYTES, MAX_WEBHOOKS_PER_TENANT, Webhook, WebhookState, check_subscription,
};
use continuum_core::{Error, Result, TenantId, Timestamp};
use serde::Serialize;

/// The most delivery records one read returns.
pub const MAX_DELIVERIES_PAGE: usize = 100;
/// How long a rotated-out secret still signs, at most (30 days).
pub const MAX_ROTATION_OVERLAP_MILLIS: i64 = 30 * 86_400_000;

/// A subscription as its tenant sees it: never its secrets.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// Event types sent; empty: every type.
    pub events: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub state: WebhookState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The last event position handled.
    pub position: u64,
    /// Since when every attempt has failed, if they do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    /// Until when the secret before the last rotation still signs too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_until: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        WebhookView {
            id: w.id.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            description: w.description.clone(),
            state: w.state,
            disabled_reason: w.disabled_reason.clone(),
            position: w.position,
            failing_since: w.failing_since,
            previous_secret_until: w.previous_until,
            created_at: w.created_at,
        }
    }
}

/// A subscription with its signing secret: the answer to creation and rotation, the only
/// time the secret is shown.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: verify the `webhook-signature` header with it (Standard Webhooks).
    pub secret: String,
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes (from the system's
/// random source, through version 4 UUIDs).
fn new_secret() -> String {
    let mut random = [0u8; 32];
    random[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    random[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    use base64::Engine as _;
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(random)
    )
}

fn cursor_name(id: &str) -> String {
    format!("webhook:{id}")
}

/// Checks what can be checked of a target URL without the network: http(s), length, no
/// spaces or control characters. (Where it may point is the delivery crate's to check.)
fn check_url_text(url: &str) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(Error::InvalidInput(
            "url: a webhook target must be an http:// or https:// URL".into(),
        ));
    }
    if url.len() > MAX_URL_BYTES || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidInput(format!(
            "url: at most {MAX_URL_BYTES} bytes, no spaces or control characters"
        )));
    }
    Ok(())
}

impl Engine {
    /// Subscribes the caller's tenant (admin scope) to its events from now on, sent to `url`
    /// (whose network rules the caller has checked). Returns the secret, once.
    pub async fn create_webhook(
        &self,
        who: impl Into<Caller>,
        url: &str,
        mut events: Vec<String>,
        description: Option<String>,
    ) -> Result<WebhookWithSecret> {
        let caller = who.into();
        let tenant = caller.require(Scope::Admin)?;
        check_url_text(url)?;
        // The list's length is checked as given (a repeat counts), as documented.
        check_subscription(&events, description.as_deref())?;
        events.sort();
        events.dedup();
        let held = self.store.webhooks(Some(tenant)).await?.len();
        if held >= MAX_WEBHOOKS_PER_TENANT {
            return Err(Error::Conflict(format!(
                "a tenant holds at most {MAX_WEBHOOKS_PER_TENANT} webhook subscriptions; delete one first"
            )));
        }
        let tier = self.tier_of(tenant).await?;
        if let Some(max) = tier.max_webhooks
            && held as u64 >= max
        {
            metrics::counter!(continuum_ops::metrics::QUOTA_REFUSED, "quota" => "webhooks")
                .increment(1);
            return Err(Error::QuotaExceeded(
                format!(
                    "tier '{}' allows {max} webhook subscriptions and the tenant holds {held}; delete one, or move the tenant to a larger tier",
                    tier.name
                ),
                None,
            ));
        }
        let position = self.store.event_head().await?;
        let now = self.clock.now();
        let webhook = Webhook {
            id: format!("wh_{}", uuid::Uuid::now_v7().simple()),
            tenant: tenant.clone(),
            url: url.to_string(),
            events,
            description,
            secret: new_secret(),
            previous_secret: None,
            previous_until: None,
            state: WebhookState::Active,
            disabled_reason: None,
            position,
            failing_since: None,
            created_at: now,
        };
        self.store
            .set_event_cursor(&cursor_name(&webhook.id), position, now)
            .await?;
        self.store.put_webhook(&webhook).await?;
        self.audit_ok(
            &crate::actor_of(&caller),
            Some(tenant),
            "webhook.created",
            serde_json::json!({ "id": webhook.id, "events": webhook.events }),
        )
        .await;
        Ok(WebhookWithSecret {
            webhook: (&webhook).into(),
            secret: webhook.secret,
        })
    }

    /// The caller's tenant's subscriptions (admin scope), oldest first.
    pub async fn webhooks(&self, who: impl Into<Caller>) -> Result<Vec<WebhookView>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Admin)?;
        Ok(self
            .store
            .webhooks(Some(tenant))
            .await?
            .iter()
            .map(Into::into)
            .collect())
    }

    /// One of the tenant's subscriptions; another tenant's is "not found".
    async fn own_webhook(&self, tenant: &TenantId, id: &str) -> Result<Webhook> {
        match self.store.webhook(id).await? {
            Some(w) if &w.tenant == tenant => Ok(w),
            _ => Err(Error::NotFound(format!("no webhook {id:?} in this tenant"))),
        }
    }

    /// Deletes one of the tenant's subscriptions, its delivery records and its cursor.
    pub async fn delete_webhook(&self, who: impl Into<Caller>, id: &str) -> Result<()> {
        let caller = who.into();
        let tenant = caller.require(Scope::Admin)?;
        let w = self.own_webhook(tenant, id).await?;
        self.store.delete_webhook(&w.id).await?;
        self.store.delete_event_cursor(&cursor_name(&w.id)).await?;
        self.audit_ok(
            &crate::actor_of(&caller),
            Some(tenant),
            "webhook.deleted",
            serde_json::json!({ "id": w.id }),
        )
        .await;
        Ok(())
    }

    /// Gives a subscription a new secret; the old one still signs (a second signature in the
    /// header) for `overlap_millis`, so receivers can switch without losing a delivery.
    pub async fn rotate_webhook_secret(
        &self,
        who: impl Into<Caller>,
        id: &str,
        overlap_millis: i64,
    ) -> Result<WebhookWithSecret> {
        let caller = who.into();
        let tenant = caller.require(Scope::Admin)?;
        if !(0..=MAX_ROTATION_OVERLAP_MILLIS).contains(&overlap_millis) {
            return Err(Error::InvalidInput(format!(
                "the overlap must be between 0 and {} days",
                MAX_ROTATION_OVERLAP_MILLIS / 86_400_000
            )));
        }
        let mut w = self.own_webhook(tenant, id).await?;
        let now = self.clock.now();
        w.previous_secret = (overlap_millis > 0).then(|| w.secret.clone());
        w.previous_until = (overlap_millis > 0).then_some(Timestamp(now.millis() + overlap_millis));
        w.secret = new_secret();
        self.store.put_webhook(&w).await?;
        self.audit_ok(
            &crate::actor_of(&caller),
            Some(tenant),
            "webhook.secret_rotated",
            serde_json::json!({ "id": w.id, "overlap_ms": overlap_millis }),
        )
        .await;
        Ok(WebhookWithSecret {
            webhook: (&w).into(),
            secret: w.secret,
        })
    }

    /// A subscription's delivery records, newest event first (admin scope).
    pub async fn webhook_deliveries(
        &self,
        who: impl Into<Caller>,
        id: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Admin)?;
        if limit == 0 || limit > MAX_DELIVERIES_PAGE {
            return Err(Error::InvalidInput(format!(
                "limit must be between 1 and {MAX_DELIVERIES_PAGE}"
            )));
        }
        let w = self.own_webhook(tenant, id).await?;
        self.store.deliveries(&w.id, limit).await
    }

    /// A subscription and one of its delivery records, for sending it again (admin scope).
    pub async fn webhook_delivery(
        &self,
        who: impl Into<Caller>,
        id: &str,
        delivery: &str,
    ) -> Result<(Webhook, Delivery)> {
        let caller = who.into();
        let tenant = caller.require(Scope::Admin)?;
        let w = self.own_webhook(tenant, id).await?;
        match self.store.delivery(delivery).await? {
            Some(d) if d.webhook == w.id => Ok((w, d)),
            _ => Err(Error::NotFound(format!(
                "no delivery {delivery:?} of webhook {id:?}"
            ))),
        }
    }

    // For the delivery job, which acts for every tenant.

    /// Every subscription, of every tenant.
    pub async fn all_webhooks(&self) -> Result<Vec<Webhook>> {
        self.store.webhooks(None).await
    }

    /// Saves a subscription's state, and moves its cursor to its position. A subscription
    /// deleted meanwhile stays deleted.
    pub async fn save_webhook(&self, webhook: &Webhook) -> Result<()> {
        let Some(current) = self.store.webhook(&webhook.id).await? else {
            return Ok(());
        };
        let mut w = webhook.clone();
        // A rotation that happened while the job worked wins: keep the stored secrets.
        w.secret = current.secret;
        w.previous_secret = current.previous_secret;
        w.previous_until = current.previous_until;
        self.store.put_webhook(&w).await?;
        self.store
            .set_event_cursor(&cursor_name(&w.id), w.position, self.clock.now())
            .await
    }

    pub async fn save_delivery(&self, delivery: &Delivery) -> Result<()> {
        self.store.put_delivery(delivery).await
    }

    pub async fn stored_delivery(&self, id: &str) -> Result<Option<Delivery>> {
        self.store.delivery(id).await
    }

    /// Deletes every subscription of a tenant (when it is erased).
    pub(crate) async fn drop_webhooks(&self, tenant: &TenantId) -> Result<()> {
        for w in self.store.webhooks(Some(tenant)).await? {
            self.store.delete_webhook(&w.id).await?;
            self.store.delete_event_cursor(&cursor_name(&w.id)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_whsec_and_32_random_bytes() {
        use base64::Engine as _;
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(raw.len(), 32);
    }
}
