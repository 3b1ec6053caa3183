//! [`WebhookStore`]: subscriptions and delivery records, as JSON documents.

use super::*;
use continuum_core::store::WebhookStore;
use continuum_core::webhook::{Delivery, Webhook, decode as from_json, encode as to_json};

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn put_webhook(&self, w: &Webhook) -> Result<()> {
        let body = to_json(w)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO webhooks (id, tenant, created_at, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                params![w.id, w.tenant.as_str(), w.created_at.millis(), body],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn webhook(&self, id: &str) -> Result<Option<Webhook>> {
        let body: Option<String> = self.read(|c| {
            c.prepare_cached("SELECT body FROM webhooks WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()
        })?;
        body.map(|b| from_json(&b)).transpose()
    }

    async fn webhooks(&self, tenant: Option<&TenantId>) -> Result<Vec<Webhook>> {
        let rows: Vec<String> = self.read(|c| {
            c.prepare_cached(
                "SELECT body FROM webhooks WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_at, id",
            )?
            .query_map([tenant.map(|t| t.as_str())], |r| r.get(0))?
            .collect()
        })?;
        rows.iter().map(|b| from_json(b)).collect()
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool> {
        self.write(|tx| {
            tx.execute("DELETE FROM webhook_deliveries WHERE webhook = ?1", [id])
                .map_err(map_err)?;
            tx.execute("DELETE FROM webhooks WHERE id = ?1", [id])
                .map(|n| n > 0)
                .map_err(map_err)
        })
    }

    async fn put_delivery(&self, d: &Delivery) -> Result<()> {
        let body = to_json(d)?;
        let seq = i64::try_from(d.seq).unwrap_or(i64::MAX);
        self.write(|tx| {
            tx.execute(
                "INSERT INTO webhook_deliveries (id, webhook, seq, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                params![d.id, d.webhook, seq, body],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        let body: Option<String> = self.read(|c| {
            c.prepare_cached("SELECT body FROM webhook_deliveries WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()
        })?;
        body.map(|b| from_json(&b)).transpose()
    }

    async fn deliveries(&self, webhook: &str, limit: usize) -> Result<Vec<Delivery>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<String> = self.read(|c| {
            c.prepare_cached(
                "SELECT body FROM webhook_deliveries WHERE webhook = ?1 ORDER BY seq DESC LIMIT ?2",
            )?
            .query_map(params![webhook, limit], |r| r.get(0))?
            .collect()
        })?;
        rows.iter().map(|b| from_json(b)).collect()
    }
}
