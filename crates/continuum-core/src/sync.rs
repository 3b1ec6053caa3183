//! Sync between Continuum nodes: the wire shapes, the limits and the merge rules.
//!
//! A node pushes the events it wrote itself and pulls the events its remote holds; each side
//! applies the other's events with [`plan`], which decides from what the receiving store knows
//! ([`Facts`]) what each event changes. The rules make the result independent of the order in
//! which two nodes' event streams arrive, and of duplicates and replays:
//! - every event carries its origin node and the origin's log position; a store applies an
//!   (origin, position) at most once, remembering per origin the highest position applied
//!   (one origin's events always arrive in its own order);
//! - memories are immutable by id: a create is applied once; a forget leaves a tombstone, so a
//!   create that arrives after it is dropped (a forgotten memory never comes back);
//! - every supersession is kept (also of a memory not here yet, which gets it on arrival); a
//!   memory shows its largest replacement still held (ids are time-ordered: the latest) and the
//!   earliest end; forgetting a replacement falls back on the others;
//! - link increments are co-occurrence counts, added once per origin event; the store caps the
//!   strength after adding and rounds it to 9 decimals, so the same events give the same
//!   strengths in any order. One exception: forgetting the last memory that mentions a concept
//!   deletes the concept with its links, so a node where that happened keeps only the
//!   co-occurrences that came after, while a node that still held another mention keeps all;
//! - decisions merge by id and need their memory;
//! - reflection records (intentions, beliefs, contradictions, claims, graph snapshots) travel
//!   whole, each `*.saved` event carrying the record as it then was; a store keeps the version
//!   with the latest `updated_at` (ties: the larger JSON text), so every node ends with the same
//!   one whatever the order.
//!
//! Only these types travel: [`SYNCED_TYPES`]. Keys, tenants, vectors (each node embeds with its
//! own model) and derived events (`concept.created`, `memory.updated`, `session.forgotten`) do
//! not: the receiving store derives them again.

use crate::error::{Error, Result};
use crate::event::{EVENT_VERSION, Event};
use crate::ids::{MemoryId, TenantId};
use crate::store::{MemoryWrite, WriteBatch};
use crate::time::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The most events one push carries or one pull page returns.
pub const MAX_SYNC_EVENTS: usize = 1000;

/// The longest concept key or name a synced event may carry.
pub const MAX_KEY_BYTES: usize = 200;

/// The event types that sync carries.
pub const SYNCED_TYPES: [&str; 10] = [
    "memory.created",
    "memory.superseded",
    "memory.forgotten",
    "links.strengthened",
    "decision.created",
    "intention.saved",
    "belief.saved",
    "contradiction.saved",
    "claim.saved",
    "snapshot.saved",
];

/// Whether events of this type travel between nodes.
pub fn is_synced(kind: &str) -> bool {
    SYNCED_TYPES.contains(&kind)
}

/// Checks a node id: 1 to 64 characters of `a-z 0-9 -`.
pub fn check_node_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "'{}' is not a node id (1 to 64 of a-z, 0-9, '-')",
            id.chars().take(80).collect::<String>()
        )))
    }
}

/// An event as it travels: where it was first written, and where it sits in the sender's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncEvent {
    /// The node that first wrote the event.
    #[schemars(regex(pattern = r"^[a-z0-9-]{1,64}$"))]
    pub origin: String,
    /// Its position in the origin's log.
    #[schemars(range(min = 1))]
    pub origin_seq: u64,
    /// Its position in the sender's log (what a puller resumes after).
    #[schemars(range(min = 1))]
    pub seq: u64,
    pub tenant: TenantId,
    pub at: Timestamp,
    /// The payload version (this build reads up to 1).
    #[schemars(range(max = 1))]
    pub v: u32,
    #[serde(flatten)]
    pub event: Event,
}

/// `POST /v1/sync/push`: events the sender wrote itself, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The sending node.
    #[schemars(regex(pattern = r"^[a-z0-9-]{1,64}$"))]
    pub node: String,
    /// Oldest first, in ascending `seq`; at most 1000.
    #[schemars(length(max = 1000))]
    pub events: Vec<SyncEvent>,
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PushReceipt {
    /// The receiving node.
    pub node: String,
    /// Events that changed something.
    pub applied: u64,
    /// Events already applied, or that changed nothing (a create of a forgotten memory).
    pub skipped: u64,
    /// The largest `seq` of the request: the sender's log is acknowledged up to here.
    pub through: u64,
}

/// `GET /v1/sync/pull`: a page of the tenant's synced events after `since`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PullPage {
    /// The tenant the key belongs to on the serving node.
    pub tenant: TenantId,
    /// The serving node.
    pub node: String,
    pub events: Vec<SyncEvent>,
    /// The position to ask after next time.
    pub next: u64,
    /// The serving node's latest position for the tenant when the page was read.
    pub head: u64,
}

/// The sync state of one (remote, tenant) pair, kept by the node that syncs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncPeer {
    /// The remote's base URL.
    pub remote: String,
    /// The local tenant.
    pub tenant: TenantId,
    /// The remote's node id and tenant, once known.
    pub remote_node: Option<String>,
    pub remote_tenant: Option<TenantId>,
    /// Local events up to here were acknowledged by the remote.
    pub pushed_through: u64,
    /// The remote's events up to here were applied here.
    pub pulled_through: u64,
    pub last_success: Option<Timestamp>,
    pub last_error: Option<String>,
    pub updated_at: Timestamp,
}

/// What the receiving store knows of a memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryFact {
    /// Never seen here.
    Absent,
    /// Held here.
    Live,
    /// Forgotten here (a tombstone).
    Forgotten,
}

/// What [`plan`] needs of the receiving store, read in the transaction that applies the plan.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Every memory the events name (see [`Facts::memory_ids`]); missing means absent.
    pub memories: HashMap<MemoryId, MemoryFact>,
    /// Per origin, the highest position applied.
    pub applied: HashMap<String, u64>,
}

impl Facts {
    /// The memory ids whose facts [`plan`] reads.
    pub fn memory_ids(events: &[SyncEvent]) -> Vec<MemoryId> {
        let mut out: Vec<MemoryId> = Vec::new();
        for e in events {
            match &e.event {
                Event::MemoryCreated { id, .. } | Event::MemoryForgotten { id } => out.push(*id),
                Event::MemorySuperseded { id, by } => {
                    out.push(*id);
                    out.extend(*by);
                }
                Event::DecisionCreated {
                    decision: Some(d), ..
                } => out.push(d.memory_id),
                _ => {}
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The origins whose applied positions [`plan`] reads.
    pub fn origins(events: &[SyncEvent]) -> Vec<String> {
        let mut out: Vec<String> = events.iter().map(|e| e.origin.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    fn fact(&self, id: &MemoryId) -> MemoryFact {
        self.memories.get(id).copied().unwrap_or(MemoryFact::Absent)
    }
}

/// One change the receiving store makes, in order, in one transaction. The events the store
/// writes for it carry the source event's origin and position.
#[derive(Debug, Clone)]
pub enum Step {
    /// Apply a batch (a memory, a supersession, links or a decision).
    Write(WriteBatch),
    /// Forget a memory held here (and leave a tombstone).
    Forget(MemoryId),
    /// Leave a tombstone for a memory not held here, and record `memory.forgotten` so that
    /// nodes syncing through this one learn of it too.
    Tombstone(MemoryId),
    /// Keep a supersession for a memory not held here (applied when it arrives), and record
    /// `memory.superseded`.
    Pending {
        id: MemoryId,
        by: MemoryId,
        at: Timestamp,
    },
    /// Keep this version of a reflection record if it is newer than the one held (see the
    /// module's rules), and record its `*.saved` event.
    Record(crate::reflection::Record),
}

#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub origin: String,
    pub origin_seq: u64,
    pub step: Step,
}

/// What [`plan`] decided.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub steps: Vec<PlannedStep>,
    pub applied: u64,
    pub skipped: u64,
    /// The new highest applied position of each origin that moved.
    pub applied_through: HashMap<String, u64>,
}

/// Steps grouped for the store: consecutive writes of one origin go to the store in one call
/// (a backend then writes them set-based), other steps one at a time.
#[derive(Debug, Clone)]
pub enum Run {
    Writes(Vec<WriteBatch>),
    One(Step),
}

/// A [`Run`] and the origin position its events are recorded under: the last source event's.
/// Events written for several source events then share one position, which receivers treat
/// as one group (applied whole, never split across pages).
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub origin: String,
    pub origin_seq: u64,
    pub run: Run,
}

/// Groups a plan's steps into runs (see [`Run`]), at most `max_writes` batches per run.
pub fn runs(steps: Vec<PlannedStep>, max_writes: usize) -> Vec<PlannedRun> {
    let mut out: Vec<PlannedRun> = Vec::new();
    for s in steps {
        match s.step {
            Step::Write(b) => {
                if let Some(PlannedRun {
                    origin,
                    origin_seq,
                    run: Run::Writes(batches),
                }) = out.last_mut()
                    && *origin == s.origin
                    && batches.len() < max_writes.max(1)
                {
                    batches.push(b);
                    *origin_seq = s.origin_seq;
                    continue;
                }
                out.push(PlannedRun {
                    origin: s.origin,
                    origin_seq: s.origin_seq,
                    run: Run::Writes(vec![b]),
                });
            }
            other => out.push(PlannedRun {
                origin: s.origin,
                origin_seq: s.origin_seq,
                run: Run::One(other),
            }),
        }
    }
    out
}

/// Decides what `events` (oldest first) change in a store that knows `facts`, and updates
/// `facts` as the steps would. `local` is the receiving node: its own events are skipped.
pub fn plan(local: &str, facts: &mut Facts, events: &[SyncEvent]) -> Plan {
    let mut out = Plan::default();
    // (origin, position) groups opened in this call: a relaying node stores the events it
    // derived from one source event under that event's position, and sends them together.
    let mut open: HashSet<(&str, u64)> = HashSet::new();
    for e in events {
        let hw = facts.applied.get(&e.origin).copied().unwrap_or(0);
        let fresh = e.origin_seq > hw
            || (e.origin_seq == hw && open.contains(&(e.origin.as_str(), e.origin_seq)));
        if e.origin == local || !fresh {
            out.skipped += 1;
            continue;
        }
        open.insert((e.origin.as_str(), e.origin_seq));
        facts.applied.insert(e.origin.clone(), e.origin_seq);
        out.applied_through.insert(e.origin.clone(), e.origin_seq);
        let step = decide(facts, e);
        match step {
            Some(step) => {
                out.applied += 1;
                out.steps.push(PlannedStep {
                    origin: e.origin.clone(),
                    origin_seq: e.origin_seq,
                    step,
                });
            }
            None => out.skipped += 1,
        }
    }
    out
}

fn batch(at: Timestamp) -> WriteBatch {
    WriteBatch {
        at,
        ..WriteBatch::default()
    }
}

fn decide(facts: &mut Facts, e: &SyncEvent) -> Option<Step> {
    match &e.event {
        Event::MemoryCreated {
            id,
            memory: Some(m),
            concepts,
        } if m.id == *id => {
            if facts.fact(id) != MemoryFact::Absent {
                return None;
            }
            // As it was created; the store applies any supersession already here after it.
            let mut memory = (**m).clone();
            memory.superseded_by = None;
            facts.memories.insert(*id, MemoryFact::Live);
            let mut b = batch(e.at);
            b.memories.push(MemoryWrite::new(memory, concepts.clone()));
            Some(Step::Write(b))
        }
        Event::MemorySuperseded { id, by: Some(by) } => {
            if facts.fact(by) == MemoryFact::Forgotten {
                return None;
            }
            match facts.fact(id) {
                MemoryFact::Forgotten => None,
                MemoryFact::Absent => Some(Step::Pending {
                    id: *id,
                    by: *by,
                    at: e.at,
                }),
                MemoryFact::Live => {
                    let mut b = batch(e.at);
                    b.supersedes.push((*id, *by));
                    Some(Step::Write(b))
                }
            }
        }
        Event::MemoryForgotten { id } => {
            let was = facts.fact(id);
            facts.memories.insert(*id, MemoryFact::Forgotten);
            match was {
                MemoryFact::Forgotten => None,
                MemoryFact::Absent => Some(Step::Tombstone(*id)),
                MemoryFact::Live => Some(Step::Forget(*id)),
            }
        }
        Event::DecisionCreated {
            id,
            decision: Some(d),
        } if d.id == *id => match facts.fact(&d.memory_id) {
            MemoryFact::Live => {
                let mut b = batch(e.at);
                b.decisions.push(d.clone());
                Some(Step::Write(b))
            }
            _ => None,
        },
        Event::LinksStrengthened { links } if !links.is_empty() => {
            let mut b = batch(e.at);
            b.links = links.clone();
            Some(Step::Write(b))
        }
        other => other.record().map(Step::Record),
    }
}

/// Checks a pushed batch before anything of it is applied: the size, that every event is of
/// `tenant`, of a version this node reads, of a synced type, from a valid origin, and in
/// ascending `seq`. The error names the first offending event by its index.
pub fn check_push(tenant: &TenantId, req: &PushRequest) -> Result<()> {
    check_events(tenant, &req.node, &req.events)
}

/// [`check_push`] of `events` sent by `node` (a push's, or a pulled page's a push at a time).
pub fn check_events(tenant: &TenantId, node: &str, events: &[SyncEvent]) -> Result<()> {
    check_node_id(node)?;
    if events.len() > MAX_SYNC_EVENTS {
        return Err(Error::InvalidInput(format!(
            "a push carries at most {MAX_SYNC_EVENTS} events ({} sent)",
            events.len()
        )));
    }
    let mut last = 0u64;
    for (i, e) in events.iter().enumerate() {
        if &e.tenant != tenant {
            return Err(Error::Forbidden(format!(
                "event {i} names another tenant than the key's; nothing of this push was applied"
            )));
        }
        let bad = |why: String| {
            Err(Error::InvalidInput(format!(
                "event {i}: {why}; nothing of this push was applied"
            )))
        };
        if e.v > EVENT_VERSION {
            return bad(format!(
                "payload version {} is newer than this node reads ({EVENT_VERSION})",
                e.v
            ));
        }
        if !is_synced(e.event.kind()) {
            return bad(format!("'{}' events are not synced", e.event.kind()));
        }
        if let Err(err) = check_node_id(&e.origin) {
            return bad(err.to_string());
        }
        if e.origin_seq == 0 || e.seq == 0 {
            return bad("positions start at 1".into());
        }
        if e.seq <= last {
            return bad("events must be in ascending seq order".into());
        }
        last = e.seq;
        let key_ok = |k: &str| !k.is_empty() && k.len() <= MAX_KEY_BYTES;
        match &e.event {
            Event::MemoryCreated {
                id,
                memory: Some(m),
                ..
            } if m.id != *id => return bad("the memory's id differs from the event's".into()),
            Event::MemoryCreated { concepts, .. }
                if concepts.iter().any(|c| {
                    !key_ok(&c.key) || c.name.len() > MAX_KEY_BYTES || c.kind.len() > 64
                }) =>
            {
                return bad(format!(
                    "a concept key is 1 to {MAX_KEY_BYTES} bytes, its name at most {MAX_KEY_BYTES}, its kind at most 64"
                ));
            }
            Event::LinksStrengthened { links }
                if links.iter().any(|l| match l {
                    crate::store::LinkWrite::CoOccurred { a, b, .. } => !key_ok(a) || !key_ok(b),
                    crate::store::LinkWrite::AtLeast { a, b, strength, .. } => {
                        !key_ok(a) || !key_ok(b) || !strength.is_finite()
                    }
                }) =>
            {
                return bad(format!(
                    "a link names a concept key that is empty or over {MAX_KEY_BYTES} bytes"
                ));
            }
            Event::DecisionCreated {
                id,
                decision: Some(d),
            } if d.id != *id => return bad("the decision's id differs from the event's".into()),
            other => {
                if let Some(r) = other.record() {
                    if other.record_id() != Some(r.id()) {
                        return bad("the record's id differs from the event's".into());
                    }
                    if let Err(err) = crate::reflection::check_record(&r) {
                        return bad(err.to_string());
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Memory, Source, content_hash};
    use crate::store::LinkWrite;

    fn mem(n: u128) -> Memory {
        Memory {
            id: MemoryId(uuid::Uuid::from_u128(n)),
            session: None,
            source: Source::User,
            kind: "message".into(),
            content: format!("memory {n}"),
            metadata: Default::default(),
            created_at: Timestamp(n as i64),
            content_hash: content_hash(&format!("memory {n}")),
            valid_until: None,
            superseded_by: None,
        }
    }

    fn ev(origin: &str, seq: u64, event: Event) -> SyncEvent {
        SyncEvent {
            origin: origin.into(),
            origin_seq: seq,
            seq,
            tenant: TenantId::new("t").unwrap(),
            at: Timestamp(seq as i64),
            v: EVENT_VERSION,
            event,
        }
    }

    fn created(n: u128) -> Event {
        Event::MemoryCreated {
            id: mem(n).id,
            memory: Some(Box::new(mem(n))),
            concepts: vec![],
        }
    }

    fn id(n: u128) -> MemoryId {
        MemoryId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn an_origin_position_applies_once_and_own_events_never() {
        let mut f = Facts::default();
        let events = vec![
            ev("a", 1, created(1)),
            ev("a", 1, created(1)),
            ev("me", 2, created(2)),
        ];
        let p = plan("me", &mut f, &events);
        assert_eq!((p.applied, p.skipped), (1, 2));
        assert_eq!(f.applied["a"], 1);
        let again = plan("me", &mut f, &events[..1]);
        assert_eq!((again.applied, again.skipped), (0, 1));
    }

    #[test]
    fn a_relayed_group_under_one_position_applies_whole() {
        let mut f = Facts::default();
        let links = Event::LinksStrengthened {
            links: vec![LinkWrite::CoOccurred {
                a: "x".into(),
                b: "y".into(),
                count: 1,
            }],
        };
        let p = plan("me", &mut f, &[ev("a", 4, created(1)), ev("a", 4, links)]);
        assert_eq!(p.applied, 2);
    }

    #[test]
    fn a_forget_wins_over_a_create_that_arrives_later() {
        let mut f = Facts::default();
        let p = plan(
            "me",
            &mut f,
            &[
                ev("b", 1, Event::MemoryForgotten { id: id(1) }),
                ev("a", 1, created(1)),
            ],
        );
        assert!(matches!(p.steps[0].step, Step::Tombstone(_)));
        assert_eq!(p.steps.len(), 1);
        assert_eq!(f.memories[&id(1)], MemoryFact::Forgotten);
    }

    #[test]
    fn a_supersede_of_a_memory_not_here_is_kept_and_one_by_a_forgotten_memory_dropped() {
        let mut f = Facts::default();
        let sup = |by| Event::MemorySuperseded {
            id: id(1),
            by: Some(id(by)),
        };
        let p = plan(
            "me",
            &mut f,
            &[
                ev("b", 1, sup(3)),
                ev("a", 1, created(1)),
                ev("a", 2, sup(2)),
                ev("c", 1, Event::MemoryForgotten { id: id(4) }),
                ev("c", 2, sup(4)),
            ],
        );
        assert!(matches!(p.steps[0].step, Step::Pending { .. }));
        match &p.steps[1].step {
            Step::Write(b) => assert_eq!(b.memories[0].memory.superseded_by, None),
            s => panic!("{s:?}"),
        }
        match &p.steps[2].step {
            Step::Write(b) => assert_eq!(b.supersedes, vec![(id(1), id(2))]),
            s => panic!("{s:?}"),
        }
        assert!(matches!(p.steps[3].step, Step::Tombstone(_)));
        assert_eq!(
            p.steps.len(),
            4,
            "the supersede by a forgotten memory is dropped"
        );
        assert_eq!((p.applied, p.skipped), (4, 1));
    }

    #[test]
    fn consecutive_writes_of_one_origin_form_one_run_under_the_last_position() {
        let mut f = Facts::default();
        let p = plan(
            "me",
            &mut f,
            &[
                ev("a", 1, created(1)),
                ev("a", 2, created(2)),
                ev("a", 3, Event::MemoryForgotten { id: id(1) }),
                ev("a", 4, created(3)),
                ev("b", 1, created(4)),
                ev("b", 2, created(5)),
            ],
        );
        let r = runs(p.steps, 1000);
        let shape: Vec<(&str, u64, usize)> = r
            .iter()
            .map(|r| {
                let n = match &r.run {
                    Run::Writes(b) => b.len(),
                    Run::One(_) => 0,
                };
                (r.origin.as_str(), r.origin_seq, n)
            })
            .collect();
        assert_eq!(
            shape,
            vec![("a", 2, 2), ("a", 3, 0), ("a", 4, 1), ("b", 2, 2)]
        );
    }

    #[test]
    fn a_push_naming_another_tenant_or_broken_is_refused_by_index() {
        let t = TenantId::new("t").unwrap();
        let mut other = ev("a", 2, created(2));
        other.tenant = TenantId::new("u").unwrap();
        let req = PushRequest {
            node: "a".into(),
            events: vec![ev("a", 1, created(1)), other],
        };
        let e = check_push(&t, &req).unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)), "{e}");
        assert!(e.to_string().contains("event 1"), "{e}");
        let key = ev(
            "a",
            1,
            Event::KeyRevoked {
                prefix: "abc".into(),
            },
        );
        let e = check_push(
            &t,
            &PushRequest {
                node: "a".into(),
                events: vec![key],
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("not synced"), "{e}");
        let e = check_push(
            &t,
            &PushRequest {
                node: "a".into(),
                events: vec![ev("a", 2, created(2)), ev("a", 1, created(1))],
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("ascending"), "{e}");
        assert!(check_node_id("Not/A/Node").is_err());
    }
}
