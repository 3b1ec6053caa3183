//! [`KeyStore`]: API keys and tenants.

use super::*;
use continuum_core::keys::rotation_events;

/// Inserts a key record.
async fn insert_key(
    tx: &deadpool_postgres::Transaction<'_>,
    key: &continuum_core::keys::ApiKey,
) -> Result<()> {
    tx_execute(
        tx,
        "INSERT INTO api_keys (prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at, max_age_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &key.prefix,
            &key.tenant.as_str(),
            &key.scope.as_str(),
            &key.hash,
            &key.name,
            &key.created_at.millis(),
            &key.expires_at.map(|t| t.millis()),
            &key.revoked_at.map(|t| t.millis()),
            &key.max_age_ms,
        ],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn tenants(&self) -> Result<Vec<continuum_core::store::TenantMemories>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT tenant, count(*), max(created_at) FROM memories GROUP BY tenant ORDER BY tenant",
            &[],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(continuum_core::store::TenantMemories {
                    tenant: TenantId::new(r.get::<_, String>(0))?,
                    memories: r.get::<_, i64>(1).max(0) as u64,
                    last_memory_at: r.get::<_, Option<i64>>(2).map(Timestamp),
                })
            })
            .collect()
    }

    async fn put_key(&self, key: &continuum_core::keys::ApiKey, events: &[Event]) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        insert_key(&tx, key).await?;
        let mut rows = EventRows::default();
        for e in events {
            rows.push(key.created_at.millis(), e.clone());
        }
        rows.insert(&tx, key.tenant.as_str()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn key_by_prefix(&self, prefix: &str) -> Result<Option<continuum_core::keys::ApiKey>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at, max_age_ms
             FROM api_keys WHERE prefix = $1",
            &[&prefix],
        )
        .await
        .map_err(map_err)?;
        rows.first().map(key_row).transpose()
    }

    async fn list_keys(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<continuum_core::keys::ApiKey>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at, max_age_ms
             FROM api_keys WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_at DESC, prefix",
            &[&tenant.map(|t| t.as_str())],
        )
        .await
        .map_err(map_err)?;
        rows.iter().map(key_row).collect()
    }

    async fn revoke_key(&self, prefix: &str, at: Timestamp) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let rows = tx_query(
            &tx,
            "UPDATE api_keys SET revoked_at = $2 WHERE prefix = $1 AND revoked_at IS NULL RETURNING tenant",
            &[&prefix, &at.millis()],
        )
        .await
        .map_err(map_err)?;
        let Some(row) = rows.first() else {
            // Unknown, or revoked before (which is not a change).
            let found = tx_query(&tx, "SELECT 1 FROM api_keys WHERE prefix = $1", &[&prefix])
                .await
                .map_err(map_err)?;
            // End the transaction here: a dropped one goes back to the pool still open.
            tx.commit().await.map_err(map_err)?;
            return Ok(!found.is_empty());
        };
        let tenant: String = row.get(0);
        let mut events = EventRows::default();
        events.push(
            at.millis(),
            Event::KeyRevoked {
                prefix: prefix.to_string(),
            },
        );
        events.insert(&tx, &tenant).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn note_expired_keys(&self, now: Timestamp) -> Result<Vec<continuum_core::keys::ApiKey>> {
        let mut client = self.client().await?;
        // Most calls find nothing: ask before writing.
        let due = cached_query(
            &client,
            "SELECT 1 FROM api_keys
             WHERE expires_at <= $1 AND revoked_at IS NULL AND expiry_noted_at IS NULL LIMIT 1",
            &[&now.millis()],
        )
        .await
        .map_err(map_err)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let tx = client.transaction().await.map_err(map_err)?;
        // Rows another process is marking are skipped, not waited for: it records them.
        let rows = tx_query(
            &tx,
            "UPDATE api_keys SET expiry_noted_at = $1
             WHERE prefix IN (SELECT prefix FROM api_keys
                              WHERE expires_at <= $1 AND revoked_at IS NULL AND expiry_noted_at IS NULL
                              FOR UPDATE SKIP LOCKED)
             RETURNING prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at, max_age_ms",
            &[&now.millis()],
        )
        .await
        .map_err(map_err)?;
        let mut keys = rows.iter().map(key_row).collect::<Result<Vec<_>>>()?;
        keys.sort_by(|a, b| (a.tenant.as_str(), &a.prefix).cmp(&(b.tenant.as_str(), &b.prefix)));
        let mut start = 0;
        while start < keys.len() {
            let tenant = keys[start].tenant.clone();
            let mut events = EventRows::default();
            let mut end = start;
            while end < keys.len() && keys[end].tenant == tenant {
                events.push(
                    now.millis(),
                    Event::KeyExpired {
                        prefix: keys[end].prefix.clone(),
                    },
                );
                end += 1;
            }
            events.insert(&tx, tenant.as_str()).await?;
            start = end;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(keys)
    }

    async fn rotate_key(
        &self,
        prefix: &str,
        successor: &continuum_core::keys::ApiKey,
        expires_at: Timestamp,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let changed = tx_execute(
            &tx,
            "UPDATE api_keys SET expires_at = least(coalesce(expires_at, $2), $2)
             WHERE prefix = $1 AND revoked_at IS NULL AND tenant = $3",
            &[&prefix, &expires_at.millis(), &successor.tenant.as_str()],
        )
        .await
        .map_err(map_err)?;
        if changed == 0 {
            // End the transaction here: a dropped one goes back to the pool still open.
            tx.commit().await.map_err(map_err)?;
            return Ok(false);
        }
        insert_key(&tx, successor).await?;
        let mut rows = EventRows::default();
        for e in rotation_events(prefix, successor, expires_at) {
            rows.push(successor.created_at.millis(), e);
        }
        rows.insert(&tx, successor.tenant.as_str()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}
