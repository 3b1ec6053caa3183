//! Metering, tiers and quotas.
//!
//! Requests are counted in memory, per tenant and UTC day, and added to the store by
//! [`Engine::flush_usage`] (the `usage-flush` job, every [`USAGE_FLUSH_INTERVAL`], and at
//! shutdown): counting costs a lock and an addition, never a store write.
//!
//! A tenant's tier comes from its plan (set by an operator or a billing event), or is the
//! deployment's default. Tiers are cached for [`PLAN_TTL`], so a change made by another process
//! (`continuum tenants set-tier` against the store) takes effect within that time, and one
//! made through this engine at once.
//!
//! Limits of what is enforced, stated: the daily request count is this process's count plus
//! what the store held at its last flush, so several servers on one store may together pass a
//! daily quota by what they count between two flushes; the storage count is at most
//! [`FOOTPRINT_TTL`] old plus this process's own writes since (forgetting makes it measured
//! again). The footprint in a usage day is the same reading, measured again at a flush when
//! older than [`FOOTPRINT_TTL`]: between measurements, writes by other processes and
//! memories that a write deduplicated are not reflected.

use crate::Engine;
use continuum_core::account::{
    BillingRecord, Footprint, PLAN_SOURCE_OPERATOR, Plan, Tier, Tiers, UsageCounts, UsageDay,
    UsageDelta, UsageKind, day_of, days_between, next_day_start, parse_day,
};
use continuum_core::keys::{Caller, Scope};
use continuum_core::{Error, Result, TenantId, Timestamp};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the `usage-flush` job writes the counted usage to the store.
pub const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// How long a tenant's tier is trusted before it is read again.
pub const PLAN_TTL: Duration = Duration::from_secs(5);
/// How old a tenant's storage footprint may be when a write is checked against its quota.
pub const FOOTPRINT_TTL: Duration = Duration::from_secs(60);
/// Tenants idle this long (nothing pending) are dropped from memory at a flush.
const IDLE: Duration = Duration::from_secs(600);
/// The most usage rows one report holds.
pub const MAX_USAGE_ROWS: usize = 10_000;
/// How long billing event ids are kept to refuse replays. Stripe signs a timestamp that is
/// refused after five minutes anyway; a week covers its retries.
pub const BILLING_EVENT_MEMORY_MILLIS: i64 = 7 * 86_400_000;

/// A tenant as metering holds it in memory.
struct Account {
    tier: Arc<Tier>,
    /// When `tier` was read from the store; `None`: never, or invalidated.
    tier_read: Option<Instant>,
    /// The day `stored_requests` is for.
    day: String,
    /// Requests the store held for `day` when last read or flushed.
    stored_requests: u64,
    /// Counted, not yet flushed, by day.
    pending: BTreeMap<String, UsageCounts>,
    footprint: Option<(Footprint, Instant)>,
    /// What this process stored since `footprint` was measured.
    since: Footprint,
    touched: Instant,
}

impl Account {
    fn new(tier: Arc<Tier>, day: String) -> Account {
        Account {
            tier,
            tier_read: None,
            day,
            stored_requests: 0,
            pending: BTreeMap::new(),
            footprint: None,
            since: Footprint::default(),
            touched: Instant::now(),
        }
    }

    /// Is the cached tier recent enough to trust?
    fn tier_fresh(&self) -> bool {
        self.tier_read.is_some_and(|t| t.elapsed() < PLAN_TTL)
    }
}

/// The engine's metering state.
#[derive(Default)]
pub(crate) struct Accounts {
    pub(crate) tiers: Tiers,
    tenants: Mutex<HashMap<TenantId, Account>>,
}

impl Accounts {
    pub(crate) fn new(tiers: Tiers) -> Self {
        Accounts {
            tiers,
            tenants: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Account>> {
        self.tenants.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A tier with the tenant's plan behind it, for `GET /v1/plan` and `tenants show`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlanView {
    pub tenant: TenantId,
    pub tier: Tier,
    /// The stored plan; `None` when the tenant is on the default tier.
    pub plan: Option<Plan>,
}

/// Usage over a span of days.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UsageReport {
    pub from: String,
    pub to: String,
    /// Days with any use, by tenant then day.
    pub days: Vec<UsageDay>,
    /// Sums over `days` (memories and bytes: the latest reading of each tenant, added).
    pub totals: UsageTotals,
    /// True when the report stopped at [`MAX_USAGE_ROWS`] rows.
    pub truncated: bool,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct UsageTotals {
    pub requests: u64,
    pub learn: u64,
    pub recall: u64,
    pub search: u64,
    pub other: u64,
    pub embeddings: u64,
    pub webhook_deliveries: u64,
    pub memories: u64,
    pub bytes: u64,
}

impl UsageTotals {
    fn of(days: &[UsageDay]) -> UsageTotals {
        let mut t = UsageTotals::default();
        let mut latest: BTreeMap<&TenantId, &UsageDay> = BTreeMap::new();
        for d in days {
            t.learn += d.learn;
            t.recall += d.recall;
            t.search += d.search;
            t.other += d.other;
            t.embeddings += d.embeddings;
            t.webhook_deliveries += d.webhook_deliveries;
            latest.insert(&d.tenant, d);
        }
        t.requests = t.learn + t.recall + t.search + t.other;
        t.memories = latest.values().map(|d| d.memories).sum();
        t.bytes = latest.values().map(|d| d.bytes).sum();
        t
    }
}

/// A change of tier decided by a billing provider.
#[derive(Debug, Clone)]
pub struct BillingChange {
    /// The provider's event id (replays of it are refused).
    pub event_id: String,
    /// When the provider created the event (older events never undo newer ones).
    pub event_at: Timestamp,
    pub tenant: TenantId,
    pub tier: String,
    pub status: Option<String>,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    /// `stripe`, …
    pub source: &'static str,
}

impl Engine {
    /// The deployment's tiers.
    pub fn tiers(&self) -> &Tiers {
        &self.accounts.tiers
    }

    /// The tier `tenant` is on now (cached for [`PLAN_TTL`]).
    pub async fn tier_of(&self, tenant: &TenantId) -> Result<Arc<Tier>> {
        let today = day_of(self.clock.now());
        {
            let mut all = self.accounts.lock();
            if let Some(a) = all.get_mut(tenant)
                && a.tier_fresh()
                && a.day == today
            {
                a.touched = Instant::now();
                return Ok(a.tier.clone());
            }
        }
        let tier = Arc::new(self.stored_tier(tenant).await?);
        // The day's requests so far matter only under a daily quota.
        let stored = match tier.requests_per_day {
            Some(_) => self
                .store
                .usage(Some(tenant), &today, &today, 1)
                .await?
                .first()
                .map(UsageDay::requests),
            None => None,
        };
        let mut all = self.accounts.lock();
        let a = all
            .entry(tenant.clone())
            .or_insert_with(|| Account::new(tier.clone(), today.clone()));
        a.tier = tier.clone();
        a.tier_read = Some(Instant::now());
        a.touched = Instant::now();
        if a.day != today {
            a.day = today;
            a.stored_requests = 0;
        }
        if let Some(n) = stored {
            a.stored_requests = a.stored_requests.max(n);
        }
        Ok(tier)
    }

    /// The tier the store says `tenant` is on. A plan naming a tier this deployment does not
    /// define (removed from the configuration) falls back to the default, with a warning.
    async fn stored_tier(&self, tenant: &TenantId) -> Result<Tier> {
        let tiers = &self.accounts.tiers;
        Ok(match self.store.plan(tenant).await? {
            Some(p) => match tiers.get(&p.tier) {
                Some(t) => t.clone(),
                None => {
                    tracing::warn!(tenant = %tenant, tier = %p.tier, "the tenant's tier is not defined; using the default tier");
                    tiers.default_tier().clone()
                }
            },
            None => tiers.default_tier().clone(),
        })
    }

    /// Counts a request of `kind` for the caller's tenant, refusing it when the tier's daily
    /// request quota is used up (`tier` from [`Engine::tier_of`]).
    pub fn admit(&self, caller: &Caller, kind: UsageKind, tier: &Tier) -> Result<()> {
        let now = self.clock.now();
        let today = day_of(now);
        let mut all = self.accounts.lock();
        let a = all
            .entry(caller.tenant.clone())
            .or_insert_with(|| Account::new(Arc::new(tier.clone()), today.clone()));
        if a.day != today {
            a.day = today.clone();
            a.stored_requests = 0;
        }
        a.touched = Instant::now();
        let pending = a.pending.entry(today).or_default();
        if let Some(max) = tier.requests_per_day {
            let used = a.stored_requests + pending.requests();
            if used >= max {
                let reset = next_day_start(now);
                let wait = ((reset.millis() - now.millis()) / 1000).max(1) as u64;
                metrics::counter!(continuum_ops::metrics::QUOTA_REFUSED, "quota" => "requests_per_day")
                    .increment(1);
                return Err(Error::QuotaExceeded(
                    format!(
                        "the daily request quota of tier '{}' ({max} requests per day) is used up; it resets at {} (in {wait} s)",
                        tier.name,
                        reset.to_rfc3339()
                    ),
                    Some(wait),
                ));
            }
        }
        pending.count(kind);
        Ok(())
    }

    /// [`Engine::tier_of`] then [`Engine::admit`], for interfaces without a rate limit of
    /// their own to apply in between.
    pub async fn admit_request(&self, caller: &Caller, kind: UsageKind) -> Result<()> {
        let tier = self.tier_of(&caller.tenant).await?;
        self.admit(caller, kind, &tier)
    }

    /// Counts work done for `tenant` outside a request (embeddings, webhook deliveries).
    pub fn count_usage(&self, tenant: &TenantId, add: impl FnOnce(&mut UsageCounts)) {
        let today = day_of(self.clock.now());
        let mut all = self.accounts.lock();
        let tiers = &self.accounts.tiers;
        let a = all
            .entry(tenant.clone())
            .or_insert_with(|| Account::new(Arc::new(tiers.default_tier().clone()), today.clone()));
        a.touched = Instant::now();
        add(a.pending.entry(today).or_default());
    }

    /// Refuses a write that would take `tenant` past its tier's storage quota: `adding` new
    /// memories on top of what it stores. Nothing is written when this fails.
    pub(crate) async fn check_storage(&self, tenant: &TenantId, adding: u64) -> Result<()> {
        let tier = self.tier_of(tenant).await?;
        let Some(max) = tier.max_memories else {
            return Ok(());
        };
        let cached = {
            let all = self.accounts.lock();
            all.get(tenant).and_then(|a| {
                a.footprint
                    .filter(|(_, at)| at.elapsed() < FOOTPRINT_TTL)
                    .map(|(f, _)| f.memories + a.since.memories)
            })
        };
        let stored = match cached {
            Some(n) => n,
            None => self.measure_footprint(tenant).await?.memories,
        };
        if stored + adding > max {
            metrics::counter!(continuum_ops::metrics::QUOTA_REFUSED, "quota" => "memories")
                .increment(1);
            return Err(Error::QuotaExceeded(
                format!(
                    "the storage quota of tier '{}' is {max} memories; the tenant stores {stored} and this would add {adding}. Forget memories you no longer need, or move the tenant to a larger tier",
                    tier.name
                ),
                None,
            ));
        }
        Ok(())
    }

    /// Notes what this process stored (the storage check and the usage day count it until
    /// the next measurement).
    pub(crate) fn note_stored(&self, tenant: &TenantId, added: Footprint) {
        if let Some(a) = self.accounts.lock().get_mut(tenant) {
            a.since.memories += added.memories;
            a.since.bytes += added.bytes;
        }
    }

    /// Forgets the measured footprint (after memories were deleted), so that the next check
    /// measures it again.
    pub(crate) fn footprint_changed(&self, tenant: &TenantId) {
        if let Some(a) = self.accounts.lock().get_mut(tenant) {
            a.footprint = None;
            a.since = Footprint::default();
        }
    }

    async fn measure_footprint(&self, tenant: &TenantId) -> Result<Footprint> {
        let f = self.store.footprint(tenant).await?;
        if let Some(a) = self.accounts.lock().get_mut(tenant) {
            a.footprint = Some((f, Instant::now()));
            a.since = Footprint::default();
        }
        Ok(f)
    }

    /// Writes the usage counted since the last flush to the store (one transaction) and
    /// returns the tenant-days written. On failure the counts are kept for the next flush.
    pub async fn flush_usage(&self) -> Result<usize> {
        let today = day_of(self.clock.now());
        let (mut deltas, remeasure) = {
            let mut all = self.accounts.lock();
            all.retain(|_, a| !a.pending.is_empty() || a.touched.elapsed() < IDLE);
            let mut deltas = Vec::new();
            let mut remeasure = Vec::new();
            for (tenant, a) in all.iter_mut() {
                for (day, counts) in std::mem::take(&mut a.pending) {
                    if counts.is_empty() {
                        continue;
                    }
                    // Today's footprint: the recent reading plus what was stored since, or a
                    // new reading.
                    let footprint = match a.footprint {
                        Some((f, at)) if day == today && at.elapsed() < FOOTPRINT_TTL => {
                            Some(Footprint {
                                memories: f.memories + a.since.memories,
                                bytes: f.bytes + a.since.bytes,
                            })
                        }
                        _ => {
                            if day == today {
                                remeasure.push(tenant.clone());
                            }
                            None
                        }
                    };
                    deltas.push(UsageDelta {
                        tenant: tenant.clone(),
                        day,
                        counts,
                        footprint,
                    });
                }
            }
            (deltas, remeasure)
        };
        if deltas.is_empty() {
            return Ok(0);
        }
        for tenant in &remeasure {
            // A failed measurement only leaves the day's footprint as it was.
            if let Ok(f) = self.measure_footprint(tenant).await
                && let Some(d) = deltas
                    .iter_mut()
                    .find(|d| &d.tenant == tenant && d.day == today)
            {
                d.footprint = Some(f);
            }
        }
        match self.store.add_usage(&deltas).await {
            Ok(totals) => {
                let mut all = self.accounts.lock();
                for t in &totals {
                    if let Some(a) = all.get_mut(&t.tenant)
                        && a.day == t.day
                    {
                        a.stored_requests = t.requests();
                    }
                }
                Ok(totals.len())
            }
            Err(e) => {
                let mut all = self.accounts.lock();
                for d in deltas {
                    if let Some(a) = all.get_mut(&d.tenant) {
                        a.pending.entry(d.day).or_default().add(&d.counts);
                    }
                }
                Err(e)
            }
        }
    }

    /// Flushes usage every [`USAGE_FLUSH_INTERVAL`] until `stop`, then once more.
    pub async fn run_usage_flush(&self, stop: tokio_util::sync::CancellationToken) -> Result<()> {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(USAGE_FLUSH_INTERVAL) => {}
            }
            if let Err(e) = self.flush_usage().await {
                tracing::warn!(error = %e, "usage flush failed; the counts are kept for the next one");
            }
        }
        self.flush_usage().await.map(|_| ())
    }

    /// Usage from `from` to `to` (inclusive days, default: the last 30 days; at most
    /// [`MAX_USAGE_ROWS`] rows, then `truncated`). An admin sees
    /// its own tenant; an operator any tenant, or all when `tenant` is `None`. Counts not yet
    /// flushed are flushed first, so the report is current.
    pub async fn usage(
        &self,
        who: impl Into<Caller>,
        tenant: Option<&TenantId>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<UsageReport> {
        let caller = who.into();
        let own = caller.require(Scope::Admin)?;
        let tenant = match tenant {
            Some(t) if t != own => {
                caller.require(Scope::Operator)?;
                Some(t)
            }
            Some(t) => Some(t),
            None if caller.scope.allows(Scope::Operator) => None,
            None => Some(own),
        };
        let now = self.clock.now();
        let to = match to {
            Some(d) => parse_day(d)?,
            None => day_of(now),
        };
        let from = match from {
            Some(d) => parse_day(d)?,
            None => day_of(Timestamp(now.millis() - 29 * 86_400_000)),
        };
        // A span ending before it starts is empty; a long one is bounded by the row limit.
        if days_between(&from, &to)? < 0 {
            return Ok(UsageReport {
                from,
                to,
                days: Vec::new(),
                totals: UsageTotals::default(),
                truncated: false,
            });
        }
        if let Err(e) = self.flush_usage().await {
            tracing::warn!(error = %e, "usage flush before a report failed");
        }
        let mut days = self
            .store
            .usage(tenant, &from, &to, MAX_USAGE_ROWS + 1)
            .await?;
        let truncated = days.len() > MAX_USAGE_ROWS;
        days.truncate(MAX_USAGE_ROWS);
        Ok(UsageReport {
            totals: UsageTotals::of(&days),
            from,
            to,
            days,
            truncated,
        })
    }

    /// The caller's tenant's tier and plan (any scope), or another tenant's (operator).
    pub async fn plan(
        &self,
        who: impl Into<Caller>,
        tenant: Option<&TenantId>,
    ) -> Result<PlanView> {
        let caller = who.into();
        let own = caller.require(Scope::Read)?;
        let tenant = match tenant {
            Some(t) if t != own => {
                caller.require(Scope::Operator)?;
                t
            }
            _ => own,
        };
        Ok(PlanView {
            tenant: tenant.clone(),
            tier: (*self.tier_of(tenant).await?).clone(),
            plan: self.store.plan(tenant).await?,
        })
    }

    /// Every stored plan (operator).
    pub async fn plans(&self, who: impl Into<Caller>) -> Result<Vec<Plan>> {
        who.into().require(Scope::Operator)?;
        self.store.plans().await
    }

    /// Puts `tenant` on `tier` (operator). Takes effect at once in this process, within
    /// [`PLAN_TTL`] in others on the same store.
    pub async fn set_tier(
        &self,
        who: impl Into<Caller>,
        tenant: &TenantId,
        tier: &str,
    ) -> Result<PlanView> {
        let caller = who.into();
        caller.require(Scope::Operator)?;
        self.accounts.tiers.require(tier)?;
        let plan = Plan {
            tenant: tenant.clone(),
            tier: tier.to_string(),
            source: PLAN_SOURCE_OPERATOR.into(),
            status: None,
            updated_at: self.clock.now(),
            external_at: None,
            customer: None,
            subscription: None,
        };
        self.store.put_plan(&plan).await?;
        self.forget_tier(tenant);
        self.audit_ok(
            &crate::actor_of(&caller),
            Some(tenant),
            "tenant.tier_set",
            serde_json::json!({ "tier": tier }),
        )
        .await;
        tracing::info!(tenant = %tenant, tier, "tenant tier set");
        self.plan(caller, Some(tenant)).await
    }

    /// Applies a billing provider's decision (the caller has verified the provider's
    /// signature). A replayed event id changes nothing; an event older than the one that set
    /// the current plan changes nothing.
    pub async fn apply_billing(&self, change: BillingChange) -> Result<BillingRecord> {
        self.accounts.tiers.require(&change.tier)?;
        let now = self.clock.now();
        let plan = Plan {
            tenant: change.tenant.clone(),
            tier: change.tier.clone(),
            source: change.source.into(),
            status: change.status.clone(),
            updated_at: now,
            external_at: Some(change.event_at),
            customer: change.customer.clone(),
            subscription: change.subscription.clone(),
        };
        let out = self
            .store
            .record_billing_event(
                &change.event_id,
                now,
                Timestamp(now.millis() - BILLING_EVENT_MEMORY_MILLIS),
                Some(&plan),
            )
            .await?;
        if out == BillingRecord::Applied {
            self.forget_tier(&change.tenant);
            self.audit_ok(
                change.source,
                Some(&change.tenant),
                "tenant.tier_set",
                serde_json::json!({
                    "tier": change.tier,
                    "status": change.status,
                    "event": change.event_id,
                }),
            )
            .await;
            tracing::info!(tenant = %change.tenant, tier = %change.tier, source = change.source, "tenant tier set by billing");
        }
        Ok(out)
    }

    /// Records a billing event that changes no plan (so that its replay is recognised).
    pub async fn record_billing_event(&self, id: &str) -> Result<BillingRecord> {
        let now = self.clock.now();
        self.store
            .record_billing_event(
                id,
                now,
                Timestamp(now.millis() - BILLING_EVENT_MEMORY_MILLIS),
                None,
            )
            .await
    }

    fn forget_tier(&self, tenant: &TenantId) {
        if let Some(a) = self.accounts.lock().get_mut(tenant) {
            a.tier_read = None;
        }
    }
}
