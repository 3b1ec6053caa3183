//! [`WebhookStore`]: subscriptions and delivery records, as JSON documents.

use super::*;
use continuum_core::store::WebhookStore;
use continuum_core::webhook::{Delivery, Webhook, decode as from_json, encode as to_json};

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn put_webhook(&self, w: &Webhook) -> Result<()> {
        let body = to_json(w)?;
        let client = self.client().await?;
        cached_query(
            &client,
            "INSERT INTO webhooks (id, tenant, created_at, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            &[&w.id, &w.tenant.as_str(), &w.created_at.millis(), &body],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn webhook(&self, id: &str) -> Result<Option<Webhook>> {
        let client = self.client().await?;
        let rows = cached_query(&client, "SELECT body FROM webhooks WHERE id = $1", &[&id])
            .await
            .map_err(map_err)?;
        rows.first()
            .map(|r| from_json(&r.get::<_, String>(0)))
            .transpose()
    }

    async fn webhooks(&self, tenant: Option<&TenantId>) -> Result<Vec<Webhook>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT body FROM webhooks WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_at, id",
            &[&tenant.map(|t| t.as_str())],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| from_json(&r.get::<_, String>(0)))
            .collect()
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        tx_execute(
            &tx,
            "DELETE FROM webhook_deliveries WHERE webhook = $1",
            &[&id],
        )
        .await
        .map_err(map_err)?;
        let n = tx_execute(&tx, "DELETE FROM webhooks WHERE id = $1", &[&id])
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(n > 0)
    }

    async fn put_delivery(&self, d: &Delivery) -> Result<()> {
        let body = to_json(d)?;
        let seq = i64::try_from(d.seq).unwrap_or(i64::MAX);
        let client = self.client().await?;
        cached_query(
            &client,
            "INSERT INTO webhook_deliveries (id, webhook, seq, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            &[&d.id, &d.webhook, &seq, &body],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT body FROM webhook_deliveries WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(map_err)?;
        rows.first()
            .map(|r| from_json(&r.get::<_, String>(0)))
            .transpose()
    }

    async fn deliveries(&self, webhook: &str, limit: usize) -> Result<Vec<Delivery>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT body FROM webhook_deliveries WHERE webhook = $1 ORDER BY seq DESC LIMIT $2",
            &[&webhook, &limit],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| from_json(&r.get::<_, String>(0)))
            .collect()
    }
}
