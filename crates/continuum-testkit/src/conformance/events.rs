//! Conformance cases for the event log: order, completeness, payloads, tenants, scrubbing.

use super::turn;
use crate::{Factory, engine, tenant};
use continuum_core::event::{Event, EventRecord, EventScope};
use continuum_core::keys::Scope;
use continuum_core::store::ForgetSelector;
use continuum_core::{MemoryStore, SessionId, Source, TenantId};
use continuum_engine::RememberRequest;
use std::collections::BTreeSet;

async fn all_events(store: &dyn MemoryStore, scope: EventScope<'_>) -> Vec<EventRecord> {
    let mut out: Vec<EventRecord> = Vec::new();
    loop {
        let after = out.last().map_or(0, |r| r.seq);
        let page = store.events_since(scope, after, 7).await.unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

fn kinds(events: &[EventRecord]) -> Vec<&'static str> {
    events.iter().map(|r| r.event.kind()).collect()
}

/// Every write appends exactly its events, numbered without gaps, in order; a page boundary
/// loses nothing.
pub async fn event_log_numbers_every_write_in_order(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    let first = e
        .learn(
            &t,
            turn(
                "We deploy Kafka with Ansible.",
                "Let's keep the Ansible playbooks in the repo.",
            ),
        )
        .await
        .unwrap();
    let events = all_events(s.store.as_ref(), EventScope::Tenant(&t)).await;
    assert_eq!(events.len() as u64, first.change_seq, "one log, no gaps");
    for (i, r) in events.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1, "gap-free from 1");
        assert_eq!(r.tenant, t);
        assert_eq!(r.v, continuum_core::event::EVENT_VERSION);
    }
    let k = kinds(&events);
    assert_eq!(k.iter().filter(|k| **k == "memory.created").count(), 2);
    assert_eq!(k.iter().filter(|k| **k == "links.strengthened").count(), 1);
    assert_eq!(k.iter().filter(|k| **k == "decision.created").count(), 1);
    let created: BTreeSet<String> = events
        .iter()
        .filter_map(|r| match &r.event {
            Event::ConceptCreated { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect();
    assert!(
        created.contains("kafka") && created.contains("ansible"),
        "{created:?}"
    );
    // Nothing else: every event is one this write made.
    assert!(
        k.iter().all(|k| matches!(
            *k,
            "memory.created" | "concept.created" | "links.strengthened" | "decision.created"
        )),
        "{k:?}"
    );

    // A remember appends its memory (and concepts); a position past the end is empty.
    let m = e
        .remember(
            &t,
            RememberRequest::new("Ansible vault holds secrets", Source::Fact),
        )
        .await
        .unwrap();
    let later = e.events(&t, first.change_seq, 100).await.unwrap();
    assert_eq!(later[0].seq, first.change_seq + 1);
    assert!(matches!(&later[0].event, Event::MemoryCreated { id, .. } if *id == m.id));
    let head = later.last().unwrap().seq;
    assert!(e.events(&t, head, 100).await.unwrap().is_empty());
    assert!(e.events(&t, u64::MAX, 100).await.unwrap().is_empty());
    assert!(e.events(&t, 0, 0).await.is_err(), "a zero limit is refused");
}

/// What an event carries is enough to apply it elsewhere: the memory as stored, its concepts,
/// the decision, the supersession, the link pairs.
pub async fn events_carry_what_they_describe(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    let mut tr = turn(
        "Postgres holds the invoices.",
        "I'll add a read replica for Postgres.",
    );
    tr.session_id = Some(SessionId::new("s-1").unwrap());
    let mut meta = continuum_core::memory::Metadata::new();
    meta.insert("speaker".into(), "Alice".into());
    tr.metadata = Some(meta);
    let learned = e.learn(&t, tr).await.unwrap();
    let events = e.events(&t, 0, 1000).await.unwrap();
    let mut seen = 0;
    let mut all_keys = Vec::new();
    for r in &events {
        if let Event::MemoryCreated {
            id,
            memory: Some(m),
            concepts,
        } = &r.event
        {
            let stored = e.get(&t, *id).await.unwrap();
            assert_eq!(**m, stored, "the payload is the memory as stored");
            let mut keys: Vec<String> = concepts.iter().map(|c| c.key.clone()).collect();
            let mut mentioned: Vec<String> = e
                .store()
                .concepts_of(&t, &[*id])
                .await
                .unwrap()
                .into_iter()
                .map(|(_, c)| c.key)
                .collect();
            keys.sort();
            mentioned.sort();
            assert_eq!(keys, mentioned, "the payload names the memory's mentions");
            all_keys.extend(keys);
            seen += 1;
        }
    }
    assert_eq!(seen, learned.memory_ids.len());
    assert!(all_keys.contains(&"postgres".to_string()), "{all_keys:?}");
    let decision = events
        .iter()
        .find_map(|r| match &r.event {
            Event::DecisionCreated {
                decision: Some(d), ..
            } => Some(d.clone()),
            _ => None,
        })
        .expect("a decision.created with its decision");
    assert_eq!(e.decisions(&t, 10, 0).await.unwrap(), vec![decision]);

    let old = e
        .remember(
            &t,
            RememberRequest::new("Deploys are on Tuesday", Source::Fact),
        )
        .await
        .unwrap();
    let new = e
        .supersede(
            &t,
            old.id,
            RememberRequest::new("Deploys are on Thursday", Source::Fact),
        )
        .await
        .unwrap();
    let events = e.events(&t, 0, 1000).await.unwrap();
    assert!(events.iter().any(|r| r.event
        == Event::MemorySuperseded {
            id: old.id,
            by: Some(new.id)
        }));
    let pairs: Vec<(String, String)> = events
        .iter()
        .filter_map(|r| match &r.event {
            Event::LinksStrengthened { links } => Some(links.clone()),
            _ => None,
        })
        .flatten()
        .map(|l| match l {
            continuum_core::store::LinkWrite::CoOccurred { a, b, .. }
            | continuum_core::store::LinkWrite::AtLeast { a, b, .. } => (a, b),
        })
        .collect();
    let view = e.concept(&t, "postgres", 10).await.unwrap();
    for n in &view.neighbours {
        assert!(
            pairs
                .iter()
                .any(|(a, b)| (a == "postgres" && *b == n.key) || (b == "postgres" && *a == n.key)),
            "the link postgres–{} has its event: {pairs:?}",
            n.key
        );
    }
}

/// Each tenant's read sees its own events only; the store-wide read sees them all, in one
/// order.
pub async fn the_store_wide_read_sees_every_tenant_and_a_tenant_read_one(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let (a, b) = (tenant("a"), tenant("b"));
    for i in 0..3 {
        e.remember(
            &a,
            RememberRequest::new(format!("Alpha note {i}"), Source::Note),
        )
        .await
        .unwrap();
        e.remember(
            &b,
            RememberRequest::new(format!("Beta note {i}"), Source::Note),
        )
        .await
        .unwrap();
    }
    let all = all_events(s.store.as_ref(), EventScope::All).await;
    let of_a = all_events(s.store.as_ref(), EventScope::Tenant(&a)).await;
    let of_b = all_events(s.store.as_ref(), EventScope::Tenant(&b)).await;
    assert!(of_a.iter().all(|r| r.tenant == a) && !of_a.is_empty());
    assert!(of_b.iter().all(|r| r.tenant == b) && !of_b.is_empty());
    assert_eq!(all.len(), of_a.len() + of_b.len());
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>());
    let mut merged: Vec<EventRecord> = of_a.into_iter().chain(of_b).collect();
    merged.sort_by_key(|r| r.seq);
    assert_eq!(merged, all);
    assert_eq!(
        s.store.latest_event(&b).await.unwrap(),
        all.iter()
            .filter(|r| r.tenant == b)
            .map(|r| r.seq)
            .max()
            .unwrap()
    );
}

/// Writers running at once (several tenants, several connections where the store has them)
/// get positions in commit order: the log has no gap, and each write's events are one
/// contiguous run ending at the position the write reported.
pub async fn concurrent_writers_get_positions_in_commit_order(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let mut tasks = Vec::new();
    for w in 0..6 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let t = tenant(if w % 2 == 0 { "even" } else { "odd" });
            let mut done = Vec::new();
            for i in 0..8 {
                let out = e
                    .learn(
                        &t,
                        turn(
                            &format!("Writer {w} talks about Kafka topic {i}."),
                            &format!("Redis caches result {i} of writer {w}."),
                        ),
                    )
                    .await
                    .unwrap();
                let ids: Vec<_> = out.memory_ids.clone();
                done.push((out.change_seq, ids));
            }
            done
        }));
    }
    let mut writes = Vec::new();
    for t in tasks {
        writes.extend(t.await.unwrap());
    }
    let all = all_events(s.store.as_ref(), EventScope::All).await;
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>(), "no gap");
    let ends: BTreeSet<u64> = writes.iter().map(|(end, _)| *end).collect();
    assert_eq!(
        ends.len(),
        writes.len(),
        "every write ends at its own position"
    );
    for (end, ids) in &writes {
        // The write's run: from the position after the previous write's end to its own.
        let start = ends.range(..*end).next_back().map_or(1, |p| p + 1);
        let run = &all[(start - 1) as usize..*end as usize];
        let tenant = &run[0].tenant;
        assert!(
            run.iter().all(|r| &r.tenant == tenant),
            "one tenant per run"
        );
        let created: Vec<_> = run
            .iter()
            .filter_map(|r| match &r.event {
                Event::MemoryCreated { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(&created, ids, "the run holds exactly this write's memories");
    }
    assert_eq!(*ends.last().unwrap(), all.len() as u64);
}

/// Forgetting a memory scrubs its text from past events (the ids stay); erasing a tenant
/// scrubs everything of it and records the erase. Key events carry no secret.
pub async fn forgetting_scrubs_past_events_and_keys_are_recorded(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    let secret_text = "The vault passphrase is correct-horse-battery";
    let m = e
        .remember(&t, RememberRequest::new(secret_text, Source::Note))
        .await
        .unwrap();
    let kept = e
        .learn(&t, turn("Kafka is our queue.", "Let's keep Kafka then."))
        .await
        .unwrap();
    e.forget(&t, &ForgetSelector::Ids(vec![m.id]))
        .await
        .unwrap();
    let events = e.events(&t, 0, 1000).await.unwrap();
    let json = serde_json::to_string(&events).unwrap();
    assert!(
        !json.contains("correct-horse"),
        "the forgotten text is gone: {json}"
    );
    assert!(events.iter().any(|r| r.event
        == Event::MemoryCreated {
            id: m.id,
            memory: None,
            concepts: vec![]
        }));
    assert!(
        events
            .iter()
            .any(|r| r.event == Event::MemoryForgotten { id: m.id })
    );
    assert!(
        json.contains("Kafka is our queue."),
        "other memories keep theirs"
    );

    // Concept names come from the text too: a concept no memory mentions any more leaves the
    // log (its creation, and links naming it), while concepts still mentioned keep theirs.
    let only = e
        .remember(
            &t,
            RememberRequest::new("Gribblethorpe meets Wumpleton in Kafka land", Source::Note),
        )
        .await
        .unwrap();
    let before = serde_json::to_string(&e.events(&t, 0, 1000).await.unwrap()).unwrap();
    assert!(before.contains("wumpleton"), "{before}");
    e.forget(&t, &ForgetSelector::Ids(vec![only.id]))
        .await
        .unwrap();
    let after = serde_json::to_string(&e.events(&t, 0, 1000).await.unwrap()).unwrap();
    for gone in ["ribblethorpe", "umpleton", "Wumpleton"] {
        assert!(!after.contains(gone), "{gone} is still in the log: {after}");
    }
    assert!(
        after.to_lowercase().contains("\"kafka\""),
        "a concept still mentioned keeps its name"
    );

    let sess = SessionId::new("gone").unwrap();
    let mut tr = turn("Session words.", "More session words.");
    tr.session_id = Some(sess.clone());
    e.learn(&t, tr).await.unwrap();
    e.forget(&t, &ForgetSelector::Session(sess.clone()))
        .await
        .unwrap();
    let last = e.events(&t, 0, 1000).await.unwrap();
    assert!(last.iter().any(|r| r.event
        == Event::SessionForgotten {
            session: sess.clone(),
            memories: 2
        }));

    let (key_secret, key) = e
        .create_key(&t, Scope::Read, None, Some("ci".into()))
        .await
        .unwrap();
    e.revoke_key(&key.prefix).await.unwrap();
    e.revoke_key(&key.prefix).await.unwrap();
    let events = e.events(&t, 0, 1000).await.unwrap();
    let key_events: Vec<&Event> = events
        .iter()
        .map(|r| &r.event)
        .filter(|e| matches!(e, Event::KeyCreated { .. } | Event::KeyRevoked { .. }))
        .collect();
    assert_eq!(
        key_events,
        vec![
            &Event::KeyCreated {
                prefix: key.prefix.clone(),
                scope: Scope::Read,
                name: Some("ci".into()),
                expires_at: None
            },
            &Event::KeyRevoked {
                prefix: key.prefix.clone()
            }
        ],
        "a second revoke is no change"
    );
    let json = serde_json::to_string(&events).unwrap();
    assert!(!json.contains(&key_secret) && !json.contains(&key.hash));

    let fresh = tenant("fresh");
    e.create_tenant(&fresh, None).await.unwrap();
    let k = kinds(&e.events(&fresh, 0, 10).await.unwrap());
    assert_eq!(k, ["tenant.created", "key.created"]);

    let erased = e.erase_tenant(&t).await.unwrap();
    let events = e.events(&t, 0, 1000).await.unwrap();
    let json = serde_json::to_string(&events).unwrap();
    assert!(
        !json.contains("Kafka"),
        "no text of an erased tenant: {json}"
    );
    assert_eq!(
        events.last().unwrap().event,
        Event::TenantErased {
            memories: erased.memories,
            keys_revoked: erased.keys_revoked
        }
    );
    assert!(kept.change_seq > 0);
    let other: TenantId = tenant("fresh");
    assert_eq!(e.events(&other, 0, 10).await.unwrap().len(), 2, "untouched");
}

/// An export is one consistent snapshot: a write committed while it runs is not in it, its
/// header names the event position it reflects, and it carries vectors, so that an import
/// needs no re-embedding.
pub async fn export_is_a_snapshot_at_a_position_with_vectors(make: &Factory) {
    use continuum_engine::ExportRecord;
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = e
            .remember(
                &t,
                RememberRequest::new(format!("Snapshot note {i}"), Source::Note),
            )
            .await
            .unwrap();
        ids.push(m.id);
    }
    let vectors: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, vec![i as f32 / 8.0, 0.5, -0.25]))
        .collect();
    s.store
        .put_vectors(&t, "tiny-model", 3, &vectors)
        .await
        .unwrap();
    let head = s.store.latest_event(&t).await.unwrap();

    let mut dump: Vec<ExportRecord> = Vec::new();
    let mut wrote_during = false;
    let writer = e.clone();
    let tt = t.clone();
    let mut sink = |r: &ExportRecord| -> continuum_core::Result<()> {
        if matches!(r, ExportRecord::Memory { .. }) && !wrote_during {
            wrote_during = true;
            // Another writer commits while the export is under way.
            let (w, t2) = (writer.clone(), tt.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(
                    w.remember(&t2, RememberRequest::new("Written meanwhile", Source::Note)),
                )
                .unwrap();
            })
            .join()
            .unwrap();
        }
        dump.push(r.clone());
        Ok(())
    };
    let n = e.export(&t, &mut sink, &mut |_| {}).await.unwrap();
    assert!(wrote_during);
    assert_eq!(n, 5, "the memory written meanwhile is not in the snapshot");
    let ExportRecord::Header(h) = &dump[0] else {
        panic!("{:?}", dump[0])
    };
    assert_eq!(
        h.position,
        Some(head),
        "the header names the position it reflects"
    );
    assert!(s.store.latest_event(&t).await.unwrap() > head);
    let dumped: Vec<_> = dump
        .iter()
        .filter_map(|r| match r {
            ExportRecord::Vector {
                id,
                model,
                dim,
                vector,
            } => {
                assert_eq!((model.as_str(), *dim), ("tiny-model", 3));
                Some((*id, vector.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(dumped.len(), 5);
    for (id, v) in &vectors {
        assert!(dumped.contains(&(*id, v.clone())), "{id}");
    }

    // Imported into another store, the vectors come along.
    let s2 = make().await;
    let (e2, _) = engine(s2.store.clone());
    let copy = tenant("copy");
    let records: Vec<ExportRecord> = dump.into_iter().skip(1).collect();
    let out = e2.import(&copy, records).await.unwrap();
    assert_eq!((out.memories_added, out.vectors), (5, 5));
    let counts = s2.store.vector_counts(&copy).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (counts[0].model.as_str(), counts[0].count),
        ("tiny-model", 5)
    );
    // A vector that does not fit its dimension is refused with the rest of its chunk.
    let bad = ExportRecord::Vector {
        id: vectors[0].0,
        model: "tiny-model".into(),
        dim: 4,
        vector: vec![0.0; 3],
    };
    assert!(matches!(
        e2.import(&copy, vec![bad]).await,
        Err(continuum_core::Error::InvalidInput(_))
    ));
}

/// Compaction deletes what every cursor has passed and the retention allows, never more; a
/// reader from before the compaction point is told to start again, never silently skips; the
/// derived index rebuilds past it.
pub async fn compaction_respects_cursors_and_retention(make: &Factory) {
    use continuum_core::Error;
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let t = tenant("t1");
    let note =
        |i: usize| RememberRequest::new(format!("Compaction note {i} about Kafka"), Source::Note);
    e.remember(&t, note(0)).await.unwrap();
    // The index is built here, at an early position.
    let r = e
        .recall(&t, &continuum_engine::RecallRequest::new("Kafka"))
        .await
        .unwrap();
    assert_eq!(r.memories.len(), 1);
    for i in 1..4 {
        e.remember(&t, note(i)).await.unwrap();
    }
    let held = s.store.event_head().await.unwrap();
    e.set_event_cursor("backup", held).await.unwrap();
    clock.advance_millis(2 * 3_600_000);
    for i in 4..6 {
        e.remember(&t, note(i)).await.unwrap();
    }
    let head = s.store.event_head().await.unwrap();

    // An hour's retention keeps the two young writes; the cursor would allow no more anyway.
    let c = e.compact_events(3_600_000).await.unwrap();
    assert_eq!(c.compacted_through, held);
    assert!(c.removed > 0 && c.removed <= held);
    // A cursor holds what it has not passed (every event is old enough now).
    clock.advance_millis(1);
    e.set_event_cursor("backup", held).await.unwrap();
    let c = e.compact_events(0).await.unwrap();
    assert_eq!((c.compacted_through, c.removed), (held, 0));
    assert_eq!(c.held_by.as_deref(), Some("backup"));

    let gone = e.events(&t, 0, 100).await.unwrap_err();
    assert!(matches!(gone, Error::Gone(_)), "{gone:?}");
    assert!(gone.to_string().contains("snapshot"), "{gone}");
    let rest = e.events(&t, held, 100).await.unwrap();
    assert_eq!(rest.last().unwrap().seq, head);
    assert!(s.store.latest_event(&t).await.unwrap() >= held);

    // Bad cursors are refused.
    assert!(matches!(
        e.set_event_cursor("Bad Name", held).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        e.set_event_cursor("late", head + 1).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        e.set_event_cursor("early", 0).await,
        Err(Error::Gone(_))
    ));
    assert!(matches!(
        e.delete_event_cursor("nobody").await,
        Err(Error::NotFound(_))
    ));

    // Without the cursor, everything old enough goes; the index built before the compaction
    // point rebuilds and finds the newest memory.
    e.delete_event_cursor("backup").await.unwrap();
    assert!(e.event_cursors().await.unwrap().is_empty());
    let c = e.compact_events(0).await.unwrap();
    assert_eq!((c.compacted_through, c.held_by), (head, None));
    assert!(e.events(&t, head, 10).await.unwrap().is_empty());
    let r = e
        .recall(&t, &continuum_engine::RecallRequest::new("Kafka note 5"))
        .await
        .unwrap();
    assert_eq!(r.memories.len(), 6, "every memory, the newest included");
    // The log goes on after the compaction point.
    let m = e.remember(&t, note(6)).await.unwrap();
    let next = e.events(&t, head, 10).await.unwrap();
    assert!(next[0].seq > head);
    assert!(matches!(&next[0].event, Event::MemoryCreated { id, .. } if *id == m.id));
}

/// Imported history keeps its conversation's time in the log (timelines place it there) but
/// is kept by the log's retention as long as anything written at the same moment: a year-old
/// conversation imported now is not compacted away at once.
pub async fn imported_history_is_kept_as_long_as_todays_writes(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let t = tenant("t1");
    let now = continuum_core::Clock::now(clock.as_ref()).millis();
    let year_ago = continuum_core::Timestamp(now - 365 * 86_400_000);
    let mut old = turn(
        "We chose Cassandra for the event store.",
        "Let's size Cassandra for three regions.",
    );
    old.timestamp = Some(year_ago);
    e.learn(&t, old).await.unwrap();
    let head = s.store.event_head().await.unwrap();
    let events = all_events(s.store.as_ref(), EventScope::Tenant(&t)).await;
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|r| r.at == year_ago),
        "the events carry the conversation's time"
    );
    // A day's retention keeps them: they were written now.
    let c = e.compact_events(86_400_000).await.unwrap();
    assert_eq!((c.compacted_through, c.removed), (0, 0), "{c:?}");
    assert_eq!(e.events(&t, 0, 100).await.unwrap().len(), events.len());
    // A day later they are old enough to go.
    clock.advance_millis(86_400_000 + 1);
    let c = e.compact_events(86_400_000).await.unwrap();
    assert_eq!(c.compacted_through, head, "{c:?}");
}
