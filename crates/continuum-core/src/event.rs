//! The event log: one typed, tenant-tagged, ordered record of every write.
//!
//! Every store appends these in the same transaction as the change they describe, numbered in
//! one store-wide, gap-free sequence in commit order. Everything downstream (the derived index,
//! recall's read cache, `continuum events`, `GET /v1/events`, and later sync, replicas, backups,
//! streams, webhooks, audit) reads them and never re-derives them from tables.
//!
//! An event carries what a consumer needs to apply it elsewhere without a second read: a
//! `memory.created` carries the memory and the concepts it mentions, a `links.strengthened`
//! the pairs and how each changed, a forget the ids. Key events never carry a secret or a hash.
//! Forgetting a memory (or erasing a tenant) scrubs its text from past payloads: the
//! `memory.created` keeps its id but its `memory` becomes `null` and its `concepts` empty; a
//! `decision.created` keeps its id but its `decision` becomes `null`.
//!
//! The JSON encoding is stable and versioned: `{"type": "memory.created", …payload}`, stored
//! with the payload version [`EVENT_VERSION`]; a record as clients see it is
//! `{"seq", "tenant", "at", "v", "type", …payload}` ([`EventRecord`]).

use crate::error::{Error, Result};
use crate::extract::ExtractedConcept;
use crate::ids::{MemoryId, SessionId, TenantId};
use crate::keys::Scope;
use crate::memory::{Decision, Memory};
use crate::reflection::{Belief, Claim, Contradiction, GraphSnapshot, Intention, RecordId};
use crate::store::LinkWrite;
use crate::time::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The payload version every event is written with today. A reader meeting a larger one was
/// written by a newer Continuum and refuses it rather than misread it.
pub const EVENT_VERSION: u32 = 1;

/// One thing that happened to a tenant's data or keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum Event {
    /// A memory was stored. `memory` is `null` once the memory was forgotten (scrubbed), or
    /// for a log migrated from a release without payloads whose memory was already gone.
    #[serde(rename = "memory.created")]
    MemoryCreated {
        id: MemoryId,
        memory: Option<Box<Memory>>,
        /// The concepts the memory mentions (its mention rows).
        #[serde(default)]
        concepts: Vec<ExtractedConcept>,
    },
    /// `id` was superseded by `by` (`null` only in logs migrated from a release without
    /// payloads, where the supersession was since undone).
    #[serde(rename = "memory.superseded")]
    MemorySuperseded { id: MemoryId, by: Option<MemoryId> },
    /// The memory's supersession changed: `superseded_by` is what it is now (`null`: current
    /// again, because the memory that replaced it was forgotten).
    #[serde(rename = "memory.updated")]
    MemoryUpdated {
        id: MemoryId,
        superseded_by: Option<MemoryId>,
    },
    /// The memory was deleted with its mentions, vector and decisions.
    #[serde(rename = "memory.forgotten")]
    MemoryForgotten { id: MemoryId },
    /// A whole session was forgotten (each memory also has its `memory.forgotten`).
    #[serde(rename = "session.forgotten")]
    SessionForgotten { session: SessionId, memories: u64 },
    #[serde(rename = "concept.created")]
    ConceptCreated {
        key: String,
        name: String,
        kind: String,
    },
    /// Links changed: co-occurrences counted under the Hebbian rule, or an imported floor. One
    /// per write, merged per pair ([`crate::store::merge_link_writes`]).
    #[serde(rename = "links.strengthened")]
    LinksStrengthened { links: Vec<LinkWrite> },
    /// Only in logs migrated from a release without payloads: a write touched these concepts'
    /// rows or links (`null`: which ones is not known).
    #[serde(rename = "concepts.changed")]
    ConceptsChanged { keys: Option<Vec<String>> },
    /// `decision` is `null` once the memory it came from was forgotten.
    #[serde(rename = "decision.created")]
    DecisionCreated {
        id: MemoryId,
        decision: Option<Decision>,
    },
    /// A key was made for the tenant (its prefix, never its secret or hash).
    #[serde(rename = "key.created")]
    KeyCreated {
        prefix: String,
        scope: Scope,
        name: Option<String>,
        expires_at: Option<Timestamp>,
    },
    #[serde(rename = "key.revoked")]
    KeyRevoked { prefix: String },
    /// A key was replaced by `successor` (same tenant, scope and name); it keeps working until
    /// `expires_at`, the end of the overlap.
    #[serde(rename = "key.rotated")]
    KeyRotated {
        prefix: String,
        successor: String,
        expires_at: Timestamp,
    },
    /// A key's expiry passed (the end of a rotation's overlap, or its own validity), recorded
    /// once by whichever process noticed it first.
    #[serde(rename = "key.expired")]
    KeyExpired { prefix: String },
    #[serde(rename = "tenant.created")]
    TenantCreated,
    /// The tenant's data was deleted and its keys revoked.
    #[serde(rename = "tenant.erased")]
    TenantErased { memories: u64, keys_revoked: u64 },
    /// An intention was set or changed; `record` is it as it now is (`null` once the tenant
    /// was erased).
    #[serde(rename = "intention.saved")]
    IntentionSaved {
        id: RecordId,
        record: Option<Intention>,
    },
    /// A belief was recorded or superseded.
    #[serde(rename = "belief.saved")]
    BeliefSaved {
        id: RecordId,
        record: Option<Belief>,
    },
    /// A contradiction between two beliefs was found or resolved.
    #[serde(rename = "contradiction.saved")]
    ContradictionSaved {
        id: RecordId,
        record: Option<Contradiction>,
    },
    /// A claim was recorded or verified.
    #[serde(rename = "claim.saved")]
    ClaimSaved { id: RecordId, record: Option<Claim> },
    /// A snapshot of the concept graph's shape was taken.
    #[serde(rename = "snapshot.saved")]
    SnapshotSaved {
        id: RecordId,
        record: Option<GraphSnapshot>,
    },
}

impl Event {
    /// Every type name, as written in the `type` field.
    pub const TYPES: [&'static str; 20] = [
        "memory.created",
        "memory.superseded",
        "memory.updated",
        "memory.forgotten",
        "session.forgotten",
        "concept.created",
        "links.strengthened",
        "concepts.changed",
        "decision.created",
        "key.created",
        "key.revoked",
        "key.rotated",
        "key.expired",
        "tenant.created",
        "tenant.erased",
        "intention.saved",
        "belief.saved",
        "contradiction.saved",
        "claim.saved",
        "snapshot.saved",
    ];

    /// The `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::MemoryCreated { .. } => "memory.created",
            Event::MemorySuperseded { .. } => "memory.superseded",
            Event::MemoryUpdated { .. } => "memory.updated",
            Event::MemoryForgotten { .. } => "memory.forgotten",
            Event::SessionForgotten { .. } => "session.forgotten",
            Event::ConceptCreated { .. } => "concept.created",
            Event::LinksStrengthened { .. } => "links.strengthened",
            Event::ConceptsChanged { .. } => "concepts.changed",
            Event::DecisionCreated { .. } => "decision.created",
            Event::KeyCreated { .. } => "key.created",
            Event::KeyRevoked { .. } => "key.revoked",
            Event::KeyRotated { .. } => "key.rotated",
            Event::KeyExpired { .. } => "key.expired",
            Event::TenantCreated => "tenant.created",
            Event::TenantErased { .. } => "tenant.erased",
            Event::IntentionSaved { .. } => "intention.saved",
            Event::BeliefSaved { .. } => "belief.saved",
            Event::ContradictionSaved { .. } => "contradiction.saved",
            Event::ClaimSaved { .. } => "claim.saved",
            Event::SnapshotSaved { .. } => "snapshot.saved",
        }
    }

    /// The memory whose text this event carries, so that forgetting it can scrub the event:
    /// a `memory.created`'s own id, a `decision.created`'s source memory.
    pub fn subject(&self) -> Option<MemoryId> {
        match self {
            Event::MemoryCreated { id, .. } => Some(*id),
            Event::DecisionCreated {
                decision: Some(d), ..
            } => Some(d.memory_id),
            _ => None,
        }
    }

    /// The reflection record a `*.saved` event carries (none once scrubbed).
    pub fn record(&self) -> Option<crate::reflection::Record> {
        use crate::reflection::Record;
        match self {
            Event::IntentionSaved { record, .. } => record.clone().map(Record::Intention),
            Event::BeliefSaved { record, .. } => record.clone().map(Record::Belief),
            Event::ContradictionSaved { record, .. } => record.clone().map(Record::Contradiction),
            Event::ClaimSaved { record, .. } => record.clone().map(Record::Claim),
            Event::SnapshotSaved { record, .. } => record.clone().map(Record::Snapshot),
            _ => None,
        }
    }

    /// The id a `*.saved` event names (its record's, unless the two were forged apart).
    pub fn record_id(&self) -> Option<RecordId> {
        match self {
            Event::IntentionSaved { id, .. }
            | Event::BeliefSaved { id, .. }
            | Event::ContradictionSaved { id, .. }
            | Event::ClaimSaved { id, .. }
            | Event::SnapshotSaved { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The memory this event is about, for the derived index.
    pub fn memory_id(&self) -> Option<MemoryId> {
        match self {
            Event::MemoryCreated { id, .. }
            | Event::MemorySuperseded { id, .. }
            | Event::MemoryUpdated { id, .. }
            | Event::MemoryForgotten { id } => Some(*id),
            _ => None,
        }
    }

    /// The same event with the memory text it carries removed (what a forget leaves).
    pub fn scrubbed(self) -> Event {
        match self {
            Event::MemoryCreated { id, .. } => Event::MemoryCreated {
                id,
                memory: None,
                concepts: Vec::new(),
            },
            Event::DecisionCreated { id, .. } => Event::DecisionCreated { id, decision: None },
            other => other,
        }
    }

    /// The stored form: the event's JSON, `type` included.
    pub fn encode(&self) -> String {
        // Every field is a string, number, bool, list or map with string keys: cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"type":"{}","error":"{}"}}"#,
                self.kind(),
                e.to_string().replace('"', "'")
            )
        })
    }

    /// Reads a stored payload of version `v`.
    pub fn decode(payload: &str, v: u32) -> Result<Event> {
        if v > EVENT_VERSION {
            return Err(Error::Internal(format!(
                "an event of payload version {v} was written by a newer Continuum (this one reads up to {EVENT_VERSION})"
            )));
        }
        serde_json::from_str(payload)
            .map_err(|e| Error::Internal(format!("an event in the log cannot be read: {e}")))
    }
}

/// The stored form of `memory.created` for a memory and its concepts, as [`Event::encode`]
/// writes it, from borrowed parts (a write's hot path need not copy the memory to encode it).
pub fn encode_memory_created(memory: &Memory, concepts: &[ExtractedConcept]) -> String {
    #[derive(Serialize)]
    #[serde(tag = "type", rename = "memory.created")]
    struct Created<'a> {
        id: MemoryId,
        memory: &'a Memory,
        concepts: &'a [ExtractedConcept],
    }
    let created = Created {
        id: memory.id,
        memory,
        concepts,
    };
    // As in `Event::encode`: strings, numbers and maps with string keys; cannot fail.
    serde_json::to_string(&created).unwrap_or_else(|e| {
        format!(
            r#"{{"type":"memory.created","error":"{}"}}"#,
            e.to_string().replace('"', "'")
        )
    })
}

/// An event as the log holds it: its position, tenant and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventRecord {
    /// The store-wide position: gap-free, in commit order.
    pub seq: u64,
    pub tenant: TenantId,
    pub at: Timestamp,
    /// The payload version.
    pub v: u32,
    #[serde(flatten)]
    pub event: Event,
}

/// A consumer's named position in the log (sync peers, backups, webhooks, streams): events
/// it has not passed are never compacted away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventCursor {
    pub name: String,
    pub position: u64,
    pub updated_at: Timestamp,
}

/// Checks a cursor name: 1 to 64 characters of `a-z 0-9 . _ : -`.
pub fn check_cursor_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".:_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "'{name}' is not a cursor name (1 to 64 of a-z, 0-9, '.', ':', '_', '-')"
        )))
    }
}

/// The error for a read from before the compaction point.
pub fn compacted_error(after: u64, through: u64) -> Error {
    Error::Gone(format!(
        "events up to position {through} were compacted away, so none can be read after {after}; \
         start again from a snapshot (`continuum export` records the position to follow from)"
    ))
}

/// Whose events a read returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EventScope<'a> {
    Tenant(&'a TenantId),
    /// Every tenant's (operators, replication).
    All,
}

/// Parses an event-log position given by a user (`--since`, `?since=`): a non-negative integer.
pub fn parse_position(s: &str) -> Result<u64> {
    s.trim().parse::<u64>().map_err(|_| {
        Error::InvalidInput(format!(
            "'{s}' is not an event position (expected a whole number, 0 or more)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Source;
    use proptest::prelude::*;

    fn memory_id() -> impl Strategy<Value = MemoryId> {
        any::<u128>().prop_map(|n| MemoryId(uuid::Uuid::from_u128(n)))
    }

    fn time() -> impl Strategy<Value = Timestamp> {
        // Within what RFC 3339 writes (years 0..9999).
        (-62_000_000_000_000i64..250_000_000_000_000).prop_map(Timestamp)
    }

    fn text() -> impl Strategy<Value = String> {
        "\\PC{0,40}"
    }

    fn concept() -> impl Strategy<Value = ExtractedConcept> {
        (text(), text(), prop_oneof![Just("concept"), Just("tool")]).prop_map(|(key, name, k)| {
            ExtractedConcept {
                key,
                name,
                kind: k.into(),
            }
        })
    }

    fn memory() -> impl Strategy<Value = Memory> {
        (
            memory_id(),
            proptest::option::of("[a-z0-9-]{1,20}"),
            proptest::sample::select(Source::ALL.to_vec()),
            text(),
            time(),
            proptest::option::of(text()),
            proptest::option::of(memory_id()),
        )
            .prop_map(|(id, session, source, content, at, speaker, by)| {
                let mut metadata = crate::memory::Metadata::new();
                if let Some(s) = speaker {
                    metadata.insert("speaker".into(), serde_json::Value::String(s));
                }
                Memory {
                    id,
                    session: session.map(|s| SessionId::new(s).expect("valid session")),
                    source,
                    kind: "message".into(),
                    content_hash: crate::memory::content_hash(&content),
                    content,
                    metadata,
                    created_at: at,
                    valid_until: None,
                    superseded_by: by,
                }
            })
    }

    fn link() -> impl Strategy<Value = LinkWrite> {
        prop_oneof![
            (text(), text(), 1u64..1000).prop_map(|(a, b, count)| LinkWrite::CoOccurred {
                a,
                b,
                count
            }),
            (text(), text(), 0u32..1025, 1u64..1000, time()).prop_map(
                |(a, b, s, count, last_at)| LinkWrite::AtLeast {
                    a,
                    b,
                    // Dyadic fractions: their shortest decimal form reads back exactly.
                    strength: f64::from(s) / 1024.0,
                    count,
                    last_at,
                }
            ),
        ]
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (
                memory_id(),
                proptest::option::of(memory()),
                proptest::collection::vec(concept(), 0..4)
            )
                .prop_map(|(id, memory, concepts)| Event::MemoryCreated {
                    id,
                    memory: memory.map(Box::new),
                    concepts
                }),
            (memory_id(), proptest::option::of(memory_id()))
                .prop_map(|(id, by)| Event::MemorySuperseded { id, by }),
            (memory_id(), proptest::option::of(memory_id()))
                .prop_map(|(id, superseded_by)| { Event::MemoryUpdated { id, superseded_by } }),
            memory_id().prop_map(|id| Event::MemoryForgotten { id }),
            ("[a-z0-9]{1,20}", any::<u64>()).prop_map(|(s, memories)| Event::SessionForgotten {
                session: SessionId::new(s).expect("valid session"),
                memories
            }),
            concept().prop_map(|c| Event::ConceptCreated {
                key: c.key,
                name: c.name,
                kind: c.kind
            }),
            proptest::collection::vec(link(), 0..5)
                .prop_map(|links| Event::LinksStrengthened { links }),
            proptest::option::of(proptest::collection::vec(text(), 0..4))
                .prop_map(|keys| Event::ConceptsChanged { keys }),
            (
                memory_id(),
                proptest::option::of((memory_id(), memory_id(), text(), time()))
            )
                .prop_map(|(id, d)| Event::DecisionCreated {
                    id,
                    decision: d.map(|(id, memory_id, text, created_at)| Decision {
                        id,
                        memory_id,
                        text,
                        created_at
                    })
                }),
            (
                "[0-9a-f]{12}",
                proptest::sample::select(vec![
                    Scope::Read,
                    Scope::Write,
                    Scope::Admin,
                    Scope::Operator
                ]),
                proptest::option::of(text()),
                proptest::option::of(time())
            )
                .prop_map(|(prefix, scope, name, expires_at)| Event::KeyCreated {
                    prefix,
                    scope,
                    name,
                    expires_at
                }),
            "[0-9a-f]{12}".prop_map(|prefix| Event::KeyRevoked { prefix }),
            "[0-9a-f]{12}".prop_map(|prefix| Event::KeyExpired { prefix }),
            Just(Event::TenantCreated),
            (
                any::<u128>(),
                proptest::option::of((text(), 1u8..=10, time(), proptest::option::of(text())))
            )
                .prop_map(|(n, r)| {
                    let id = crate::reflection::RecordId(uuid::Uuid::from_u128(n));
                    Event::IntentionSaved {
                        id,
                        record: r.map(|(text, priority, at, reason)| Intention {
                            id,
                            text,
                            priority,
                            session: None,
                            status: crate::reflection::IntentionStatus::Abandoned,
                            reason,
                            created_at: at,
                            updated_at: at,
                        }),
                    }
                }),
            (any::<u128>(), text(), 0u32..=1024, time()).prop_map(|(n, text, c, at)| {
                let id = crate::reflection::RecordId(uuid::Uuid::from_u128(n));
                Event::ClaimSaved {
                    id,
                    record: Some(Claim {
                        id,
                        text,
                        category: "general".into(),
                        confidence: f64::from(c) / 1024.0,
                        status: crate::reflection::ClaimStatus::Correct,
                        notes: None,
                        verified_at: Some(at),
                        created_at: at,
                        updated_at: at,
                    }),
                }
            }),
            (any::<u64>(), any::<u64>()).prop_map(|(memories, keys_revoked)| {
                Event::TenantErased {
                    memories,
                    keys_revoked,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn a_created_memory_encodes_from_borrowed_parts_as_the_event_does(
            m in memory(),
            concepts in proptest::collection::vec(concept(), 0..4),
        ) {
            let event = Event::MemoryCreated {
                id: m.id,
                memory: Some(Box::new(m.clone())),
                concepts: concepts.clone(),
            };
            let stored = event.encode();
            prop_assert_eq!(encode_memory_created(&m, &concepts), stored.clone());
            let mut w = crate::store::MemoryWrite::new(m, concepts);
            prop_assert_eq!(w.created_payload(), stored.as_str());
            w.seal();
            prop_assert_eq!(w.encoded.as_deref(), Some(stored.as_str()));
        }

        #[test]
        fn every_event_reads_back_as_written(e in event()) {
            let stored = e.encode();
            prop_assert_eq!(Event::decode(&stored, EVENT_VERSION).unwrap(), e.clone());
            let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
            prop_assert_eq!(v["type"].as_str(), Some(e.kind()));
            prop_assert!(Event::TYPES.contains(&e.kind()));
        }

        #[test]
        fn a_record_reads_back_and_puts_the_payload_beside_its_position(e in event(), seq in any::<u64>(), at in time()) {
            let r = EventRecord { seq, tenant: TenantId::new("t-1").unwrap(), at, v: EVENT_VERSION, event: e };
            let json = serde_json::to_value(&r).unwrap();
            prop_assert_eq!(json["seq"].as_u64(), Some(seq));
            prop_assert_eq!(json["type"].as_str(), Some(r.event.kind()));
            let back: EventRecord = serde_json::from_value(json).unwrap();
            prop_assert_eq!(back, r);
        }

        #[test]
        fn scrubbing_leaves_no_text_and_keeps_the_id(m in memory(), c in proptest::collection::vec(concept(), 1..3)) {
            let e = Event::MemoryCreated { id: m.id, memory: Some(Box::new(m.clone())), concepts: c };
            let s = e.scrubbed();
            prop_assert_eq!(s.memory_id(), Some(m.id));
            let json = s.encode();
            prop_assert!(!json.contains("content"));
            prop_assert_eq!(json, format!(r#"{{"type":"memory.created","id":"{}","memory":null,"concepts":[]}}"#, m.id));
        }
    }

    #[test]
    fn the_wire_shape_is_stable() {
        let id: MemoryId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
        assert_eq!(
            Event::MemoryForgotten { id }.encode(),
            r#"{"type":"memory.forgotten","id":"01890a5d-ac96-774b-bcce-b302099a8057"}"#
        );
        assert_eq!(
            Event::TenantCreated.encode(),
            r#"{"type":"tenant.created"}"#
        );
        let l = Event::LinksStrengthened {
            links: vec![LinkWrite::CoOccurred {
                a: "kafka".into(),
                b: "redis".into(),
                count: 2,
            }],
        };
        assert_eq!(
            l.encode(),
            r#"{"type":"links.strengthened","links":[{"rule":"co_occurred","a":"kafka","b":"redis","count":2}]}"#
        );
    }

    #[test]
    fn a_newer_payload_version_or_a_broken_payload_is_refused_not_misread() {
        let e = Event::decode(r#"{"type":"tenant.created"}"#, EVENT_VERSION + 1).unwrap_err();
        assert!(e.to_string().contains("newer Continuum"), "{e}");
        assert!(Event::decode(r#"{"type":"memory.exploded"}"#, 1).is_err());
        assert!(Event::decode("not json", 1).is_err());
    }

    #[test]
    fn positions_are_whole_numbers() {
        assert_eq!(parse_position(" 42 ").unwrap(), 42);
        for bad in ["-1", "x", "", "1.5"] {
            let e = parse_position(bad).unwrap_err();
            assert!(e.to_string().contains("not an event position"), "{e}");
        }
    }
}
