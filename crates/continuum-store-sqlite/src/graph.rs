//! [`MemoryGraph`]: memories, sessions, concepts, links and decisions.

use super::*;

#[async_trait]
impl MemoryGraph for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    /// `<database file>-index`, beside the database (its WAL and shared-memory files sit there
    /// too).
    fn derived_dir(&self) -> Option<PathBuf> {
        let mut name = self.path.file_name()?.to_os_string();
        name.push("-index");
        Some(self.path.with_file_name(name))
    }

    /// `PRAGMA shrink_memory` on every connection not in use (a busy one keeps its cache
    /// until the next call).
    async fn release_memory(&self) -> Result<usize> {
        let mut emptied = 0;
        let shrink = |c: &Connection| c.execute_batch("PRAGMA shrink_memory").map_err(map_err);
        for conn in std::iter::once(&self.writer)
            .chain(&self.readers)
            .chain(std::iter::once(&self.watch))
        {
            if let Ok(c) = conn.try_lock() {
                shrink(&c)?;
                emptied += 1;
            }
        }
        Ok(emptied)
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        rule: &HebbianRule,
        batches: Vec<WriteBatch>,
    ) -> Result<Applied> {
        self.write(|tx| apply_batches(tx, tenant, rule, batches))
    }

    async fn get(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<Memory>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT {MEMORY_COLS} FROM memories m WHERE +m.tenant = ? AND m.id IN ({})",
                placeholders(chunk.len())
            );
            let mut p: Vec<Value> = vec![Value::Text(tenant.as_str().into())];
            p.extend(chunk.iter().map(|id| Value::Blob(id.as_bytes().to_vec())));
            let mut found = self.read(|c| {
                let mut stmt = c.prepare_cached(&sql)?;
                stmt.query_map(params_from_iter(p), row_memory)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })?;
            out.append(&mut found);
        }
        Ok(out)
    }

    async fn replaced(&self, tenant: &TenantId, id: MemoryId) -> Result<Vec<MemoryId>> {
        let ids = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM supersessions WHERE tenant = ?1 AND by_id = ?2 ORDER BY id",
            )?;
            stmt.query_map(
                rusqlite::params![tenant.as_str(), id.as_bytes().to_vec()],
                |r| r.get::<_, Vec<u8>>(0),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        ids.iter().map(|b| MemoryId::from_slice(b)).collect()
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &MemoryFilter,
        page: &PageRequest,
    ) -> Result<Page<Memory>> {
        let limit = page.limit.clamp(1, MAX_PAGE);
        let mut p: Vec<Value> = vec![Value::Text(tenant.as_str().into())];
        let mut sql = format!("SELECT {MEMORY_COLS}, m.rid FROM memories m WHERE m.tenant = ?");
        sql.push_str(&filter_sql(filter, &mut p));
        let (cmp, dir) = match page.order {
            Order::NewestFirst => ("<", "DESC"),
            Order::OldestFirst => (">", "ASC"),
        };
        if let Some(c) = &page.cursor {
            let (at, rid) = parse_cursor(c)?;
            sql.push_str(&format!(
                " AND (m.created_at {cmp} ? OR (m.created_at = ? AND m.rid {cmp} ?))"
            ));
            p.extend([Value::Integer(at), Value::Integer(at), Value::Integer(rid)]);
        }
        sql.push_str(&format!(
            " ORDER BY m.created_at {dir}, m.rid {dir} LIMIT ?"
        ));
        p.push(Value::Integer(limit as i64 + 1));
        let mut rows = self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            stmt.query_map(params_from_iter(p), |r| {
                Ok((row_memory(r)?, r.get::<_, i64>(10)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|(m, rid)| format!("{}:{rid}", m.created_at.millis()))
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(|(m, _)| m).collect(),
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
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut p: Vec<Value> = vec![
            Value::Text(fts_query(terms)),
            Value::Text(tenant.as_str().into()),
        ];
        self.fts_up_to_date()?;
        let mut sql = format!(
            "SELECT bm25(memories_fts) AS score, {HEAD_COLS} FROM memories_fts
             JOIN memories m ON m.rid = memories_fts.rowid
             WHERE memories_fts MATCH ? AND m.tenant = ?"
        );
        sql.push_str(&filter_sql(filter, &mut p));
        sql.push_str(" ORDER BY score LIMIT ?");
        p.push(Value::Integer(limit.min(MAX_PAGE) as i64));
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            stmt.query_map(params_from_iter(p), |r| {
                let score: f64 = r.get(0)?;
                Ok(Scored {
                    head: row_head(r, 1)?,
                    // FTS5's bm25() is lower-is-better; the port speaks higher-is-better.
                    score: -score,
                })
            })?
            .collect()
        })
    }

    async fn concepts(&self, tenant: &TenantId, keys: &[String]) -> Result<Vec<Concept>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT key, name, kind, mentions, first_seen, last_seen FROM concepts
             WHERE tenant = ? AND key IN ({})",
            placeholders(keys.len())
        );
        let mut p: Vec<Value> = vec![Value::Text(tenant.as_str().into())];
        p.extend(keys.iter().map(|k| Value::Text(k.clone())));
        self.read(|c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(p), row_concept)?
                .collect()
        })
    }

    async fn list_concepts(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Concept>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT key, name, kind, mentions, first_seen, last_seen FROM concepts
                 WHERE tenant = ?1 ORDER BY mentions DESC, key LIMIT ?2 OFFSET ?3",
            )?
            .query_map(
                params![tenant.as_str(), limit.min(MAX_PAGE) as i64, offset as i64],
                row_concept,
            )?
            .collect()
        })
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
        let per = per_concept.min(MAX_PAGE) as i64;
        let key_sql = format!(
            "SELECT cid, key FROM concepts WHERE tenant = ? AND key IN ({})",
            placeholders(keys.len())
        );
        let mut p: Vec<Value> = vec![Value::Text(tenant.as_str().into())];
        p.extend(keys.iter().map(|k| Value::Text(k.clone())));
        self.read(|c| {
            let mut names: HashMap<i64, String> = c
                .prepare_cached(&key_sql)?
                .query_map(params_from_iter(p), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let seeds: Vec<i64> = names.keys().copied().collect();
            let mut rows: HashMap<(i64, i64), (f64, i64, i64)> = HashMap::new();
            // Each side is a short index range (a hub's links number in the hundreds), sorted
            // here rather than kept sorted by strength-carrying indexes on every write.
            for side in ["a", "b"] {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT a, b, strength, count, last_at FROM links WHERE {side} = ?1
                     ORDER BY strength DESC, count DESC LIMIT ?2"
                ))?;
                for cid in &seeds {
                    let found = stmt.query_map(params![cid, per], |r| {
                        Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?, r.get(4)?)))
                    })?;
                    for f in found {
                        let (k, v) = f?;
                        rows.insert(k, v);
                    }
                }
            }
            let missing: Vec<i64> = rows
                .keys()
                .flat_map(|(a, b)| [*a, *b])
                .filter(|cid| !names.contains_key(cid))
                .collect::<std::collections::HashSet<_>>()
                .into_iter()
                .collect();
            for chunk in missing.chunks(500) {
                let sql = format!(
                    "SELECT cid, key FROM concepts WHERE cid IN ({})",
                    placeholders(chunk.len())
                );
                let mut stmt = c.prepare_cached(&sql)?;
                let found = stmt.query_map(params_from_iter(chunk.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
                for f in found {
                    let (cid, key): (i64, String) = f?;
                    names.insert(cid, key);
                }
            }
            let mut links: Vec<Link> = rows
                .into_iter()
                .filter_map(|((a, b), (strength, count, last_at))| {
                    let (x, y) = (names.get(&a)?.clone(), names.get(&b)?.clone());
                    let (a, b) = if x <= y { (x, y) } else { (y, x) };
                    Some(Link {
                        a,
                        b,
                        strength,
                        count: count.max(0) as u64,
                        last_at: Timestamp(last_at),
                    })
                })
                .collect();
            continuum_core::store::sort_links(&mut links);
            Ok(links)
        })
    }

    async fn list_links(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Link>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT ca.key, cb.key, l.strength, l.count, l.last_at FROM links l
                 JOIN concepts ca ON ca.cid = l.a JOIN concepts cb ON cb.cid = l.b
                 WHERE l.tenant = ?1 ORDER BY l.a, l.b LIMIT ?2 OFFSET ?3",
            )?
            .query_map(
                params![tenant.as_str(), limit.min(MAX_PAGE) as i64, offset as i64],
                row_link,
            )?
            .collect()
        })
    }

    async fn mentions(
        &self,
        tenant: &TenantId,
        keys: &[String],
        per_concept: usize,
    ) -> Result<Vec<(String, MemoryHead)>> {
        let sql = format!(
            "SELECT {HEAD_COLS} FROM concepts k
             JOIN mentions mn ON mn.cid = k.cid
             JOIN memories m ON m.rid = mn.rid
             WHERE k.tenant = ?1 AND k.key = ?2
             ORDER BY mn.rid DESC LIMIT ?3"
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut out = Vec::new();
            for key in keys {
                let heads = stmt
                    .query_map(params![tenant.as_str(), key, per_concept as i64], |r| {
                        row_head(r, 0)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                out.extend(heads.into_iter().map(|h| (key.clone(), h)));
            }
            Ok(out)
        })
    }

    async fn concepts_of(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<(MemoryId, ExtractedConcept)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT k.key, k.name, k.kind FROM memories m
                 JOIN mentions mn ON mn.rid = m.rid
                 JOIN concepts k ON k.cid = mn.cid
                 WHERE +m.tenant = ?1 AND m.id = ?2 ORDER BY k.key",
            )?;
            let mut out = Vec::new();
            for id in ids {
                let rows = stmt
                    .query_map(params![tenant.as_str(), id.as_bytes().as_slice()], |r| {
                        Ok(ExtractedConcept {
                            key: r.get(0)?,
                            name: r.get(1)?,
                            kind: r.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                out.extend(rows.into_iter().map(|c| (*id, c)));
            }
            Ok(out)
        })
    }

    async fn decisions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Decision>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT id, memory_id, text, created_at FROM decisions WHERE tenant = ?1
                 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
            )?
            .query_map(
                params![tenant.as_str(), limit.min(MAX_PAGE) as i64, offset as i64],
                |r| {
                    let id: Vec<u8> = r.get(0)?;
                    let mid: Vec<u8> = r.get(1)?;
                    Ok(Decision {
                        id: conv(0, MemoryId::from_slice(&id))?,
                        memory_id: conv(1, MemoryId::from_slice(&mid))?,
                        text: r.get(2)?,
                        created_at: Timestamp(r.get(3)?),
                    })
                },
            )?
            .collect()
        })
    }

    async fn sessions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<SessionInfo>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT id, started_at, last_at, memories FROM sessions WHERE tenant = ?1
                 ORDER BY last_at DESC, id LIMIT ?2 OFFSET ?3",
            )?
            .query_map(
                params![tenant.as_str(), limit.min(MAX_PAGE) as i64, offset as i64],
                |r| {
                    let id: String = r.get(0)?;
                    Ok(SessionInfo {
                        id: SessionId::new(id).or_else(|e| conv(0, Err(e)))?,
                        started_at: Timestamp(r.get(1)?),
                        last_at: Timestamp(r.get(2)?),
                        memories: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                },
            )?
            .collect()
        })
    }

    async fn forget(&self, tenant: &TenantId, what: &ForgetSelector) -> Result<u64> {
        let now = continuum_core::Clock::now(&continuum_core::SystemClock).millis();
        self.write(|tx| forget_tx(tx, tenant, what, now))
    }

    async fn imported(&self, tenant: &TenantId, keys: &[String]) -> Result<Vec<String>> {
        continuum_core::store::check_import_keys(keys)?;
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT 1 FROM memories WHERE tenant = ?1 AND import_key = ?2")?;
            let mut out = Vec::new();
            for k in keys {
                if stmt
                    .query_row(params![tenant.as_str(), k], |_| Ok(()))
                    .optional()?
                    .is_some()
                {
                    out.push(k.clone());
                }
            }
            Ok(out)
        })
    }

    async fn existing(&self, tenant: &TenantId, keys: &[ImportKey]) -> Result<Vec<ImportKey>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT 1 FROM memories WHERE +tenant = ?1 AND id = ?2
                 UNION ALL
                 SELECT 1 FROM memories WHERE tenant = ?1 AND created_at = ?4 AND content_hash = ?3
                    AND session IS ?5
                 LIMIT 1",
            )?;
            let mut out = Vec::new();
            for k in keys {
                let hit = stmt
                    .query_row(
                        params![
                            tenant.as_str(),
                            k.id.as_bytes().as_slice(),
                            k.content_hash,
                            k.created_at.millis(),
                            k.session.as_ref().map(|s| s.as_str())
                        ],
                        |_| Ok(()),
                    )
                    .optional()?;
                if hit.is_some() {
                    out.push(k.clone());
                }
            }
            Ok(out)
        })
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        let t = tenant.as_str();
        self.read(|c| {
            let count = |sql: &str| -> rusqlite::Result<u64> {
                c.prepare_cached(sql)?
                    .query_row([t], |r| r.get::<_, i64>(0))
                    .map(|n| n.max(0) as u64)
            };
            let page_count: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let page_size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let version: u32 = c.query_row(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )?;
            Ok(StoreStats {
                memories: count("SELECT count(*) FROM memories WHERE tenant = ?1")?,
                sessions: count("SELECT count(*) FROM sessions WHERE tenant = ?1")?,
                concepts: count("SELECT count(*) FROM concepts WHERE tenant = ?1")?,
                links: count("SELECT count(*) FROM links WHERE tenant = ?1")?,
                decisions: count("SELECT count(*) FROM decisions WHERE tenant = ?1")?,
                change_seq: c
                    .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| {
                        r.get::<_, i64>(0)
                    })?
                    .max(0) as u64,
                store_bytes: Some((page_count * page_size).max(0) as u64),
                schema_version: version,
            })
        })
    }

    async fn commit_marker(&self) -> Result<Option<u64>> {
        if let Some(header) = &self.wal_header {
            // None if the header, readable at open, cannot be read now: callers then ask
            // the store every time.
            return Ok(header.marker());
        }
        let conn = self
            .watch
            .lock()
            .map_err(|_| Error::Internal("the watch connection was poisoned".into()))?;
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(map_err)?;
        Ok(Some(version as u64))
    }

    async fn copy_to_file(&self, dest: &Path) -> Result<Option<u64>> {
        // VACUUM INTO reads one snapshot of the database (a read transaction: writers go on
        // in the WAL) and writes it compacted to a new file; free pages, and with them
        // anything forgotten, are not carried over.
        if dest.exists() {
            return Err(Error::Conflict(format!(
                "{} already exists; a store copy is written to a new file",
                dest.display()
            )));
        }
        let target = dest.to_str().ok_or_else(|| {
            Error::InvalidInput(format!("{} is not a UTF-8 path", dest.display()))
        })?;
        self.read(|c| c.execute("VACUUM INTO ?1", [target]).map(|_| ()))?;
        let copy = Connection::open_with_flags(dest, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(map_err)?;
        let position: i64 = copy
            .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
            .map_err(map_err)?;
        Ok(Some(position.max(0) as u64))
    }

    async fn snapshot(&self, tenant: &TenantId, sink: SnapshotSink<'_>) -> Result<u64> {
        // A read transaction on one connection: every SELECT below sees the same commit.
        let t = tenant.as_str();
        self.read(|c| {
            c.execute_batch("BEGIN")?;
            let r = snapshot_tx(c, t, sink);
            let end = c.execute_batch("COMMIT");
            let r = r?;
            end.map(|_| r)
        })?
    }

    async fn index_scan(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, IndexDoc)>> {
        let sql = format!(
            // `+m.tenant`: walk the rowid order; the tenant index would sort every row per page.
            "SELECT m.rid, m.content, {HEAD_COLS}, {SPEAKER_COL} FROM memories m
             WHERE +m.tenant = ?1 AND m.rid > ?2 ORDER BY m.rid LIMIT ?3"
        );
        self.read(|c| {
            let mut docs: Vec<(u64, IndexDoc)> = c
                .prepare_cached(&sql)?
                .query_map(
                    params![tenant.as_str(), after as i64, limit.min(10_000) as i64],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)? as u64,
                            IndexDoc {
                                content: r.get(1)?,
                                concepts: Vec::new(),
                                head: row_head(r, 2)?,
                                speaker: r.get(7)?,
                            },
                        ))
                    },
                )?
                .collect::<rusqlite::Result<_>>()?;
            let (Some(first), Some(last)) = (docs.first().map(|d| d.0), docs.last().map(|d| d.0))
            else {
                return Ok(docs);
            };
            // Mentions of the page by memory range (other tenants' rows in the range are
            // skipped below), then each concept's key once.
            let mut by_rid: HashMap<i64, Vec<i64>> = HashMap::new();
            let mut stmt =
                c.prepare_cached("SELECT rid, cid FROM mentions WHERE rid BETWEEN ?1 AND ?2")?;
            let rows = stmt.query_map(params![first as i64, last as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            for row in rows {
                let (rid, cid): (i64, i64) = row?;
                by_rid.entry(rid).or_default().push(cid);
            }
            let cids: Vec<i64> = by_rid
                .values()
                .flatten()
                .copied()
                .collect::<std::collections::HashSet<_>>()
                .into_iter()
                .collect();
            let mut keys: HashMap<i64, String> = HashMap::new();
            for chunk in cids.chunks(500) {
                let sql = format!(
                    "SELECT cid, key FROM concepts WHERE tenant = ? AND cid IN ({})",
                    placeholders(chunk.len())
                );
                let mut p: Vec<Value> = vec![Value::Text(tenant.as_str().into())];
                p.extend(chunk.iter().map(|c| Value::Integer(*c)));
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(params_from_iter(p), |r| Ok((r.get(0)?, r.get(1)?)))?;
                for row in rows {
                    let (cid, key): (i64, String) = row?;
                    keys.insert(cid, key);
                }
            }
            for (rid, doc) in &mut docs {
                if let Some(cids) = by_rid.get(&(*rid as i64)) {
                    doc.concepts = cids.iter().filter_map(|c| keys.get(c).cloned()).collect();
                }
            }
            Ok(docs)
        })
    }

    async fn index_docs(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<IndexDoc>> {
        let sql = format!(
            "SELECT m.rid, m.content,
                (SELECT group_concat(k.key, char(31)) FROM mentions mn JOIN concepts k ON k.cid = mn.cid
                 WHERE mn.rid = m.rid),
                {HEAD_COLS}, {SPEAKER_COL}
             FROM memories m WHERE +m.tenant = ?1 AND m.id = ?2"
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(doc) = stmt
                    .query_row(
                        params![tenant.as_str(), id.as_bytes().as_slice()],
                        index_doc,
                    )
                    .optional()?
                {
                    out.push(doc);
                }
            }
            Ok(out)
        })
    }

    async fn vacuum(&self) -> Result<continuum_core::store::Vacuumed> {
        fn size(c: &Connection) -> rusqlite::Result<u64> {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let page: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok((pages * page).max(0) as u64)
        }
        // On the writer connection, outside a transaction (VACUUM cannot run in one): other
        // writers of this process wait on its lock, other processes on SQLite's.
        let conn = self
            .writer
            .lock()
            .map_err(|_| Error::Internal("the writer connection was poisoned".into()))?;
        let before = size(&conn).map_err(map_err)?;
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(map_err)?;
        conn.execute_batch("VACUUM").map_err(map_err)?;
        // The rewritten pages went to the WAL: copy them into the file and empty the WAL, so
        // neither keeps the old ones (a reader still open elsewhere can hold it back; the next
        // checkpoint finishes the job).
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(map_err)?;
        Ok(continuum_core::store::Vacuumed {
            tables: tables.max(0) as u64,
            bytes_before: before,
            bytes_after: size(&conn).map_err(map_err)?,
        })
    }

    async fn check(&self) -> Result<Vec<String>> {
        // Under the write lock (an IMMEDIATE transaction that writes nothing): every figure
        // from one state of the store. From a reader, a write committed between two
        // statements showed as a count mismatch, and FTS5's own check reported corruption
        // that was not there while segments were being merged.
        self.write(|tx| {
            // The full-text index is checked whole: first brought up to date.
            write::fts_catch_up(tx)?;
            let c: &Connection = tx;
            let run = || -> rusqlite::Result<Vec<String>> {
            let mut problems = Vec::new();
            let mut stmt = c.prepare("PRAGMA integrity_check")?;
            for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
                let row = row?;
                if row != "ok" {
                    problems.push(format!("integrity: {row}"));
                }
            }
            let memories: i64 = c.query_row("SELECT count(*) FROM memories", [], |r| r.get(0))?;
            let indexed: i64 = c.query_row("SELECT count(*) FROM memories_fts", [], |r| r.get(0))?;
            if memories != indexed {
                problems.push(format!(
                    "full-text index holds {indexed} entries for {memories} memories"
                ));
            }
            let orphans: i64 = c.query_row(
                "SELECT count(*) FROM mentions mn LEFT JOIN memories m ON m.rid = mn.rid WHERE m.rid IS NULL",
                [],
                |r| r.get(0),
            )?;
            if orphans > 0 {
                problems.push(format!("{orphans} concept mentions point at missing memories"));
            }
            drop(stmt);
            Ok(problems)
            };
            run().map_err(map_err)
        })
    }
}
