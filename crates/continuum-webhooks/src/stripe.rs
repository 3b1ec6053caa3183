//! Stripe's billing webhooks, received: the `Stripe-Signature` check and what a subscription
//! event means for a tenant's tier.
//!
//! The signature is `t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]` over `"{t}.{raw body}"`,
//! keyed with the endpoint secret (`whsec_…`) used as it is (not decoded). Any `v1` that
//! matches is accepted (Stripe sends several while a secret is rolled); the timestamp must be
//! within the tolerance of the receiver's clock (300 s by default, as Stripe's libraries).
//!
//! Tier decisions, from the subscription's status and its price (via the configured price →
//! tier table), for the tenant named in the subscription's metadata (`tenant`):
//! - `customer.subscription.created` / `.updated`: `active` or `trialing` puts the tenant on
//!   the price's tier; any other status (`past_due`, `unpaid`, `canceled`, `incomplete`,
//!   `paused`, …) on the fallback tier.
//! - `customer.subscription.deleted`: the fallback tier.
//! - `invoice.payment_failed`: the fallback tier (the subscription's metadata is read from the
//!   invoice); a later `customer.subscription.updated` with status `active` restores the tier.
//! - Anything else is acknowledged and ignored.

use continuum_core::{TenantId, hex, unhex};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// How far the signed timestamp may be from the receiver's clock, either way.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
/// The longest `Stripe-Signature` header read.
pub const MAX_SIGNATURE_HEADER: usize = 4096;

/// Why a request was not accepted as Stripe's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No usable `Stripe-Signature` header.
    MissingSignature,
    /// No `v1` signature matches the body.
    BadSignature,
    /// The signed timestamp is too far from now (a replay of an old request, or a clock
    /// problem).
    Timestamp { skew_secs: i64 },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::MissingSignature => {
                f.write_str("missing or malformed Stripe-Signature header")
            }
            Refusal::BadSignature => {
                f.write_str("no signature in Stripe-Signature matches the body")
            }
            Refusal::Timestamp { skew_secs } => write!(
                f,
                "the signed timestamp is {skew_secs} s from this server's clock (more than the tolerance)"
            ),
        }
    }
}

fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// A `Stripe-Signature` header for `body` at `t` (for tests, and for replaying an event to a
/// server by hand).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hex(&mac(secret, t, body).finalize().into_bytes())
    )
}

/// Checks `header` against `body` as Stripe's libraries do.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), Refusal> {
    let header = header
        .filter(|h| h.len() <= MAX_SIGNATURE_HEADER)
        .ok_or(Refusal::MissingSignature)?;
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.extend(unhex(v)),
            _ => {}
        }
    }
    let t = t.ok_or(Refusal::MissingSignature)?;
    if v1.is_empty() {
        return Err(Refusal::MissingSignature);
    }
    let expected = mac(secret, t, body).finalize().into_bytes();
    if !v1
        .iter()
        .any(|sig| bool::from(sig.as_slice().ct_eq(expected.as_slice())))
    {
        return Err(Refusal::BadSignature);
    }
    let skew = (now - t).abs();
    if skew > tolerance_secs {
        return Err(Refusal::Timestamp { skew_secs: skew });
    }
    Ok(())
}

/// The receiver's settings.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// The endpoint's signing secret (`whsec_…`).
    pub secret: String,
    /// Price id → tier.
    pub prices: BTreeMap<String, String>,
    /// The tier of a tenant without a paid, current subscription.
    pub fallback_tier: String,
    pub tolerance_secs: i64,
}

/// A verified event, read.
#[derive(Debug, Clone, PartialEq)]
pub struct StripeEvent {
    pub id: String,
    pub kind: String,
    /// When Stripe created it (unix seconds).
    pub created: i64,
    pub object: Value,
}

/// The longest event id kept.
const MAX_EVENT_ID: usize = 255;

impl StripeEvent {
    /// Reads an event's envelope; `Err` names what is missing.
    pub fn parse(body: &[u8]) -> Result<StripeEvent, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let id = v["id"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= MAX_EVENT_ID)
            .ok_or("the event has no id")?;
        let kind = v["type"].as_str().ok_or("the event has no type")?;
        let created = v["created"]
            .as_i64()
            .ok_or("the event has no created time")?;
        Ok(StripeEvent {
            id: id.to_string(),
            kind: kind.to_string(),
            created,
            object: v["data"]["object"].clone(),
        })
    }
}

/// What an event asks of a tenant's tier.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    SetTier {
        tenant: TenantId,
        tier: String,
        status: String,
        customer: Option<String>,
        subscription: Option<String>,
    },
    /// Acknowledged, changes nothing; the reason says why.
    Ignore(String),
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn tenant_in(metadata: &Value) -> Result<TenantId, String> {
    let t = metadata["tenant"]
        .as_str()
        .ok_or("no tenant in the subscription's metadata")?;
    TenantId::new(t).map_err(|e| format!("the subscription's metadata names no valid tenant: {e}"))
}

/// What `event` means for a tier under `config`.
pub fn decide(event: &StripeEvent, config: &StripeConfig) -> Decision {
    let o = &event.object;
    match event.kind.as_str() {
        "customer.subscription.created" | "customer.subscription.updated" => {
            let tenant = match tenant_in(&o["metadata"]) {
                Ok(t) => t,
                Err(why) => return Decision::Ignore(why),
            };
            let status = o["status"].as_str().unwrap_or("unknown").to_string();
            let tier = if matches!(status.as_str(), "active" | "trialing") {
                let prices = o["items"]["data"].as_array().cloned().unwrap_or_default();
                let tier = prices
                    .iter()
                    .filter_map(|item| item["price"]["id"].as_str())
                    .find_map(|p| config.prices.get(p));
                match tier {
                    Some(t) => t.clone(),
                    None => {
                        return Decision::Ignore(
                            "none of the subscription's prices is in the price table".into(),
                        );
                    }
                }
            } else {
                config.fallback_tier.clone()
            };
            Decision::SetTier {
                tenant,
                tier,
                status,
                customer: text(&o["customer"]),
                subscription: text(&o["id"]),
            }
        }
        "customer.subscription.deleted" => match tenant_in(&o["metadata"]) {
            Ok(tenant) => Decision::SetTier {
                tenant,
                tier: config.fallback_tier.clone(),
                status: "canceled".into(),
                customer: text(&o["customer"]),
                subscription: text(&o["id"]),
            },
            Err(why) => Decision::Ignore(why),
        },
        "invoice.payment_failed" => {
            // Newer API versions put the subscription's details under `parent`.
            let details = if o["parent"]["subscription_details"].is_object() {
                &o["parent"]["subscription_details"]
            } else {
                &o["subscription_details"]
            };
            match tenant_in(&details["metadata"]) {
                Ok(tenant) => Decision::SetTier {
                    tenant,
                    tier: config.fallback_tier.clone(),
                    status: "payment_failed".into(),
                    customer: text(&o["customer"]),
                    subscription: text(&details["subscription"])
                        .or_else(|| text(&o["subscription"])),
                },
                Err(why) => Decision::Ignore(why),
            }
        }
        other => Decision::Ignore(format!("event type {other} is not used")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let body = br#"{"id":"evt_1"}"#;
        let h = sign(SECRET, 1_700_000_000, body);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(verify(SECRET, Some(&h), body, 1_700_000_100, 300), Ok(()));
        assert_eq!(
            verify(SECRET, Some(&h), br#"{"id":"evt_2"}"#, 1_700_000_000, 300),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify("whsec_other", Some(&h), body, 1_700_000_000, 300),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some(&h), body, 1_700_000_301, 300),
            Err(Refusal::Timestamp { skew_secs: 301 })
        );
        assert_eq!(
            verify(SECRET, Some(&h), body, 1_699_999_000, 300),
            Err(Refusal::Timestamp { skew_secs: 1000 }),
            "a timestamp from the future is refused too"
        );
        for bad in ["", "t=1700000000", "v1=00", "t=x,v1=zz", &"a".repeat(5000)] {
            assert_eq!(
                verify(SECRET, Some(bad), body, 1_700_000_000, 300),
                Err(Refusal::MissingSignature),
                "{bad:.20}"
            );
        }
        assert_eq!(
            verify(SECRET, None, body, 0, 300),
            Err(Refusal::MissingSignature)
        );
    }

    #[test]
    fn during_a_secret_roll_either_signature_is_accepted() {
        let body = b"{}";
        let old = sign("whsec_old", 100, body);
        let new = sign(SECRET, 100, body);
        let both = format!("{new},v1={},v0=ignored", &old["t=100,v1=".len()..]);
        assert_eq!(verify("whsec_old", Some(&both), body, 100, 300), Ok(()));
        assert_eq!(verify(SECRET, Some(&both), body, 100, 300), Ok(()));
    }

    #[test]
    fn the_signature_is_hex_hmac_over_timestamp_dot_body_with_the_secret_verbatim() {
        // Computed independently: python3 -c 'import hmac,hashlib;
        // print(hmac.new(b"whsec_test_secret", b"1700000000.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(SECRET, 1_700_000_000, b"{}"),
            "t=1700000000,v1=ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3"
        );
    }

    fn config() -> StripeConfig {
        StripeConfig {
            secret: SECRET.into(),
            prices: [("price_pro".to_string(), "pro".to_string())].into(),
            fallback_tier: "free".into(),
            tolerance_secs: 300,
        }
    }

    fn event(kind: &str, object: Value) -> StripeEvent {
        StripeEvent {
            id: "evt_1".into(),
            kind: kind.into(),
            created: 1,
            object,
        }
    }

    fn subscription(status: &str, price: &str) -> Value {
        serde_json::json!({
            "id": "sub_1", "customer": "cus_1", "status": status,
            "metadata": {"tenant": "acme"},
            "items": {"data": [{"price": {"id": price}}]}
        })
    }

    #[test]
    fn subscription_events_map_to_tiers() {
        let c = config();
        let tier = |e: &StripeEvent| match decide(e, &c) {
            Decision::SetTier { tier, tenant, .. } => {
                assert_eq!(tenant.as_str(), "acme");
                tier
            }
            Decision::Ignore(why) => format!("ignored: {why}"),
        };
        for kind in [
            "customer.subscription.created",
            "customer.subscription.updated",
        ] {
            assert_eq!(
                tier(&event(kind, subscription("active", "price_pro"))),
                "pro"
            );
            assert_eq!(
                tier(&event(kind, subscription("trialing", "price_pro"))),
                "pro"
            );
            assert_eq!(
                tier(&event(kind, subscription("past_due", "price_pro"))),
                "free"
            );
            assert_eq!(
                tier(&event(kind, subscription("unpaid", "price_pro"))),
                "free"
            );
            assert!(tier(&event(kind, subscription("active", "price_x"))).starts_with("ignored"));
        }
        assert_eq!(
            tier(&event(
                "customer.subscription.deleted",
                subscription("canceled", "price_pro")
            )),
            "free"
        );
        let new_invoice = serde_json::json!({"customer": "cus_1", "parent": {"subscription_details": {"subscription": "sub_1", "metadata": {"tenant": "acme"}}}});
        let old_invoice = serde_json::json!({"customer": "cus_1", "subscription": "sub_1", "subscription_details": {"metadata": {"tenant": "acme"}}});
        assert_eq!(tier(&event("invoice.payment_failed", new_invoice)), "free");
        assert_eq!(tier(&event("invoice.payment_failed", old_invoice)), "free");
        assert!(tier(&event("charge.succeeded", serde_json::json!({}))).starts_with("ignored"));
        let mut no_tenant = subscription("active", "price_pro");
        no_tenant["metadata"] = serde_json::json!({});
        assert!(tier(&event("customer.subscription.updated", no_tenant)).contains("no tenant"));
        let mut bad_tenant = subscription("active", "price_pro");
        bad_tenant["metadata"]["tenant"] = "../etc".into();
        assert!(tier(&event("customer.subscription.updated", bad_tenant)).starts_with("ignored"));
    }

    #[test]
    fn events_need_an_id_a_type_and_a_time() {
        let e = StripeEvent::parse(
            br#"{"id":"evt_9","type":"customer.subscription.created","created":5,"data":{"object":{"a":1}}}"#,
        )
        .unwrap();
        assert_eq!(
            (e.id.as_str(), e.created, e.object["a"].as_i64()),
            ("evt_9", 5, Some(1))
        );
        for bad in [
            &b"not json"[..],
            br#"{"type":"x","created":1}"#,
            br#"{"id":"e","created":1}"#,
            br#"{"id":"e","type":"x"}"#,
        ] {
            assert!(StripeEvent::parse(bad).is_err());
        }
    }
}
