//! [`VectorStore`]: vectors per memory and model, and the vector log.

use super::*;

#[async_trait]
impl VectorStore for SqliteStore {
    async fn put_vectors(
        &self,
        tenant: &TenantId,
        model: &str,
        dim: usize,
        vectors: &[(MemoryId, Vec<f32>)],
    ) -> Result<usize> {
        let list: Vec<&[f32]> = vectors.iter().map(|(_, v)| v.as_slice()).collect();
        continuum_core::embed::check_vectors(model, dim, &list, vectors.len())?;
        let t = tenant.as_str();
        self.write(|tx| {
            // REPLACE deletes the old row first, so a re-embedded memory moves to the log's end.
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO vectors (rid, tenant, model, dim, vector)
                     SELECT rid, tenant, ?3, ?4, ?5 FROM memories WHERE +tenant = ?1 AND id = ?2",
                )
                .map_err(map_err)?;
            let mut stored = 0;
            for (id, v) in vectors {
                stored += stmt
                    .execute(params![
                        t,
                        id.as_bytes().as_slice(),
                        model,
                        dim as i64,
                        continuum_core::embed::encode_vector(v)
                    ])
                    .map_err(map_err)?;
            }
            Ok(stored)
        })
    }

    async fn vectors_since(
        &self,
        tenant: &TenantId,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<continuum_core::embed::StoredVector>> {
        let rows: Vec<(i64, Vec<u8>, i64, Vec<u8>)> = self.read(|c| {
            c.prepare_cached(
                "SELECT v.seq, m.id, v.dim, v.vector FROM vectors v JOIN memories m ON m.rid = v.rid
                 WHERE v.tenant = ?1 AND v.model = ?2 AND v.seq > ?3 ORDER BY v.seq LIMIT ?4",
            )?
            .query_map(
                params![tenant.as_str(), model, after as i64, limit.min(10_000) as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?
            .collect()
        })?;
        rows.into_iter()
            .map(|(seq, id, dim, bytes)| {
                Ok(continuum_core::embed::StoredVector {
                    seq: seq as u64,
                    id: MemoryId::from_slice(&id)?,
                    vector: continuum_core::embed::decode_vector(&bytes, dim.max(0) as usize)?,
                })
            })
            .collect()
    }

    async fn pending_embeddings(
        &self,
        tenant: Option<&TenantId>,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<continuum_core::embed::PendingEmbedding>> {
        let rows: Vec<(i64, String, Vec<u8>, String)> = self.read(|c| {
            c.prepare_cached(
                "SELECT m.rid, m.tenant, m.id, m.content FROM memories m
                 WHERE m.rid > ?2 AND (?1 IS NULL OR +m.tenant = ?1)
                   AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.rid = m.rid AND v.model = ?3)
                 ORDER BY m.rid LIMIT ?4",
            )?
            .query_map(
                params![
                    tenant.map(TenantId::as_str),
                    after as i64,
                    model,
                    limit.min(10_000) as i64
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?
            .collect()
        })?;
        rows.into_iter()
            .map(|(pos, t, id, content)| {
                Ok(continuum_core::embed::PendingEmbedding {
                    pos: pos as u64,
                    tenant: TenantId::new(t)?,
                    id: MemoryId::from_slice(&id)?,
                    content,
                })
            })
            .collect()
    }

    async fn vector_counts(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<continuum_core::embed::VectorCount>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT model, dim, count(*) FROM vectors WHERE tenant = ?1
                 GROUP BY model, dim ORDER BY model, dim",
            )?
            .query_map([tenant.as_str()], |r| {
                Ok(continuum_core::embed::VectorCount {
                    model: r.get(0)?,
                    dim: r.get::<_, i64>(1)?.max(0) as usize,
                    count: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })?
            .collect()
        })
    }

    async fn drop_vectors_except(&self, tenant: &TenantId, keep: &str) -> Result<u64> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM vectors WHERE tenant = ?1 AND model <> ?2",
                params![tenant.as_str(), keep],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
    }
}
