//! [`KeyStore`]: API keys and tenants.

use super::*;
use continuum_core::keys::rotation_events;

/// Inserts a key record (a prefix already taken is a conflict).
fn insert_key(tx: &Transaction<'_>, key: &continuum_core::keys::ApiKey) -> Result<()> {
    tx.execute(
        "INSERT INTO api_keys (prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at, max_age_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            key.prefix,
            key.tenant.as_str(),
            key.scope.as_str(),
            key.hash,
            key.name,
            key.created_at.millis(),
            key.expires_at.map(|t| t.millis()),
            key.revoked_at.map(|t| t.millis()),
            key.max_age_ms
        ],
    )
    .map_err(|e| match map_err(e) {
        Error::Internal(m) if m.contains("UNIQUE") => {
            Error::Conflict("a key with this prefix exists".into())
        }
        other => other,
    })?;
    Ok(())
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn tenants(&self) -> Result<Vec<continuum_core::store::TenantMemories>> {
        let rows: Vec<(String, i64, Option<i64>)> = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT tenant, count(*), max(created_at) FROM memories GROUP BY tenant ORDER BY tenant",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })?;
        rows.into_iter()
            .map(|(t, n, last)| {
                Ok(continuum_core::store::TenantMemories {
                    tenant: TenantId::new(t)?,
                    memories: n.max(0) as u64,
                    last_memory_at: last.map(Timestamp),
                })
            })
            .collect()
    }

    async fn put_key(&self, key: &continuum_core::keys::ApiKey, events: &[Event]) -> Result<()> {
        self.write(|tx| {
            insert_key(tx, key)?;
            for e in events {
                log_event(tx, &key.tenant, key.created_at.millis(), e)?;
            }
            Ok(())
        })
    }

    async fn key_by_prefix(&self, prefix: &str) -> Result<Option<continuum_core::keys::ApiKey>> {
        let row = self.read(|c| {
            c.prepare_cached(
                "SELECT prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at, max_age_ms
                 FROM api_keys WHERE prefix = ?1",
            )?
            .query_row([prefix], key_row)
            .optional()
        })?;
        row.transpose()
    }

    async fn list_keys(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<continuum_core::keys::ApiKey>> {
        let rows = self.read(|c| {
            c.prepare_cached(
                "SELECT prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at, max_age_ms
                 FROM api_keys WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_at DESC, prefix",
            )?
            .query_map([tenant.map(|t| t.as_str())], key_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().collect()
    }

    async fn revoke_key(&self, prefix: &str, at: Timestamp) -> Result<bool> {
        self.write(|tx| {
            let tenant: Option<String> = tx
                .query_row(
                    "UPDATE api_keys SET revoked_at = ?2 WHERE prefix = ?1 AND revoked_at IS NULL
                     RETURNING tenant",
                    params![prefix, at.millis()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            let Some(tenant) = tenant else {
                // Unknown, or revoked before (which is not a change).
                return tx
                    .query_row("SELECT 1 FROM api_keys WHERE prefix = ?1", [prefix], |_| {
                        Ok(())
                    })
                    .optional()
                    .map(|found| found.is_some())
                    .map_err(map_err);
            };
            let event = Event::KeyRevoked {
                prefix: prefix.to_string(),
            };
            log_event(tx, &TenantId::new(tenant)?, at.millis(), &event)?;
            Ok(true)
        })
    }

    async fn note_expired_keys(&self, now: Timestamp) -> Result<Vec<continuum_core::keys::ApiKey>> {
        // Most calls find nothing: ask before taking the write lock.
        let due = self.read(|c| {
            c.prepare_cached(
                "SELECT 1 FROM api_keys
                 WHERE expires_at <= ?1 AND revoked_at IS NULL AND expiry_noted_at IS NULL LIMIT 1",
            )?
            .query_row([now.millis()], |_| Ok(()))
            .optional()
        })?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            let rows = tx
                .prepare_cached(
                    "UPDATE api_keys SET expiry_noted_at = ?1
                     WHERE expires_at <= ?1 AND revoked_at IS NULL AND expiry_noted_at IS NULL
                     RETURNING prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at, max_age_ms",
                )
                .and_then(|mut stmt| {
                    stmt.query_map([now.millis()], key_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_err)?;
            let mut keys = rows.into_iter().collect::<Result<Vec<_>>>()?;
            keys.sort_by(|a, b| a.prefix.cmp(&b.prefix));
            for k in &keys {
                let event = Event::KeyExpired {
                    prefix: k.prefix.clone(),
                };
                log_event(tx, &k.tenant, now.millis(), &event)?;
            }
            Ok(keys)
        })
    }

    async fn rotate_key(
        &self,
        prefix: &str,
        successor: &continuum_core::keys::ApiKey,
        expires_at: Timestamp,
    ) -> Result<bool> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE api_keys SET expires_at = min(coalesce(expires_at, ?2), ?2)
                     WHERE prefix = ?1 AND revoked_at IS NULL AND tenant = ?3",
                    params![prefix, expires_at.millis(), successor.tenant.as_str()],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Ok(false);
            }
            insert_key(tx, successor)?;
            let at = successor.created_at.millis();
            for e in rotation_events(prefix, successor, expires_at) {
                log_event(tx, &successor.tenant, at, &e)?;
            }
            Ok(true)
        })
    }
}
