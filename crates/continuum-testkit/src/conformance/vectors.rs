//! Conformance cases for vectors: storage per model and tenant, the vector log, and the
//! optional search capability ([`continuum_core::VectorSearch`]).

use super::*;

pub async fn vectors_are_kept_per_model_and_tenant(make: &Factory) {
    use continuum_core::embed::VectorCount;
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let (t1, t2) = (tenant("t1"), tenant("t2"));
    let mut ids = Vec::new();
    for text in ["first note", "second note", "third note"] {
        ids.push(
            e.remember(&t1, RememberRequest::new(text, Source::Fact))
                .await
                .unwrap()
                .id,
        );
    }
    let other = e
        .remember(&t2, RememberRequest::new("elsewhere", Source::Fact))
        .await
        .unwrap()
        .id;
    let store = &s.store;
    let all = store.pending_embeddings(None, "m", 0, 100).await.unwrap();
    assert_eq!(all.len(), 4, "every tenant's memories are pending");
    assert!(all.windows(2).all(|w| w[0].pos < w[1].pos), "store order");
    let mine = store
        .pending_embeddings(Some(&t1), "m", 0, 100)
        .await
        .unwrap();
    assert_eq!(
        mine.iter().map(|p| p.id).collect::<Vec<_>>(),
        ids,
        "one tenant's, oldest first"
    );
    assert_eq!(mine[1].content, "second note");
    let paged = store
        .pending_embeddings(Some(&t1), "m", mine[0].pos, 1)
        .await
        .unwrap();
    assert_eq!(paged[0].id, ids[1], "pages follow the position cursor");

    let v = |x: f32| vec![x, 1.0 - x, 0.5];
    let n = store
        .put_vectors(&t1, "m", 3, &[(ids[0], v(0.1)), (ids[1], v(0.2))])
        .await
        .unwrap();
    assert_eq!(n, 2);
    // Another tenant's memory cannot be given a vector through this tenant.
    assert_eq!(
        store
            .put_vectors(&t1, "m", 3, &[(other, v(0.9))])
            .await
            .unwrap(),
        0
    );
    // A vector of the wrong dimension is refused and stores nothing.
    assert!(
        store
            .put_vectors(&t1, "m", 3, &[(ids[2], v(0.3)), (ids[2], vec![1.0])])
            .await
            .is_err()
    );
    let pending: Vec<_> = store
        .pending_embeddings(Some(&t1), "m", 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(pending, vec![ids[2]]);
    let got = store.vectors_since(&t1, "m", 0, 100).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|g| (g.id, g.vector.clone()))
            .collect::<Vec<_>>(),
        vec![(ids[0], v(0.1)), (ids[1], v(0.2))],
        "vectors come back bit for bit, in log order"
    );
    assert!(
        store
            .vectors_since(&t2, "m", 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Replacing a vector moves it to the end of the log.
    let last = got[1].seq;
    store
        .put_vectors(&t1, "m", 3, &[(ids[0], v(0.7))])
        .await
        .unwrap();
    let newer = store.vectors_since(&t1, "m", last, 100).await.unwrap();
    assert_eq!(newer.len(), 1);
    assert_eq!((newer[0].id, newer[0].vector.clone()), (ids[0], v(0.7)));
    assert!(newer[0].seq > last);
    // Models are kept apart.
    store
        .put_vectors(&t1, "m2", 2, &[(ids[0], vec![1.0, 0.0])])
        .await
        .unwrap();
    assert_eq!(
        store.vectors_since(&t1, "m", 0, 100).await.unwrap().len(),
        2
    );
    assert_eq!(
        store.vector_counts(&t1).await.unwrap(),
        vec![
            VectorCount {
                model: "m".into(),
                dim: 3,
                count: 2
            },
            VectorCount {
                model: "m2".into(),
                dim: 2,
                count: 1
            }
        ]
    );
    assert_eq!(store.drop_vectors_except(&t1, "m").await.unwrap(), 1);
    assert_eq!(store.vector_counts(&t1).await.unwrap().len(), 1);
    // Forgetting a memory deletes its vectors.
    e.forget(&t1, &ForgetSelector::Ids(vec![ids[0]]))
        .await
        .unwrap();
    let left = store.vectors_since(&t1, "m", 0, 100).await.unwrap();
    assert_eq!(left.iter().map(|g| g.id).collect::<Vec<_>>(), vec![ids[1]]);
    assert_eq!(store.vector_counts(&t1).await.unwrap()[0].count, 1);
}

pub async fn recall_finds_paraphrases_through_vectors(make: &Factory) {
    let s = make().await;
    let (plain, _) = engine(s.store.clone());
    let embedder = std::sync::Arc::new(crate::TopicEmbedder::default());
    let semantic = plain.clone().with_embedder(embedder.clone());
    let t = tenant("t1");
    let target = plain
        .remember(
            &t,
            RememberRequest::new("My dog adores chasing tennis balls.", Source::Fact),
        )
        .await
        .unwrap();
    for text in [
        "The quarterly budget review is on Thursday.",
        "Deploy the service with Kubernetes.",
    ] {
        plain
            .remember(&t, RememberRequest::new(text, Source::Fact))
            .await
            .unwrap();
    }
    let q = RecallRequest::new("Which pet likes to play fetch?");
    let before = plain.recall(&t, &q).await.unwrap();
    assert!(
        before.memories.iter().all(|m| m.id != target.id),
        "no keyword is shared, so text and concepts alone cannot find it"
    );
    // Not embedded yet: recall works and says so.
    let pending = semantic.recall(&t, &q).await.unwrap();
    assert_eq!(pending.semantic.as_ref().unwrap().embedded, 0);
    let report = semantic.reindex(&t, false, &mut |_, _| {}).await.unwrap();
    assert_eq!(report.embedded, 3);
    assert_eq!(
        semantic
            .reindex(&t, false, &mut |_, _| {})
            .await
            .unwrap()
            .embedded,
        0,
        "a second run has nothing left to do"
    );
    let after = semantic.recall(&t, &q).await.unwrap();
    assert_eq!(after.semantic.as_ref().unwrap().embedded, 3);
    assert_eq!(after.memories[0].id, target.id, "{:?}", after.memories);
    assert!(after.memories[0].signals.semantic > 0.99);
    assert_eq!(after.memories[0].signals.lexical, 0.0);
    // Memories learned later are embedded by the worker, without blocking the write.
    let stop = continuum_engine::CancellationToken::new();
    let worker = {
        let (e, stop) = (semantic.clone(), stop.clone());
        tokio::spawn(async move { e.run_embed_worker(stop, |err| panic!("{err}")).await })
    };
    let cat = semantic
        .remember(
            &t,
            RememberRequest::new("Our cat naps in the sun all day.", Source::Fact),
        )
        .await
        .unwrap();
    let mut waited = 0;
    while semantic.embedding_status(&t).await.unwrap().pending > 0 {
        assert!(waited < 200, "the worker did not embed the new memory");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    // Cancelled, the worker returns at its next safe point.
    stop.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), worker)
        .await
        .expect("the worker stops when cancelled")
        .unwrap();
    let r = semantic
        .recall(&t, &RecallRequest::new("Which animal sleeps in sunshine?"))
        .await
        .unwrap();
    assert_eq!(r.memories[0].id, cat.id, "{:?}", r.memories);
    // Forgotten memories leave the vector index too.
    semantic
        .forget(&t, &ForgetSelector::Ids(vec![cat.id]))
        .await
        .unwrap();
    let r = semantic
        .recall(&t, &RecallRequest::new("Which animal sleeps in sunshine?"))
        .await
        .unwrap();
    assert!(r.memories.iter().all(|m| m.id != cat.id));
    assert!(
        embedder.calls() >= 3,
        "query and memory embeddings went through the embedder"
    );
}

/// A store that searches vectors itself (PostgreSQL with pgvector) must find what an exact scan
/// finds, honour filters and tenants, and forget with the memory; one that does not must say
/// so with an error rather than answer wrongly.
pub async fn stores_that_search_vectors_agree_with_an_exact_scan(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let store = &s.store;
    let (t1, t2) = (tenant("t1"), tenant("t2"));
    const DIM: usize = 16;
    // A fixed pseudo-random sequence: the same vectors on every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut unit = || {
        let mut v: Vec<f32> = (0..DIM)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 20_000) as f32 / 10_000.0 - 1.0
            })
            .collect();
        continuum_core::embed::normalize(&mut v);
        v
    };
    let mut mine = Vec::new();
    for i in 0..40 {
        let source = if i % 2 == 0 {
            Source::Fact
        } else {
            Source::Note
        };
        let id = e
            .remember(&t1, RememberRequest::new(format!("memory {i}"), source))
            .await
            .unwrap()
            .id;
        mine.push((id, source, unit()));
    }
    let theirs = e
        .remember(&t2, RememberRequest::new("another tenant's", Source::Fact))
        .await
        .unwrap()
        .id;
    let query = unit();
    // Searching vectors is a capability a store has or has not; without it there is nothing
    // to call.
    let Some(search) = store.vector_search() else {
        assert!(!store.searches_vectors());
        return;
    };
    let with_vectors: Vec<(MemoryId, Vec<f32>)> = mine
        .iter()
        .take(36) // the last four have no vector
        .map(|(id, _, v)| (*id, v.clone()))
        .collect();
    store
        .put_vectors(&t1, "m", DIM, &with_vectors)
        .await
        .unwrap();
    // The other tenant's vector is the query itself: the best match, if tenants leaked.
    store
        .put_vectors(&t2, "m", DIM, &[(theirs, query.clone())])
        .await
        .unwrap();
    let exact = |filter: &dyn Fn(Source) -> bool, k: usize| -> Vec<(MemoryId, f32)> {
        let mut all: Vec<(MemoryId, f32)> = mine
            .iter()
            .take(36)
            .filter(|(_, s, _)| filter(*s))
            .map(|(id, _, v)| (*id, continuum_core::embed::dot(v, &query)))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        all.truncate(k);
        all
    };
    let close = |got: &[(MemoryId, f32)], want: &[(MemoryId, f32)]| {
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            want.iter().map(|w| w.0).collect::<Vec<_>>(),
            "the nearest memories, best first"
        );
        for (g, w) in got.iter().zip(want) {
            assert!((g.1 - w.1).abs() < 1e-4, "{} against {}", g.1, w.1);
        }
    };
    let got = search
        .nearest_vectors(&t1, "m", &query, &MemoryFilter::default(), 10)
        .await
        .unwrap();
    close(&got, &exact(&|_| true, 10));
    // Asking for more than the tenant has: all of them, in exact order.
    let all = search
        .nearest_vectors(&t1, "m", &query, &MemoryFilter::default(), 100)
        .await
        .unwrap();
    close(&all, &exact(&|_| true, 100));
    let notes = MemoryFilter {
        sources: vec![Source::Note],
        ..MemoryFilter::default()
    };
    let got = search
        .nearest_vectors(&t1, "m", &query, &notes, 5)
        .await
        .unwrap();
    close(&got, &exact(&|s| s == Source::Note, 5));
    // Another model, another dimension: nothing.
    assert!(
        search
            .nearest_vectors(&t1, "other", &query, &MemoryFilter::default(), 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        search
            .nearest_vectors(&t1, "m", &query[..8], &MemoryFilter::default(), 5)
            .await
            .unwrap()
            .is_empty()
    );
    // Scores for chosen memories: those without a vector, and the other tenant's, are left out.
    let ask = [mine[0].0, mine[37].0, theirs, mine[5].0];
    let mut scores = search.vector_scores(&t1, "m", &query, &ask).await.unwrap();
    scores.sort_by_key(|s| s.0);
    let mut want: Vec<(MemoryId, f32)> = [0usize, 5]
        .iter()
        .map(|&i| (mine[i].0, continuum_core::embed::dot(&mine[i].2, &query)))
        .collect();
    want.sort_by_key(|s| s.0);
    assert_eq!(scores.len(), 2, "{scores:?}");
    for (g, w) in scores.iter().zip(&want) {
        assert_eq!(g.0, w.0);
        assert!((g.1 - w.1).abs() < 1e-4);
    }
    // A replaced vector is searched in its new form.
    let best = got_first(store, &t1, &query).await;
    let flipped: Vec<f32> = query.iter().map(|x| -x).collect();
    store
        .put_vectors(&t1, "m", DIM, &[(best, flipped)])
        .await
        .unwrap();
    assert_ne!(got_first(store, &t1, &query).await, best);
    // Forgetting a memory takes its vector out of the search.
    let next = got_first(store, &t1, &query).await;
    e.forget(&t1, &ForgetSelector::Ids(vec![next]))
        .await
        .unwrap();
    assert_ne!(got_first(store, &t1, &query).await, next);
    // Dropping a model's vectors empties its search.
    store.drop_vectors_except(&t1, "other").await.unwrap();
    assert!(
        search
            .nearest_vectors(&t1, "m", &query, &MemoryFilter::default(), 5)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn got_first(
    store: &std::sync::Arc<dyn continuum_core::MemoryStore>,
    t: &TenantId,
    query: &[f32],
) -> MemoryId {
    store
        .vector_search()
        .expect("a store that searches vectors")
        .nearest_vectors(t, "m", query, &MemoryFilter::default(), 1)
        .await
        .unwrap()[0]
        .0
}
