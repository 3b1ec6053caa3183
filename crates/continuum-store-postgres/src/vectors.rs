//! [`VectorStore`], and [`VectorSearch`] with pgvector.

use super::*;

#[async_trait]
impl VectorStore for PostgresStore {
    async fn put_vectors(
        &self,
        tenant: &TenantId,
        model: &str,
        dim: usize,
        vectors: &[(MemoryId, Vec<f32>)],
    ) -> Result<usize> {
        let list: Vec<&[f32]> = vectors.iter().map(|(_, v)| v.as_slice()).collect();
        continuum_core::embed::check_vectors(model, dim, &list, vectors.len())?;
        if vectors.is_empty() {
            return Ok(0);
        }
        let t = tenant.as_str();
        let ids: Vec<Uuid> = vectors.iter().map(|(id, _)| id.0).collect();
        let blobs: Vec<Vec<u8>> = list
            .iter()
            .map(|v| continuum_core::embed::encode_vector(v))
            .collect();
        let dim = dim as i32;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        lock_tenant(&tx, t).await?;
        // A replaced vector takes a new sequence number: followers see it again.
        let n = tx_execute(
            &tx,
            "INSERT INTO vectors (rid, tenant, model, dim, vector)
             SELECT m.rid, m.tenant, $3, $4, u.vector
             FROM UNNEST($2::uuid[], $5::bytea[]) AS u(id, vector)
             JOIN memories m ON m.id = u.id AND m.tenant = $1
             ON CONFLICT (rid, model) DO UPDATE
                SET vector = excluded.vector, dim = excluded.dim,
                    seq = nextval(pg_get_serial_sequence('vectors', 'seq'))",
            &[&t, &ids, &model, &dim, &blobs],
        )
        .await
        .map_err(map_err)?;
        if let Some(ann) = &self.ann {
            let texts: Vec<String> = list.iter().map(|v| pgvector::literal(v)).collect();
            tx_execute(
                &tx,
                &format!(
                    "INSERT INTO vector_ann (rid, id, model, tenant, dim, embedding)
                     SELECT m.rid, m.id, $3, m.tenant, $4, u.e::{}
                     FROM UNNEST($2::uuid[], $5::text[]) AS u(id, e)
                     JOIN memories m ON m.id = u.id AND m.tenant = $1
                     ON CONFLICT (rid, model) DO UPDATE
                        SET embedding = excluded.embedding, dim = excluded.dim",
                    ann.ty(None)
                ),
                &[&t, &ids, &model, &dim, &texts],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        if let Some(ann) = &self.ann {
            ann.ensure_index(&mut client, dim as usize).await?;
        }
        Ok(n as usize)
    }

    fn vector_search(&self) -> Option<&dyn VectorSearch> {
        self.ann.as_ref().map(|_| self as &dyn VectorSearch)
    }

    async fn vectors_since(
        &self,
        tenant: &TenantId,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<continuum_core::embed::StoredVector>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT v.seq, m.id, v.dim, v.vector FROM vectors v JOIN memories m ON m.rid = v.rid
             WHERE v.tenant = $1 AND v.model = $2 AND v.seq > $3 ORDER BY v.seq LIMIT $4",
            &[
                &tenant.as_str(),
                &model,
                &(after as i64),
                &(limit.min(10_000) as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let dim: i32 = r.get(2);
                Ok(continuum_core::embed::StoredVector {
                    seq: r.get::<_, i64>(0) as u64,
                    id: MemoryId(r.get(1)),
                    vector: continuum_core::embed::decode_vector(
                        r.get::<_, &[u8]>(3),
                        dim.max(0) as usize,
                    )?,
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
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT m.rid, m.tenant, m.id, m.content FROM memories m
             WHERE m.rid > $2 AND ($1::text IS NULL OR m.tenant = $1)
               AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.rid = m.rid AND v.model = $3)
             ORDER BY m.rid LIMIT $4",
            &[
                &tenant.map(TenantId::as_str),
                &(after as i64),
                &model,
                &(limit.min(10_000) as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(continuum_core::embed::PendingEmbedding {
                    pos: r.get::<_, i64>(0) as u64,
                    tenant: TenantId::new(r.get::<_, String>(1))?,
                    id: MemoryId(r.get(2)),
                    content: r.get(3),
                })
            })
            .collect()
    }

    async fn vector_counts(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<continuum_core::embed::VectorCount>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT model, dim, count(*) FROM vectors WHERE tenant = $1
             GROUP BY model, dim ORDER BY model, dim",
            &[&tenant.as_str()],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| continuum_core::embed::VectorCount {
                model: r.get(0),
                dim: r.get::<_, i32>(1).max(0) as usize,
                count: r.get::<_, i64>(2).max(0) as u64,
            })
            .collect())
    }

    async fn drop_vectors_except(&self, tenant: &TenantId, keep: &str) -> Result<u64> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM vectors WHERE tenant = $1 AND model <> $2")
            .await
            .map_err(map_err)?;
        client
            .execute(&stmt, &[&tenant.as_str(), &keep])
            .await
            .map_err(map_err)
    }
}

#[async_trait]
impl VectorSearch for PostgresStore {
    async fn nearest_vectors(
        &self,
        tenant: &TenantId,
        model: &str,
        query: &[f32],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Result<Vec<(MemoryId, f32)>> {
        let Some(ann) = &self.ann else {
            return Err(Error::Unavailable(self.pgvector_off()));
        };
        let dim = query.len();
        if dim == 0 || dim > continuum_core::embed::MAX_DIM || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(MAX_PAGE);
        // Two plans. First the HNSW walk: the dimension is a literal so that the planner
        // matches the partial index (`WHERE dim = D`, on `embedding::vector(D)`); tenant,
        // model and filters are checked on the rows the walk yields (`vector_ann` has no other
        // index the planner could prefer). The walk is approximate and, when the tenant is a
        // small part of the table, may stop (hnsw.max_scan_tuples) before it finds `limit` of
        // the tenant's rows; then the tenant's vectors are ranked exactly, found through the
        // tenant index of `vectors` and ordered by an expression no index provides, which is
        // cheap precisely when the tenant is small.
        let ty = ann.ty(Some(dim));
        let op = ann.neg_ip();
        let mut p: Params = vec![
            Box::new(tenant.as_str().to_string()),
            Box::new(model.to_string()),
            Box::new(pgvector::literal(query)),
        ];
        let filter = filter_sql(filter, &mut p);
        p.push(Box::new(limit as i64));
        // The query vector as an InitPlan: parsed from text once, not once per row.
        let distance = format!("(a.embedding::{ty}) {op} (SELECT $3::text::{ty})");
        // The memories table is joined only when a filter needs its columns.
        let join = if filter.is_empty() {
            ""
        } else {
            "JOIN memories m ON m.rid = a.rid"
        };
        let approximate = format!(
            "SELECT a.id, -({distance})::float4
             FROM vector_ann a {join}
             WHERE a.dim = {dim} AND a.tenant = $1 AND a.model = $2{filter}
             ORDER BY {distance} LIMIT ${}",
            p.len()
        );
        let exact = format!(
            "SELECT a.id, -({distance})::float4
             FROM vectors v
             JOIN vector_ann a ON a.rid = v.rid AND a.model = v.model
             JOIN memories m ON m.rid = v.rid
             WHERE v.tenant = $1 AND v.model = $2 AND v.dim = {dim} AND a.dim = {dim}{filter}
             ORDER BY ({distance}) + 0 LIMIT ${}",
            p.len()
        );
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut settings = format!(
            "SET LOCAL enable_seqscan = off; SET LOCAL hnsw.ef_search = {};",
            (limit * 2).clamp(40, 1000)
        );
        if ann.iterative() {
            // pgvector 0.8: keep walking, in distance order, until enough rows pass the filters.
            settings.push_str("SET LOCAL hnsw.iterative_scan = strict_order;");
        }
        tx.batch_execute(&settings).await.map_err(map_err)?;
        let mut rows = tx_query(&tx, &approximate, &refs(&p))
            .await
            .map_err(map_err)?;
        if rows.len() < limit {
            tx.batch_execute("SET LOCAL enable_seqscan = on")
                .await
                .map_err(map_err)?;
            rows = tx_query(&tx, &exact, &refs(&p)).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| (MemoryId(r.get(0)), r.get::<_, f32>(1)))
            .collect())
    }

    async fn vector_scores(
        &self,
        tenant: &TenantId,
        model: &str,
        query: &[f32],
        ids: &[MemoryId],
    ) -> Result<Vec<(MemoryId, f32)>> {
        let Some(ann) = &self.ann else {
            return Err(Error::Unavailable(self.pgvector_off()));
        };
        if ids.is_empty() || query.is_empty() {
            return Ok(Vec::new());
        }
        let uuids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let dim = query.len() as i32;
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            &format!(
                "SELECT a.id, -(a.embedding {op} (SELECT $3::text::{ty}))::float4
                 FROM vector_ann a
                 WHERE a.id = ANY($4) AND a.tenant = $1 AND a.model = $2 AND a.dim = $5",
                op = ann.neg_ip(),
                ty = ann.ty(None)
            ),
            &[
                &tenant.as_str(),
                &model,
                &pgvector::literal(query),
                &uuids,
                &dim,
            ],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| (MemoryId(r.get(0)), r.get::<_, f32>(1)))
            .collect())
    }
}
