//! The store conformance suite. Each case takes a [`Factory`] and drives the store through the
//! engine the way users do, asserting what any backend must guarantee.
//!
//! Grouped by the store port's capabilities: memories and the graph here, the event log in
//! `events`, vectors in `vectors`, keys and tenants in `keys`, usage, tiers and billing in
//! `accounts`.

mod accounts;
mod audit;
mod events;
mod keys;
mod records;
mod sync;
mod vectors;

pub use accounts::*;
pub use audit::*;
pub use events::*;
pub use keys::*;
pub use records::*;
pub use sync::*;
pub use vectors::*;

use crate::{Factory, T0, engine, tenant};
use continuum_core::memory::Turn;
use continuum_core::store::{
    ForgetSelector, LinkWrite, MemoryFilter, MemoryWrite, Order, PageRequest, WriteBatch,
};
use continuum_core::{Error, MemoryId, SessionId, Source, TenantId, Timestamp};
use continuum_engine::{
    Dream, DreamRequest, Engine, EngineConfig, ExportRecord, GraphScope, RecallRequest,
    RememberRequest, SearchRequest,
};

fn turn(user: &str, assistant: &str) -> Turn {
    Turn {
        user_message: user.into(),
        ai_response: assistant.into(),
        thinking: None,
        session_id: None,
        metadata: None,
        timestamp: None,
    }
}

fn in_session(mut t: Turn, s: &str) -> Turn {
    t.session_id = Some(SessionId::new(s).unwrap());
    t
}

async fn link_strength(e: &Engine, t: &TenantId, a: &str, b: &str) -> Option<f64> {
    let view = e.concept(t, a, 100).await.ok()?;
    view.neighbours
        .iter()
        .find(|n| n.key == b)
        .map(|n| n.strength)
}

pub async fn learn_stores_each_side_and_links_its_concepts(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    let mut turn = turn(
        "Should we use Rust with SQLite?",
        "Yes: Rust and SQLite work well together.",
    );
    turn.thinking = Some("The user cares about Tokio too.".into());
    let out = e.learn(&t, turn).await.unwrap();
    assert_eq!(
        out.memory_ids.len(),
        3,
        "user, assistant and thinking memories"
    );
    let stats = e.stats(&t).await.unwrap();
    assert_eq!(stats.store.memories, 3);
    assert!(
        out.concepts.contains(&"rust".to_string()),
        "{:?}",
        out.concepts
    );
    assert!(
        out.concepts.contains(&"tokio".to_string()),
        "{:?}",
        out.concepts
    );
    let rust = e.concept(&t, "Rust", 10).await.unwrap();
    assert_eq!(rust.concept.name, "Rust");
    assert_eq!(
        rust.concept.mentions, 2,
        "mentioned by the user and the assistant"
    );
    assert_eq!(link_strength(&e, &t, "rust", "sqlite").await, Some(0.1));
    assert_eq!(link_strength(&e, &t, "sqlite", "tokio").await, Some(0.1));
    let sources: Vec<Source> = {
        let mut v: Vec<_> = e
            .store()
            .get(&t, &out.memory_ids)
            .await
            .unwrap()
            .iter()
            .map(|m| m.source)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        sources,
        vec![Source::User, Source::Assistant, Source::Thinking]
    );
}

pub async fn hebbian_links_grow_by_increment_and_cap(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    for i in 0..3 {
        e.learn(&t, turn(&format!("Rust and Python, take {i}"), "Noted."))
            .await
            .unwrap();
    }
    let s3 = link_strength(&e, &t, "rust", "python").await.unwrap();
    assert!(
        (s3 - 0.3).abs() < 1e-9,
        "three co-occurrences give 0.3, got {s3}"
    );
    for i in 0..12 {
        e.learn(&t, turn(&format!("Rust and Python again {i}"), "Noted."))
            .await
            .unwrap();
    }
    assert_eq!(link_strength(&e, &t, "rust", "python").await, Some(1.0));
}

pub async fn batched_learn_equals_turn_by_turn(make: &Factory) {
    let turns: Vec<Turn> = (0..6)
        .map(|i| {
            turn(
                &format!("Kafka feeds Flink job {i}"),
                "Flink writes to Kafka and Postgres.",
            )
        })
        .collect();
    let one = make().await;
    let (e1, _) = engine(one.store.clone());
    let t = tenant("t1");
    for tt in turns.clone() {
        e1.learn(&t, tt).await.unwrap();
    }
    let many = make().await;
    let (e2, _) = engine(many.store.clone());
    e2.learn_many(&t, turns).await.unwrap();
    for (a, b) in [
        ("kafka", "flink"),
        ("flink", "postgres"),
        ("kafka", "postgres"),
    ] {
        let x = link_strength(&e1, &t, a, b).await.unwrap();
        let y = link_strength(&e2, &t, a, b).await.unwrap();
        assert!((x - y).abs() < 1e-9, "{a}-{b}: {x} vs {y}");
    }
    let (s1, s2) = (e1.stats(&t).await.unwrap(), e2.stats(&t).await.unwrap());
    assert_eq!(
        (s1.store.memories, s1.store.concepts, s1.store.links),
        (s2.store.memories, s2.store.concepts, s2.store.links)
    );
}

pub async fn a_failed_write_changes_nothing(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    e.learn(&t, turn("Kept: Redis caches sessions.", "Good."))
        .await
        .unwrap();
    let before = e.stats(&t).await.unwrap().store;
    // A batch whose second memory reuses the first one's id must fail as a whole.
    let m = e
        .remember(
            &t,
            RememberRequest::new("Vault stores secrets", Source::Fact),
        )
        .await
        .unwrap();
    let fresh = continuum_core::Memory {
        id: MemoryId::new_at(T0.millis()),
        content: "Consul does discovery".into(),
        ..m.clone()
    };
    let dup = continuum_core::Memory {
        content: "Nomad schedules jobs".into(),
        ..m.clone()
    };
    let batch = WriteBatch {
        memories: vec![
            MemoryWrite::new(fresh, vec![]),
            MemoryWrite::new(dup, vec![]),
        ],
        links: vec![LinkWrite::CoOccurred {
            a: "consul".into(),
            b: "nomad".into(),
            count: 1,
        }],
        decisions: vec![],
        supersedes: vec![],
        at: T0,
        written_at: None,
    };
    let err = s
        .store
        .apply(&t, &Default::default(), vec![batch])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let after = e.stats(&t).await.unwrap().store;
    assert_eq!(
        after.memories,
        before.memories + 1,
        "only the remembered fact was added"
    );
    assert_eq!(after.links, before.links);
    let hits = e
        .search(
            &t,
            &SearchRequest {
                query: "Consul discovery".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(hits.is_empty(), "the rolled-back memory is not searchable");
    // Bad input is refused before anything is written.
    let err = e.learn(&t, turn("   ", "reply")).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(ref m) if m.contains("user message is empty")),
        "{err:?}"
    );
    assert_eq!(e.stats(&t).await.unwrap().store.memories, after.memories);
}

/// The store hands the index each memory's `metadata.speaker`: a question naming a speaker
/// prefers that speaker's turns (`speaker_boost`), though the name is nowhere in their text.
pub async fn recall_prefers_turns_by_a_speaker_the_query_names(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    let mut ids = Vec::new();
    for (speaker, text) in [
        (
            serde_json::json!("Anna"),
            "The release waits for the audit.",
        ),
        (
            serde_json::json!("Ben Okafor"),
            "After a long meeting we agreed that the release waits for the audit.",
        ),
        // Not a string: no speaker.
        (
            serde_json::json!(7),
            "Everyone at the table said the release waits for the audit.",
        ),
    ] {
        let mut req = RememberRequest::new(text, Source::User);
        req.metadata.insert("speaker".into(), speaker);
        ids.push(e.remember(&t, req).await.unwrap().id);
    }
    async fn top(e: &Engine, t: &TenantId, q: &str) -> Vec<MemoryId> {
        let r = e.recall(t, &RecallRequest::new(q)).await.unwrap();
        r.memories.iter().map(|m| m.id).collect()
    }
    let q = "what did okafor say about the release audit";
    // Without the boost the shortest text wins; with it, Ben's (longer) turn.
    let plain = e
        .clone()
        .with_config(EngineConfig {
            speaker_boost: 0.0,
            ..EngineConfig::default()
        })
        .unwrap();
    assert_eq!(top(&plain, &t, q).await[0], ids[0]);
    assert_eq!(top(&e, &t, q).await[0], ids[1]);
    let anna = "what did anna say about the release audit";
    assert_eq!(top(&e, &t, anna).await[0], ids[0]);
}

/// A question about when something happened prefers, among equally matching memories, the
/// one that places it in time (`temporal_boost`), and says so in its signals; other questions
/// are ranked as before.
pub async fn recall_places_events_in_time_for_a_when_question(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    let plain_id = e
        .remember(
            &t,
            RememberRequest::new("Ines adopted a greyhound.", Source::User),
        )
        .await
        .unwrap()
        .id;
    let dated_id = e
        .remember(
            &t,
            RememberRequest::new(
                "Ines adopted a greyhound from the shelter down the road yesterday.",
                Source::User,
            ),
        )
        .await
        .unwrap()
        .id;
    let when = "When did Ines adopt the greyhound?";
    let r = e.recall(&t, &RecallRequest::new(when)).await.unwrap();
    assert_eq!(r.memories[0].id, dated_id, "{:?}", r.memories);
    assert_eq!(r.memories[0].signals.time_factor, 1.5);
    assert_eq!(r.memories[1].signals.time_factor, 1.0);
    // Off, or for a question that is not about time: the shorter text wins on BM25.
    let off = e
        .clone()
        .with_config(EngineConfig {
            temporal_boost: 0.0,
            ..EngineConfig::default()
        })
        .unwrap();
    let r = off.recall(&t, &RecallRequest::new(when)).await.unwrap();
    assert_eq!(r.memories[0].id, plain_id);
    let what = "What did Ines adopt, a greyhound?";
    let r = e.recall(&t, &RecallRequest::new(what)).await.unwrap();
    assert_eq!(r.memories[0].id, plain_id);
    assert!(r.memories.iter().all(|m| m.signals.time_factor == 1.0));
}

/// A question naming a month and year prefers what was remembered in it (or in the two weeks
/// after), and says so in its signals (`period_boost`).
pub async fn recall_prefers_the_period_a_question_names(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    let at = |day: &str| Some(Timestamp::parse(day).unwrap());
    let mut req = RememberRequest::new("Ines went camping by the lake.", Source::User);
    req.created_at = at("2024-03-10");
    let march = e.remember(&t, req).await.unwrap().id;
    let mut req = RememberRequest::new(
        "Ines went camping by the lake with her sister and two dogs.",
        Source::User,
    );
    req.created_at = at("2023-07-04");
    let june = e.remember(&t, req).await.unwrap().id;
    let q = "Where did Ines go camping in June 2023?";
    let r = e.recall(&t, &RecallRequest::new(q)).await.unwrap();
    assert_eq!(r.memories[0].id, june, "{:?}", r.memories);
    assert_eq!(r.memories[0].signals.period_factor, 2.0);
    assert_eq!(r.memories[1].signals.period_factor, 1.0);
    let off = e
        .clone()
        .with_config(EngineConfig {
            period_boost: 0.0,
            ..EngineConfig::default()
        })
        .unwrap();
    let r = off.recall(&t, &RecallRequest::new(q)).await.unwrap();
    assert_eq!(r.memories[0].id, march, "the shorter text wins on BM25");
    let r = e
        .recall(&t, &RecallRequest::new("Where did Ines go camping?"))
        .await
        .unwrap();
    assert_eq!(r.memories[0].id, march);
}

pub async fn recall_ranks_the_matching_memory_first(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    e.learn(
        &t,
        turn(
            "My dog Biscuit loves the beach.",
            "Beaches are great for dogs.",
        ),
    )
    .await
    .unwrap();
    e.learn(
        &t,
        turn(
            "I am learning to play the violin.",
            "Practice scales daily.",
        ),
    )
    .await
    .unwrap();
    e.learn(
        &t,
        turn(
            "We deploy on Kubernetes in Frankfurt.",
            "Frankfurt is a good region.",
        ),
    )
    .await
    .unwrap();
    let r = e
        .recall(
            &t,
            &RecallRequest::new("what instrument am I learning? violin"),
        )
        .await
        .unwrap();
    assert!(!r.memories.is_empty());
    assert!(
        r.memories[0].content.contains("violin"),
        "{:?}",
        r.memories[0].content
    );
    assert!(r.memories[0].signals.lexical > 0.99);
    assert!(r.context.starts_with("[MEMORY CONTEXT]"), "{}", r.context);
    assert!(r.context.contains("violin"));
    assert!(r.context_tokens <= r.budget_tokens);
    // Scores are sorted best first.
    for w in r.memories.windows(2) {
        assert!(w[0].score >= w[1].score);
    }
}

pub async fn recall_follows_concept_links(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    // Rust and Tokio co-occur; a later memory mentions only Tokio.
    e.learn(
        &t,
        turn(
            "Our server is Rust on Tokio.",
            "Rust with Tokio is a solid choice.",
        ),
    )
    .await
    .unwrap();
    e.remember(
        &t,
        RememberRequest::new("Upgrade Tokio before the March release.", Source::Note),
    )
    .await
    .unwrap();
    let r = e
        .recall(&t, &RecallRequest::new("anything about Rust?"))
        .await
        .unwrap();
    let upgrade = r
        .memories
        .iter()
        .find(|m| m.content.contains("Upgrade Tokio"))
        .unwrap_or_else(|| panic!("the linked memory is recalled through the graph: {r:#?}"));
    assert_eq!(
        upgrade.signals.lexical, 0.0,
        "it shares no word with the query"
    );
    assert!(upgrade.signals.graph > 0.0);
    let tokio = r
        .concepts
        .iter()
        .find(|c| c.key == "tokio")
        .expect("tokio activated");
    assert_eq!(tokio.depth, 1);
    // One co-occurrence (0.1) times the per-step decay (0.6).
    assert!(
        (tokio.activation - 0.06).abs() < 1e-9,
        "{}",
        tokio.activation
    );
    assert!(
        r.links
            .iter()
            .any(|l| (l.a.as_str(), l.b.as_str()) == ("rust", "tokio"))
    );
}

pub async fn recall_filters_by_source(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    let mut tt = turn("How do I speed up the parser?", "Profile the parser first.");
    tt.thinking = Some("Last time the parser was slow because of regex backtracking.".into());
    e.learn(&t, tt).await.unwrap();
    let mut req = RecallRequest::new("parser slow");
    req.filter.sources = vec![Source::Thinking];
    let r = e.recall(&t, &req).await.unwrap();
    assert_eq!(r.memories.len(), 1);
    assert_eq!(r.memories[0].source, Source::Thinking);
}

pub async fn recall_collapses_duplicates(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    for _ in 0..3 {
        e.remember(
            &t,
            RememberRequest::new("The office wifi password rotates monthly.", Source::Fact),
        )
        .await
        .unwrap();
    }
    e.remember(
        &t,
        RememberRequest::new("The guest wifi is open on weekends.", Source::Fact),
    )
    .await
    .unwrap();
    let r = e
        .recall(&t, &RecallRequest::new("wifi password"))
        .await
        .unwrap();
    let same: Vec<_> = r
        .memories
        .iter()
        .filter(|m| m.content.contains("rotates monthly"))
        .collect();
    assert_eq!(same.len(), 1, "three copies collapse to one");
    assert_eq!(same[0].duplicates, 2);
    assert!(r.memories.iter().any(|m| m.content.contains("guest wifi")));
}

pub async fn supersede_keeps_history_and_demotes_the_old(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let t = tenant("t1");
    let old = e
        .remember(
            &t,
            RememberRequest::new("Alice lives in Berlin.", Source::Fact),
        )
        .await
        .unwrap();
    clock.advance_millis(1000);
    let new = e
        .supersede(
            &t,
            old.id,
            RememberRequest::new("Alice lives in Lisbon now, not Berlin.", Source::Fact),
        )
        .await
        .unwrap();
    let old_now = e.get(&t, old.id).await.unwrap();
    assert_eq!(old_now.superseded_by, Some(new.id));
    assert!(old_now.valid_until.is_some());
    let r = e
        .recall(&t, &RecallRequest::new("Where does Alice live? Berlin?"))
        .await
        .unwrap();
    assert_eq!(r.memories[0].id, new.id, "the current fact ranks first");
    let old_hit = r
        .memories
        .iter()
        .find(|m| m.id == old.id)
        .expect("history is kept");
    assert!(old_hit.superseded);
    // The chain reads the same from any of its versions, oldest first.
    clock.advance_millis(1000);
    let third = e
        .supersede(
            &t,
            new.id,
            RememberRequest::new("Alice moved on to Porto.", Source::Fact),
        )
        .await
        .unwrap();
    assert_eq!(s.store.replaced(&t, third.id).await.unwrap(), vec![new.id]);
    assert!(s.store.replaced(&t, old.id).await.unwrap().is_empty());
    for from in [old.id, new.id, third.id] {
        let chain: Vec<MemoryId> = e
            .versions(&t, from)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(chain, vec![old.id, new.id, third.id], "from {from}");
    }
    // Another tenant sees none of it.
    assert!(matches!(
        e.versions(&tenant("t2"), new.id).await.unwrap_err(),
        Error::NotFound(_)
    ));
    assert!(
        s.store
            .replaced(&tenant("t2"), third.id)
            .await
            .unwrap()
            .is_empty()
    );
    // Forgetting the middle version leaves the ends, each a chain of its own.
    e.forget(&t, &ForgetSelector::Ids(vec![new.id]))
        .await
        .unwrap();
    let chain: Vec<MemoryId> = e
        .versions(&t, third.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(chain, vec![third.id]);
    let err = e
        .supersede(
            &t,
            MemoryId::new_at(0),
            RememberRequest::new("x y", Source::Fact),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
}

pub async fn list_pages_newest_first_without_gaps(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let t = tenant("t1");
    for i in 0..25 {
        e.remember(
            &t,
            RememberRequest::new(format!("note number {i}"), Source::Note),
        )
        .await
        .unwrap();
        clock.advance_millis(10);
    }
    let mut seen = Vec::new();
    let mut page = PageRequest {
        limit: 10,
        cursor: None,
        order: Order::NewestFirst,
    };
    let mut sizes = Vec::new();
    loop {
        let p = e.list(&t, &MemoryFilter::default(), &page).await.unwrap();
        sizes.push(p.items.len());
        seen.extend(p.items.into_iter().map(|m| m.content));
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(sizes, vec![10, 10, 5]);
    let want: Vec<String> = (0..25).rev().map(|i| format!("note number {i}")).collect();
    assert_eq!(seen, want);
    let err = e
        .list(
            &t,
            &MemoryFilter::default(),
            &PageRequest {
                limit: 0,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
    let err = e
        .list(
            &t,
            &MemoryFilter::default(),
            &PageRequest {
                limit: 5,
                cursor: Some("garbage".into()),
                order: Order::NewestFirst,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
}

pub async fn forget_removes_memories_everywhere(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    let out = e
        .learn(
            &t,
            in_session(
                turn(
                    "My passport number is in the Zurich drawer.",
                    "Noted, the Zurich drawer.",
                ),
                "s1",
            ),
        )
        .await
        .unwrap();
    e.learn(
        &t,
        in_session(turn("Lunch was ramen.", "Sounds tasty."), "s2"),
    )
    .await
    .unwrap();
    let n = e
        .forget(
            &t,
            &ForgetSelector::Ids(vec![out.memory_ids[0], out.memory_ids[1]]),
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert!(matches!(
        e.get(&t, out.memory_ids[0]).await,
        Err(Error::NotFound(_))
    ));
    let hits = e
        .search(
            &t,
            &SearchRequest {
                query: "passport Zurich".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(hits.is_empty(), "gone from the full-text index");
    let r = e
        .recall(&t, &RecallRequest::new("Zurich passport drawer"))
        .await
        .unwrap();
    assert!(r.memories.iter().all(|m| !m.content.contains("Zurich")));
    assert!(
        matches!(e.concept(&t, "Zurich", 10).await, Err(Error::NotFound(_))),
        "a concept nobody mentions any more is gone"
    );
    assert_eq!(
        e.forget(&t, &ForgetSelector::Session(SessionId::new("s2").unwrap()))
            .await
            .unwrap(),
        2
    );
    let st = e.stats(&t).await.unwrap().store;
    assert_eq!(
        (st.memories, st.sessions, st.concepts, st.links),
        (0, 0, 0, 0)
    );
}

pub async fn forget_unknown_is_not_found(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    e.remember(&t, RememberRequest::new("keep me", Source::Note))
        .await
        .unwrap();
    let err = e
        .forget(&t, &ForgetSelector::Ids(vec![MemoryId::new_at(1)]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
    assert!(matches!(
        e.forget(
            &t,
            &ForgetSelector::Session(SessionId::new("nope").unwrap())
        )
        .await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(e.stats(&t).await.unwrap().store.memories, 1);
}

pub async fn reflection_reads_one_tenant_and_repeats_by_seed(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let (a, b) = (tenant("alice"), tenant("bob"));
    // Two groups for alice, joined through Grafana by one turn; bob shares a name.
    for _ in 0..3 {
        e.learn(
            &a,
            turn(
                "Our Kafka cluster feeds Flink and ClickHouse every minute.",
                "So Kafka, Flink and ClickHouse move together.",
            ),
        )
        .await
        .unwrap();
        e.learn(
            &a,
            turn(
                "The Terraform plan updates Postgres and Redis nightly.",
                "So Terraform, Postgres and Redis change together.",
            ),
        )
        .await
        .unwrap();
    }
    e.learn(
        &a,
        turn(
            "Dashboards in Grafana read ClickHouse and Postgres.",
            "Noted.",
        ),
    )
    .await
    .unwrap();
    e.learn(
        &b,
        turn("Bob keeps Kafka next to Cardamom and Saffron.", "Noted."),
    )
    .await
    .unwrap();
    let scope = GraphScope::default();
    let r = e.insights(&a, &scope, 10).await.unwrap();
    let json = serde_json::to_string(&r).unwrap();
    assert!(
        !json.contains("cardamom") && !json.contains("saffron"),
        "{json}"
    );
    assert!(r.clusters.len() >= 2, "{json}");
    let group = |k: &str| {
        r.clusters
            .iter()
            .find(|c| c.concepts.iter().any(|x| x.key == k))
            .map(|c| c.id)
    };
    assert_eq!(group("kafka"), group("flink"), "{json}");
    assert_eq!(group("terraform"), group("redis"), "{json}");
    assert_ne!(group("kafka"), group("terraform"), "{json}");
    assert!(
        r.bridges.iter().any(|x| x.concept.key == "grafana"
            || x.concept.key == "clickhouse"
            || x.concept.key == "postgres"),
        "{json}"
    );
    // The Grafana turn joins the groups: across it, unlinked pairs are hypotheses.
    assert!(
        r.hypotheses
            .iter()
            .any(|h| group(&h.a.key) != group(&h.b.key)),
        "{json}"
    );
    assert!(
        r.hypotheses
            .iter()
            .all(|h| h.a.key != h.b.key && !h.via.is_empty()),
        "{json}"
    );
    let req = DreamRequest {
        from: Some("Kafka".into()),
        seed: Some(11),
        steps: Some(12),
        temperature: Some(2.0),
        scope,
    };
    let one = e.dream(&a, &req).await.unwrap();
    let two = e.dream(&a, &req).await.unwrap();
    let keys = |d: &Dream| {
        d.steps
            .iter()
            .map(|s| s.concept.key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&one), keys(&two), "the seed fixes the walk");
    assert_eq!(one.steps[0].concept.key, "kafka");
    assert_eq!(one.steps.len(), 13);
    let json = serde_json::to_string(&one).unwrap();
    assert!(!json.contains("ardamom") && !json.contains("Bob"), "{json}");
    for st in one.steps.iter().skip(1).filter(|s| s.by == "link") {
        assert!(
            !st.memories.is_empty(),
            "a link step names the memories behind it: {json}"
        );
    }
    // Bob's concepts are not alice's to start from; bad settings are refused.
    assert!(matches!(
        e.dream(
            &a,
            &DreamRequest {
                from: Some("Cardamom".into()),
                ..Default::default()
            }
        )
        .await,
        Err(Error::NotFound(_))
    ));
    for bad in [
        DreamRequest {
            temperature: Some(0.0),
            ..Default::default()
        },
        DreamRequest {
            steps: Some(0),
            ..Default::default()
        },
        DreamRequest {
            scope: GraphScope {
                concepts: 0,
                links_per_concept: 5,
            },
            ..Default::default()
        },
    ] {
        assert!(matches!(
            e.dream(&a, &bad).await,
            Err(Error::InvalidInput(_))
        ));
    }
    assert!(matches!(
        e.insights(&a, &GraphScope::default(), 0).await,
        Err(Error::InvalidInput(_))
    ));
}

pub async fn the_audit_log_reads_oldest_or_newest_first_per_tenant(make: &Factory) {
    use continuum_core::keys::{Caller, Scope};
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let (a, b) = (tenant("alice"), tenant("bob"));
    for i in 0..3 {
        e.create_key(&a, Scope::Read, None, Some(format!("a{i}")))
            .await
            .unwrap();
        e.create_key(&b, Scope::Read, None, Some(format!("b{i}")))
            .await
            .unwrap();
    }
    let admin = Caller {
        tenant: a.clone(),
        scope: Scope::Admin,
        key: None,
    };
    let seqs = |v: &[continuum_core::audit::AuditView]| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    let oldest = e.audit_log(&admin, 0, 100).await.unwrap();
    assert_eq!(oldest.len(), 3);
    assert!(oldest.iter().all(|x| x.tenant.as_deref() == Some("alice")));
    let newest = e.audit_log_newest(&admin, 0, u64::MAX, 100).await.unwrap();
    let mut back = seqs(&oldest);
    back.reverse();
    assert_eq!(seqs(&newest), back);
    // Bounded on both sides, and paged two at a time.
    let o = seqs(&oldest);
    let mid = e.audit_log_newest(&admin, o[0], o[2], 100).await.unwrap();
    assert_eq!(seqs(&mid), vec![o[1]]);
    let page = e.audit_log_newest(&admin, 0, u64::MAX, 2).await.unwrap();
    assert_eq!(seqs(&page), vec![o[2], o[1]]);
    // An operator reads every tenant's, newest first.
    let all = e
        .audit_log_newest(Caller::local(a.clone()), 0, u64::MAX, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq));
}

pub async fn tenants_never_see_each_other(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let (a, b) = (tenant("alice"), tenant("bob"));
    e.learn(
        &a,
        in_session(
            turn("Alice's secret recipe uses saffron.", "Saffron, noted."),
            "shared-name",
        ),
    )
    .await
    .unwrap();
    let bob = e
        .learn(
            &b,
            in_session(
                turn(
                    "Bob's secret recipe uses Cardamom and Saffron.",
                    "Cardamom, noted.",
                ),
                "shared-name",
            ),
        )
        .await
        .unwrap();
    let bob_id = bob.memory_ids[0];

    let r = e
        .recall(&a, &RecallRequest::new("secret recipe cardamom saffron"))
        .await
        .unwrap();
    assert!(
        r.memories.iter().all(|m| !m.content.contains("cardamom")),
        "recall crossed tenants"
    );
    assert!(!r.context.contains("cardamom"));
    assert!(r.concepts.iter().all(|c| c.key != "cardamom"));
    let hits = e
        .search(
            &a,
            &SearchRequest {
                query: "cardamom".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(hits.is_empty(), "search crossed tenants");
    let listed = e
        .list(
            &a,
            &MemoryFilter::default(),
            &PageRequest {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(listed.items.iter().all(|m| !m.content.contains("cardamom")));
    assert_eq!(listed.items.len(), 2);
    assert!(
        matches!(e.get(&a, bob_id).await, Err(Error::NotFound(_))),
        "get crossed tenants"
    );
    let sa = e.stats(&a).await.unwrap().store;
    assert_eq!(sa.memories, 2);
    assert_eq!(sa.sessions, 1);
    assert!(matches!(
        e.forget(&a, &ForgetSelector::Ids(vec![bob_id])).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        e.forget(
            &a,
            &ForgetSelector::Session(SessionId::new("shared-name").unwrap())
        )
        .await
        .unwrap(),
        2
    );
    assert_eq!(e.forget(&a, &ForgetSelector::All).await.unwrap(), 0);
    // Bob still has everything.
    let sb = e.stats(&b).await.unwrap().store;
    assert_eq!((sb.memories, sb.sessions), (2, 1));
    assert!(e.get(&b, bob_id).await.is_ok());
    assert!(
        e.concept(&b, "saffron", 10).await.is_ok(),
        "forgetting Alice's saffron kept Bob's"
    );
    assert_eq!(e.sessions(&a, 10, 0).await.unwrap().len(), 0);
    assert_eq!(
        e.events(&a, 0, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|c| c.event.kind() == "memory.created")
            .count(),
        2
    );
}

async fn dump(e: &Engine, t: &TenantId) -> Vec<ExportRecord> {
    let mut out = Vec::new();
    e.export(
        t,
        &mut |r| {
            out.push(r.clone());
            Ok(())
        },
        &mut |_| {},
    )
    .await
    .unwrap();
    out
}

fn recall_fingerprint(r: &continuum_engine::Recall) -> Vec<(MemoryId, String)> {
    r.memories
        .iter()
        .map(|m| (m.id, format!("{:.9}", m.score)))
        .collect()
}

pub async fn export_then_import_reproduces_recall(make: &Factory) {
    let src = make().await;
    let (e1, _) = engine(src.store.clone());
    let t = tenant("t1");
    e1.learn(
        &t,
        in_session(
            turn(
                "We picked Postgres for the billing service.",
                "Postgres suits billing; let's add PgBouncer.",
            ),
            "s1",
        ),
    )
    .await
    .unwrap();
    e1.learn(
        &t,
        in_session(
            turn(
                "Billing invoices go out on the 1st.",
                "I'll schedule the invoice job with cron.",
            ),
            "s1",
        ),
    )
    .await
    .unwrap();
    e1.remember(
        &t,
        RememberRequest::new("pgbouncer runs in transaction mode", Source::Fact),
    )
    .await
    .unwrap();
    let records = dump(&e1, &t).await;
    assert!(matches!(records[0], ExportRecord::Header(_)));
    assert_eq!(
        records
            .iter()
            .filter(|r| matches!(r, ExportRecord::Memory { .. }))
            .count(),
        5
    );
    assert!(
        records
            .iter()
            .any(|r| matches!(r, ExportRecord::Link { .. }))
    );
    assert!(
        records
            .iter()
            .any(|r| matches!(r, ExportRecord::Decision(_)))
    );
    // Through JSON, as a file would carry it.
    let lines: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    let parsed: Vec<ExportRecord> = lines
        .iter()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let dst = make().await;
    let (e2, _) = engine(dst.store.clone());
    let out = e2.import(&t, parsed).await.unwrap();
    assert_eq!(out.memories_added, 5);
    for q in ["billing database", "pgbouncer mode", "invoice schedule"] {
        let r1 = e1.recall(&t, &RecallRequest::new(q)).await.unwrap();
        let r2 = e2.recall(&t, &RecallRequest::new(q)).await.unwrap();
        assert_eq!(
            recall_fingerprint(&r1),
            recall_fingerprint(&r2),
            "query {q}"
        );
        assert_eq!(r1.context, r2.context);
    }
    let (s1, s2) = (
        e1.stats(&t).await.unwrap().store,
        e2.stats(&t).await.unwrap().store,
    );
    assert_eq!(
        (
            s1.memories,
            s1.sessions,
            s1.concepts,
            s1.links,
            s1.decisions
        ),
        (
            s2.memories,
            s2.sessions,
            s2.concepts,
            s2.links,
            s2.decisions
        )
    );
}

/// Imported history keeps each turn's identity: a store tells which turns of a tenant it holds,
/// refuses a turn it holds already (writing nothing of that batch), forgets the key with the
/// memory, and keeps tenants apart.
pub async fn imported_turns_are_known_by_their_key(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let (t, u) = (tenant("t1"), tenant("t2"));
    let keyed = |user: &str, session: &str, id: Option<&str>| {
        let turn = in_session(turn(user, "Noted."), session);
        let key = continuum_engine::turn_key(id, &turn).unwrap();
        (turn, Some(key))
    };
    let a = keyed("Our Grafana dashboards read Prometheus.", "s1", None);
    let b = keyed("The cache uses Redis.", "s1", Some("line-2"));
    let keys: Vec<String> = [&a, &b].iter().map(|x| x.1.clone().unwrap()).collect();
    assert_eq!(keys[1], "id:line-2");
    assert!(e.imported_turns(&t, &keys).await.unwrap().is_empty());

    let p = e.prepare_keyed_turns(vec![a.clone(), b.clone()]).unwrap();
    let out = e.apply_turns(&t, p).await.unwrap();
    assert_eq!(out.memory_ids.len(), 4);
    let held = e.imported_turns(&t, &keys).await.unwrap();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(
        e.imported_turns(&u, &keys).await.unwrap().is_empty(),
        "another tenant holds none of them"
    );
    // The same turn in another tenant is its own.
    let p = e.prepare_keyed_turns(vec![a.clone()]).unwrap();
    e.apply_turns(&u, p).await.unwrap();

    // A batch with a held turn is refused whole.
    let c = keyed("Deploys happen on Tuesdays.", "s2", None);
    let before = e.stats(&t).await.unwrap().store.memories;
    let p = e.prepare_keyed_turns(vec![c.clone(), b.clone()]).unwrap();
    assert!(matches!(
        e.apply_turns(&t, p).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(e.stats(&t).await.unwrap().store.memories, before);
    assert!(
        e.imported_turns(&t, &[c.1.clone().unwrap()])
            .await
            .unwrap()
            .is_empty()
    );

    // Forgetting the memories forgets the keys: the turn can be imported again.
    e.forget(&t, &ForgetSelector::Ids(out.memory_ids[2..].to_vec()))
        .await
        .unwrap();
    let held = e.imported_turns(&t, &keys).await.unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held.contains(&keys[0]));
    // Learned turns carry no key; asking about too many keys at once is refused.
    e.learn(&t, turn("A plain learn.", "Sure.")).await.unwrap();
    let too_many = vec!["h:x/user".to_string(); continuum_core::store::MAX_IMPORT_KEYS + 1];
    assert!(matches!(
        s.store.imported(&t, &too_many).await,
        Err(Error::InvalidInput(_))
    ));
}

pub async fn import_is_idempotent(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    e.learn(
        &t,
        turn(
            "Our Grafana dashboards read Prometheus.",
            "It polls Prometheus every 15s; I'll add alerts.",
        ),
    )
    .await
    .unwrap();
    let records: Vec<ExportRecord> = dump(&e, &t).await.into_iter().skip(1).collect();
    let before = e.stats(&t).await.unwrap().store;
    let strength = link_strength(&e, &t, "grafana", "prometheus")
        .await
        .unwrap();
    let again = e.import(&t, records.clone()).await.unwrap();
    assert_eq!(again.memories_added, 0);
    assert_eq!(again.memories_skipped, 2);
    let after = e.stats(&t).await.unwrap().store;
    assert_eq!(
        (
            before.memories,
            before.concepts,
            before.links,
            before.decisions
        ),
        (after.memories, after.concepts, after.links, after.decisions)
    );
    assert_eq!(
        link_strength(&e, &t, "grafana", "prometheus")
            .await
            .unwrap(),
        strength,
        "links are not strengthened twice"
    );
    assert_eq!(
        e.concept(&t, "prometheus", 5)
            .await
            .unwrap()
            .concept
            .mentions,
        2
    );
}

pub async fn awkward_text_is_stored_and_found(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    let texts = [
        "SELECT * FROM users; DROP TABLE memories; -- said the intern",
        "cost was $5 | then \"quoted\" 'single' `tick` ../../etc/passwd",
        "Émile's café serves crème brûlée 🍮 on Fridays",
        "AND OR NOT NEAR ( ) * ^ : \" fts5 operators",
    ];
    for text in texts {
        let m = e
            .remember(&t, RememberRequest::new(text, Source::Note))
            .await
            .unwrap();
        assert_eq!(e.get(&t, m.id).await.unwrap().content, text);
    }
    for q in [
        "DROP TABLE",
        "passwd",
        "creme brulee",
        "NEAR operators",
        "\"; DROP TABLE memories; --",
        "*",
        "(((",
        "AND",
    ] {
        e.recall(&t, &RecallRequest::new(q))
            .await
            .unwrap_or_else(|err| panic!("query {q:?}: {err}"));
        e.search(
            &t,
            &SearchRequest {
                query: q.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let hits = e
        .search(
            &t,
            &SearchRequest {
                query: "creme brulee".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 1, "diacritics fold");
    assert_eq!(
        e.stats(&t).await.unwrap().store.memories,
        4,
        "nothing was dropped"
    );
}

pub async fn sessions_and_decisions_are_recorded(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let t = tenant("t1");
    e.learn(
        &t,
        in_session(
            turn(
                "Plan the launch.",
                "Let's launch on Monday. I will write the announcement.",
            ),
            "launch",
        ),
    )
    .await
    .unwrap();
    clock.advance_millis(60_000);
    e.learn(
        &t,
        in_session(
            turn("And the blog?", "The blog post goes out Tuesday."),
            "launch",
        ),
    )
    .await
    .unwrap();
    e.learn(&t, in_session(turn("Other topic.", "Sure."), "misc"))
        .await
        .unwrap();
    let sessions = e.sessions(&t, 10, 0).await.unwrap();
    assert_eq!(sessions.len(), 2);
    let launch = sessions.iter().find(|s| s.id.as_str() == "launch").unwrap();
    assert_eq!(launch.memories, 4);
    assert_eq!(launch.last_at.millis() - launch.started_at.millis(), 60_000);
    let decisions = e.decisions(&t, 10, 0).await.unwrap();
    let texts: Vec<&str> = decisions.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts.contains(&"Let's launch on Monday."));
    assert!(texts.contains(&"I will write the announcement."));
    let f = MemoryFilter {
        session: Some(SessionId::new("launch").unwrap()),
        ..Default::default()
    };
    let page = e
        .list(
            &t,
            &f,
            &PageRequest {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4);
}

pub async fn store_check_finds_no_problems(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("t1");
    for i in 0..20 {
        e.learn(&t, turn(&format!("Topic {i}: Rust, Go and Zig"), "Noted."))
            .await
            .unwrap();
    }
    e.forget(&t, &ForgetSelector::All).await.unwrap();
    e.learn(&t, turn("After the purge, Elixir.", "Elixir noted."))
        .await
        .unwrap();
    assert_eq!(e.check().await.unwrap(), Vec::<String>::new());
}

pub async fn the_index_follows_writes_made_after_it_was_built(make: &Factory) {
    let s = make().await;
    let (reader, _) = engine(s.store.clone());
    // A second engine on the same store stands for another process.
    let (writer, _) = engine(s.store.clone());
    let t = tenant("t1");
    writer
        .remember(
            &t,
            RememberRequest::new("The espresso machine is on floor three.", Source::Fact),
        )
        .await
        .unwrap();
    let r = reader
        .recall(&t, &RecallRequest::new("espresso machine"))
        .await
        .unwrap();
    assert_eq!(r.memories.len(), 1, "index built with the first memory");

    let added = writer
        .remember(
            &t,
            RememberRequest::new(
                "A second espresso machine arrived on floor five.",
                Source::Fact,
            ),
        )
        .await
        .unwrap();
    let r = reader
        .recall(&t, &RecallRequest::new("espresso machine"))
        .await
        .unwrap();
    assert_eq!(r.memories.len(), 2, "a write after the build is caught up");

    let newer = writer
        .supersede(
            &t,
            added.id,
            RememberRequest::new("The floor five espresso machine went back.", Source::Fact),
        )
        .await
        .unwrap();
    let r = reader
        .recall(&t, &RecallRequest::new("espresso machine floor five"))
        .await
        .unwrap();
    assert_eq!(
        r.memories
            .iter()
            .find(|m| m.id == added.id)
            .map(|m| m.superseded),
        Some(true)
    );

    writer
        .forget(&t, &ForgetSelector::Ids(vec![newer.id]))
        .await
        .unwrap();
    let r = reader
        .recall(&t, &RecallRequest::new("espresso machine floor five"))
        .await
        .unwrap();
    assert!(
        r.memories.iter().all(|m| m.id != newer.id),
        "forgotten memory left the index"
    );
    assert_eq!(
        r.memories
            .iter()
            .find(|m| m.id == added.id)
            .map(|m| m.superseded),
        Some(false),
        "un-superseded again"
    );
    let hits = reader
        .search(
            &t,
            &SearchRequest {
                query: "went back".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(hits.is_empty());
    // Many forgets in a row force a rebuild; recall stays complete.
    for i in 0..10 {
        let m = writer
            .remember(
                &t,
                RememberRequest::new(format!("temporary espresso note {i}"), Source::Note),
            )
            .await
            .unwrap();
        writer
            .forget(&t, &ForgetSelector::Ids(vec![m.id]))
            .await
            .unwrap();
    }
    let r = reader
        .recall(&t, &RecallRequest::new("espresso machine"))
        .await
        .unwrap();
    assert_eq!(r.memories.len(), 2);
}

/// A store that offers a commit marker moves it with every committed write, from any engine
/// on the store, and leaves it still otherwise: engines skip their change-log query and reuse
/// verified API keys while it stays. A key revoked through another engine must stop working
/// at once for an engine that had it verified.
pub async fn the_commit_marker_moves_with_every_write(make: &Factory) {
    use continuum_core::keys::Scope;
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let (other, _) = engine(s.store.clone());
    let t = tenant("t1");
    let (secret, key) = e.create_key(&t, Scope::Read, None, None).await.unwrap();
    e.authenticate(&secret).await.unwrap();
    if let Some(first) = s.store.commit_marker().await.unwrap() {
        let marker = || async { s.store.commit_marker().await.unwrap().unwrap() };
        assert_eq!(marker().await, first, "reading moves nothing");
        e.recall(&t, &RecallRequest::new("anything")).await.unwrap();
        e.authenticate(&secret).await.unwrap();
        assert_eq!(
            marker().await,
            first,
            "a recall and a key check are no writes"
        );
        other
            .remember(&t, RememberRequest::new("The marker moves.", Source::Fact))
            .await
            .unwrap();
        let moved = marker().await;
        assert_ne!(moved, first, "a write moves it");
        assert_eq!(
            e.recall(&t, &RecallRequest::new("marker moves"))
                .await
                .unwrap()
                .memories
                .len(),
            1,
            "and the other engine's recall sees the write"
        );
        other.revoke_key(&key.prefix).await.unwrap();
        assert_ne!(marker().await, moved, "a revocation moves it");
    } else {
        other.revoke_key(&key.prefix).await.unwrap();
    }
    assert!(
        matches!(e.authenticate(&secret).await, Err(Error::Unauthorized(_))),
        "a key revoked through another engine is refused"
    );
}

/// A concept that a link made before any memory named it (as sync can deliver them) takes the
/// name and kind of the first memory that mentions it, and keeps them after.
pub async fn a_concept_made_by_a_link_is_named_by_its_first_mention(make: &Factory) {
    let s = make().await;
    let t = tenant("bare");
    let memory = |text: &str| continuum_core::Memory {
        id: MemoryId::new_at(T0.millis()),
        session: None,
        source: Source::Fact,
        kind: "fact".into(),
        content: text.into(),
        metadata: Default::default(),
        created_at: T0,
        content_hash: continuum_core::memory::content_hash(text),
        valid_until: None,
        superseded_by: None,
    };
    let mention = |name: &str, kind: &str| continuum_core::extract::ExtractedConcept {
        key: "kafka".into(),
        name: name.into(),
        kind: kind.into(),
    };
    let batch = |memories: Vec<MemoryWrite>, links: Vec<LinkWrite>| WriteBatch {
        memories,
        links,
        decisions: vec![],
        supersedes: vec![],
        at: T0,
        written_at: None,
    };
    let link = LinkWrite::CoOccurred {
        a: "kafka".into(),
        b: "redis".into(),
        count: 1,
    };
    s.store
        .apply(&t, &Default::default(), vec![batch(vec![], vec![link])])
        .await
        .unwrap();
    let named = |c: &[continuum_core::store::Concept], key: &str| {
        let c = c.iter().find(|c| c.key == key).unwrap();
        (c.name.clone(), c.kind.clone(), c.mentions)
    };
    let keys = ["kafka".to_string(), "redis".to_string()];
    let bare = s.store.concepts(&t, &keys).await.unwrap();
    assert_eq!(named(&bare, "kafka"), ("kafka".into(), "concept".into(), 0));
    for (text, name, kind) in [
        ("Kafka keeps the log", "Kafka", "tool"),
        ("KAFKA again", "KAFKA", "concept"),
    ] {
        let w = MemoryWrite::new(memory(text), vec![mention(name, kind)]);
        s.store
            .apply(&t, &Default::default(), vec![batch(vec![w], vec![])])
            .await
            .unwrap();
    }
    let after = s.store.concepts(&t, &keys).await.unwrap();
    assert_eq!(named(&after, "kafka"), ("Kafka".into(), "tool".into(), 2));
    assert_eq!(
        named(&after, "redis"),
        ("redis".into(), "concept".into(), 0)
    );
}

/// The store's full-text search (SQLite fills its index when it is read) finds what was written
/// between searches, never what was forgotten, also after the newest memory was forgotten (its
/// row number may be handed out again) and after forgetting memories no search has seen.
pub async fn the_store_full_text_search_follows_writes_and_forgets(make: &Factory) {
    let s = make().await;
    let config = EngineConfig {
        derived_index: false,
        ..EngineConfig::default()
    };
    let e = Engine::new(s.store.clone(), config).unwrap();
    let t = tenant("fts");
    let found = |q: &'static str| {
        let e = e.clone();
        let t = t.clone();
        async move {
            let mut hits: Vec<String> = e
                .search(
                    &t,
                    &SearchRequest {
                        query: q.into(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.memory.content)
                .collect();
            hits.sort();
            hits
        }
    };
    let note = |text: &'static str| {
        let e = e.clone();
        let t = t.clone();
        async move {
            e.remember(&t, RememberRequest::new(text, Source::Fact))
                .await
                .unwrap()
        }
    };
    let first = note("Otters hold hands while they sleep.").await;
    let newest = note("Otters crack shells with stones.").await;
    assert_eq!(found("otters").await.len(), 2);
    // The newest memory goes; the next one written may take its place in the table.
    e.forget(&t, &ForgetSelector::Ids(vec![newest.id]))
        .await
        .unwrap();
    note("Otters groom their fur for hours.").await;
    assert_eq!(
        found("otters").await,
        vec![
            "Otters groom their fur for hours.".to_string(),
            "Otters hold hands while they sleep.".to_string()
        ]
    );
    assert!(
        found("shells").await.is_empty(),
        "a forgotten memory is not found"
    );
    // Written and forgotten with no search in between, next to one that stays.
    let unseen = note("Otters have the densest fur of any animal.").await;
    note("Beavers build dams of mud.").await;
    e.forget(&t, &ForgetSelector::Ids(vec![unseen.id, first.id]))
        .await
        .unwrap();
    assert_eq!(
        found("otters").await,
        vec!["Otters groom their fur for hours.".to_string()]
    );
    assert_eq!(
        found("beavers").await,
        vec!["Beavers build dams of mud.".to_string()]
    );
    assert!(found("densest").await.is_empty());
    assert_eq!(s.store.check().await.unwrap(), Vec::<String>::new());
}

pub async fn the_store_full_text_search_ranks_and_isolates(make: &Factory) {
    let s = make().await;
    let clock = std::sync::Arc::new(continuum_core::time::ManualClock::new(T0));
    let config = EngineConfig {
        derived_index: false,
        ..EngineConfig::default()
    };
    let e = Engine::new(s.store.clone(), config)
        .unwrap()
        .with_clock(clock);
    let (a, b) = (tenant("a"), tenant("b"));
    e.remember(
        &a,
        RememberRequest::new("Zebras graze on the savanna.", Source::Fact),
    )
    .await
    .unwrap();
    e.remember(
        &a,
        RememberRequest::new("The savanna is dry in August.", Source::Fact),
    )
    .await
    .unwrap();
    e.remember(
        &b,
        RememberRequest::new("Zebras are striped.", Source::Fact),
    )
    .await
    .unwrap();
    let hits = e
        .search(
            &a,
            &SearchRequest {
                query: "zebras savanna".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert!(
        hits[0].memory.content.starts_with("Zebras graze"),
        "both terms beat one"
    );
    assert!(hits[0].score > hits[1].score);
    let r = e
        .recall(&a, &RecallRequest::new("striped zebras"))
        .await
        .unwrap();
    assert!(r.memories.iter().all(|m| !m.content.contains("striped")));
    let mut req = RecallRequest::new("savanna");
    req.filter.since = Some(continuum_core::Timestamp(T0.millis() + 1));
    assert!(
        e.recall(&a, &req).await.unwrap().memories.is_empty(),
        "time filter applies"
    );
}
