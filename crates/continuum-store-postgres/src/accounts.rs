//! [`AccountStore`]: usage per tenant and day, plans, and processed billing event ids.

use super::*;
use continuum_core::account::{AccountStore, BillingRecord, Footprint, Plan, UsageDay, UsageDelta};

const USAGE_COLUMNS: &str =
    "tenant, day, learn, recall, search, other, embeddings, webhook_deliveries, memories, bytes";
const PLAN_COLUMNS: &str =
    "tenant, tier, source, status, updated_at, external_at, customer, subscription";

const UPSERT_PLAN: &str = "INSERT INTO tenant_plans
       (tenant, tier, source, status, updated_at, external_at, customer, subscription)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (tenant) DO UPDATE SET tier = excluded.tier,
       source = excluded.source, status = excluded.status,
       updated_at = excluded.updated_at, external_at = excluded.external_at,
       customer = excluded.customer, subscription = excluded.subscription";

/// Runs `$body` with `$params` bound to the eight parameters of [`UPSERT_PLAN`] for `$p`.
macro_rules! with_plan_params {
    ($p:expr, |$params:ident| $body:expr) => {{
        let p = $p;
        let tenant = p.tenant.as_str();
        let updated = p.updated_at.millis();
        let external = p.external_at.map(|t| t.millis());
        let $params: [&(dyn ToSql + Sync); 8] = [
            &tenant,
            &p.tier,
            &p.source,
            &p.status,
            &updated,
            &external,
            &p.customer,
            &p.subscription,
        ];
        $body
    }};
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn usage_day(r: &Row) -> Result<UsageDay> {
    let u = |i: usize| r.get::<_, i64>(i).max(0) as u64;
    Ok(UsageDay {
        tenant: TenantId::new(r.get::<_, String>(0))?,
        day: r.get(1),
        learn: u(2),
        recall: u(3),
        search: u(4),
        other: u(5),
        embeddings: u(6),
        webhook_deliveries: u(7),
        memories: u(8),
        bytes: u(9),
    })
}

fn plan(r: &Row) -> Result<Plan> {
    Ok(Plan {
        tenant: TenantId::new(r.get::<_, String>(0))?,
        tier: r.get(1),
        source: r.get(2),
        status: r.get(3),
        updated_at: Timestamp(r.get(4)),
        external_at: r.get::<_, Option<i64>>(5).map(Timestamp),
        customer: r.get(6),
        subscription: r.get(7),
    })
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<Vec<UsageDay>> {
        let sql = format!(
            "INSERT INTO usage_days ({USAGE_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9::bigint, 0), coalesce($10::bigint, 0))
             ON CONFLICT (tenant, day) DO UPDATE SET
               learn = usage_days.learn + excluded.learn,
               recall = usage_days.recall + excluded.recall,
               search = usage_days.search + excluded.search,
               other = usage_days.other + excluded.other,
               embeddings = usage_days.embeddings + excluded.embeddings,
               webhook_deliveries = usage_days.webhook_deliveries + excluded.webhook_deliveries,
               memories = coalesce($9::bigint, usage_days.memories),
               bytes = coalesce($10::bigint, usage_days.bytes)
             RETURNING {USAGE_COLUMNS}"
        );
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut out = Vec::with_capacity(deltas.len());
        for d in deltas {
            let c = &d.counts;
            let memories = d.footprint.map(|f| count(f.memories));
            let bytes = d.footprint.map(|f| count(f.bytes));
            let row = tx_query_one(
                &tx,
                &sql,
                &[
                    &d.tenant.as_str(),
                    &d.day,
                    &count(c.learn),
                    &count(c.recall),
                    &count(c.search),
                    &count(c.other),
                    &count(c.embeddings),
                    &count(c.webhook_deliveries),
                    &memories,
                    &bytes,
                ],
            )
            .await
            .map_err(map_err)?;
            out.push(usage_day(&row)?);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn usage(
        &self,
        tenant: Option<&TenantId>,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<UsageDay>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            &format!(
                "SELECT {USAGE_COLUMNS} FROM usage_days
                 WHERE ($1::text IS NULL OR tenant = $1) AND day >= $2 AND day <= $3
                 ORDER BY tenant, day LIMIT $4"
            ),
            &[&tenant.map(|t| t.as_str()), &from, &to, &limit],
        )
        .await
        .map_err(map_err)?;
        rows.iter().map(usage_day).collect()
    }

    async fn footprint(&self, tenant: &TenantId) -> Result<Footprint> {
        let client = self.client().await?;
        let row = cached_query_one(
            &client,
            "SELECT count(*)::bigint, coalesce(sum(octet_length(content)), 0)::bigint
             FROM memories WHERE tenant = $1",
            &[&tenant.as_str()],
        )
        .await
        .map_err(map_err)?;
        Ok(Footprint {
            memories: row.get::<_, i64>(0).max(0) as u64,
            bytes: row.get::<_, i64>(1).max(0) as u64,
        })
    }

    async fn put_plan(&self, p: &Plan) -> Result<()> {
        let client = self.client().await?;
        with_plan_params!(p, |params| cached_query(&client, UPSERT_PLAN, &params)
            .await)
        .map_err(map_err)?;
        Ok(())
    }

    async fn plan(&self, tenant: &TenantId) -> Result<Option<Plan>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            &format!("SELECT {PLAN_COLUMNS} FROM tenant_plans WHERE tenant = $1"),
            &[&tenant.as_str()],
        )
        .await
        .map_err(map_err)?;
        rows.first().map(plan).transpose()
    }

    async fn plans(&self) -> Result<Vec<Plan>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            &format!("SELECT {PLAN_COLUMNS} FROM tenant_plans ORDER BY tenant"),
            &[],
        )
        .await
        .map_err(map_err)?;
        rows.iter().map(plan).collect()
    }

    async fn record_billing_event(
        &self,
        id: &str,
        at: Timestamp,
        forget_before: Timestamp,
        plan: Option<&Plan>,
    ) -> Result<BillingRecord> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        tx_execute(
            &tx,
            "DELETE FROM billing_events WHERE received_at < $1",
            &[&forget_before.millis()],
        )
        .await
        .map_err(map_err)?;
        let new = tx_execute(
            &tx,
            "INSERT INTO billing_events (id, received_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            &[&id, &at.millis()],
        )
        .await
        .map_err(map_err)?;
        let out = if new == 0 {
            BillingRecord::Duplicate
        } else if let Some(p) = plan {
            let sql = format!(
                "{UPSERT_PLAN} WHERE tenant_plans.external_at IS NULL
                    OR tenant_plans.external_at <= excluded.external_at"
            );
            let written = with_plan_params!(p, |params| tx_execute(&tx, &sql, &params).await)
                .map_err(map_err)?;
            if written == 1 {
                BillingRecord::Applied
            } else {
                BillingRecord::Stale
            }
        } else {
            BillingRecord::Applied
        };
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }
}
