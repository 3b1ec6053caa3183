//! The merge rules as a property: two nodes work independently (learning, forgetting and
//! superseding their own and each other's memories, exchanging events now and then); any
//! interleaving of their two event streams, with duplicates and replays, gives a third store
//! the same state, and the two nodes themselves end equal once each has the other's events.
//!
//! One known exception, checked as such: links, once a concept died anywhere (every memory
//! mentioning it forgotten on that store, by its own forget or one that arrived before the
//! store held the concept's other mentions), which deletes it with its links. That store keeps
//! only the co-occurrences that came after; another keeps the sum. When no concept died on any
//! store, links converge too; memories, supersessions and decisions always do.

use continuum_core::store::ForgetSelector;
use continuum_core::sync::SyncEvent;
use continuum_core::time::Timestamp;
use continuum_core::{MemoryId, Source, TenantId};
use continuum_engine::{Engine, RememberRequest};
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use continuum_testkit::conformance::{comparable, page};
use proptest::prelude::*;
use std::sync::Arc;

struct Node {
    engine: Engine,
    clock: Arc<continuum_core::time::ManualClock>,
    node: String,
    _dir: tempfile::TempDir,
}

async fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("continuum.db"),
        &SqliteOptions::default(),
        Timestamp(0),
    )
    .unwrap();
    let (engine, clock) = continuum_testkit::engine(Arc::new(store));
    let node = engine.node_id().await.unwrap();
    Node {
        engine,
        clock,
        node,
        _dir: dir,
    }
}

const WORDS: [&str; 8] = [
    "Kafka",
    "Redis",
    "Postgres",
    "Kubernetes",
    "Grafana",
    "Nomad",
    "Consul",
    "Vault",
];

#[derive(Debug, Clone)]
enum Op {
    /// Node `n` learns a turn naming two of the words.
    Learn(usize, usize, usize),
    /// Node `n` forgets the k-th memory it holds (if any).
    Forget(usize, usize),
    /// Node `n` supersedes the k-th memory it holds with a new fact naming a word.
    Supersede(usize, usize, usize),
    /// Node `n` receives the other node's events so far.
    Exchange(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, 0..8usize, 0..8usize).prop_map(|(n, a, b)| Op::Learn(n, a, b)),
        1 => (0..2usize, 0..64usize).prop_map(|(n, k)| Op::Forget(n, k)),
        1 => (0..2usize, 0..64usize, 0..8usize).prop_map(|(n, k, w)| Op::Supersede(n, k, w)),
        1 => (0..2usize).prop_map(Op::Exchange),
    ]
}

async fn ids(e: &Engine, t: &TenantId) -> Vec<MemoryId> {
    let p = e
        .list(
            t,
            &Default::default(),
            &continuum_core::store::PageRequest {
                limit: 1000,
                cursor: None,
                order: continuum_core::store::Order::OldestFirst,
            },
        )
        .await
        .unwrap();
    p.items.iter().map(|m| m.id).collect()
}

/// Every event of `from`'s own after `after`, applied to `to`.
async fn exchange(from: &Node, to: &Node, t: &TenantId, after: &mut u64) {
    let events = from.engine.sync_outgoing(t, *after, 1000).await.unwrap();
    if let Some(last) = events.last() {
        *after = last.seq;
        to.engine
            .sync_apply(t, &page(t, &from.node, events))
            .await
            .unwrap();
    }
}

/// Cuts a stream into chunks at the given points.
fn chunks(events: &[SyncEvent], cuts: &[usize]) -> Vec<Vec<SyncEvent>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (events.len() + 1)).collect();
    points.push(0);
    points.push(events.len());
    points.sort();
    points.dedup();
    points
        .windows(2)
        .map(|w| events[w[0]..w[1]].to_vec())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Interleaves the chunks of two streams (each in its own order) by `picks`, and replays an
/// earlier chunk wherever `replays` says.
fn interleave(
    a: Vec<Vec<SyncEvent>>,
    b: Vec<Vec<SyncEvent>>,
    picks: &[bool],
    replays: &[usize],
) -> Vec<(usize, Vec<SyncEvent>)> {
    let (mut ia, mut ib) = (0, 0);
    let mut out: Vec<(usize, Vec<SyncEvent>)> = Vec::new();
    let mut i = 0;
    while ia < a.len() || ib < b.len() {
        let take_a = ib >= b.len() || (ia < a.len() && picks.get(i).copied().unwrap_or(true));
        if take_a {
            out.push((0, a[ia].clone()));
            ia += 1;
        } else {
            out.push((1, b[ib].clone()));
            ib += 1;
        }
        if let Some(r) = replays.get(i)
            && *r < out.len()
            && r % 3 == 0
        {
            out.push(out[*r].clone());
        }
        i += 1;
    }
    out
}

async fn scenario(
    ops: Vec<Op>,
    cuts: [Vec<usize>; 4],
    picks: [Vec<bool>; 2],
    replays: [Vec<usize>; 2],
) {
    let t = TenantId::new("t").unwrap();
    let nodes = [node().await, node().await];
    // Per direction, the position of the sender's log already delivered.
    let mut sent = [0u64, 0u64];
    let mut n_fact = 0;
    for (i, op) in ops.into_iter().enumerate() {
        // Each write at its own time (link and supersession times must travel as written).
        for n in &nodes {
            n.clock.advance_millis(1 + i as i64 % 3);
        }
        match op {
            Op::Learn(n, a, b) => {
                let turn = continuum_core::memory::Turn {
                    user_message: format!("Should {} talk to {}?", WORDS[a], WORDS[b]),
                    ai_response: format!("{} already talks to {}.", WORDS[b], WORDS[a]),
                    thinking: None,
                    session_id: None,
                    metadata: None,
                    timestamp: None,
                };
                nodes[n].engine.learn(&t, turn).await.unwrap();
            }
            Op::Forget(n, k) => {
                let held = ids(&nodes[n].engine, &t).await;
                if !held.is_empty() {
                    let id = held[k % held.len()];
                    nodes[n]
                        .engine
                        .forget(&t, &ForgetSelector::Ids(vec![id]))
                        .await
                        .unwrap();
                }
            }
            Op::Supersede(n, k, w) => {
                let held = ids(&nodes[n].engine, &t).await;
                if !held.is_empty() {
                    n_fact += 1;
                    let id = held[k % held.len()];
                    nodes[n]
                        .engine
                        .supersede(
                            &t,
                            id,
                            RememberRequest::new(
                                format!("Fact {n_fact}: {} is the answer", WORDS[w]),
                                Source::Fact,
                            ),
                        )
                        .await
                        .unwrap();
                }
            }
            Op::Exchange(n) => {
                let from = 1 - n;
                exchange(&nodes[from], &nodes[n], &t, &mut sent[from]).await;
            }
        }
    }
    let streams: Vec<Vec<SyncEvent>> = futures_all(&nodes, &t).await;

    // Two receivers, two different interleavings with replays.
    let mut states = Vec::new();
    // Whether a concept died on any store (see the module's note).
    let mut died = false;
    for r in 0..2 {
        let c = node().await;
        let order = interleave(
            chunks(&streams[0], &cuts[2 * r]),
            chunks(&streams[1], &cuts[2 * r + 1]),
            &picks[r],
            &replays[r],
        );
        for (from, events) in order {
            c.engine
                .sync_apply(&t, &page(&t, &nodes[from].node, events))
                .await
                .unwrap();
        }
        states.push(comparable(&c.engine, &t).await);
        died |= a_concept_died(&c.engine, &t).await;
    }
    for n in &nodes {
        died |= a_concept_died(&n.engine, &t).await;
    }
    if !died {
        assert_same(&states[0], &states[1], "two interleavings, one state");
    } else {
        assert_same(
            &without_links(&states[0]),
            &without_links(&states[1]),
            "two interleavings, one state",
        );
    }

    // The nodes finish the exchange and hold that state too.
    for (from, to) in [(0, 1), (1, 0)] {
        exchange(&nodes[from], &nodes[to], &t, &mut sent[from]).await;
    }
    let a = comparable(&nodes[0].engine, &t).await;
    let b = comparable(&nodes[1].engine, &t).await;
    for n in &nodes {
        died |= a_concept_died(&n.engine, &t).await;
    }
    if !died {
        assert_same(&a, &b, "the two nodes agree");
        assert_same(&a, &states[0], "and agree with the receivers");
    } else {
        assert_same(
            &without_links(&a),
            &without_links(&b),
            "the two nodes agree",
        );
        assert_same(
            &without_links(&a),
            &without_links(&states[0]),
            "and agree with the receivers",
        );
    }
}

fn without_links(records: &[String]) -> Vec<String> {
    records
        .iter()
        .filter(|r| !r.starts_with(r#"{"type":"link""#))
        .cloned()
        .collect()
}

/// Equal, or a panic naming only the records that differ.
fn assert_same(x: &[String], y: &[String], what: &str) {
    let only_x: Vec<&String> = x.iter().filter(|r| !y.contains(r)).collect();
    let only_y: Vec<&String> = y.iter().filter(|r| !x.contains(r)).collect();
    assert!(
        only_x.is_empty() && only_y.is_empty(),
        "{what}: only in the first {only_x:#?}\nonly in the second {only_y:#?}"
    );
}

/// Whether a concept was ever deleted on this store: every creation is in the event log, so
/// more `concept.created` events than concepts means one died (and maybe came back).
async fn a_concept_died(e: &Engine, t: &TenantId) -> bool {
    let held = e.list_concepts(t, 1000, 0).await.unwrap().len();
    let mut created = 0;
    let mut since = 0;
    loop {
        let page = e.events(t, since, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        since = last.seq;
        created += page
            .iter()
            .filter(|r| r.event.kind() == "concept.created")
            .count();
    }
    created > held
}

async fn futures_all(nodes: &[Node; 2], t: &TenantId) -> Vec<Vec<SyncEvent>> {
    let mut out = Vec::new();
    for n in nodes {
        out.push(n.engine.sync_outgoing(t, 0, 1000).await.unwrap());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn any_interleaving_with_replays_merges_to_one_state(
        ops in proptest::collection::vec(op(), 1..40),
        cuts in proptest::array::uniform4(proptest::collection::vec(0usize..200, 0..6)),
        picks in proptest::array::uniform2(proptest::collection::vec(any::<bool>(), 0..20)),
        replays in proptest::array::uniform2(proptest::collection::vec(0usize..20, 0..20)),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(scenario(ops, cuts, picks, replays));
    }
}
