//! Sync: a store's events travel to another store of any backend and merge there by the rules
//! of `continuum_core::sync`.

use super::*;
use continuum_core::sync::{PullPage, SyncEvent};

/// A dump as comparable data: every record but the header, as JSON, sorted (two stores number
/// rows differently, so records with equal times may come in another order).
pub async fn comparable(e: &Engine, t: &TenantId) -> Vec<String> {
    let mut out: Vec<String> = dump(e, t)
        .await
        .into_iter()
        .filter(|r| !matches!(r, ExportRecord::Header(_)))
        .map(|r| serde_json::to_string(&r).unwrap())
        .collect();
    out.sort();
    out
}

/// A pull page holding `events` from `node`, as a remote would send it.
pub fn page(t: &TenantId, node: &str, events: Vec<SyncEvent>) -> PullPage {
    let next = events.last().map_or(0, |e| e.seq);
    PullPage {
        tenant: t.clone(),
        node: node.to_string(),
        events,
        next,
        head: next,
    }
}

pub async fn sync_applies_another_nodes_events_once_and_forgets_win(make: &Factory) {
    let (sa, sb, sc) = (make().await, make().await, make().await);
    let (a, _) = engine(sa.store.clone());
    let (b, _) = engine(sb.store.clone());
    let (c, _) = engine(sc.store.clone());
    let t = tenant("t1");
    let (na, nb) = (a.node_id().await.unwrap(), b.node_id().await.unwrap());
    assert_ne!(na, nb, "every store has its own node id");
    continuum_core::sync::check_node_id(&na).unwrap();

    // Node A: overlapping concepts, a decision, a supersede and a forget.
    for (u, r) in [
        (
            "We deploy Kafka with Redis",
            "Kafka and Redis run on Kubernetes",
        ),
        (
            "Redis caches the Kafka offsets",
            "We decided to use Postgres for billing",
        ),
        (
            "Kafka needs three brokers",
            "Kubernetes schedules the Kafka brokers",
        ),
    ] {
        a.learn(&t, in_session(turn(u, r), "s1")).await.unwrap();
    }
    let old = a
        .remember(
            &t,
            RememberRequest::new("The office is in Lyon", Source::Fact),
        )
        .await
        .unwrap();
    a.supersede(
        &t,
        old.id,
        RememberRequest::new("The office moved to Nantes", Source::Fact),
    )
    .await
    .unwrap();
    let gone = a
        .remember(
            &t,
            RememberRequest::new("A secret to forget about Zookeeper", Source::Note),
        )
        .await
        .unwrap();

    // B takes A's events so far.
    let out = a.sync_outgoing(&t, 0, 1000).await.unwrap();
    assert!(out.iter().all(|e| e.origin == na && e.origin_seq == e.seq));
    assert!(out.windows(2).all(|w| w[0].seq < w[1].seq));
    let r = b.sync_apply(&t, &page(&t, &na, out.clone())).await.unwrap();
    assert!(r.applied > 0);
    assert_eq!(comparable(&a, &t).await, comparable(&b, &t).await);
    // The same page again changes nothing.
    let again = b.sync_apply(&t, &page(&t, &na, out.clone())).await.unwrap();
    assert_eq!(again.applied, 0);
    assert_eq!(again.skipped, out.len() as u64);
    // B wrote nothing of its own; what it holds keeps A as origin.
    assert!(b.sync_outgoing(&t, 0, 1000).await.unwrap().is_empty());
    let relayed = sb
        .store
        .sync_events(&t, 0, 1000, false, None)
        .await
        .unwrap();
    assert!(!relayed.is_empty() && relayed.iter().all(|e| e.origin == na));
    assert!(
        sb.store
            .sync_events(&t, 0, 1000, false, Some(&na))
            .await
            .unwrap()
            .is_empty(),
        "a puller's own events are left out"
    );

    // B forgets one of A's memories; the forget travels back and A forgets it too.
    b.forget(&t, &ForgetSelector::Ids(vec![gone.id]))
        .await
        .unwrap();
    let from_b = b.sync_outgoing(&t, 0, 1000).await.unwrap();
    assert_eq!(from_b.len(), 1, "{from_b:?}");
    assert!(from_b[0].origin == nb);
    a.sync_apply(&t, &page(&t, &nb, from_b.clone()))
        .await
        .unwrap();
    assert!(a.get(&t, gone.id).await.is_err(), "forgotten on A too");
    assert_eq!(comparable(&a, &t).await, comparable(&b, &t).await);
    // A relays nothing of B's back to B, and has nothing new of its own.
    let since = out.last().unwrap().seq;
    assert!(a.sync_outgoing(&t, since, 1000).await.unwrap().is_empty());

    // Same recall on both nodes.
    let rq = RecallRequest::new("where do the Kafka brokers run");
    let ra = a.recall(&t, &rq).await.unwrap();
    let rb = b.recall(&t, &rq).await.unwrap();
    assert_eq!(recall_fingerprint(&ra), recall_fingerprint(&rb));

    // C meets B's forget before A's create: the forgotten memory never appears. A's events
    // come in two halves, one of them twice.
    c.sync_apply(&t, &page(&t, &nb, from_b)).await.unwrap();
    let half = out.len() / 2;
    for part in [&out[..half], &out[..half], &out[half..], &out[..]] {
        c.sync_apply(&t, &page(&t, &na, part.to_vec()))
            .await
            .unwrap();
    }
    assert!(c.get(&t, gone.id).await.is_err());
    assert_eq!(comparable(&a, &t).await, comparable(&c, &t).await);
    let from_a = out;

    // A page naming another tenant is refused and nothing of it is applied.
    let (sd, _) = (make().await, ());
    let (d, _) = engine(sd.store.clone());
    let mut forged = from_a.clone();
    forged[1].tenant = tenant("someone-else");
    let err = d.sync_apply(&t, &page(&t, &na, forged)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(d.stats(&t).await.unwrap().store.memories, 0);
}

/// A store given a new node id (what a restore does) keeps its past events under the old id:
/// served to others they are still the old node's, which those have applied already, and
/// coming back they are skipped; what it writes next is its new id's.
pub async fn a_renewed_node_keeps_its_past_under_the_old_id(make: &Factory) {
    let (sa, sb) = (make().await, make().await);
    let (a, _) = engine(sa.store.clone());
    let (b, _) = engine(sb.store.clone());
    let t = tenant("t1");
    for (u, r) in [
        (
            "We deploy Kafka with Redis",
            "Kafka and Redis run on Kubernetes",
        ),
        (
            "Redis caches the Kafka offsets",
            "Kubernetes schedules Kafka",
        ),
    ] {
        a.learn(&t, in_session(turn(u, r), "s1")).await.unwrap();
    }
    let old = a.node_id().await.unwrap();
    let before = a.sync_outgoing(&t, 0, 1000).await.unwrap();
    assert!(!before.is_empty());
    assert!(before.iter().all(|e| e.origin == old));
    // B has A's events.
    b.sync_apply(&t, &page(&t, &old, before.clone()))
        .await
        .unwrap();
    let b_links = comparable(&b, &t).await;

    let new = a.renew_node_id(&t).await.unwrap();
    assert_ne!(new, old);
    assert_eq!(a.node_id().await.unwrap(), new);
    continuum_core::sync::check_node_id(&new).unwrap();
    assert!(
        a.sync_outgoing(&t, 0, 1000).await.unwrap().is_empty(),
        "nothing of the past is the new node's to push"
    );
    let served = a.synced_events(&t, &t, 0, 1000).await.unwrap();
    assert_eq!(
        served
            .iter()
            .map(|e| (&e.origin, e.origin_seq))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|e| (&e.origin, e.origin_seq))
            .collect::<Vec<_>>(),
        "the past is served under the old id, at its old positions"
    );
    // Its own past coming back (from B, say) changes nothing.
    let dump_before = comparable(&a, &t).await;
    let r = a.sync_apply(&t, &page(&t, &old, before)).await.unwrap();
    assert_eq!(r.applied, 0, "{r:?}");
    assert_eq!(comparable(&a, &t).await, dump_before);
    // B, given what A serves now, changes nothing either.
    b.sync_apply(&t, &page(&t, &new, served)).await.unwrap();
    assert_eq!(comparable(&b, &t).await, b_links);

    // A new write is the new id's, and reaches B.
    a.learn(
        &t,
        in_session(turn("Zookeeper is retired", "Kafka uses KRaft now"), "s2"),
    )
    .await
    .unwrap();
    let out = a.sync_outgoing(&t, 0, 1000).await.unwrap();
    assert!(!out.is_empty() && out.iter().all(|e| e.origin == new));
    b.sync_apply(&t, &page(&t, &new, out)).await.unwrap();
    assert_eq!(comparable(&b, &t).await, comparable(&a, &t).await);
}

/// Reflection records travel whole; two nodes that changed one record keep the same version
/// (the later, ties by text) whatever the order their events arrive in.
pub async fn reflection_records_sync_and_the_latest_version_wins(make: &Factory) {
    use continuum_engine::{BeliefRequest, ClaimRequest, IntentionRequest};
    let (sa, sb, sc) = (make().await, make().await, make().await);
    let (a, clock_a) = engine(sa.store.clone());
    let (b, clock_b) = engine(sb.store.clone());
    let (c, _) = engine(sc.store.clone());
    let t = tenant("t1");
    let (na, nb) = (a.node_id().await.unwrap(), b.node_id().await.unwrap());
    let i = a
        .intention_add(
            &t,
            &IntentionRequest {
                text: "Renew the certificate".into(),
                priority: Some(8),
                session: None,
            },
        )
        .await
        .unwrap();
    a.belief_add(
        &t,
        &BeliefRequest {
            text: "The deadline is Friday".into(),
            domain: Some("project".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    a.belief_add(
        &t,
        &BeliefRequest {
            text: "The deadline is Monday".into(),
            domain: Some("project".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let claim = a
        .claim_add(
            &t,
            &ClaimRequest {
                text: "It ships this week".into(),
                confidence: 0.6,
                category: None,
            },
        )
        .await
        .unwrap();
    a.graph_snapshot(&t, None).await.unwrap();
    let out = a.sync_outgoing(&t, 0, 1000).await.unwrap();
    assert_eq!(out.len(), 6, "{out:?}");
    b.sync_apply(&t, &page(&t, &na, out.clone())).await.unwrap();
    assert_eq!(comparable(&a, &t).await, comparable(&b, &t).await);
    assert_eq!(b.contradictions(&t, None, 10).await.unwrap().len(), 1);

    // Both change the intention while apart: B a minute later than A.
    clock_a.advance_millis(1_000);
    clock_b.advance_millis(60_000);
    a.intention_done(&t, &i.id).await.unwrap();
    b.intention_abandon(&t, &i.id, Some("moved to the ops team"))
        .await
        .unwrap();
    b.claim_verify(&t, &claim.id, true, None).await.unwrap();
    let since_a = out.last().unwrap().seq;
    let from_a = a.sync_outgoing(&t, since_a, 1000).await.unwrap();
    let from_b = b.sync_outgoing(&t, 0, 1000).await.unwrap();
    assert_eq!((from_a.len(), from_b.len()), (1, 2));
    a.sync_apply(&t, &page(&t, &nb, from_b.clone()))
        .await
        .unwrap();
    b.sync_apply(&t, &page(&t, &na, from_a.clone()))
        .await
        .unwrap();
    // C gets them the other way round.
    c.sync_apply(&t, &page(&t, &nb, from_b)).await.unwrap();
    let everything_of_a = a.sync_outgoing(&t, 0, 1000).await.unwrap();
    c.sync_apply(&t, &page(&t, &na, everything_of_a))
        .await
        .unwrap();
    for e in [&a, &b, &c] {
        let i = &e.intentions(&t, None, 10).await.unwrap()[0];
        assert_eq!(
            i.status,
            continuum_core::reflection::IntentionStatus::Abandoned,
            "the later change wins on every node"
        );
        let cal = e
            .calibration(&t, &continuum_engine::CalibrationRequest::default())
            .await
            .unwrap();
        assert_eq!(cal.overall.claims, 1);
    }
    assert_eq!(comparable(&a, &t).await, comparable(&b, &t).await);
    assert_eq!(comparable(&a, &t).await, comparable(&c, &t).await);

    // A pushed record over its limits is refused whole.
    let mut bad = out[0].clone();
    if let continuum_core::Event::IntentionSaved {
        record: Some(r), ..
    } = &mut bad.event
    {
        r.priority = 0;
    } else {
        panic!("{bad:?}");
    }
    let (sd, _) = (make().await, ());
    let (d, _) = engine(sd.store.clone());
    let err = d
        .sync_apply(&t, &page(&t, &na, vec![bad]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert!(d.intentions(&t, None, 10).await.unwrap().is_empty());
}
