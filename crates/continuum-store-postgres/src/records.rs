//! [`RecordStore`]: reflection records as JSON documents, each write with its event.

use super::*;
use continuum_core::reflection::{Record, RecordId, RecordKind};
use continuum_core::store::RecordStore;

#[async_trait]
impl RecordStore for PostgresStore {
    async fn put_records(
        &self,
        tenant: &TenantId,
        at: Timestamp,
        records: &[Record],
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut events = EventRows::default();
        for r in records {
            if !upsert(&tx, tenant, r, false).await? {
                return Err(Error::Conflict(format!(
                    "record {} is of another kind",
                    r.id()
                )));
            }
            events.push(at.millis(), r.event());
        }
        let seq = events.insert(&tx, tenant.as_str()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(seq)
    }

    async fn record(&self, tenant: &TenantId, id: &RecordId) -> Result<Option<Record>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT kind, body FROM records WHERE id = $1 AND tenant = $2",
            &[&id.to_string(), &tenant.as_str()],
        )
        .await
        .map_err(map_err)?;
        rows.first()
            .map(|r| Record::decode(&r.get::<_, String>(0), &r.get::<_, String>(1)))
            .transpose()
    }

    async fn records(
        &self,
        tenant: &TenantId,
        kind: RecordKind,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT body FROM records WHERE tenant = $1 AND kind = $2
               AND ($3::text IS NULL OR status = $3)
             ORDER BY created_at DESC, id DESC LIMIT $4",
            &[&tenant.as_str(), &kind.as_str(), &status, &limit],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| Record::decode(kind.as_str(), &r.get::<_, String>(0)))
            .collect()
    }

    async fn count_records(&self, tenant: &TenantId, kind: RecordKind) -> Result<u64> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT count(*) FROM records WHERE tenant = $1 AND kind = $2",
            &[&tenant.as_str(), &kind.as_str()],
        )
        .await
        .map_err(map_err)?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
    }
}

/// Upserts `r`. With `newer_only` (another node's version), a version the store holds that is
/// at least as new stays: the later `updated_at` wins, ties go to the larger JSON text in byte
/// order (collation "C", as SQLite compares), so every node keeps the same one. A record of
/// another kind under the id is never overwritten. True when written.
async fn upsert(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &TenantId,
    r: &Record,
    newer_only: bool,
) -> Result<bool> {
    let body = r.encode()?;
    let sql = if newer_only {
        "INSERT INTO records (id, tenant, kind, status, created_at, updated_at, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status,
             updated_at = excluded.updated_at, body = excluded.body
         WHERE records.kind = excluded.kind
           AND (records.updated_at < excluded.updated_at
                OR (records.updated_at = excluded.updated_at
                    AND records.body COLLATE \"C\" < excluded.body COLLATE \"C\"))"
    } else {
        "INSERT INTO records (id, tenant, kind, status, created_at, updated_at, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status,
             updated_at = excluded.updated_at, body = excluded.body
         WHERE records.kind = excluded.kind"
    };
    let n = tx_execute(
        tx,
        sql,
        &[
            &r.id().to_string(),
            &tenant.as_str(),
            &r.kind().as_str(),
            &r.status(),
            &r.created_at().millis(),
            &r.updated_at().millis(),
            &body,
        ],
    )
    .await
    .map_err(map_err)?;
    Ok(n > 0)
}

/// Writes another node's version of `r` unless the store holds one at least as new (see
/// [`upsert`]). True when written.
pub(crate) async fn keep_newer(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &TenantId,
    r: &Record,
) -> Result<bool> {
    upsert(tx, tenant, r, true).await
}
