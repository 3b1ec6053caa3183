//! Writes: the tenant lock and applying batches set-based (`UNNEST` arrays).

use super::*;

pub(crate) async fn lock_tenant(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &str,
) -> Result<()> {
    tx_execute(
        tx,
        "SELECT pg_advisory_xact_lock(hashtext('continuum:' || $1))",
        &[&tenant],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn apply_batches(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &TenantId,
    rule: &HebbianRule,
    batches: Vec<WriteBatch>,
) -> Result<Applied> {
    apply_batches_with(tx, tenant, rule, batches, false).await
}

/// [`apply_batches`], with `links_per_batch`: one `links.strengthened` per batch, at the
/// batch's time (sync: each source event keeps its own time), instead of one for the call.
pub(crate) async fn apply_batches_with(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &TenantId,
    rule: &HebbianRule,
    batches: Vec<WriteBatch>,
    links_per_batch: bool,
) -> Result<Applied> {
    let t = tenant.as_str();
    let mut out = Applied::default();
    let mut events = EventRows::default();
    // Imported history: its events keep the conversation's time and get the write's too.
    if let Some(w) = batches
        .iter()
        .filter_map(|b| b.written_at.filter(|w| *w != b.at))
        .max()
    {
        events.written_at(w.millis());
    }

    // Memories, in one statement.
    let mut ids = Vec::new();
    let (mut sessions_col, mut sources, mut kinds, mut contents, mut metas) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut created, mut hashes, mut valid, mut superseded) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut import_keys: Vec<Option<String>> = Vec::new();
    // concept key -> (name, kind, memories mentioning it, first, last)
    let mut concept_rows: BTreeMap<String, (String, String, i64, i64, i64)> = BTreeMap::new();
    let mut mention_pairs: Vec<(Uuid, String)> = Vec::new();
    let mut session_delta: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    let mut last_at = 0i64;
    for batch in &batches {
        last_at = last_at.max(batch.at.millis());
        for w in &batch.memories {
            let m = &w.memory;
            ids.push(m.id.0);
            sessions_col.push(m.session.as_ref().map(|s| s.as_str().to_string()));
            sources.push(m.source.as_str().to_string());
            kinds.push(m.kind.clone());
            contents.push(m.content.clone());
            metas.push(
                serde_json::to_string(&m.metadata).map_err(|e| {
                    Error::InvalidInput(format!("metadata is not serialisable: {e}"))
                })?,
            );
            let ts = m.created_at.millis();
            created.push(ts);
            hashes.push(m.content_hash.clone());
            valid.push(m.valid_until.map(|v| v.millis()));
            superseded.push(m.superseded_by.map(|s| s.0));
            import_keys.push(w.import_key.clone());
            if let Some(s) = &m.session {
                let e = session_delta
                    .entry(s.as_str().to_string())
                    .or_insert((0, ts, ts));
                e.0 += 1;
                e.1 = e.1.min(ts);
                e.2 = e.2.max(ts);
            }
            events.push_created(batch.at.millis(), w);
            let mut seen = std::collections::HashSet::new();
            for c in &w.concepts {
                if !seen.insert(c.key.as_str()) {
                    continue;
                }
                let e = concept_rows.entry(c.key.clone()).or_insert((
                    c.name.clone(),
                    c.kind.clone(),
                    0,
                    ts,
                    ts,
                ));
                e.2 += 1;
                e.3 = e.3.min(ts);
                e.4 = e.4.max(ts);
                mention_pairs.push((m.id.0, c.key.clone()));
            }
        }
        for l in &batch.links {
            let (a, b) = match l {
                LinkWrite::CoOccurred { a, b, .. } | LinkWrite::AtLeast { a, b, .. } => (a, b),
            };
            for k in [a, b] {
                concept_rows.entry(k.clone()).or_insert((
                    k.clone(),
                    "concept".into(),
                    0,
                    batch.at.millis(),
                    batch.at.millis(),
                ));
            }
        }
    }
    let mut rid_of: HashMap<Uuid, i64> = HashMap::new();
    if !ids.is_empty() {
        let rows = tx_query(
            tx,
            "INSERT INTO memories (id, tenant, session, source, kind, content, metadata,
                    created_at, content_hash, valid_until, superseded_by, import_key)
                 SELECT id, $1, session, source, kind, content, metadata::jsonb, created_at,
                    content_hash, valid_until, superseded_by, import_key
                 FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                    $8::bigint[], $9::text[], $10::bigint[], $11::uuid[], $12::text[])
                    AS t(id, session, source, kind, content, metadata, created_at, content_hash,
                         valid_until, superseded_by, import_key)
                 RETURNING id, rid",
            &[
                &t,
                &ids,
                &sessions_col,
                &sources,
                &kinds,
                &contents,
                &metas,
                &created,
                &hashes,
                &valid,
                &superseded,
                &import_keys,
            ],
        )
        .await
        .map_err(|e| match map_err(e) {
            Error::Conflict(_) => Error::Conflict(
                "a memory with one of these ids, or an imported turn of these, already exists"
                    .into(),
            ),
            other => other,
        })?;
        for r in rows {
            rid_of.insert(r.get(0), r.get(1));
        }
        out.memories = rid_of.len() as u64;
    }
    if !session_delta.is_empty() {
        let (mut sid, mut n, mut first, mut last) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (s, (c, f, l)) in session_delta {
            sid.push(s);
            n.push(c);
            first.push(f);
            last.push(l);
        }
        tx_execute(tx,
            "INSERT INTO sessions (tenant, id, started_at, last_at, memories)
             SELECT $1, id, f, l, n FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS t(id, f, l, n)
             ON CONFLICT (tenant, id) DO UPDATE SET
                started_at = LEAST(sessions.started_at, excluded.started_at),
                last_at = GREATEST(sessions.last_at, excluded.last_at),
                memories = sessions.memories + excluded.memories",
            &[&t, &sid, &first, &last, &n],
        )
        .await
        .map_err(map_err)?;
    }

    // Concepts: created or counted in one statement.
    let mut cid_of: HashMap<String, i64> = HashMap::new();
    if !concept_rows.is_empty() {
        let (mut keys, mut names, mut ckinds, mut ns, mut firsts, mut lasts) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for (k, (name, kind, n, f, l)) in &concept_rows {
            keys.push(k.clone());
            names.push(name.clone());
            ckinds.push(kind.clone());
            ns.push(*n);
            firsts.push(*f);
            lasts.push(*l);
        }
        let rows = tx_query(tx,
                "INSERT INTO concepts (tenant, key, name, kind, mentions, first_seen, last_seen)
                 SELECT $1, key, name, kind, n, f, l
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])
                    AS t(key, name, kind, n, f, l)
                 ON CONFLICT (tenant, key) DO UPDATE SET
                    name = CASE WHEN concepts.mentions = 0 AND excluded.mentions > 0
                                 AND concepts.name = concepts.key AND concepts.kind = 'concept'
                           THEN excluded.name ELSE concepts.name END,
                    kind = CASE WHEN concepts.mentions = 0 AND excluded.mentions > 0
                                 AND concepts.name = concepts.key AND concepts.kind = 'concept'
                           THEN excluded.kind ELSE concepts.kind END,
                    mentions = concepts.mentions + excluded.mentions,
                    first_seen = LEAST(concepts.first_seen, excluded.first_seen),
                    last_seen = GREATEST(concepts.last_seen, excluded.last_seen)
                 RETURNING cid, key, (xmax = 0) AS created",
                &[&t, &keys, &names, &ckinds, &ns, &firsts, &lasts],
            )
            .await
            .map_err(map_err)?;
        for r in rows {
            let key: String = r.get(1);
            if r.get::<_, bool>(2) {
                out.concepts_created += 1;
                let (name, kind) = concept_rows
                    .get(&key)
                    .map(|(n, k, ..)| (n.clone(), k.clone()))
                    .unwrap_or_else(|| (key.clone(), "concept".into()));
                events.push(
                    last_at,
                    Event::ConceptCreated {
                        key: key.clone(),
                        name,
                        kind,
                    },
                );
            }
            cid_of.insert(key, r.get(0));
        }
    }
    if !mention_pairs.is_empty() {
        let (mut cids, mut rids) = (Vec::new(), Vec::new());
        for (id, key) in &mention_pairs {
            if let (Some(c), Some(r)) = (cid_of.get(key), rid_of.get(id)) {
                cids.push(*c);
                rids.push(*r);
            }
        }
        tx_execute(
            tx,
            "INSERT INTO mentions (cid, rid) SELECT * FROM UNNEST($1::bigint[], $2::bigint[])
             ON CONFLICT DO NOTHING",
            &[&cids, &rids],
        )
        .await
        .map_err(map_err)?;
    }

    // Links: co-occurrences summed, imported floors maxed, per canonical pair.
    let mut co: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
    let mut floor: BTreeMap<(i64, i64), (f64, i64, i64)> = BTreeMap::new();
    for batch in &batches {
        for l in &batch.links {
            let (ka, kb) = match l {
                LinkWrite::CoOccurred { a, b, .. } | LinkWrite::AtLeast { a, b, .. } => (a, b),
            };
            if ka == kb {
                continue;
            }
            let (Some(&x), Some(&y)) = (cid_of.get(ka), cid_of.get(kb)) else {
                continue;
            };
            let pair = (x.min(y), x.max(y));
            match l {
                LinkWrite::CoOccurred { count, .. } => {
                    let e = co.entry(pair).or_insert((0, batch.at.millis()));
                    e.0 += (*count).max(1) as i64;
                    e.1 = e.1.max(batch.at.millis());
                }
                LinkWrite::AtLeast {
                    strength,
                    count,
                    last_at,
                    ..
                } => {
                    let e = floor.entry(pair).or_insert((0.0, 0, 0));
                    e.0 = e.0.max(strength.clamp(0.0, rule.cap));
                    e.1 = e.1.max(*count as i64);
                    e.2 = e.2.max(last_at.millis());
                }
            }
        }
    }
    // One event for the write's link changes, merged per pair (or one per batch).
    if links_per_batch {
        for b in &batches {
            let links = continuum_core::store::merge_link_writes(&b.links);
            if !links.is_empty() {
                events.push(b.at.millis(), Event::LinksStrengthened { links });
            }
        }
    } else {
        let links = continuum_core::store::merge_link_writes(batches.iter().flat_map(|b| &b.links));
        if !links.is_empty() {
            events.push(last_at, Event::LinksStrengthened { links });
        }
    }
    if !floor.is_empty() {
        let (mut a, mut b, mut s, mut n, mut at) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((x, y), (st, c, l)) in &floor {
            a.push(*x);
            b.push(*y);
            s.push(*st);
            n.push(*c);
            at.push(*l);
        }
        let rows = tx_query(tx,
                "INSERT INTO links (a, b, tenant, strength, count, first_at, last_at)
                 SELECT a, b, $1, s, n, l, l FROM UNNEST($2::bigint[], $3::bigint[], $4::float8[], $5::bigint[], $6::bigint[])
                    AS t(a, b, s, n, l)
                 ON CONFLICT (a, b) DO UPDATE SET
                    strength = GREATEST(links.strength, excluded.strength),
                    count = GREATEST(links.count, excluded.count),
                    last_at = GREATEST(links.last_at, excluded.last_at)
                 RETURNING (xmax = 0)",
                &[&t, &a, &b, &s, &n, &at],
            )
            .await
            .map_err(map_err)?;
        for r in rows {
            if r.get::<_, bool>(0) {
                out.links_created += 1;
            } else {
                out.links_strengthened += 1;
            }
        }
    }
    if !co.is_empty() {
        let (mut a, mut b, mut n, mut at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((x, y), (c, l)) in &co {
            a.push(*x);
            b.push(*y);
            n.push(*c);
            at.push(*l);
        }
        let rows = tx_query(tx,
                "INSERT INTO links (a, b, tenant, strength, count, first_at, last_at)
                 SELECT a, b, $1, LEAST($6::float8, round(($7::float8 + $8::float8 * (n - 1)) * 1e9) / 1e9), n, l, l
                 FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS t(a, b, n, l)
                 ON CONFLICT (a, b) DO UPDATE SET
                    strength = LEAST($6::float8, round((links.strength + $8::float8 * excluded.count) * 1e9) / 1e9),
                    count = links.count + excluded.count,
                    last_at = GREATEST(links.last_at, excluded.last_at)
                 RETURNING (xmax = 0)",
                &[&t, &a, &b, &n, &at, &rule.cap, &rule.initial, &rule.increment],
            )
            .await
            .map_err(map_err)?;
        for r in rows {
            if r.get::<_, bool>(0) {
                out.links_created += 1;
            } else {
                out.links_strengthened += 1;
            }
        }
    }
    // Decisions and supersessions.
    let (mut did, mut dmem, mut dtext, mut dat) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for batch in &batches {
        for d in &batch.decisions {
            did.push(d.id.0);
            dmem.push(d.memory_id.0);
            dtext.push(d.text.clone());
            dat.push(d.created_at.millis());
        }
    }
    if !did.is_empty() {
        let rows = tx_query(tx,
                "INSERT INTO decisions (id, tenant, memory_id, text, created_at)
                 SELECT id, $1, m, x, c FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::bigint[]) AS t(id, m, x, c)
                 ON CONFLICT (id) DO NOTHING RETURNING id",
                &[&t, &did, &dmem, &dtext, &dat],
            )
            .await
            .map_err(map_err)?;
        let by_id: HashMap<Uuid, &continuum_core::memory::Decision> = batches
            .iter()
            .flat_map(|b| &b.decisions)
            .map(|d| (d.id.0, d))
            .collect();
        for r in rows {
            out.decisions += 1;
            let id = r.get::<_, Uuid>(0);
            if let Some(d) = by_id.get(&id) {
                events.push(
                    last_at,
                    Event::DecisionCreated {
                        id: d.id,
                        decision: Some((*d).clone()),
                    },
                );
            }
        }
    }
    for batch in &batches {
        for (old, new) in &batch.supersedes {
            // Every supersession is kept; the memory shows the largest (latest) replacement
            // and the earliest end, whatever order supersessions come in.
            let n = tx_execute(
                tx,
                "UPDATE memories SET
                    superseded_by = CASE WHEN superseded_by IS NULL OR superseded_by < $1
                                    THEN $1 ELSE superseded_by END,
                    valid_until = LEAST(valid_until, $2)
                 WHERE tenant = $3 AND id = $4",
                &[&new.0, &batch.at.millis(), &t, &old.0],
            )
            .await
            .map_err(map_err)?;
            if n == 0 {
                return Err(Error::NotFound(format!("no memory with id {old}")));
            }
            tx_execute(
                tx,
                "INSERT INTO supersessions (tenant, id, by_id, at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&t, &old.0, &new.0, &batch.at.millis()],
            )
            .await
            .map_err(map_err)?;
            events.push(
                batch.at.millis(),
                Event::MemorySuperseded {
                    id: *old,
                    by: Some(*new),
                },
            );
        }
    }
    out.change_seq = events.insert(tx, t).await?;
    Ok(out)
}
