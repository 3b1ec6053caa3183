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
        self.write(|tx| {
            for r in records {
                if !upsert(tx, tenant, r, false)? {
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

/// Upserts `r`. With `newer_only` (another node's version), a version the store holds that is
/// at least as new stays: the later `updated_at` wins, ties go to the larger JSON text (byte
/// order), so every node keeps the same one. A record of another kind under the id is never
/// overwritten. True when written.
fn upsert(tx: &Transaction<'_>, tenant: &TenantId, r: &Record, newer_only: bool) -> Result<bool> {
    let body = r.encode()?;
    let sql = if newer_only {
        "INSERT INTO records (id, tenant, kind, status, created_at, updated_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status,
             updated_at = excluded.updated_at, body = excluded.body
         WHERE records.kind = excluded.kind
           AND (records.updated_at < excluded.updated_at
                OR (records.updated_at = excluded.updated_at AND records.body < excluded.body))"
    } else {
        "INSERT INTO records (id, tenant, kind, status, created_at, updated_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status,
             updated_at = excluded.updated_at, body = excluded.body
         WHERE records.kind = excluded.kind"
    };
    tx.prepare_cached(sql)
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

/// Writes another node's version of `r` unless the store holds one at least as new (see
/// [`upsert`]). True when written.
pub(crate) fn keep_newer(tx: &Transaction<'_>, tenant: &TenantId, r: &Record) -> Result<bool> {
    upsert(tx, tenant, r, true)
}
