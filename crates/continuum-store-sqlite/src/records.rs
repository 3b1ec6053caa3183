//! [`RecordStore`]: reflection records as JSON documents, each write with its event.

use super::*;
use continuum_core::reflection::{Record, RecordId, RecordKind};
use continuum_core::store::RecordStore;

#[async_trait]
impl RecordStore for SqliteStore {
    async fn put_records(
        &self,
        tenant: &TenantId,
        at: Timestamp,
        records: &[Record],
    ) -> Result<u64> {
        let rows = records
            .iter()
            .map(|r| Ok((r, r.encode()?)))
            .collect::<Result<Vec<_>>>()?;
        self.write(|tx| {
            for (r, body) in &rows {
                let n = tx
                    .prepare_cached(
                        "INSERT INTO records (id, tenant, kind, status, created_at, updated_at, body)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status,
                             updated_at = excluded.updated_at, body = excluded.body
                         WHERE records.kind = excluded.kind",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            r.id().to_string(),
                            tenant.as_str(),
                            r.kind().as_str(),
                            r.status(),
                            r.created_at().millis(),
                            r.updated_at().millis(),
                            body
                        ])
                    })
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(Error::Conflict(format!(
                        "record {} is of another kind",
                        r.id()
                    )));
                }
                log_event(tx, tenant, at.millis(), &r.event())?;
            }
            tx.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(map_err)
        })
    }

    async fn record(&self, tenant: &TenantId, id: &RecordId) -> Result<Option<Record>> {
        let row: Option<(String, String)> = self.read(|c| {
            c.prepare_cached("SELECT kind, body FROM records WHERE id = ?1 AND tenant = ?2")?
                .query_row(params![id.to_string(), tenant.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
        })?;
        row.map(|(k, b)| Record::decode(&k, &b)).transpose()
    }

    async fn records(
        &self,
        tenant: &TenantId,
        kind: RecordKind,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<String> = self.read(|c| {
            c.prepare_cached(
                "SELECT body FROM records WHERE tenant = ?1 AND kind = ?2
                   AND (?3 IS NULL OR status = ?3)
                 ORDER BY created_at DESC, id DESC LIMIT ?4",
            )?
            .query_map(
                params![tenant.as_str(), kind.as_str(), status, limit],
                |r| r.get(0),
            )?
            .collect()
        })?;
        rows.iter()
            .map(|b| Record::decode(kind.as_str(), b))
            .collect()
    }

    async fn count_records(&self, tenant: &TenantId, kind: RecordKind) -> Result<u64> {
        let n: i64 = self.read(|c| {
            c.prepare_cached("SELECT count(*) FROM records WHERE tenant = ?1 AND kind = ?2")?
                .query_row(params![tenant.as_str(), kind.as_str()], |r| r.get(0))
        })?;
        Ok(n.max(0) as u64)
    }
}

/// Writes `r` (another node's version) unless the store holds a version of it at least as new:
/// the later `updated_at` wins, ties go to the larger JSON text (byte order), so every node
/// keeps the same one. True when written.
pub(crate) fn keep_newer(tx: &Transaction<'_>, tenant: &TenantId, r: &Record) -> Result<bool> {
    let body = r.encode()?;
    tx.prepare_cached(
        "INSERT INTO records (id, tenant, kind, status, created_at, updated_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status,
             updated_at = excluded.updated_at, body = excluded.body
         WHERE records.kind = excluded.kind
           AND (records.updated_at < excluded.updated_at
                OR (records.updated_at = excluded.updated_at AND records.body < excluded.body))",
    )
    .and_then(|mut s| {
        s.execute(params![
            r.id().to_string(),
            tenant.as_str(),
            r.kind().as_str(),
            r.status(),
            r.created_at().millis(),
            r.updated_at().millis(),
            body
        ])
    })
    .map(|n| n > 0)
    .map_err(map_err)
}
