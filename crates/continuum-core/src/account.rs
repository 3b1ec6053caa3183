//! What a tenant uses and what it may use: daily usage counters, tiers with their quotas, and
//! the plan that puts a tenant on a tier.
//!
//! Usage is counted per tenant and UTC day. Requests are counted by kind at the interfaces
//! (REST, MCP); embeddings and webhook deliveries by the jobs that make them; memories and bytes
//! stored are the tenant's footprint as last measured that day (a gauge, not a sum).

use crate::{Error, Result, TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A kind of request, as metering counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageKind {
    Learn,
    Recall,
    Search,
    Other,
}

/// Counters added to a tenant's day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounts {
    pub learn: u64,
    pub recall: u64,
    pub search: u64,
    pub other: u64,
    pub embeddings: u64,
    pub webhook_deliveries: u64,
}

impl UsageCounts {
    /// Requests of every kind.
    pub fn requests(&self) -> u64 {
        self.learn + self.recall + self.search + self.other
    }

    pub fn count(&mut self, kind: UsageKind) {
        match kind {
            UsageKind::Learn => self.learn += 1,
            UsageKind::Recall => self.recall += 1,
            UsageKind::Search => self.search += 1,
            UsageKind::Other => self.other += 1,
        }
    }

    pub fn add(&mut self, o: &UsageCounts) {
        self.learn += o.learn;
        self.recall += o.recall;
        self.search += o.search;
        self.other += o.other;
        self.embeddings += o.embeddings;
        self.webhook_deliveries += o.webhook_deliveries;
    }

    pub fn is_empty(&self) -> bool {
        *self == UsageCounts::default()
    }
}

/// What one flush adds to a tenant's day: counters, and the footprint when it was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageDelta {
    pub tenant: TenantId,
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub counts: UsageCounts,
    /// Memories and bytes of text stored, replacing the day's previous reading.
    pub footprint: Option<Footprint>,
}

/// How much a tenant stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Footprint {
    pub memories: u64,
    /// Bytes of memory text (UTF-8), the part of the store that grows with use.
    pub bytes: u64,
}

/// A tenant's usage on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UsageDay {
    pub tenant: TenantId,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Requests by kind.
    pub learn: u64,
    pub recall: u64,
    pub search: u64,
    pub other: u64,
    /// Texts embedded for the tenant.
    pub embeddings: u64,
    /// Webhook delivery attempts made for the tenant.
    pub webhook_deliveries: u64,
    /// Memories stored, as last measured that day.
    pub memories: u64,
    /// Bytes of memory text stored, as last measured that day.
    pub bytes: u64,
}

impl UsageDay {
    pub fn requests(&self) -> u64 {
        self.learn + self.recall + self.search + self.other
    }
}

/// The UTC day of `at`, as `YYYY-MM-DD`.
pub fn day_of(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(at.millis())
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// Checks a `YYYY-MM-DD` day given by a caller.
pub fn parse_day(s: &str) -> Result<String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| Error::InvalidInput(format!("'{s}' is not a day (YYYY-MM-DD)")))
}

/// Days from `from` to `to` (two `YYYY-MM-DD` days; negative when `to` comes first).
pub fn days_between(from: &str, to: &str) -> Result<i64> {
    let d = |s: &str| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| Error::InvalidInput(format!("'{s}' is not a day (YYYY-MM-DD)")))
    };
    Ok((d(to)? - d(from)?).num_days())
}

/// The start of the UTC day after `at`: when daily quotas reset.
pub fn next_day_start(at: Timestamp) -> Timestamp {
    const DAY: i64 = 86_400_000;
    Timestamp((at.millis().div_euclid(DAY) + 1) * DAY)
}

/// The longest tier name.
pub const MAX_TIER_NAME: usize = 32;

/// A tier: a name and its quotas (`None`: no limit).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Tier {
    pub name: String,
    /// Memories the tenant may store.
    pub max_memories: Option<u64>,
    /// Requests (every kind) per UTC day.
    pub requests_per_day: Option<u64>,
    /// Requests per second each key may sustain (bursts to twice as many).
    pub rate_per_key: Option<f64>,
    /// Webhook subscriptions.
    pub max_webhooks: Option<u64>,
}

impl Tier {
    /// A tier with no quota at all.
    pub fn unlimited(name: &str) -> Tier {
        Tier {
            name: name.to_string(),
            max_memories: None,
            requests_per_day: None,
            rate_per_key: None,
            max_webhooks: None,
        }
    }

    /// The built-in tiers: `free`, `pro`, `enterprise`, and `unlimited` (no quota; the default
    /// for tenants that were never given a tier, unless the configuration names another).
    pub fn builtin() -> Vec<Tier> {
        vec![
            Tier {
                name: "free".into(),
                max_memories: Some(10_000),
                requests_per_day: Some(1_000),
                rate_per_key: Some(5.0),
                max_webhooks: Some(2),
            },
            Tier {
                name: "pro".into(),
                max_memories: Some(1_000_000),
                requests_per_day: Some(100_000),
                rate_per_key: Some(50.0),
                max_webhooks: Some(10),
            },
            Tier {
                name: "enterprise".into(),
                max_memories: Some(10_000_000),
                requests_per_day: None,
                rate_per_key: Some(200.0),
                max_webhooks: Some(20),
            },
            Tier::unlimited("unlimited"),
        ]
    }

    /// A tier from its text form, `NAME:memories=N,requests_per_day=N,rate=R,webhooks=N`; a
    /// quota left out, or given as `none`, is unlimited.
    pub fn parse(spec: &str) -> Result<Tier> {
        let bad = |why: String| Error::InvalidInput(format!("tier '{spec}': {why}"));
        let (name, quotas) = spec.split_once(':').unwrap_or((spec, ""));
        let name = name.trim();
        check_tier_name(name).map_err(|e| bad(e.to_string()))?;
        let mut tier = Tier::unlimited(name);
        for part in quotas.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("'{part}' is not QUOTA=VALUE")))?;
            let v = v.trim();
            let none = v.eq_ignore_ascii_case("none");
            let int = || -> Result<Option<u64>> {
                if none {
                    return Ok(None);
                }
                v.replace('_', "")
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| bad(format!("{k}: '{v}' is not a whole number")))
            };
            match k.trim() {
                "memories" => tier.max_memories = int()?,
                "requests_per_day" => tier.requests_per_day = int()?,
                "webhooks" => tier.max_webhooks = int()?,
                "rate" => {
                    tier.rate_per_key = if none {
                        None
                    } else {
                        let r: f64 = v
                            .parse()
                            .map_err(|_| bad(format!("rate: '{v}' is not a number")))?;
                        if !(r.is_finite() && r > 0.0) {
                            return Err(bad("rate must be above 0 (or none)".into()));
                        }
                        Some(r)
                    }
                }
                other => {
                    return Err(bad(format!(
                        "unknown quota '{other}' (memories, requests_per_day, rate, webhooks)"
                    )));
                }
            }
        }
        Ok(tier)
    }
}

/// A tier name: 1 to [`MAX_TIER_NAME`] characters of `a-z 0-9 _ -`.
pub fn check_tier_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_TIER_NAME
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(Error::InvalidInput(format!(
            "'{name}' is not a tier name (1 to {MAX_TIER_NAME} of a-z, 0-9, _ and -)"
        )));
    }
    Ok(())
}

/// Every tier a deployment knows, and the one for tenants that were never given one.
#[derive(Debug, Clone, PartialEq)]
pub struct Tiers {
    by_name: BTreeMap<String, Tier>,
    default: String,
}

impl Default for Tiers {
    fn default() -> Self {
        Tiers::new(Vec::new(), None).expect("the built-in tiers are valid")
    }
}

impl Tiers {
    /// The built-in tiers, with `custom` ones added (a custom tier may redefine a built-in
    /// one), and `default` (or `unlimited`) for tenants without a plan.
    pub fn new(custom: Vec<Tier>, default: Option<&str>) -> Result<Tiers> {
        let mut by_name: BTreeMap<String, Tier> = Tier::builtin()
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        for t in custom {
            by_name.insert(t.name.clone(), t);
        }
        let default = default.unwrap_or("unlimited").to_string();
        if !by_name.contains_key(&default) {
            return Err(Error::InvalidInput(format!(
                "the default tier '{default}' is not defined (known: {})",
                by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(Tiers { by_name, default })
    }

    pub fn get(&self, name: &str) -> Option<&Tier> {
        self.by_name.get(name)
    }

    /// The named tier, or a clear error (not found) listing the known ones.
    pub fn require(&self, name: &str) -> Result<&Tier> {
        self.get(name).ok_or_else(|| {
            Error::NotFound(format!(
                "unknown tier '{name}' (known: {})",
                self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    pub fn default_tier(&self) -> &Tier {
        &self.by_name[&self.default]
    }

    pub fn all(&self) -> impl Iterator<Item = &Tier> {
        self.by_name.values()
    }
}

/// Who set a tenant's plan.
pub const PLAN_SOURCE_OPERATOR: &str = "operator";
pub const PLAN_SOURCE_STRIPE: &str = "stripe";

/// The tier a tenant is on, and where that came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Plan {
    pub tenant: TenantId,
    pub tier: String,
    /// `operator` (set by hand) or `stripe` (set by a billing event).
    pub source: String,
    /// The billing status behind the tier (`active`, `past_due`, `canceled`,
    /// `payment_failed`, …); `None` when set by an operator.
    pub status: Option<String>,
    pub updated_at: Timestamp,
    /// When the billing event that set it was created (later events win; older ones that
    /// arrive late are ignored).
    pub external_at: Option<Timestamp>,
    /// Billing identifiers (Stripe customer and subscription), when known.
    pub customer: Option<String>,
    pub subscription: Option<String>,
}

/// What recording a billing event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillingRecord {
    /// The event was seen before: nothing was applied.
    Duplicate,
    /// Recorded, and its plan (if any) written.
    Applied,
    /// Recorded, but the plan was not written: a later billing event had set it.
    Stale,
}

/// Plans, usage and the ids of billing events already processed.
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync {
    /// Adds each delta's counters to its tenant's day (creating the day), sets the footprint
    /// when given, and returns the days' totals afterwards. One transaction.
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<Vec<UsageDay>>;
    /// Usage days from `from` to `to` (inclusive, `YYYY-MM-DD`), of one tenant or all, by
    /// tenant then day; at most `limit` rows.
    async fn usage(
        &self,
        tenant: Option<&TenantId>,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<UsageDay>>;
    /// The memories and bytes of text a tenant stores now.
    async fn footprint(&self, tenant: &TenantId) -> Result<Footprint>;
    async fn put_plan(&self, plan: &Plan) -> Result<()>;
    async fn plan(&self, tenant: &TenantId) -> Result<Option<Plan>>;
    async fn plans(&self) -> Result<Vec<Plan>>;
    /// Records a billing event id and, the first time only, writes `plan` in the same
    /// transaction unless the stored plan came from a later billing event (`external_at`).
    /// Ids received before `forget_before` are dropped on the way.
    async fn record_billing_event(
        &self,
        id: &str,
        at: Timestamp,
        forget_before: Timestamp,
        plan: Option<&Plan>,
    ) -> Result<BillingRecord>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_parse_with_every_quota_and_refuse_nonsense() {
        let t = Tier::parse("team:memories=50_000,requests_per_day=20000,rate=12.5,webhooks=none")
            .unwrap();
        assert_eq!(t.name, "team");
        assert_eq!(t.max_memories, Some(50_000));
        assert_eq!(t.requests_per_day, Some(20_000));
        assert_eq!(t.rate_per_key, Some(12.5));
        assert_eq!(t.max_webhooks, None);
        assert_eq!(Tier::parse("open").unwrap(), Tier::unlimited("open"));
        for bad in [
            "",
            "Team:memories=1",
            "t:memories=-1",
            "t:rate=0",
            "t:colour=blue",
            "t:memories",
            &"x".repeat(33),
        ] {
            assert!(Tier::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_custom_tier_can_replace_a_builtin_and_the_default_must_exist() {
        let tiers =
            Tiers::new(vec![Tier::parse("free:memories=5").unwrap()], Some("free")).unwrap();
        assert_eq!(tiers.default_tier().max_memories, Some(5));
        assert_eq!(Tiers::default().default_tier().name, "unlimited");
        assert!(Tiers::new(Vec::new(), Some("gold")).is_err());
        assert!(tiers.require("pro").is_ok());
        assert!(
            tiers
                .require("gold")
                .unwrap_err()
                .to_string()
                .contains("known: ")
        );
    }

    #[test]
    fn days_are_utc_and_quotas_reset_at_midnight() {
        let t = Timestamp::parse("2026-12-06T23:59:59Z").unwrap();
        assert_eq!(day_of(t), "2026-12-06");
        assert_eq!(
            next_day_start(t),
            Timestamp::parse("2026-12-07T00:00:00Z").unwrap()
        );
        assert_eq!(parse_day("2026-02-03").unwrap(), "2026-02-03");
        assert!(parse_day("2026-02-30").is_err());
        assert!(parse_day("yesterday").is_err());
    }
}
