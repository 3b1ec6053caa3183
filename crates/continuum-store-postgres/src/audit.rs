//! [`AuditStore`]: the hash-chained audit log, appended under a transaction-scoped lock.

use super::*;
use continuum_core::audit::{AuditEntry, AuditRecord, AuditStore, next_entry};

/// The advisory lock key that serialises appends to the audit log (any constant no other
/// part of Continuum uses).
const AUDIT_LOCK: i64 = 0x0061_7564_6974;

fn entry(r: &Row) -> AuditEntry {
    AuditEntry {
        seq: r.get::<_, i64>(0).max(0) as u64,
        body: r.get(1),
        prev_hash: r.get(2),
        hash: r.get(3),
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<Vec<AuditEntry>> {
        for r in records {
            r.check()?;
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Held until commit: appends from every process and connection take turns.
        tx_execute(&tx, "SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
            .await
            .map_err(map_err)?;
        let rows = tx_query(
            &tx,
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(map_err)?;
        let mut last: Option<(u64, String)> = rows
            .first()
            .map(|r| (r.get::<_, i64>(0).max(0) as u64, r.get(1)));
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let e = next_entry(last.as_ref().map(|(s, h)| (*s, h.as_str())), r);
            let seq = i64::try_from(e.seq).unwrap_or(i64::MAX);
            let tenant = r.tenant.as_ref().map(|t| t.as_str());
            tx_execute(
                &tx,
                "INSERT INTO audit_log (seq, tenant, action, body, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&seq, &tenant, &r.action, &e.body, &e.prev_hash, &e.hash],
            )
            .await
            .map_err(map_err)?;
            last = Some((e.seq, e.hash.clone()));
            out.push(e);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn audit_head(&self) -> Result<u64> {
        let client = self.client().await?;
        let row = cached_query_one(
            &client,
            "SELECT coalesce(max(seq), 0)::bigint FROM audit_log",
            &[],
        )
        .await
        .map_err(map_err)?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    async fn audit_cursor(&self, name: &str) -> Result<u64> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT seq FROM audit_cursors WHERE name = $1",
            &[&name],
        )
        .await
        .map_err(map_err)?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
    }

    async fn set_audit_cursor(&self, name: &str, seq: u64, at: Timestamp) -> Result<()> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let client = self.client().await?;
        cached_query(
            &client,
            "INSERT INTO audit_cursors (name, seq, at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, at = excluded.at",
            &[&name, &seq, &at.millis()],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn audit_entries(
        &self,
        tenant: Option<&TenantId>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT seq, body, prev_hash, hash FROM audit_log
             WHERE ($1::text IS NULL OR tenant = $1) AND seq > $2 ORDER BY seq LIMIT $3",
            &[&tenant.map(|t| t.as_str()), &after, &limit],
        )
        .await
        .map_err(map_err)?;
        Ok(rows.iter().map(entry).collect())
    }

    async fn audit_entries_before(
        &self,
        tenant: Option<&TenantId>,
        after: u64,
        before: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let before = i64::try_from(before).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT seq, body, prev_hash, hash FROM audit_log
             WHERE ($1::text IS NULL OR tenant = $1) AND seq > $2 AND seq < $3
             ORDER BY seq DESC LIMIT $4",
            &[&tenant.map(|t| t.as_str()), &after, &before, &limit],
        )
        .await
        .map_err(map_err)?;
        Ok(rows.iter().map(entry).collect())
    }
}
