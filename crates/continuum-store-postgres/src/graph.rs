//! [`MemoryGraph`]: memories, sessions, concepts, links, decisions, forgetting and snapshots.

use super::*;

#[async_trait]
impl MemoryGraph for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        rule: &HebbianRule,
        batches: Vec<WriteBatch>,
    ) -> Result<Applied> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        lock_tenant(&tx, tenant.as_str()).await?;
        let out = apply_batches(&tx, tenant, rule, batches).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn get(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<Memory>> {
        let client = self.client().await?;
        let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
        let rows = cached_query(
            &client,
            &format!(
                "WITH hit AS MATERIALIZED (SELECT * FROM memories WHERE id = ANY($2))
                     SELECT {MEMORY_COLS} FROM hit m WHERE m.tenant = $1"
            ),
            &[&tenant.as_str(), &ids],
        )
        .await
        .map_err(map_err)?;
        rows.iter().map(row_memory).collect()
    }

    async fn replaced(&self, tenant: &TenantId, id: MemoryId) -> Result<Vec<MemoryId>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT id FROM supersessions WHERE tenant = $1 AND by_id = $2 ORDER BY id",
            &[&tenant.as_str(), &id.0],
        )
        .await
        .map_err(map_err)?;
        Ok(rows.iter().map(|r| MemoryId(r.get(0))).collect())
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &MemoryFilter,
        page: &PageRequest,
    ) -> Result<Page<Memory>> {
        let limit = page.limit.clamp(1, MAX_PAGE);
        let mut p: Params = vec![Box::new(tenant.as_str().to_string())];
        let mut sql = format!("SELECT {MEMORY_COLS}, m.rid FROM memories m WHERE m.tenant = $1");
        sql.push_str(&filter_sql(filter, &mut p));
        let (cmp, dir) = match page.order {
            Order::NewestFirst => ("<", "DESC"),
            Order::OldestFirst => (">", "ASC"),
        };
        if let Some(c) = &page.cursor {
            let (at, rid) = parse_cursor(c)?;
            p.push(Box::new(at));
            let at_n = p.len();
            p.push(Box::new(rid));
            sql.push_str(&format!(
                " AND (m.created_at, m.rid) {cmp} (${at_n}, ${})",
                p.len()
            ));
        }
        p.push(Box::new(limit as i64 + 1));
        sql.push_str(&format!(
            " ORDER BY m.created_at {dir}, m.rid {dir} LIMIT ${}",
            p.len()
        ));
        let client = self.client().await?;
        let rows = cached_query(&client, &sql, &refs(&p))
            .await
            .map_err(map_err)?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push((row_memory(r)?, r.get::<_, i64>(10)));
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|(m, rid)| format!("{}:{rid}", m.created_at.millis()))
        } else {
            None
        };
        Ok(Page {
            items: items.into_iter().map(|(m, _)| m).collect(),
            next_cursor,
        })
    }

    async fn text_search(
        &self,
        tenant: &TenantId,
        terms: &[String],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Result<Vec<Scored>> {
        let Some(q) = ts_query(terms) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut p: Params = vec![Box::new(q), Box::new(tenant.as_str().to_string())];
        let mut sql = format!(
            "SELECT ts_rank_cd(m.tsv, q)::float8 AS score, {HEAD_COLS}
             FROM memories m, to_tsquery('english', $1) q
             WHERE m.tsv @@ q AND m.tenant = $2"
        );
        sql.push_str(&filter_sql(filter, &mut p));
        p.push(Box::new(limit.min(MAX_PAGE) as i64));
        sql.push_str(&format!(
            " ORDER BY score DESC, m.rid DESC LIMIT ${}",
            p.len()
        ));
        let client = self.client().await?;
        let rows = cached_query(&client, &sql, &refs(&p))
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(Scored {
                    score: r.get(0),
                    head: row_head(r, 1)?,
                })
            })
            .collect()
    }

    async fn concepts(&self, tenant: &TenantId, keys: &[String]) -> Result<Vec<Concept>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT key, name, kind, mentions, first_seen, last_seen FROM concepts
                 WHERE tenant = $1 AND key = ANY($2)",
            &[&tenant.as_str(), &keys],
        )
        .await
        .map_err(map_err)?;
        Ok(rows.iter().map(row_concept).collect())
    }

    async fn list_concepts(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Concept>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT key, name, kind, mentions, first_seen, last_seen FROM concepts
                 WHERE tenant = $1 ORDER BY mentions DESC, key LIMIT $2 OFFSET $3",
            &[
                &tenant.as_str(),
                &(limit.min(MAX_PAGE) as i64),
                &(offset as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        Ok(rows.iter().map(row_concept).collect())
    }

    async fn neighbours(
        &self,
        tenant: &TenantId,
        keys: &[String],
        per_concept: usize,
    ) -> Result<Vec<Link>> {
        if keys.is_empty() || per_concept == 0 {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "WITH seeds AS (SELECT cid FROM concepts WHERE tenant = $1 AND key = ANY($2)),
                 l AS (
                    SELECT x.* FROM seeds s, LATERAL (
                        SELECT a, b, strength, count, last_at FROM links WHERE a = s.cid
                        ORDER BY strength DESC, count DESC LIMIT $3) x
                    UNION
                    SELECT x.* FROM seeds s, LATERAL (
                        SELECT a, b, strength, count, last_at FROM links WHERE b = s.cid
                        ORDER BY strength DESC, count DESC LIMIT $3) x
                 )
                 SELECT ca.key, cb.key, l.strength, l.count, l.last_at FROM l
                 JOIN concepts ca ON ca.cid = l.a JOIN concepts cb ON cb.cid = l.b",
            &[&tenant.as_str(), &keys, &(per_concept.min(MAX_PAGE) as i64)],
        )
        .await
        .map_err(map_err)?;
        let mut links: Vec<Link> = rows
            .iter()
            .map(|r| link(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        continuum_core::store::sort_links(&mut links);
        Ok(links)
    }

    async fn list_links(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Link>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT ca.key, cb.key, l.strength, l.count, l.last_at FROM links l
                 JOIN concepts ca ON ca.cid = l.a JOIN concepts cb ON cb.cid = l.b
                 WHERE l.tenant = $1 ORDER BY l.a, l.b LIMIT $2 OFFSET $3",
            &[
                &tenant.as_str(),
                &(limit.min(MAX_PAGE) as i64),
                &(offset as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| link(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect())
    }

    async fn mentions(
        &self,
        tenant: &TenantId,
        keys: &[String],
        per_concept: usize,
    ) -> Result<Vec<(String, MemoryHead)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let rows = cached_query(&client,
                &format!(
                    "SELECT k.key, {HEAD_COLS} FROM concepts k, LATERAL (
                        SELECT mn.rid FROM mentions mn WHERE mn.cid = k.cid ORDER BY mn.rid DESC LIMIT $3
                     ) x JOIN memories m ON m.rid = x.rid
                     WHERE k.tenant = $1 AND k.key = ANY($2)"
                ),
                &[&tenant.as_str(), &keys, &(per_concept as i64)],
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| Ok((r.get(0), row_head(r, 1)?)))
            .collect()
    }

    async fn concepts_of(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<(MemoryId, ExtractedConcept)>> {
        let client = self.client().await?;
        let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
        let rows = cached_query(
            &client,
            // Look up by id first: on a table not yet analysed the planner otherwise ANDs in
            // a scan of the whole tenant.
            "WITH hit AS MATERIALIZED (SELECT rid, id, tenant FROM memories WHERE id = ANY($2))
             SELECT m.id, k.key, k.name, k.kind FROM hit m
             JOIN mentions mn ON mn.rid = m.rid JOIN concepts k ON k.cid = mn.cid
             WHERE m.tenant = $1 ORDER BY m.id, k.key",
            &[&tenant.as_str(), &ids],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    MemoryId(r.get(0)),
                    ExtractedConcept {
                        key: r.get(1),
                        name: r.get(2),
                        kind: r.get(3),
                    },
                )
            })
            .collect())
    }

    async fn decisions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Decision>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT id, memory_id, text, created_at FROM decisions WHERE tenant = $1
                 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
            &[
                &tenant.as_str(),
                &(limit.min(MAX_PAGE) as i64),
                &(offset as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| Decision {
                id: MemoryId(r.get(0)),
                memory_id: MemoryId(r.get(1)),
                text: r.get(2),
                created_at: Timestamp(r.get(3)),
            })
            .collect())
    }

    async fn sessions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<SessionInfo>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT id, started_at, last_at, memories FROM sessions WHERE tenant = $1
                 ORDER BY last_at DESC, id LIMIT $2 OFFSET $3",
            &[
                &tenant.as_str(),
                &(limit.min(MAX_PAGE) as i64),
                &(offset as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(SessionInfo {
                    id: SessionId::new(r.get::<_, String>(0))?,
                    started_at: Timestamp(r.get(1)),
                    last_at: Timestamp(r.get(2)),
                    memories: r.get::<_, i64>(3).max(0) as u64,
                })
            })
            .collect()
    }

    async fn forget(&self, tenant: &TenantId, what: &ForgetSelector) -> Result<u64> {
        let now = continuum_core::Clock::now(&continuum_core::SystemClock).millis();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        lock_tenant(&tx, tenant.as_str()).await?;
        let n = forget_tx(&tx, tenant, what, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn imported(&self, tenant: &TenantId, keys: &[String]) -> Result<Vec<String>> {
        continuum_core::store::check_import_keys(keys)?;
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT import_key FROM memories WHERE tenant = $1 AND import_key = ANY($2::text[])",
            &[&tenant.as_str(), &keys],
        )
        .await
        .map_err(map_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn existing(&self, tenant: &TenantId, keys: &[ImportKey]) -> Result<Vec<ImportKey>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let ids: Vec<Uuid> = keys.iter().map(|k| k.id.0).collect();
        let hashes: Vec<String> = keys.iter().map(|k| k.content_hash.clone()).collect();
        let ats: Vec<i64> = keys.iter().map(|k| k.created_at.millis()).collect();
        let sessions: Vec<Option<String>> = keys
            .iter()
            .map(|k| k.session.as_ref().map(|s| s.as_str().to_string()))
            .collect();
        let rows = cached_query(&client,
                "SELECT t.i FROM UNNEST($2::uuid[], $3::text[], $4::bigint[], $5::text[]) WITH ORDINALITY
                    AS t(id, h, at, s, i)
                 WHERE EXISTS (SELECT 1 FROM memories m WHERE m.tenant = $1 AND m.id = t.id)
                    OR EXISTS (SELECT 1 FROM memories m WHERE m.tenant = $1 AND m.created_at = t.at
                               AND m.content_hash = t.h AND m.session IS NOT DISTINCT FROM t.s)",
                &[&tenant.as_str(), &ids, &hashes, &ats, &sessions],
            )
            .await
            .map_err(map_err)?;
        Ok(rows
            .iter()
            .filter_map(|r| keys.get((r.get::<_, i64>(0) - 1) as usize).cloned())
            .collect())
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        let client = self.client().await?;
        let t = tenant.as_str();
        let r = cached_query_one(
            &client,
            "SELECT
                    (SELECT count(*) FROM memories WHERE tenant = $1),
                    (SELECT count(*) FROM sessions WHERE tenant = $1),
                    (SELECT count(*) FROM concepts WHERE tenant = $1),
                    (SELECT count(*) FROM links WHERE tenant = $1),
                    (SELECT count(*) FROM decisions WHERE tenant = $1),
                    (SELECT seq FROM event_head WHERE id = 1),
                    (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                        JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = current_schema() AND c.relkind = 'r'),
                    (SELECT coalesce(max(version), 0) FROM schema_migrations)",
            &[&t],
        )
        .await
        .map_err(map_err)?;
        let n = |i: usize| r.get::<_, i64>(i).max(0) as u64;
        Ok(StoreStats {
            memories: n(0),
            sessions: n(1),
            concepts: n(2),
            links: n(3),
            decisions: n(4),
            change_seq: n(5),
            store_bytes: Some(n(6)),
            schema_version: r.get::<_, i32>(7) as u32,
        })
    }

    async fn snapshot(&self, tenant: &TenantId, sink: SnapshotSink<'_>) -> Result<u64> {
        // One REPEATABLE READ, READ ONLY transaction: every query sees the same snapshot,
        // and writers are never blocked. Rows are fetched through portals, a page at a time.
        let t = tenant.as_str();
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(map_err)?;
        let position = tx
            .query_one("SELECT seq FROM event_head WHERE id = 1", &[])
            .await
            .map_err(map_err)?
            .get::<_, i64>(0)
            .max(0) as u64;
        sink(SnapshotItem::Begin { position })?;
        let sql = format!(
            "SELECT {MEMORY_COLS}, m.rid FROM memories m WHERE m.tenant = $1 ORDER BY m.created_at, m.rid"
        );
        let portal = tx.bind(sql.as_str(), &[&t]).await.map_err(map_err)?;
        loop {
            let rows = tx
                .query_portal(&portal, SNAPSHOT_FETCH)
                .await
                .map_err(map_err)?;
            if rows.is_empty() {
                break;
            }
            let rids: Vec<i64> = rows.iter().map(|r| r.get(10)).collect();
            let mut mentioned: HashMap<i64, Vec<ExtractedConcept>> = HashMap::new();
            for r in tx
                .query(
                    "SELECT mn.rid, k.key, k.name, k.kind FROM mentions mn
                     JOIN concepts k ON k.cid = mn.cid WHERE mn.rid = ANY($1) ORDER BY k.key",
                    &[&rids],
                )
                .await
                .map_err(map_err)?
            {
                mentioned
                    .entry(r.get(0))
                    .or_default()
                    .push(ExtractedConcept {
                        key: r.get(1),
                        name: r.get(2),
                        kind: r.get(3),
                    });
            }
            for r in &rows {
                let rid: i64 = r.get(10);
                sink(SnapshotItem::Memory {
                    memory: row_memory(r)?,
                    concepts: mentioned.remove(&rid).unwrap_or_default(),
                })?;
            }
        }
        each_row(
            &tx,
            "SELECT ca.key, cb.key, l.strength, l.count, l.last_at FROM links l
             JOIN concepts ca ON ca.cid = l.a JOIN concepts cb ON cb.cid = l.b
             WHERE l.tenant = $1 ORDER BY l.a, l.b",
            &[&t],
            |r| {
                let l = link(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
                sink(SnapshotItem::Link(l))
            },
        )
        .await?;
        each_row(
            &tx,
            "SELECT id, memory_id, text, created_at FROM decisions WHERE tenant = $1
             ORDER BY created_at, id",
            &[&t],
            |r| {
                sink(SnapshotItem::Decision(Decision {
                    id: MemoryId(r.get::<_, Uuid>(0)),
                    memory_id: MemoryId(r.get::<_, Uuid>(1)),
                    text: r.get(2),
                    created_at: Timestamp(r.get(3)),
                }))
            },
        )
        .await?;
        each_row(
            &tx,
            "SELECT kind, body FROM records WHERE tenant = $1 ORDER BY created_at, id",
            &[&t],
            |r| {
                let rec = continuum_core::reflection::Record::decode(
                    r.get::<_, &str>(0),
                    r.get::<_, &str>(1),
                )?;
                sink(SnapshotItem::Record(rec))
            },
        )
        .await?;
        each_row(
            &tx,
            "SELECT m.id, v.model, v.dim, v.vector FROM vectors v JOIN memories m ON m.rid = v.rid
             WHERE v.tenant = $1 ORDER BY v.model, v.seq",
            &[&t],
            |r| {
                let dim: i32 = r.get(2);
                sink(SnapshotItem::Vector {
                    id: MemoryId(r.get::<_, Uuid>(0)),
                    model: r.get(1),
                    vector: continuum_core::embed::decode_vector(
                        r.get::<_, &[u8]>(3),
                        dim.max(0) as usize,
                    )?,
                })
            },
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(position)
    }

    async fn index_scan(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, IndexDoc)>> {
        let client = self.client().await?;
        let rows = cached_query(&client,
                &format!(
                    "SELECT m.rid, m.content, {HEAD_COLS},
                        coalesce((SELECT array_agg(k.key) FROM mentions mn JOIN concepts k ON k.cid = mn.cid
                                  WHERE mn.rid = m.rid), '{{}}'),
                        CASE WHEN jsonb_typeof(m.metadata->'speaker') = 'string'
                             THEN m.metadata->>'speaker' END
                     FROM memories m WHERE m.tenant = $1 AND m.rid > $2 ORDER BY m.rid LIMIT $3"
                ),
                &[&tenant.as_str(), &(after as i64), &(limit.min(10_000) as i64)],
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.get::<_, i64>(0) as u64,
                    IndexDoc {
                        content: r.get(1),
                        head: row_head(r, 2)?,
                        concepts: r.get(7),
                        speaker: r.get(8),
                    },
                ))
            })
            .collect()
    }

    async fn index_docs(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<IndexDoc>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
        let rows = cached_query(&client,
                &format!(
                    "SELECT m.rid, m.content, {HEAD_COLS},
                        coalesce((SELECT array_agg(k.key) FROM mentions mn JOIN concepts k ON k.cid = mn.cid
                                  WHERE mn.rid = m.rid), '{{}}'),
                        CASE WHEN jsonb_typeof(m.metadata->'speaker') = 'string'
                             THEN m.metadata->>'speaker' END
                     FROM (SELECT * FROM memories WHERE id = ANY($2) OFFSET 0) m WHERE m.tenant = $1"
                ),
                &[&tenant.as_str(), &ids],
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(IndexDoc {
                    content: r.get(1),
                    head: row_head(r, 2)?,
                    concepts: r.get(7),
                    speaker: r.get(8),
                })
            })
            .collect()
    }

    /// `ANALYZE` of each of the store's tables: right after a large import the planner has
    /// no statistics for them yet, and chose plans that made one index scan page 0.5–0.8 s
    /// instead of milliseconds.
    async fn refresh_statistics(&self) -> Result<()> {
        let client = self.client().await?;
        for table in store_tables(&client).await? {
            client
                .batch_execute(&format!("ANALYZE {table}"))
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn vacuum(&self) -> Result<continuum_core::store::Vacuumed> {
        let client = self.client().await?;
        let size = async || -> Result<u64> {
            let r = client
                .query_one(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                    &[],
                )
                .await
                .map_err(map_err)?;
            Ok(r.get::<_, i64>(0).max(0) as u64)
        };
        let before = size().await?;
        let tables = store_tables(&client).await?;
        for table in &tables {
            // One statement per call: VACUUM cannot run inside a transaction block. FULL
            // writes each table anew (and its indexes and TOAST), leaving no dead row behind.
            client
                .batch_execute(&format!("VACUUM (FULL, ANALYZE) {table}"))
                .await
                .map_err(map_err)?;
        }
        Ok(continuum_core::store::Vacuumed {
            tables: tables.len() as u64,
            bytes_before: before,
            bytes_after: size().await?,
        })
    }

    async fn check(&self) -> Result<Vec<String>> {
        let client = self.client().await?;
        let mut problems = Vec::new();
        let orphans: i64 = cached_query_one(&client,
                "SELECT count(*) FROM mentions mn LEFT JOIN memories m ON m.rid = mn.rid WHERE m.rid IS NULL",
                &[],
            )
            .await
            .map_err(map_err)?
            .get(0);
        if orphans > 0 {
            problems.push(format!(
                "{orphans} concept mentions point at missing memories"
            ));
        }
        let dangling: i64 = cached_query_one(&client,
                "SELECT count(*) FROM links l WHERE NOT EXISTS (SELECT 1 FROM concepts c WHERE c.cid = l.a)
                    OR NOT EXISTS (SELECT 1 FROM concepts c WHERE c.cid = l.b)",
                &[],
            )
            .await
            .map_err(map_err)?
            .get(0);
        if dangling > 0 {
            problems.push(format!("{dangling} links point at missing concepts"));
        }
        Ok(problems)
    }
}

/// Rows a snapshot fetches from a portal at a time.
const SNAPSHOT_FETCH: i32 = 500;

/// Runs `sql` in the snapshot's transaction through a portal, [`SNAPSHOT_FETCH`] rows at a time,
/// handing each row to `each`; stops at the first error.
async fn each_row(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    mut each: impl FnMut(&Row) -> Result<()>,
) -> Result<()> {
    let portal = tx.bind(sql, params).await.map_err(map_err)?;
    loop {
        let rows = tx
            .query_portal(&portal, SNAPSHOT_FETCH)
            .await
            .map_err(map_err)?;
        if rows.is_empty() {
            return Ok(());
        }
        for r in &rows {
            each(r)?;
        }
    }
}

/// Forgets memories in the caller's transaction (the tenant lock held), leaving a tombstone for
/// each so that a create arriving later by sync is dropped.
pub(crate) async fn forget_tx(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &TenantId,
    what: &ForgetSelector,
    now: i64,
) -> Result<u64> {
    let t = tenant.as_str();
    let rows = match what {
        ForgetSelector::Ids(ids) => {
            let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
            tx_query(
                tx,
                "WITH hit AS MATERIALIZED (SELECT rid, id, tenant FROM memories WHERE id = ANY($2))
                 SELECT rid, id FROM hit WHERE tenant = $1",
                &[&t, &ids],
            )
            .await
        }
        ForgetSelector::Session(s) => {
            tx_query(
                tx,
                "SELECT rid, id FROM memories WHERE tenant = $1 AND session = $2",
                &[&t, &s.as_str()],
            )
            .await
        }
        ForgetSelector::All => {
            tx_query(tx, "SELECT rid, id FROM memories WHERE tenant = $1", &[&t]).await
        }
    }
    .map_err(map_err)?;
    let rids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get(1)).collect();
    let mut events = EventRows::default();
    if !rids.is_empty() {
        let counts = tx_query(
            tx,
            "SELECT cid, count(*) FROM mentions WHERE rid = ANY($1) GROUP BY cid",
            &[&rids],
        )
        .await
        .map_err(map_err)?;
        let cids: Vec<i64> = counts.iter().map(|r| r.get(0)).collect();
        let ns: Vec<i64> = counts.iter().map(|r| r.get(1)).collect();
        let exec = |sql: &'static str| sql;
        tx_execute(
            tx,
            exec("DELETE FROM mentions WHERE rid = ANY($1)"),
            &[&rids],
        )
        .await
        .map_err(map_err)?;
        tx_execute(
            tx,
            exec("DELETE FROM vectors WHERE rid = ANY($1)"),
            &[&rids],
        )
        .await
        .map_err(map_err)?;
        tx_execute(
            tx,
            "DELETE FROM decisions WHERE tenant = $1 AND memory_id = ANY($2)",
            &[&t, &ids],
        )
        .await
        .map_err(map_err)?;
        drop_supersessions(tx, t, &ids, now, &mut events).await?;
        tx_execute(tx,
            "UPDATE sessions s SET memories = s.memories - c.n
             FROM (SELECT session, count(*) AS n FROM memories WHERE rid = ANY($2) AND session IS NOT NULL
                   GROUP BY session) c
             WHERE s.tenant = $1 AND s.id = c.session",
            &[&t, &rids],
        )
        .await
        .map_err(map_err)?;
        tx_execute(tx, "DELETE FROM memories WHERE rid = ANY($1)", &[&rids])
            .await
            .map_err(map_err)?;
        tx_execute(
            tx,
            "UPDATE concepts SET mentions = concepts.mentions - c.n
             FROM UNNEST($1::bigint[], $2::bigint[]) AS c(cid, n) WHERE concepts.cid = c.cid",
            &[&cids, &ns],
        )
        .await
        .map_err(map_err)?;
        let gone_rows = tx_query(
            tx,
            "DELETE FROM concepts WHERE cid = ANY($1) AND mentions <= 0 RETURNING cid, key",
            &[&cids],
        )
        .await
        .map_err(map_err)?;
        let gone: Vec<i64> = gone_rows.iter().map(|r| r.get(0)).collect();
        let gone_keys: Vec<String> = gone_rows.iter().map(|r| r.get(1)).collect();
        if !gone_keys.is_empty() && !matches!(what, ForgetSelector::All) {
            scrub_concepts(tx, t, &gone_keys).await?;
        }
        if !gone.is_empty() {
            tx_execute(
                tx,
                "DELETE FROM links WHERE a = ANY($1) OR b = ANY($1)",
                &[&gone],
            )
            .await
            .map_err(map_err)?;
        }
        tx_execute(
            tx,
            "DELETE FROM sessions WHERE tenant = $1 AND memories <= 0",
            &[&t],
        )
        .await
        .map_err(map_err)?;
        let texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        scrub_events(tx, t, &texts).await?;
        for id in &ids {
            events.push(now, Event::MemoryForgotten { id: MemoryId(*id) });
        }
        if let ForgetSelector::Session(session) = what {
            events.push(
                now,
                Event::SessionForgotten {
                    session: session.clone(),
                    memories: ids.len() as u64,
                },
            );
        }
    }
    if matches!(what, ForgetSelector::All) {
        for sql in [
            "DELETE FROM links WHERE tenant = $1",
            "DELETE FROM concepts WHERE tenant = $1",
            "DELETE FROM decisions WHERE tenant = $1",
            "DELETE FROM sessions WHERE tenant = $1",
            // Reflection records are the tenant's text too: gone, and their events scrubbed.
            "DELETE FROM records WHERE tenant = $1",
            "UPDATE events SET payload = (payload::jsonb || '{\"record\": null}'::jsonb)::text
             WHERE tenant = $1 AND type IN ('intention.saved', 'belief.saved', 'contradiction.saved', 'claim.saved', 'snapshot.saved')",
            // Concept names and keys come from the tenant's text too.
            "UPDATE events SET payload = (payload::jsonb || CASE type
                WHEN 'concept.created' THEN '{\"key\": \"\", \"name\": \"\"}'::jsonb
                WHEN 'links.strengthened' THEN '{\"links\": []}'::jsonb
                ELSE '{\"keys\": null}'::jsonb END)::text
             WHERE tenant = $1 AND type IN ('concept.created', 'links.strengthened', 'concepts.changed')",
        ] {
            tx_execute(tx, sql, &[&t]).await.map_err(map_err)?;
        }
    }
    if !ids.is_empty() {
        tx_execute(
            tx,
            "INSERT INTO sync_forgotten (tenant, id) SELECT $1, UNNEST($2::uuid[])
             ON CONFLICT DO NOTHING",
            &[&t, &ids],
        )
        .await
        .map_err(map_err)?;
    }
    events.insert(tx, t).await?;
    Ok(rids.len() as u64)
}

/// Removes the supersessions of memories that are gone (as replacement or replaced): the
/// memories they replaced fall back on their other replacements, or become current again
/// when none is left (a `memory.updated` each, pushed to `events`).
pub(crate) async fn drop_supersessions(
    tx: &deadpool_postgres::Transaction<'_>,
    t: &str,
    ids: &[Uuid],
    now: i64,
    events: &mut EventRows,
) -> Result<()> {
    // The memories they replaced: each keeps its other replacements (the largest shows) and
    // the earliest of their times, or becomes current again.
    let replaced: Vec<Uuid> = tx_query(
        tx,
        "SELECT DISTINCT id FROM supersessions
         WHERE tenant = $1 AND by_id = ANY($2) AND NOT (id = ANY($2))",
        &[&t, &ids],
    )
    .await
    .map_err(map_err)?
    .iter()
    .map(|r| r.get(0))
    .collect();
    tx_execute(
        tx,
        "DELETE FROM supersessions WHERE tenant = $1 AND (by_id = ANY($2) OR id = ANY($2))",
        &[&t, &ids],
    )
    .await
    .map_err(map_err)?;
    if replaced.is_empty() {
        return Ok(());
    }
    // `shown` is what replaced each before this statement; those that showed a forgotten
    // memory get a `memory.updated`.
    let restored: Vec<_> = tx_query(
        tx,
        "UPDATE memories m SET
            superseded_by = (SELECT s.by_id FROM supersessions s WHERE s.tenant = $1 AND s.id = m.id
                             ORDER BY s.by_id DESC LIMIT 1),
            valid_until = (SELECT min(s.at) FROM supersessions s WHERE s.tenant = $1 AND s.id = m.id)
         FROM (SELECT id, superseded_by AS shown FROM memories WHERE id = ANY($2)) old
         WHERE m.id = old.id AND m.tenant = $1
         RETURNING m.id, m.superseded_by, old.shown",
        &[&t, &replaced],
    )
    .await
    .map_err(map_err)?
    .into_iter()
    .filter(|r| r.get::<_, Option<Uuid>>(2).is_some_and(|s| ids.contains(&s)))
    .collect();
    for r in restored {
        events.push(
            now,
            Event::MemoryUpdated {
                id: MemoryId(r.get::<_, Uuid>(0)),
                superseded_by: r.get::<_, Option<Uuid>>(1).map(MemoryId),
            },
        );
    }
    Ok(())
}

/// The store's tables (those of its schema), each as a quoted `schema.table`.
async fn store_tables(client: &tokio_postgres::Client) -> Result<Vec<String>> {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    Ok(client
        .query(
            "SELECT n.nspname, c.relname FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY c.relname",
            &[],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(|t| format!("{}.{}", quote(t.get(0)), quote(t.get(1))))
        .collect())
}
