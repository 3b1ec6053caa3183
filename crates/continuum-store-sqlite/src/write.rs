//! Writes: applying batches (memories, concepts, mentions, links, decisions, supersessions) and forgetting.

use super::*;

/// A concept a write has met: its id, and whether its row is bare (made by a link, not yet
/// named by a memory: no mentions, its key as name, kind `concept`) as the transaction sees it.
#[derive(Clone, Copy)]
pub(crate) struct SeenConcept {
    cid: i64,
    bare: bool,
}

/// Finds or creates a concept, returning (cid, created, bare).
pub(crate) fn concept_id(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    c: &ExtractedConcept,
    at: i64,
    cache: &mut HashMap<String, SeenConcept>,
    events: &mut PendingEvents,
) -> Result<(i64, bool, bool)> {
    if let Some(seen) = cache.get(&c.key) {
        return Ok((seen.cid, false, seen.bare));
    }
    let found: Option<(i64, bool)> = tx
        .prepare_cached(
            "SELECT cid, mentions = 0 AND name = key AND kind = 'concept'
             FROM concepts WHERE tenant = ?1 AND key = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![tenant.as_str(), c.key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .map_err(map_err)?;
    let (seen, created) = match found {
        Some((cid, bare)) => (SeenConcept { cid, bare }, false),
        None => {
            tx.prepare_cached(
                "INSERT INTO concepts (tenant, key, name, kind, mentions, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
            )
            .and_then(|mut s| s.execute(params![tenant.as_str(), c.key, c.name, c.kind, at]))
            .map_err(map_err)?;
            let cid = tx.last_insert_rowid();
            events.push(
                at,
                &Event::ConceptCreated {
                    key: c.key.clone(),
                    name: c.name.clone(),
                    kind: c.kind.clone(),
                },
            );
            let bare = c.name == c.key && c.kind == "concept";
            (SeenConcept { cid, bare }, true)
        }
    };
    cache.insert(c.key.clone(), seen);
    Ok((seen.cid, created, seen.bare))
}

pub(crate) fn apply_batches(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    rule: &HebbianRule,
    batches: Vec<WriteBatch>,
) -> Result<Applied> {
    apply_batches_with(tx, tenant, rule, batches, false)
}

/// [`apply_batches`], with `links_per_batch`: one `links.strengthened` per batch, at the
/// batch's time (sync: each source event keeps its own time), instead of one for the call.
pub(crate) fn apply_batches_with(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    rule: &HebbianRule,
    batches: Vec<WriteBatch>,
    links_per_batch: bool,
) -> Result<Applied> {
    let t = tenant.as_str();
    let mut out = Applied::default();
    // Imported history: its events keep the conversation's time and get the write's too.
    let written_at = batches
        .iter()
        .filter_map(|b| b.written_at.filter(|w| *w != b.at))
        .max();
    let before = match written_at {
        Some(_) => tx
            .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(map_err)?,
        None => 0,
    };
    let mut cids: HashMap<String, SeenConcept> = HashMap::new();
    let mut events = PendingEvents::default();
    // cid -> (new mentions, first, last): applied once per call.
    let mut mention_delta: HashMap<i64, (i64, i64, i64)> = HashMap::new();
    let mut last_at = 0i64;
    // session -> (new memories, first, last): one upsert per session per call.
    let mut session_delta: HashMap<&str, (i64, i64, i64)> = HashMap::new();
    for batch in &batches {
        let at = batch.at.millis();
        last_at = last_at.max(at);
        for w in &batch.memories {
            let m = &w.memory;
            let metadata = if m.metadata.is_empty() {
                "{}".to_string()
            } else {
                serde_json::to_string(&m.metadata).map_err(|e| {
                    Error::InvalidInput(format!("metadata is not serialisable: {e}"))
                })?
            };
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO memories (id, tenant, session, source, kind, content, metadata,
                        created_at, content_hash, valid_until, superseded_by, import_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        m.id.as_bytes().as_slice(),
                        t,
                        m.session.as_ref().map(|s| s.as_str()),
                        m.source.as_str(),
                        m.kind,
                        m.content,
                        metadata,
                        m.created_at.millis(),
                        m.content_hash,
                        m.valid_until.map(|v| v.millis()),
                        m.superseded_by.as_ref().map(|s| s.as_bytes().to_vec()),
                        w.import_key,
                    ])
                });
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(Error::Conflict(match &w.import_key {
                        Some(k) => {
                            format!("memory {} or the imported turn {k} already exists", m.id)
                        }
                        None => format!("memory {} already exists", m.id),
                    }));
                }
                Err(e) => return Err(map_err(e)),
            }
            // Not in the full-text index yet: `fts_catch_up` adds it when the index is used.
            let rid = tx.last_insert_rowid();
            if let Some(session) = &m.session {
                let ts = m.created_at.millis();
                let e = session_delta.entry(session.as_str()).or_insert((0, ts, ts));
                e.0 += 1;
                e.1 = e.1.min(ts);
                e.2 = e.2.max(ts);
            }
            events.push_created(at, w);
            out.memories += 1;
            for c in &w.concepts {
                let (cid, created, bare) =
                    concept_id(tx, tenant, c, m.created_at.millis(), &mut cids, &mut events)?;
                out.concepts_created += created as u64;
                // A concept made bare by a link (synced before the memory naming it) takes
                // the name and kind its first mention gives it. (Mention counts are written
                // at the end of the call, so a concept this call made stays bare until then.)
                if bare && (c.name != c.key || c.kind != "concept") {
                    tx.prepare_cached("UPDATE concepts SET name = ?2, kind = ?3 WHERE cid = ?1")
                        .and_then(|mut s| s.execute(params![cid, c.name, c.kind]))
                        .map_err(map_err)?;
                    if let Some(seen) = cids.get_mut(&c.key) {
                        seen.bare = false;
                    }
                }
                let n = tx
                    .prepare_cached("INSERT OR IGNORE INTO mentions (cid, rid) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(params![cid, rid]))
                    .map_err(map_err)?;
                if n > 0 {
                    let ts = m.created_at.millis();
                    let e = mention_delta.entry(cid).or_insert((0, ts, ts));
                    e.0 += 1;
                    e.1 = e.1.min(ts);
                    e.2 = e.2.max(ts);
                }
            }
        }
        for link in &batch.links {
            let (ka, kb) = match link {
                LinkWrite::CoOccurred { a, b, .. } | LinkWrite::AtLeast { a, b, .. } => (a, b),
            };
            if ka == kb {
                continue;
            }
            let mut cid_of = |key: &String| -> Result<i64> {
                let c = ExtractedConcept {
                    key: key.clone(),
                    name: key.clone(),
                    kind: "concept".into(),
                };
                let (cid, created, _) = concept_id(tx, tenant, &c, at, &mut cids, &mut events)?;
                out.concepts_created += created as u64;
                Ok(cid)
            };
            let (x, y) = (cid_of(ka)?, cid_of(kb)?);
            let (a, b) = (x.min(y), x.max(y));
            // `created`: the row's count after the write equals what this write added.
            let created = match link {
                LinkWrite::CoOccurred { count, .. } => {
                    let n = (*count).max(1);
                    // An insert that skips an existing pair, then an update of it: not one
                    // upsert with `RETURNING`, whose rows SQLite gathers in a temporary B-tree
                    // it opens on every execution (a fifth of this step's time).
                    let inserted = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO links (a, b, tenant, strength, count, first_at, last_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                        )
                        .and_then(|mut s| {
                            s.execute(params![a, b, t, rule.new_strength(n), n as i64, at])
                        })
                        .map_err(map_err)?
                        > 0;
                    if !inserted {
                        tx.prepare_cached(
                            "UPDATE links SET
                                strength = min(?3, round((strength + ?4 * ?5) * 1e9) / 1e9),
                                count = count + ?5,
                                last_at = max(last_at, ?6)
                             WHERE a = ?1 AND b = ?2",
                        )
                        .and_then(|mut s| {
                            s.execute(params![a, b, rule.cap, rule.increment, n as i64, at])
                        })
                        .map_err(map_err)?;
                    }
                    inserted
                }
                LinkWrite::AtLeast {
                    strength,
                    count,
                    last_at,
                    ..
                } => tx
                    .prepare_cached(
                        "INSERT INTO links (a, b, tenant, strength, count, first_at, last_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                         ON CONFLICT (a, b) DO UPDATE SET
                            strength = max(strength, excluded.strength),
                            count = max(count, excluded.count),
                            last_at = max(last_at, excluded.last_at)
                         RETURNING first_at = last_at AND last_at = ?6 AND count = ?5",
                    )
                    .and_then(|mut s| {
                        s.query_row(
                            params![
                                a,
                                b,
                                t,
                                strength.clamp(0.0, rule.cap),
                                *count as i64,
                                last_at.millis()
                            ],
                            |r| r.get::<_, bool>(0),
                        )
                    })
                    .map_err(map_err)?,
            };
            if created {
                out.links_created += 1;
            } else {
                out.links_strengthened += 1;
            }
        }
        for d in &batch.decisions {
            let inserted = tx.prepare_cached(
                "INSERT INTO decisions (id, tenant, memory_id, text, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    d.id.as_bytes().as_slice(),
                    t,
                    d.memory_id.as_bytes().as_slice(),
                    d.text,
                    d.created_at.millis()
                ])
            })
            .map_err(map_err)?;
            if inserted > 0 {
                events.push(
                    at,
                    &Event::DecisionCreated {
                        id: d.id,
                        decision: Some(d.clone()),
                    },
                );
                out.decisions += 1;
            }
        }
        for (old, new) in &batch.supersedes {
            // Every supersession is kept; the memory shows the largest (latest) replacement
            // and the earliest end, whatever order supersessions come in.
            let n = tx
                .prepare_cached(
                    "UPDATE memories SET
                        superseded_by = CASE WHEN superseded_by IS NULL OR superseded_by < ?1
                                        THEN ?1 ELSE superseded_by END,
                        valid_until = CASE WHEN valid_until IS NULL OR valid_until > ?2
                                      THEN ?2 ELSE valid_until END
                     WHERE +tenant = ?3 AND id = ?4",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        new.as_bytes().as_slice(),
                        at,
                        t,
                        old.as_bytes().as_slice()
                    ])
                })
                .map_err(map_err)?;
            if n == 0 {
                return Err(Error::NotFound(format!("no memory with id {old}")));
            }
            tx.prepare_cached(
                "INSERT OR IGNORE INTO supersessions (tenant, id, by_id, at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![t, old.as_bytes().as_slice(), new.as_bytes().as_slice(), at])
            })
            .map_err(map_err)?;
            events.push(
                at,
                &Event::MemorySuperseded {
                    id: *old,
                    by: Some(*new),
                },
            );
        }
    }
    for (session, (n, first, last)) in session_delta {
        tx.prepare_cached(
            "INSERT INTO sessions (tenant, id, started_at, last_at, memories)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant, id) DO UPDATE SET
                started_at = min(started_at, excluded.started_at),
                last_at = max(last_at, excluded.last_at),
                memories = memories + excluded.memories",
        )
        .and_then(|mut s| s.execute(params![t, session, first, last, n]))
        .map_err(map_err)?;
    }
    for (cid, (n, first, last)) in mention_delta {
        tx.prepare_cached(
            "UPDATE concepts SET mentions = mentions + ?1, first_seen = min(first_seen, ?2),
                last_seen = max(last_seen, ?3) WHERE cid = ?4",
        )
        .and_then(|mut s| s.execute(params![n, first, last, cid]))
        .map_err(map_err)?;
    }
    // One event for the write's link changes, merged per pair (or one per batch).
    if links_per_batch {
        for b in &batches {
            let links = continuum_core::store::merge_link_writes(&b.links);
            if !links.is_empty() {
                events.push(b.at.millis(), &Event::LinksStrengthened { links });
            }
        }
    } else {
        let links = continuum_core::store::merge_link_writes(batches.iter().flat_map(|b| &b.links));
        if !links.is_empty() {
            events.push(last_at, &Event::LinksStrengthened { links });
        }
    }
    events.append(tx, tenant)?;
    if let Some(w) = written_at {
        crate::events::stamp_written(tx, before, w.millis())?;
    }
    out.change_seq = tx
        .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(map_err)? as u64;
    Ok(out)
}

/// Adds the memories written since the full-text index was last used (rid above
/// `fts_state.through`) to it, in the caller's write transaction.
pub(crate) fn fts_catch_up(tx: &Transaction<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO memories_fts (rowid, content)
         SELECT rid, content FROM memories WHERE rid > (SELECT through FROM fts_state) ORDER BY rid",
        [],
    )
    .map_err(map_err)?;
    tx.execute(
        "UPDATE fts_state SET through = (SELECT coalesce(max(rid), 0) FROM memories)",
        [],
    )
    .map_err(map_err)?;
    Ok(())
}

impl SqliteStore {
    /// Brings the full-text index up to date before it is read: a cheap read when it is, a
    /// write transaction indexing what is missing when not (all of a store's memories the
    /// first time `derived_index = false` searches a store that never used it).
    pub(crate) fn fts_up_to_date(&self) -> Result<()> {
        let behind: bool = self.read(|c| {
            c.query_row(
                "SELECT (SELECT coalesce(max(rid), 0) FROM memories) > through FROM fts_state",
                [],
                |r| r.get(0),
            )
        })?;
        if behind {
            self.write(fts_catch_up)?;
        }
        Ok(())
    }
}

/// The rids of the memories a selector names, in this tenant.
pub(crate) fn selected_rids(
    tx: &Transaction<'_>,
    t: &str,
    what: &ForgetSelector,
) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut push = |r: &Row<'_>| -> rusqlite::Result<()> {
        out.push((r.get(0)?, r.get(1)?));
        Ok(())
    };
    match what {
        ForgetSelector::Ids(ids) => {
            let mut stmt = tx
                .prepare_cached("SELECT rid, id FROM memories WHERE +tenant = ?1 AND id = ?2")
                .map_err(map_err)?;
            for id in ids {
                let mut rows = stmt
                    .query(params![t, id.as_bytes().as_slice()])
                    .map_err(map_err)?;
                while let Some(r) = rows.next().map_err(map_err)? {
                    push(r).map_err(map_err)?;
                }
            }
        }
        ForgetSelector::Session(s) => {
            let mut stmt = tx
                .prepare_cached("SELECT rid, id FROM memories WHERE tenant = ?1 AND session = ?2")
                .map_err(map_err)?;
            let mut rows = stmt.query(params![t, s.as_str()]).map_err(map_err)?;
            while let Some(r) = rows.next().map_err(map_err)? {
                push(r).map_err(map_err)?;
            }
        }
        ForgetSelector::All => {
            let mut stmt = tx
                .prepare_cached("SELECT rid, id FROM memories WHERE tenant = ?1")
                .map_err(map_err)?;
            let mut rows = stmt.query(params![t]).map_err(map_err)?;
            while let Some(r) = rows.next().map_err(map_err)? {
                push(r).map_err(map_err)?;
            }
        }
    }
    Ok(out)
}

/// Removes the supersessions of a memory that is gone (as replacement or replaced): the
/// memories it replaced fall back on their other replacements, or become current again when
/// none is left (a `memory.updated` each).
pub(crate) fn drop_supersessions(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &[u8],
    now: i64,
) -> Result<()> {
    let t = tenant.as_str();
    // The memories it replaced: each keeps its other replacements (the largest shows) and the
    // earliest of their times, or becomes current again.
    let replaced: Vec<Vec<u8>> = tx
        .prepare_cached("SELECT id FROM supersessions WHERE tenant = ?1 AND by_id = ?2")
        .and_then(|mut s| {
            s.query_map(params![t, id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_err)?;
    tx.prepare_cached("DELETE FROM supersessions WHERE tenant = ?1 AND (by_id = ?2 OR id = ?2)")
        .and_then(|mut s| s.execute(params![t, id]))
        .map_err(map_err)?;
    // Those that showed it as their replacement get a `memory.updated` with the new one.
    let mut restored: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for old in &replaced {
        let shown: Option<Option<Vec<u8>>> = tx
            .prepare_cached("SELECT superseded_by FROM memories WHERE id = ?1 AND +tenant = ?2")
            .and_then(|mut s| s.query_row(params![old, t], |r| r.get(0)).optional())
            .map_err(map_err)?;
        let Some(shown) = shown else { continue };
        let now_by: Option<Vec<u8>> = tx
            .prepare_cached(
                "UPDATE memories SET
                    superseded_by = (SELECT max(s.by_id) FROM supersessions s
                                     WHERE s.tenant = ?2 AND s.id = ?1),
                    valid_until = (SELECT min(s.at) FROM supersessions s
                                   WHERE s.tenant = ?2 AND s.id = ?1)
                 WHERE id = ?1 AND +tenant = ?2
                 RETURNING superseded_by",
            )
            .and_then(|mut s| s.query_row(params![old, t], |r| r.get(0)))
            .map_err(map_err)?;
        if shown.as_deref() == Some(id) {
            restored.push((old.clone(), now_by));
        }
    }
    for (old, by) in &restored {
        log_event(
            tx,
            tenant,
            now,
            &Event::MemoryUpdated {
                id: MemoryId::from_slice(old)?,
                superseded_by: by.as_deref().map(MemoryId::from_slice).transpose()?,
            },
        )?;
    }
    Ok(())
}

pub(crate) fn forget_tx(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    what: &ForgetSelector,
    now: i64,
) -> Result<u64> {
    let t = tenant.as_str();
    let rids = selected_rids(tx, t, what)?;
    let fts_through: i64 = tx
        .query_row("SELECT through FROM fts_state", [], |r| r.get(0))
        .map_err(map_err)?;
    let mut touched_concepts: HashMap<i64, i64> = HashMap::new();
    for (rid, id) in &rids {
        {
            let mut stmt = tx
                .prepare_cached("SELECT cid FROM mentions WHERE rid = ?1")
                .map_err(map_err)?;
            let cids = stmt
                .query_map([rid], |r| r.get::<_, i64>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(map_err)?;
            for cid in cids {
                *touched_concepts.entry(cid).or_default() += 1;
            }
        }
        let exec = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<usize> {
            tx.prepare_cached(sql)
                .and_then(|mut s| s.execute(p))
                .map_err(map_err)
        };
        exec("DELETE FROM mentions WHERE rid = ?1", &[rid])?;
        exec("DELETE FROM vectors WHERE rid = ?1", &[rid])?;
        // The text indexed, given back so that FTS5 removes its tokens (secure-delete). Only
        // for an indexed memory: a 'delete' of a row the index never held corrupts it.
        if *rid <= fts_through {
            exec(
                "INSERT INTO memories_fts (memories_fts, rowid, content)
                 SELECT 'delete', rid, content FROM memories WHERE rid = ?1",
                &[rid],
            )?;
        }
        exec(
            "DELETE FROM decisions WHERE tenant = ?1 AND memory_id = ?2",
            &[&t, id],
        )?;
        drop_supersessions(tx, tenant, id, now)?;
        exec(
            "UPDATE sessions SET memories = memories - 1
             WHERE tenant = ?1 AND id = (SELECT session FROM memories WHERE rid = ?2)",
            &[&t, rid],
        )?;
        exec("DELETE FROM memories WHERE rid = ?1", &[rid])?;
        // A tombstone: a create of this memory that arrives later by sync is dropped.
        exec(
            "INSERT OR IGNORE INTO sync_forgotten (tenant, id) VALUES (?1, ?2)",
            &[&t, id],
        )?;
        let id = MemoryId::from_slice(id)?;
        scrub_events(tx, t, &id)?;
        log_event(tx, tenant, now, &Event::MemoryForgotten { id })?;
    }
    if !rids.is_empty() {
        // SQLite gives the next memory the largest rid left plus one: were that at most
        // `through`, the memory would pass for indexed.
        tx.execute(
            "UPDATE fts_state SET through = min(through, (SELECT coalesce(max(rid), 0) FROM memories))",
            [],
        )
        .map_err(map_err)?;
    }
    let mut gone_keys: Vec<String> = Vec::new();
    for (cid, n) in touched_concepts {
        tx.prepare_cached("UPDATE concepts SET mentions = mentions - ?1 WHERE cid = ?2")
            .and_then(|mut s| s.execute(params![n, cid]))
            .map_err(map_err)?;
        let gone: Option<String> = tx
            .prepare_cached("DELETE FROM concepts WHERE cid = ?1 AND mentions <= 0 RETURNING key")
            .and_then(|mut s| s.query_row([cid], |r| r.get(0)).optional())
            .map_err(map_err)?;
        if let Some(key) = gone {
            tx.prepare_cached("DELETE FROM links WHERE a = ?1 OR b = ?1")
                .and_then(|mut s| s.execute([cid]))
                .map_err(map_err)?;
            gone_keys.push(key);
        }
    }
    if !gone_keys.is_empty() && !matches!(what, ForgetSelector::All) {
        scrub_concepts(tx, t, &gone_keys)?;
    }
    tx.execute(
        "DELETE FROM sessions WHERE tenant = ?1 AND memories <= 0",
        [t],
    )
    .map_err(map_err)?;
    if matches!(what, ForgetSelector::All) {
        // Links or concepts left without mentions (from imports) go with the tenant.
        tx.execute("DELETE FROM links WHERE tenant = ?1", [t])
            .map_err(map_err)?;
        tx.execute("DELETE FROM concepts WHERE tenant = ?1", [t])
            .map_err(map_err)?;
        tx.execute("DELETE FROM decisions WHERE tenant = ?1", [t])
            .map_err(map_err)?;
        // Reflection records are the tenant's text too: gone, and their events scrubbed.
        tx.execute("DELETE FROM records WHERE tenant = ?1", [t])
            .map_err(map_err)?;
        tx.execute(
            "UPDATE events SET payload = json_set(payload, '$.record', json('null'))
             WHERE tenant = ?1 AND type IN ('intention.saved', 'belief.saved', 'contradiction.saved', 'claim.saved', 'snapshot.saved')",
            [t],
        )
        .map_err(map_err)?;
        // Concept names and keys come from the tenant's text too.
        tx.execute(
            "UPDATE events SET payload = CASE type
                WHEN 'concept.created' THEN json_set(payload, '$.key', '', '$.name', '')
                WHEN 'links.strengthened' THEN json_set(payload, '$.links', json('[]'))
                ELSE json_set(payload, '$.keys', json('null')) END
             WHERE tenant = ?1 AND type IN ('concept.created', 'links.strengthened', 'concepts.changed')",
            [t],
        )
        .map_err(map_err)?;
    }
    if let ForgetSelector::Session(session) = what
        && !rids.is_empty()
    {
        log_event(
            tx,
            tenant,
            now,
            &Event::SessionForgotten {
                session: session.clone(),
                memories: rids.len() as u64,
            },
        )?;
    }
    Ok(rids.len() as u64)
}
