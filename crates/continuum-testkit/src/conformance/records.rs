//! Conformance cases for reflection records: intentions, beliefs and their contradictions,
//! claims and calibration, each of one tenant, each write an event.

use super::*;
use continuum_core::keys::{Caller, Scope};
use continuum_core::reflection::{
    BeliefStatus, ClaimStatus, ContradictionStatus, IntentionStatus, RecordId,
};
use continuum_core::{Event, EventScope};
use continuum_engine::{BeliefRequest, CalibrationRequest, ClaimRequest, IntentionRequest};

fn intention(text: &str, priority: i64) -> IntentionRequest {
    IntentionRequest {
        text: text.into(),
        priority: Some(priority),
        session: None,
    }
}

fn belief(text: &str, domain: &str) -> BeliefRequest {
    BeliefRequest {
        text: text.into(),
        domain: Some(domain.into()),
        confidence: Some(0.9),
        evidence: vec!["said in the planning meeting".into()],
    }
}

fn claim(text: &str, confidence: f64, category: &str) -> ClaimRequest {
    ClaimRequest {
        text: text.into(),
        confidence,
        category: Some(category.into()),
    }
}

pub async fn intentions_resume_by_priority_and_change_state_once(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let a = tenant("alice");
    let low = e
        .intention_add(&a, &intention("tidy the README", 2))
        .await
        .unwrap();
    clock.advance_millis(1000);
    let mid = e
        .intention_add(&a, &intention("write the release notes", 5))
        .await
        .unwrap();
    clock.advance_millis(1000);
    let high = e
        .intention_add(&a, &intention("fix the failing sync test", 9))
        .await
        .unwrap();
    clock.advance_millis(1000);
    let high2 = e
        .intention_add(&a, &intention("answer Bob about the deadline", 9))
        .await
        .unwrap();
    assert_eq!(low.status, IntentionStatus::Pending);

    let r = e.intention_resume(&a).await.unwrap();
    assert_eq!(r.pending, 4);
    // Highest priority first, then newest.
    let ids =
        |v: &[continuum_core::reflection::Intention]| v.iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(&r.high), vec![high2.id, high.id]);
    assert_eq!(ids(&r.medium), vec![mid.id]);
    assert_eq!(ids(&r.low), vec![low.id]);
    assert!(
        r.summary
            .starts_with("4 pending intentions (2 high, 1 medium, 1 low priority)."),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("answer Bob"), "{}", r.summary);

    let done = e.intention_done(&a, &high.id).await.unwrap();
    assert_eq!(done.status, IntentionStatus::Done);
    let err = e.intention_done(&a, &high.id).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    let gone = e
        .intention_abandon(&a, &low.id, Some("the README moved to the wiki"))
        .await
        .unwrap();
    assert_eq!(gone.status, IntentionStatus::Abandoned);
    assert_eq!(gone.reason.as_deref(), Some("the README moved to the wiki"));

    let pending = e
        .intentions(&a, Some(IntentionStatus::Pending), 10)
        .await
        .unwrap();
    assert_eq!(ids(&pending), vec![high2.id, mid.id]);
    let all = e.intentions(&a, None, 10).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(e.intention_resume(&a).await.unwrap().pending, 2);

    // Bad input is refused and stores nothing.
    for bad in [
        intention("", 5),
        intention("   ", 5),
        intention("x", 0),
        intention("x", 11),
        intention(&"x".repeat(2001), 5),
    ] {
        let err = e.intention_add(&a, &bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
    assert_eq!(e.intentions(&a, None, 10).await.unwrap().len(), 4);
    let unknown = RecordId::new_at(T0);
    assert!(matches!(
        e.intention_done(&a, &unknown).await.unwrap_err(),
        Error::NotFound(_)
    ));
}

pub async fn beliefs_report_contradictions_in_their_domain_and_resolve(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let a = tenant("alice");
    let first = e
        .belief_add(&a, &belief("The deadline is Friday", "project"))
        .await
        .unwrap();
    assert!(first.contradictions.is_empty());
    assert_eq!(first.compared, 0);
    clock.advance_millis(1000);
    // Another domain: never compared.
    let other = e
        .belief_add(&a, &belief("The deadline is Monday", "gossip"))
        .await
        .unwrap();
    assert!(other.contradictions.is_empty());
    assert_eq!(other.compared, 0);
    clock.advance_millis(1000);
    // Different subjects: no contradiction.
    let unrelated = e
        .belief_add(&a, &belief("The launch is Monday", "project"))
        .await
        .unwrap();
    assert!(
        unrelated.contradictions.is_empty(),
        "{:?}",
        unrelated.contradictions
    );
    assert_eq!(unrelated.compared, 1);
    clock.advance_millis(1000);
    let second = e
        .belief_add(&a, &belief("the deadline is Monday", "Project"))
        .await
        .unwrap();
    assert_eq!(second.belief.domain, "project");
    assert_eq!(second.compared, 2);
    assert_eq!(second.contradictions.len(), 1);
    let c = &second.contradictions[0];
    assert_eq!(c.contradiction.kind, "value");
    assert_eq!(c.contradiction.method, "words");
    assert_eq!(c.contradiction.earlier, first.belief.id);
    assert_eq!(c.contradiction.later, second.belief.id);
    assert_eq!(c.earlier_text.as_deref(), Some("The deadline is Friday"));
    assert!(
        c.contradiction.evidence.contains("deadline"),
        "{}",
        c.contradiction.evidence
    );
    clock.advance_millis(1000);
    let negated = e
        .belief_add(&a, &belief("The launch isn't Monday", "project"))
        .await
        .unwrap();
    assert_eq!(negated.contradictions.len(), 1);
    assert_eq!(negated.contradictions[0].contradiction.kind, "negation");
    assert_eq!(
        negated.contradictions[0].contradiction.earlier,
        unrelated.belief.id
    );

    let open = e
        .contradictions(&a, Some(ContradictionStatus::Open), 10)
        .await
        .unwrap();
    assert_eq!(open.len(), 2);
    // Resolve the deadline one by keeping the later belief.
    let id = c.contradiction.id;
    let err = e
        .contradiction_resolve(&a, &id, &unrelated.belief.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let r = e
        .contradiction_resolve(&a, &id, &second.belief.id)
        .await
        .unwrap();
    assert_eq!(r.contradiction.status, ContradictionStatus::Resolved);
    assert_eq!(r.contradiction.kept, Some(second.belief.id));
    assert_eq!(r.superseded.id, first.belief.id);
    assert_eq!(r.superseded.status, BeliefStatus::Superseded);
    assert_eq!(r.superseded.superseded_by, Some(second.belief.id));
    assert!(matches!(
        e.contradiction_resolve(&a, &id, &second.belief.id)
            .await
            .unwrap_err(),
        Error::Conflict(_)
    ));
    let active = e
        .beliefs(&a, Some("project"), Some(BeliefStatus::Active), 10)
        .await
        .unwrap();
    assert_eq!(
        active.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![negated.belief.id, second.belief.id, unrelated.belief.id]
    );
    // A superseded belief is no longer compared: Friday again contradicts only Monday.
    clock.advance_millis(1000);
    let again = e
        .belief_add(&a, &belief("The deadline is Friday", "project"))
        .await
        .unwrap();
    assert_eq!(again.contradictions.len(), 1);
    assert_eq!(
        again.contradictions[0].contradiction.earlier,
        second.belief.id
    );
    assert_eq!(
        e.contradictions(&a, Some(ContradictionStatus::Resolved), 10)
            .await
            .unwrap()
            .len(),
        1
    );

    for bad in [
        BeliefRequest {
            confidence: Some(1.5),
            ..belief("x is y", "d")
        },
        BeliefRequest {
            domain: Some("a;b".into()),
            ..belief("x is y", "d")
        },
        BeliefRequest {
            evidence: vec!["e".into(); 11],
            ..belief("x is y", "d")
        },
        belief("", "d"),
    ] {
        let err = e.belief_add(&a, &bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
    assert_eq!(e.beliefs(&a, None, None, 100).await.unwrap().len(), 6);
}

pub async fn the_embedder_finds_a_negated_paraphrase_the_words_miss(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let e = e.with_embedder(std::sync::Arc::new(crate::TopicEmbedder::default()));
    let (plain, _) = engine(s.store.clone());
    let a = tenant("alice");
    e.belief_add(&a, &belief("The dog adores tennis balls", "pets"))
        .await
        .unwrap();
    // Without an embedder the words differ: nothing found.
    let words_only = plain
        .belief_add(
            &tenant("bob"),
            &belief("The dog adores tennis balls", "pets"),
        )
        .await
        .unwrap();
    assert!(words_only.contradictions.is_empty());
    let w = plain
        .belief_add(
            &tenant("bob"),
            &belief("The puppy never likes tennis balls", "pets"),
        )
        .await
        .unwrap();
    assert!(w.contradictions.is_empty(), "{:?}", w.contradictions);
    // With it: the same meaning, one side negated.
    let r = e
        .belief_add(&a, &belief("The puppy never likes tennis balls", "pets"))
        .await
        .unwrap();
    assert_eq!(r.contradictions.len(), 1, "{:?}", r.contradictions);
    let c = &r.contradictions[0].contradiction;
    assert_eq!(
        (c.kind.as_str(), c.method.as_str()),
        ("negation", "embedding")
    );
    assert!(c.similarity.unwrap() >= 0.9);
    // The same meaning without a negation on either side agrees.
    let r = e
        .belief_add(&a, &belief("The puppy likes tennis balls", "pets"))
        .await
        .unwrap();
    assert_eq!(
        r.contradictions.len(),
        1,
        "only with the negated one: {:?}",
        r.contradictions
    );
    let c = &r.contradictions[0];
    assert_eq!(
        c.later_text.as_deref(),
        Some("The puppy likes tennis balls")
    );
    assert_eq!(
        c.earlier_text.as_deref(),
        Some("The puppy never likes tennis balls")
    );
    // The same words, one negated: the word rule settles it without the embedder.
    assert_eq!(
        (
            c.contradiction.kind.as_str(),
            c.contradiction.method.as_str()
        ),
        ("negation", "words")
    );
}

pub async fn claims_calibrate_per_category_and_window(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let a = tenant("alice");
    // Weather: 0.9 right, 0.9 wrong, 0.6 right; code: 0.8 right; one open.
    let mut ids = Vec::new();
    for (text, c, cat) in [
        ("It rains tomorrow", 0.9, "weather"),
        ("It snows on Sunday", 0.9, "weather"),
        ("The wind drops by noon", 0.6, "weather"),
        ("The patch fixes the crash", 0.8, "code"),
        ("The build passes first time", 0.7, "code"),
    ] {
        ids.push(e.claim_add(&a, &claim(text, c, cat)).await.unwrap().id);
        clock.advance_millis(1000);
    }
    let v = e
        .claim_verify(&a, &ids[0], true, Some("it poured"))
        .await
        .unwrap();
    assert_eq!(v.status, ClaimStatus::Correct);
    assert_eq!(v.verified_at, Some(continuum_core::Timestamp(T0.0 + 5000)));
    e.claim_verify(&a, &ids[1], false, None).await.unwrap();
    e.claim_verify(&a, &ids[2], true, None).await.unwrap();
    e.claim_verify(&a, &ids[3], true, None).await.unwrap();
    assert!(matches!(
        e.claim_verify(&a, &ids[0], false, None).await.unwrap_err(),
        Error::Conflict(_)
    ));

    let all = e
        .calibration(&a, &CalibrationRequest::default())
        .await
        .unwrap();
    assert_eq!(
        (all.overall.claims, all.overall.correct, all.overall.open),
        (4, 3, 1)
    );
    // Brier by hand: (0.1² + 0.9² + 0.4² + 0.2²) / 4 = (0.01 + 0.81 + 0.16 + 0.04) / 4.
    let brier = all.overall.brier.unwrap();
    assert!((brier - 0.255).abs() < 1e-9, "{brier}");
    assert_eq!(all.categories.len(), 2);
    let weather = all
        .categories
        .iter()
        .find(|r| r.category.as_deref() == Some("weather"))
        .unwrap();
    assert_eq!((weather.claims, weather.correct), (3, 2));
    let wb = weather.brier.unwrap();
    assert!((wb - (0.01 + 0.81 + 0.16) / 3.0).abs() < 1e-6, "{wb}");
    // The 0.9 bin of ten: two claims, mean confidence 0.9, half right.
    let bin = &weather.bins[9];
    assert_eq!(bin.count, 2);
    assert!((bin.confidence.unwrap() - 0.9).abs() < 1e-9);
    assert_eq!(bin.accuracy, Some(0.5));
    assert!(!weather.advice.is_empty());

    let code = e
        .calibration(
            &a,
            &CalibrationRequest {
                category: Some("CODE".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(code.overall.category.as_deref(), Some("code"));
    assert_eq!((code.overall.claims, code.overall.open), (1, 1));
    assert_eq!(code.categories.len(), 1);
    // A window over the first two claims only.
    let early = e
        .calibration(
            &a,
            &CalibrationRequest {
                since: Some(T0),
                until: Some(continuum_core::Timestamp(T0.0 + 2000)),
                bins: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((early.overall.claims, early.overall.correct), (2, 1));
    assert_eq!(early.overall.bins.len(), 2);
    for bad in [
        CalibrationRequest {
            bins: Some(0),
            ..Default::default()
        },
        CalibrationRequest {
            bins: Some(21),
            ..Default::default()
        },
    ] {
        assert!(matches!(
            e.calibration(&a, &bad).await.unwrap_err(),
            Error::InvalidInput(_)
        ));
    }
    // A window that ends before it starts is empty.
    let none = e
        .calibration(
            &a,
            &CalibrationRequest {
                since: Some(continuum_core::Timestamp(T0.0 + 5000)),
                until: Some(T0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((none.overall.claims, none.overall.open), (0, 0));
    assert!(none.overall.brier.is_none());
    for bad in [
        claim("x", 1.2, "c"),
        claim("x", -0.1, "c"),
        claim("x", f64::NAN, "c"),
    ] {
        assert!(matches!(
            e.claim_add(&a, &bad).await.unwrap_err(),
            Error::InvalidInput(_)
        ));
    }
    let listed = e.claims(&a, Some("weather"), None, 10).await.unwrap();
    assert_eq!(listed.len(), 3);
    let open = e
        .claims(&a, None, Some(ClaimStatus::Open), 10)
        .await
        .unwrap();
    assert_eq!(open.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[4]]);
}

pub async fn reflection_records_are_the_tenants_own_events_and_go_with_it(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let (a, b) = (tenant("alice"), tenant("bob"));
    let i = e
        .intention_add(&a, &intention("call the dentist about Ada", 8))
        .await
        .unwrap();
    e.belief_add(&a, &belief("Ada is allergic to penicillin", "health"))
        .await
        .unwrap();
    let added = e
        .belief_add(&a, &belief("Ada is not allergic to penicillin", "health"))
        .await
        .unwrap();
    assert_eq!(added.contradictions.len(), 1);
    let c = e
        .claim_add(&a, &claim("Ada recovers by May", 0.7, "health"))
        .await
        .unwrap();
    // Bob sees none of it and cannot touch it.
    assert!(e.intentions(&b, None, 10).await.unwrap().is_empty());
    assert!(e.beliefs(&b, None, None, 10).await.unwrap().is_empty());
    assert!(e.contradictions(&b, None, 10).await.unwrap().is_empty());
    assert!(e.claims(&b, None, None, 10).await.unwrap().is_empty());
    assert_eq!(
        e.calibration(&b, &CalibrationRequest::default())
            .await
            .unwrap()
            .overall
            .open,
        0
    );
    assert!(matches!(
        e.intention_done(&b, &i.id).await.unwrap_err(),
        Error::NotFound(_)
    ));
    assert!(matches!(
        e.claim_verify(&b, &c.id, true, None).await.unwrap_err(),
        Error::NotFound(_)
    ));
    let cid = added.contradictions[0].contradiction.id;
    assert!(matches!(
        e.contradiction_resolve(&b, &cid, &added.belief.id)
            .await
            .unwrap_err(),
        Error::NotFound(_)
    ));
    // An id of one kind is no record of another.
    assert!(matches!(
        e.claim_verify(&a, &i.id, true, None).await.unwrap_err(),
        Error::NotFound(_)
    ));
    // A read key reads and cannot write.
    let reader = Caller {
        tenant: a.clone(),
        scope: Scope::Read,
        key: None,
    };
    assert_eq!(
        e.intentions(reader.clone(), None, 10).await.unwrap().len(),
        1
    );
    assert!(matches!(
        e.intention_add(reader.clone(), &intention("x", 5))
            .await
            .unwrap_err(),
        Error::Forbidden(_)
    ));
    assert!(matches!(
        e.claim_verify(reader, &c.id, true, None).await.unwrap_err(),
        Error::Forbidden(_)
    ));

    // Each write is an event of alice's, carrying the record.
    let events = s
        .store
        .events_since(EventScope::Tenant(&a), 0, 100)
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|r| r.event.kind()).collect();
    assert_eq!(
        kinds,
        vec![
            "intention.saved",
            "belief.saved",
            "belief.saved",
            "contradiction.saved",
            "claim.saved"
        ]
    );
    match &events[0].event {
        Event::IntentionSaved {
            id,
            record: Some(r),
        } => {
            assert_eq!(*id, i.id);
            assert_eq!(r.text, "call the dentist about Ada");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        s.store
            .events_since(EventScope::Tenant(&b), 0, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // Erasing alice deletes her records and scrubs their text from the log.
    let erased = e.erase_tenant(&a).await.unwrap();
    assert_eq!(erased.memories, 0);
    assert!(e.intentions(&a, None, 10).await.unwrap().is_empty());
    assert!(e.claims(&a, None, None, 10).await.unwrap().is_empty());
    assert!(e.contradictions(&a, None, 10).await.unwrap().is_empty());
    let events = s
        .store
        .events_since(EventScope::Tenant(&a), 0, 100)
        .await
        .unwrap();
    for r in &events {
        let json = r.event.encode();
        assert!(!json.contains("Ada"), "{json}");
        assert!(!json.contains("penicillin"), "{json}");
    }
    assert!(
        events
            .iter()
            .any(|r| matches!(r.event, Event::ClaimSaved { record: None, .. }))
    );
    // An erased tenant with nothing left is not found again.
    assert!(matches!(
        e.erase_tenant(&a).await.unwrap_err(),
        Error::NotFound(_)
    ));
}

pub async fn a_concepts_timeline_and_growth_are_read_from_its_events(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let (a, b) = (tenant("alice"), tenant("bob"));
    for _ in 0..6 {
        e.learn(
            &a,
            turn("Our Kafka cluster feeds Redis.", "Kafka and Redis again."),
        )
        .await
        .unwrap();
        clock.advance_millis(1000);
    }
    let window = continuum_core::Timestamp(T0.0 + 6000);
    e.learn(
        &a,
        turn(
            "Kafka now also feeds ClickHouse.",
            "Kafka and ClickHouse then.",
        ),
    )
    .await
    .unwrap();
    e.belief_add(&a, &belief("Kafka is fast", "infra"))
        .await
        .unwrap();
    e.belief_add(&a, &belief("Kafka is slow", "infra"))
        .await
        .unwrap();

    let t = e.concept_timeline(&a, "kafka").await.unwrap();
    assert_eq!(t.concept.key, "kafka");
    assert!(t.mentions >= 7, "{t:?}");
    assert!(!t.scan.truncated);
    let kinds: Vec<(&str, Option<&str>)> = t
        .entries
        .iter()
        .map(|x| (x.kind, x.other.as_deref()))
        .collect();
    assert_eq!(kinds[0], ("created", None), "{kinds:?}");
    let first_link = t
        .entries
        .iter()
        .find(|x| x.kind == "linked" && x.other.as_deref() == Some("redis"))
        .expect("linked to redis");
    assert!(first_link.strength.unwrap() < 0.5);
    let strong = t
        .entries
        .iter()
        .find(|x| x.kind == "strengthened" && x.other.as_deref() == Some("redis"))
        .expect("the Redis link passed a milestone");
    assert!(strong.strength.unwrap() >= 0.5, "{strong:?}");
    assert!(strong.seq > first_link.seq);
    // The stored link agrees with the strength the timeline computed last.
    let last = t
        .entries
        .iter()
        .rev()
        .find(|x| x.other.as_deref() == Some("redis"))
        .unwrap();
    let view = e.concept(&a, "kafka", 20).await.unwrap();
    let redis = view.neighbours.iter().find(|n| n.key == "redis").unwrap();
    assert!(redis.strength >= last.strength.unwrap() - 1e-9);
    assert!(kinds.contains(&("linked", Some("clickhouse"))), "{kinds:?}");
    let contradicted: Vec<_> = t
        .entries
        .iter()
        .filter(|x| x.kind == "contradicted")
        .collect();
    assert_eq!(contradicted.len(), 1, "{kinds:?}");
    assert!(
        contradicted[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("opposites")
    );
    // Entries are in log order.
    assert!(t.entries.windows(2).all(|w| w[0].seq <= w[1].seq));

    // Another tenant has no such concept; an unknown one is not found.
    assert!(matches!(
        e.concept_timeline(&b, "kafka").await.unwrap_err(),
        Error::NotFound(_)
    ));
    assert!(matches!(
        e.concept_timeline(&a, "nowhere").await.unwrap_err(),
        Error::NotFound(_)
    ));

    // Growth: the whole history, then the window with the ClickHouse turn only.
    let all = e.concept_growth(&a, None, None).await.unwrap();
    assert_eq!(all.memories, 14);
    assert!(all.new_concepts >= 3, "{all:?}");
    assert_eq!(all.most_active[0].key, "kafka", "{all:?}");
    let late = e.concept_growth(&a, Some(window), None).await.unwrap();
    assert_eq!(late.memories, 2, "{late:?}");
    assert!(
        late.new_concept_names.iter().any(|n| n == "ClickHouse"),
        "{late:?}"
    );
    assert!(
        !late.new_concept_names.iter().any(|n| n == "Redis"),
        "{late:?}"
    );
    assert!(late.new_links >= 1);
    let early = e.concept_growth(&a, None, Some(window)).await.unwrap();
    assert_eq!(early.memories, 12);
    assert!(!early.new_concept_names.iter().any(|n| n == "ClickHouse"));
    assert_eq!(e.concept_growth(&b, None, None).await.unwrap().memories, 0);
    let empty = e
        .concept_growth(&a, Some(window), Some(window))
        .await
        .unwrap();
    assert_eq!(
        (empty.memories, empty.new_concepts, empty.new_links),
        (0, 0, 0)
    );
}

pub async fn insights_name_concepts_close_in_meaning_that_are_not_linked(make: &Factory) {
    let s = make().await;
    let (plain, _) = engine(s.store.clone());
    let e = plain
        .clone()
        .with_embedder(std::sync::Arc::new(crate::TopicEmbedder::default()));
    let a = tenant("alice");
    // Puppy and Dog share a topic but never a turn; Kafka and Puppy are linked.
    e.learn(
        &a,
        turn("We saw Kafka with Puppy today.", "Kafka and Puppy, noted."),
    )
    .await
    .unwrap();
    e.learn(
        &a,
        turn("Then Redis met Dog later.", "Redis and Dog, noted."),
    )
    .await
    .unwrap();
    let scope = GraphScope::default();
    let without = plain.insights(&a, &scope, 10).await.unwrap();
    assert!(without.similar.is_empty() && without.similar_by.is_none());
    let with = e.insights(&a, &scope, 10).await.unwrap();
    assert_eq!(with.similar_by.as_deref(), Some("test-topics"));
    let pairs: Vec<(String, String)> = with
        .similar
        .iter()
        .map(|p| {
            let mut k = [p.a.key.clone(), p.b.key.clone()];
            k.sort();
            (k[0].clone(), k[1].clone())
        })
        .collect();
    assert!(pairs.contains(&("dog".into(), "puppy".into())), "{pairs:?}");
    // Linked pairs are never proposed.
    assert!(
        !pairs.contains(&("kafka".into(), "puppy".into())),
        "{pairs:?}"
    );
    assert!(
        !pairs.contains(&("dog".into(), "redis".into())),
        "{pairs:?}"
    );
    assert!(with.similar.iter().all(|p| p.similarity >= 0.7));
    // Another tenant's graph is its own.
    let bob = e.insights(&tenant("bob"), &scope, 10).await.unwrap();
    assert!(bob.similar.is_empty());
}

pub async fn graph_snapshots_are_kept_per_tenant_and_compared(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let (a, b) = (tenant("alice"), tenant("bob"));
    e.learn(
        &a,
        turn("Our Kafka cluster feeds Redis.", "Kafka and Redis again."),
    )
    .await
    .unwrap();
    let first = e
        .graph_snapshot(&a, Some("before the migration"))
        .await
        .unwrap();
    assert_eq!((first.memories, first.concepts, first.links), (2, 2, 1));
    assert_eq!(first.clusters, 1);
    assert_eq!(first.label.as_deref(), Some("before the migration"));
    clock.advance_millis(2 * 86_400_000);
    for _ in 0..2 {
        e.learn(
            &a,
            turn(
                "We run Terraform with Postgres and Vault.",
                "Terraform, Postgres and Vault.",
            ),
        )
        .await
        .unwrap();
    }
    e.learn(
        &a,
        turn("Now Kafka also feeds Postgres.", "Kafka and Postgres then."),
    )
    .await
    .unwrap();
    let second = e.graph_snapshot(&a, None).await.unwrap();
    assert!(
        second.concepts >= 5 && second.links > first.links,
        "{second:?}"
    );
    let c = e.graph_compare(&a, &first.id, &second.id).await.unwrap();
    assert_eq!(c.memories, 6);
    assert_eq!(c.concepts, second.concepts as i64 - 2);
    assert!(c.links > 0);
    assert!((c.days - 2.0).abs() < 1e-9);
    assert!(c.new_hubs.contains(&"postgres".to_string()), "{c:?}");
    assert!(
        c.summary.starts_with("Over 2.0 days: +6 memories"),
        "{}",
        c.summary
    );
    let back = e.graph_compare(&a, &second.id, &first.id).await.unwrap();
    assert_eq!(back.memories, -6);

    let list = e.graph_snapshots(&a, 10).await.unwrap();
    assert_eq!(
        list.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![second.id, first.id]
    );
    assert!(e.graph_snapshots(&b, 10).await.unwrap().is_empty());
    assert!(matches!(
        e.graph_compare(&b, &first.id, &second.id)
            .await
            .unwrap_err(),
        Error::NotFound(_)
    ));
    assert!(matches!(
        e.graph_snapshot(&a, Some(&"x".repeat(101)))
            .await
            .unwrap_err(),
        Error::InvalidInput(_)
    ));
    let reader = Caller {
        tenant: a.clone(),
        scope: Scope::Read,
        key: None,
    };
    assert!(matches!(
        e.graph_snapshot(reader, None).await.unwrap_err(),
        Error::Forbidden(_)
    ));
    let events = s
        .store
        .events_since(EventScope::Tenant(&a), 0, 1000)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|r| r.event.kind() == "snapshot.saved")
            .count(),
        2
    );
}

pub async fn reflection_records_travel_in_an_export_and_import_once(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let (a, c) = (tenant("alice"), tenant("carol"));
    let i = e
        .intention_add(&a, &intention("Water the plants", 6))
        .await
        .unwrap();
    e.belief_add(&a, &belief("The plants need sun", "garden"))
        .await
        .unwrap();
    e.belief_add(&a, &belief("The plants do not need sun", "garden"))
        .await
        .unwrap();
    let claim = e
        .claim_add(&a, &claim("It rains on Friday", 0.6, "weather"))
        .await
        .unwrap();
    e.claim_verify(&a, &claim.id, true, None).await.unwrap();
    e.graph_snapshot(&a, Some("start")).await.unwrap();
    let mut dump = Vec::new();
    e.export(
        &a,
        &mut |r| {
            dump.push(r.clone());
            Ok(())
        },
        &mut |_| {},
    )
    .await
    .unwrap();
    let mut kinds: Vec<String> = dump
        .iter()
        .filter_map(|r| match r {
            ExportRecord::Record { kind, .. } => Some(kind.clone()),
            _ => None,
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            "belief",
            "belief",
            "claim",
            "contradiction",
            "intention",
            "snapshot"
        ]
    );
    let body: Vec<ExportRecord> = dump.into_iter().skip(1).collect();
    // Into another tenant of the same store: the same records, under the same ids.
    let first = e.import(&c, body.clone()).await.unwrap();
    assert_eq!(first.records, 6);
    let again = e.import(&c, body.clone()).await.unwrap();
    assert_eq!(again.records, 0, "already there: nothing written, no event");
    assert_eq!(e.intentions(&c, None, 10).await.unwrap(), vec![i.clone()]);
    let cal = e
        .calibration(&c, &CalibrationRequest::default())
        .await
        .unwrap();
    assert_eq!(cal.overall.claims, 1);
    assert_eq!(e.contradictions(&c, None, 10).await.unwrap().len(), 1);
    assert_eq!(e.graph_snapshots(&c, 10).await.unwrap().len(), 1);
    // Alice's own are untouched; a changed record in a dump is written over.
    e.intention_done(&c, &i.id).await.unwrap();
    assert_eq!(
        e.intentions(&a, Some(IntentionStatus::Pending), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let back = e.import(&c, body.clone()).await.unwrap();
    assert_eq!(back.records, 1);
    assert_eq!(
        e.intentions(&c, Some(IntentionStatus::Pending), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // A record that breaks a limit is refused with the rest of its chunk.
    let bad = ExportRecord::Record {
        kind: "claim".into(),
        record: serde_json::json!({"id": RecordId::new_at(T0), "text": "x", "category": "c", "confidence": 7.0, "status": "open", "notes": null, "verified_at": null, "created_at": T0, "updated_at": T0}),
    };
    let err = e.import(&c, vec![bad]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let unknown = ExportRecord::Record {
        kind: "wish".into(),
        record: serde_json::json!({}),
    };
    assert!(matches!(
        e.import(&c, vec![unknown]).await.unwrap_err(),
        Error::InvalidInput(_)
    ));
}
