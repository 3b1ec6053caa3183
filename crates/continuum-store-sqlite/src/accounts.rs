//! [`AccountStore`]: usage per tenant and day, plans, and processed billing event ids.

use super::*;
use continuum_core::account::{AccountStore, BillingRecord, Footprint, Plan, UsageDay, UsageDelta};

const USAGE_COLUMNS: &str =
    "tenant, day, learn, recall, search, other, embeddings, webhook_deliveries, memories, bytes";
const PLAN_COLUMNS: &str =
    "tenant, tier, source, status, updated_at, external_at, customer, subscription";

macro_rules! plan_params {
    ($p:expr) => {
        params![
            $p.tenant.as_str(),
            $p.tier,
            $p.source,
            $p.status,
            $p.updated_at.millis(),
            $p.external_at.map(|t| t.millis()),
            $p.customer,
            $p.subscription,
        ]
    };
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn usage_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, [i64; 8])> {
    let mut n = [0i64; 8];
    for (i, v) in n.iter_mut().enumerate() {
        *v = r.get(i + 2)?;
    }
    Ok((r.get(0)?, r.get(1)?, n))
}

fn usage_day((tenant, day, n): (String, String, [i64; 8])) -> Result<UsageDay> {
    let u = |i: usize| n[i].max(0) as u64;
    Ok(UsageDay {
        tenant: TenantId::new(tenant)?,
        day,
        learn: u(0),
        recall: u(1),
        search: u(2),
        other: u(3),
        embeddings: u(4),
        webhook_deliveries: u(5),
        memories: u(6),
        bytes: u(7),
    })
}

type PlanRow = (
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn plan_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PlanRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn plan(
    (tenant, tier, source, status, updated, external, customer, subscription): PlanRow,
) -> Result<Plan> {
    Ok(Plan {
        tenant: TenantId::new(tenant)?,
        tier,
        source,
        status,
        updated_at: Timestamp(updated),
        external_at: external.map(Timestamp),
        customer,
        subscription,
    })
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<Vec<UsageDay>> {
        let rows = self.write(|tx| {
            let mut add = tx
                .prepare_cached(&format!(
                    "INSERT INTO usage_days ({USAGE_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, coalesce(?9, 0), coalesce(?10, 0))
                     ON CONFLICT (tenant, day) DO UPDATE SET
                       learn = learn + excluded.learn,
                       recall = recall + excluded.recall,
                       search = search + excluded.search,
                       other = other + excluded.other,
                       embeddings = embeddings + excluded.embeddings,
                       webhook_deliveries = webhook_deliveries + excluded.webhook_deliveries,
                       memories = coalesce(?9, memories),
                       bytes = coalesce(?10, bytes)
                     RETURNING {USAGE_COLUMNS}"
                ))
                .map_err(map_err)?;
            let mut out = Vec::with_capacity(deltas.len());
            for d in deltas {
                let c = &d.counts;
                let row = add
                    .query_row(
                        params![
                            d.tenant.as_str(),
                            d.day,
                            count(c.learn),
                            count(c.recall),
                            count(c.search),
                            count(c.other),
                            count(c.embeddings),
                            count(c.webhook_deliveries),
                            d.footprint.map(|f| count(f.memories)),
                            d.footprint.map(|f| count(f.bytes)),
                        ],
                        usage_row,
                    )
                    .map_err(map_err)?;
                out.push(row);
            }
            Ok(out)
        })?;
        rows.into_iter().map(usage_day).collect()
    }

    async fn usage(
        &self,
        tenant: Option<&TenantId>,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<UsageDay>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {USAGE_COLUMNS} FROM usage_days
                 WHERE (?1 IS NULL OR tenant = ?1) AND day >= ?2 AND day <= ?3
                 ORDER BY tenant, day LIMIT ?4"
            ))?
            .query_map(
                params![tenant.map(|t| t.as_str()), from, to, limit],
                usage_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().map(usage_day).collect()
    }

    async fn footprint(&self, tenant: &TenantId) -> Result<Footprint> {
        let (memories, bytes): (i64, i64) = self.read(|c| {
            c.prepare_cached(
                "SELECT count(*), coalesce(sum(length(CAST(content AS BLOB))), 0)
                 FROM memories WHERE tenant = ?1",
            )?
            .query_row([tenant.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        })?;
        Ok(Footprint {
            memories: memories.max(0) as u64,
            bytes: bytes.max(0) as u64,
        })
    }

    async fn put_plan(&self, p: &Plan) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO tenant_plans ({PLAN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (tenant) DO UPDATE SET tier = excluded.tier,
                       source = excluded.source, status = excluded.status,
                       updated_at = excluded.updated_at, external_at = excluded.external_at,
                       customer = excluded.customer, subscription = excluded.subscription"
                ),
                plan_params!(p),
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn plan(&self, tenant: &TenantId) -> Result<Option<Plan>> {
        let row = self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {PLAN_COLUMNS} FROM tenant_plans WHERE tenant = ?1"
            ))?
            .query_row([tenant.as_str()], plan_row)
            .optional()
        })?;
        row.map(plan).transpose()
    }

    async fn plans(&self) -> Result<Vec<Plan>> {
        let rows = self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {PLAN_COLUMNS} FROM tenant_plans ORDER BY tenant"
            ))?
            .query_map([], plan_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().map(plan).collect()
    }

    async fn record_billing_event(
        &self,
        id: &str,
        at: Timestamp,
        forget_before: Timestamp,
        plan: Option<&Plan>,
    ) -> Result<BillingRecord> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM billing_events WHERE received_at < ?1",
                [forget_before.millis()],
            )
            .map_err(map_err)?;
            let new = tx
                .execute(
                    "INSERT INTO billing_events (id, received_at) VALUES (?1, ?2)
                     ON CONFLICT (id) DO NOTHING",
                    params![id, at.millis()],
                )
                .map_err(map_err)?;
            if new == 0 {
                return Ok(BillingRecord::Duplicate);
            }
            let Some(p) = plan else {
                return Ok(BillingRecord::Applied);
            };
            let written = tx
                .execute(
                    &format!(
                        "INSERT INTO tenant_plans ({PLAN_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT (tenant) DO UPDATE SET tier = excluded.tier,
                           source = excluded.source, status = excluded.status,
                           updated_at = excluded.updated_at, external_at = excluded.external_at,
                           customer = excluded.customer, subscription = excluded.subscription
                         WHERE tenant_plans.external_at IS NULL
                            OR tenant_plans.external_at <= excluded.external_at"
                    ),
                    plan_params!(p),
                )
                .map_err(map_err)?;
            Ok(if written == 1 {
                BillingRecord::Applied
            } else {
                BillingRecord::Stale
            })
        })
    }
}
