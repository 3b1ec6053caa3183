//! [`AuditStore`]: the hash-chained audit log, appended under the write lock.

use super::*;
use continuum_core::audit::{AuditEntry, AuditRecord, AuditStore, next_entry};

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get::<_, i64>(0)?.max(0) as u64,
        body: r.get(1)?,
        prev_hash: r.get(2)?,
        hash: r.get(3)?,
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<Vec<AuditEntry>> {
        for r in records {
            r.check()?;
        }
        self.write(|tx| {
            // The write transaction holds the store's write lock: no other writer, in this
            // process or another, appends between this read and the inserts.
            let mut last: Option<(u64, String)> = tx
                .query_row(
                    "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get(1)?)),
                )
                .optional()
                .map_err(map_err)?;
            let mut out = Vec::with_capacity(records.len());
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO audit_log (seq, tenant, action, body, prev_hash, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(map_err)?;
            for r in records {
                let e = next_entry(last.as_ref().map(|(s, h)| (*s, h.as_str())), r);
                insert
                    .execute(params![
                        i64::try_from(e.seq).unwrap_or(i64::MAX),
                        r.tenant.as_ref().map(|t| t.as_str()),
                        r.action,
                        e.body,
                        e.prev_hash,
                        e.hash,
                    ])
                    .map_err(map_err)?;
                last = Some((e.seq, e.hash.clone()));
                out.push(e);
            }
            Ok(out)
        })
    }

    async fn audit_head(&self) -> Result<u64> {
        let head: i64 = self.read(|c| {
            c.prepare_cached("SELECT coalesce(max(seq), 0) FROM audit_log")?
                .query_row([], |r| r.get(0))
        })?;
        Ok(head.max(0) as u64)
    }

    async fn audit_cursor(&self, name: &str) -> Result<u64> {
        let seq: Option<i64> = self.read(|c| {
            c.prepare_cached("SELECT seq FROM audit_cursors WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()
        })?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    async fn set_audit_cursor(&self, name: &str, seq: u64, at: Timestamp) -> Result<()> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.write(|tx| {
            tx.execute(
                "INSERT INTO audit_cursors (name, seq, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, at = excluded.at",
                params![name, seq, at.millis()],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn audit_entries(
        &self,
        tenant: Option<&TenantId>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| match tenant {
            Some(t) => c
                .prepare_cached(
                    "SELECT seq, body, prev_hash, hash FROM audit_log
                         WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )?
                .query_map(params![t.as_str(), after, limit], entry)?
                .collect(),
            None => c
                .prepare_cached(
                    "SELECT seq, body, prev_hash, hash FROM audit_log
                         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![after, limit], entry)?
                .collect(),
        })
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
        self.read(|c| match tenant {
            Some(t) => c
                .prepare_cached(
                    "SELECT seq, body, prev_hash, hash FROM audit_log
                         WHERE tenant = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4",
                )?
                .query_map(params![t.as_str(), after, before, limit], entry)?
                .collect(),
            None => c
                .prepare_cached(
                    "SELECT seq, body, prev_hash, hash FROM audit_log
                         WHERE seq > ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
                )?
                .query_map(params![after, before, limit], entry)?
                .collect(),
        })
    }
}
