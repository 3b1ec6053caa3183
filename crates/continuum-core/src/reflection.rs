//! Reflection records: an agent's intentions, beliefs (and the contradictions found between
//! them), claims, and snapshots of its concept graph's shape, each a small typed document of
//! one tenant.
//!
//! Every write of a record appends its `*.saved` event with the record as it now is, so the
//! event log, streams and webhooks carry them; erasing the tenant deletes the records and
//! scrubs their events (`record` becomes `null`).

use crate::error::{Error, Result};
use crate::ids::SessionId;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The longest text of an intention, belief or claim.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// The longest domain (beliefs) or category (claims).
pub const MAX_LABEL_CHARS: usize = 64;
/// The longest reason (abandoning an intention) or note (verifying a claim).
pub const MAX_NOTE_CHARS: usize = 1_000;
/// Evidence items a belief carries, and the longest one.
pub const MAX_EVIDENCE_ITEMS: usize = 10;
pub const MAX_EVIDENCE_CHARS: usize = 500;
/// Records of one kind a tenant may hold, whatever their status.
pub const MAX_RECORDS_PER_KIND: usize = 10_000;

/// A record's id: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(pub uuid::Uuid);

impl RecordId {
    pub fn new_at(at: Timestamp) -> RecordId {
        RecordId(crate::ids::MemoryId::new_at(at.millis()).0)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RecordId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s.trim())
            .map(RecordId)
            .map_err(|_| Error::InvalidInput(format!("'{s}' is not a record id (a UUID)")))
    }
}

impl schemars::JsonSchema for RecordId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RecordId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "uuid", "description": "A UUIDv7: ids sort by creation time."})
    }
}

/// Which kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Intention,
    Belief,
    Contradiction,
    Claim,
    Snapshot,
}

impl RecordKind {
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Intention,
        RecordKind::Belief,
        RecordKind::Contradiction,
        RecordKind::Claim,
        RecordKind::Snapshot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Intention => "intention",
            RecordKind::Belief => "belief",
            RecordKind::Contradiction => "contradiction",
            RecordKind::Claim => "claim",
            RecordKind::Snapshot => "snapshot",
        }
    }

    pub fn parse(s: &str) -> Result<RecordKind> {
        match s {
            "intention" => Ok(RecordKind::Intention),
            "belief" => Ok(RecordKind::Belief),
            "contradiction" => Ok(RecordKind::Contradiction),
            "claim" => Ok(RecordKind::Claim),
            "snapshot" => Ok(RecordKind::Snapshot),
            _ => Err(Error::Internal(format!("unknown record kind '{s}'"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntentionStatus {
    Pending,
    Done,
    Abandoned,
}

impl IntentionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IntentionStatus::Pending => "pending",
            IntentionStatus::Done => "done",
            IntentionStatus::Abandoned => "abandoned",
        }
    }
}

/// Something the agent means to do, kept across sessions until done or abandoned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Intention {
    pub id: RecordId,
    pub text: String,
    /// 1 (lowest) to 10 (highest).
    pub priority: u8,
    /// The session it was set in, if any.
    pub session: Option<SessionId>,
    pub status: IntentionStatus,
    /// Why it was abandoned.
    pub reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BeliefStatus {
    Active,
    /// Given up for another belief when a contradiction was resolved.
    Superseded,
}

impl BeliefStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BeliefStatus::Active => "active",
            BeliefStatus::Superseded => "superseded",
        }
    }
}

/// Something the agent holds true, in a domain, with a confidence and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Belief {
    pub id: RecordId,
    pub text: String,
    /// Beliefs are compared within their domain (lower case; `general` by default).
    pub domain: String,
    /// In [0, 1].
    pub confidence: f64,
    pub evidence: Vec<String>,
    pub status: BeliefStatus,
    /// The belief kept instead, once superseded.
    pub superseded_by: Option<RecordId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContradictionStatus {
    Open,
    Resolved,
}

impl ContradictionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContradictionStatus::Open => "open",
            ContradictionStatus::Resolved => "resolved",
        }
    }
}

/// Two beliefs of a domain found to contradict each other when the newer was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Contradiction {
    pub id: RecordId,
    /// The belief held before.
    pub earlier: RecordId,
    /// The belief whose recording found the contradiction.
    pub later: RecordId,
    /// `negation` (the same statement, one negated), `opposite` (opposite terms on the same
    /// subject) or `value` (two values for the same attribute).
    pub kind: String,
    /// The words that show it.
    pub evidence: String,
    /// `words` (the word rules) or `embedding` (same meaning by the embedder, one negated).
    pub method: String,
    /// The cosine similarity of the two statements without negation, for `embedding`.
    pub similarity: Option<f64>,
    pub status: ContradictionStatus,
    /// The belief kept when it was resolved (the other one is superseded).
    pub kept: Option<RecordId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    /// Not verified yet.
    Open,
    Correct,
    Wrong,
}

impl ClaimStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Open => "open",
            ClaimStatus::Correct => "correct",
            ClaimStatus::Wrong => "wrong",
        }
    }
}

/// A statement made with a confidence, verified later: the material of calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Claim {
    pub id: RecordId,
    pub text: String,
    /// Calibration is reported per category (lower case; `general` by default).
    pub category: String,
    /// In [0, 1].
    pub confidence: f64,
    pub status: ClaimStatus,
    pub notes: Option<String>,
    pub verified_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The shape of a tenant's concept graph at one moment, kept to compare with another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GraphSnapshot {
    pub id: RecordId,
    /// A name for it, if given.
    pub label: Option<String>,
    pub memories: u64,
    pub concepts: u64,
    pub links: u64,
    /// Of the graph read (the most mentioned concepts and their strongest links).
    pub read_concepts: u64,
    pub read_links: u64,
    /// Mean links per concept read.
    pub mean_degree: f64,
    /// Mean strength of the links read.
    pub mean_strength: f64,
    /// Groups of more than one concept, and the largest one's size.
    pub clusters: u64,
    pub largest_cluster: u64,
    pub modularity: f64,
    /// The most linked concepts (keys, at most 20), most linked first.
    pub hubs: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Any record, as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Intention(Intention),
    Belief(Belief),
    Contradiction(Contradiction),
    Claim(Claim),
    Snapshot(GraphSnapshot),
}

impl Record {
    pub fn id(&self) -> RecordId {
        match self {
            Record::Intention(r) => r.id,
            Record::Belief(r) => r.id,
            Record::Contradiction(r) => r.id,
            Record::Claim(r) => r.id,
            Record::Snapshot(r) => r.id,
        }
    }

    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Intention(_) => RecordKind::Intention,
            Record::Belief(_) => RecordKind::Belief,
            Record::Contradiction(_) => RecordKind::Contradiction,
            Record::Claim(_) => RecordKind::Claim,
            Record::Snapshot(_) => RecordKind::Snapshot,
        }
    }

    /// The status, as stored in its own column.
    pub fn status(&self) -> &'static str {
        match self {
            Record::Intention(r) => r.status.as_str(),
            Record::Belief(r) => r.status.as_str(),
            Record::Contradiction(r) => r.status.as_str(),
            Record::Claim(r) => r.status.as_str(),
            Record::Snapshot(_) => "kept",
        }
    }

    pub fn created_at(&self) -> Timestamp {
        match self {
            Record::Intention(r) => r.created_at,
            Record::Belief(r) => r.created_at,
            Record::Contradiction(r) => r.created_at,
            Record::Claim(r) => r.created_at,
            Record::Snapshot(r) => r.created_at,
        }
    }

    pub fn updated_at(&self) -> Timestamp {
        match self {
            Record::Intention(r) => r.updated_at,
            Record::Belief(r) => r.updated_at,
            Record::Contradiction(r) => r.updated_at,
            Record::Claim(r) => r.updated_at,
            Record::Snapshot(r) => r.updated_at,
        }
    }

    /// The stored body: the record's JSON.
    pub fn encode(&self) -> Result<String> {
        let s = match self {
            Record::Intention(r) => serde_json::to_string(r),
            Record::Belief(r) => serde_json::to_string(r),
            Record::Contradiction(r) => serde_json::to_string(r),
            Record::Claim(r) => serde_json::to_string(r),
            Record::Snapshot(r) => serde_json::to_string(r),
        };
        s.map_err(|e| Error::Internal(format!("a record cannot be written: {e}")))
    }

    /// Reads a stored body of `kind`.
    pub fn decode(kind: &str, body: &str) -> Result<Record> {
        let bad =
            |e: serde_json::Error| Error::Internal(format!("a stored {kind} cannot be read: {e}"));
        Ok(match RecordKind::parse(kind)? {
            RecordKind::Intention => Record::Intention(serde_json::from_str(body).map_err(bad)?),
            RecordKind::Belief => Record::Belief(serde_json::from_str(body).map_err(bad)?),
            RecordKind::Contradiction => {
                Record::Contradiction(serde_json::from_str(body).map_err(bad)?)
            }
            RecordKind::Claim => Record::Claim(serde_json::from_str(body).map_err(bad)?),
            RecordKind::Snapshot => Record::Snapshot(serde_json::from_str(body).map_err(bad)?),
        })
    }

    /// The event its write appends.
    pub fn event(&self) -> crate::Event {
        use crate::Event;
        let id = self.id();
        match self.clone() {
            Record::Intention(r) => Event::IntentionSaved {
                id,
                record: Some(r),
            },
            Record::Belief(r) => Event::BeliefSaved {
                id,
                record: Some(r),
            },
            Record::Contradiction(r) => Event::ContradictionSaved {
                id,
                record: Some(r),
            },
            Record::Claim(r) => Event::ClaimSaved {
                id,
                record: Some(r),
            },
            Record::Snapshot(r) => Event::SnapshotSaved {
                id,
                record: Some(r),
            },
        }
    }
}

/// The event types of records (their payload's `record` is scrubbed when the tenant is erased).
pub const RECORD_EVENT_TYPES: [&str; 5] = [
    "intention.saved",
    "belief.saved",
    "contradiction.saved",
    "claim.saved",
    "snapshot.saved",
];

/// The JSON-schema pattern of a text field as [`check_text`] takes it.
pub const TEXT_PATTERN: &str = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x08\x0b-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$";

/// Checks a text field and trims it: at most `max` characters, not blank, no control
/// characters but line feeds and tabs.
pub fn check_text(field: &str, text: &str, max: usize) -> Result<String> {
    if text.chars().count() > max {
        return Err(Error::InvalidInput(format!(
            "{field} is at most {max} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::InvalidInput(format!(
            "{field} must not contain control characters (but line feeds and tabs)"
        )));
    }
    let t = text.trim();
    if t.is_empty() {
        return Err(Error::InvalidInput(format!("{field} must not be empty")));
    }
    Ok(t.to_string())
}

/// The JSON-schema pattern of a domain or category as [`check_label`] takes it.
pub const LABEL_PATTERN: &str = r"^[A-Za-z0-9 ._:/-]*[A-Za-z0-9._:/-][A-Za-z0-9 ._:/-]*$";

/// A domain or category: 1 to [`MAX_LABEL_CHARS`] ASCII letters, digits, spaces and
/// `. _ - : /`, not only spaces; kept trimmed and in lower case; `general` when not given.
pub fn check_label(field: &str, label: Option<&str>) -> Result<String> {
    let Some(l) = label else {
        return Ok("general".into());
    };
    let ok = l.len() <= MAX_LABEL_CHARS
        && l.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b" ._-:/".contains(&c))
        && !l.trim().is_empty();
    if ok {
        Ok(l.trim().to_ascii_lowercase())
    } else {
        Err(Error::InvalidInput(format!(
            "{field} must be 1 to {MAX_LABEL_CHARS} ASCII letters, digits, spaces or . _ - : / (not only spaces)"
        )))
    }
}

/// A confidence: a number in [0, 1].
pub fn check_confidence(c: f64) -> Result<f64> {
    if c.is_finite() && (0.0..=1.0).contains(&c) {
        Ok(c)
    } else {
        Err(Error::InvalidInput(format!(
            "confidence must be a number from 0 to 1 ({c} given)"
        )))
    }
}

/// An intention's priority: 1 to 10.
pub fn check_priority(p: i64) -> Result<u8> {
    if (1..=10).contains(&p) {
        Ok(p as u8)
    } else {
        Err(Error::InvalidInput(format!(
            "priority must be from 1 to 10 ({p} given)"
        )))
    }
}

/// Checks a record that arrives whole (an imported dump, another node's event) as the API
/// would have taken it: its texts, confidence, priority and evidence within their limits.
pub fn check_record(r: &Record) -> Result<()> {
    let text = |field: &str, t: &str, max: usize| check_text(field, t, max).map(|_| ());
    let label = |field: &str, l: &str| check_label(field, Some(l)).map(|_| ());
    match r {
        Record::Intention(i) => {
            text("intention text", &i.text, MAX_TEXT_CHARS)?;
            check_priority(i64::from(i.priority))?;
            if let Some(reason) = &i.reason {
                text("reason", reason, MAX_NOTE_CHARS)?;
            }
        }
        Record::Belief(b) => {
            text("belief text", &b.text, MAX_TEXT_CHARS)?;
            label("domain", &b.domain)?;
            check_confidence(b.confidence)?;
            if b.evidence.len() > MAX_EVIDENCE_ITEMS {
                return Err(Error::InvalidInput(format!(
                    "belief {}: more than {MAX_EVIDENCE_ITEMS} evidence items",
                    b.id
                )));
            }
            for e in &b.evidence {
                text("evidence", e, MAX_EVIDENCE_CHARS)?;
            }
        }
        Record::Contradiction(c) => {
            text("contradiction evidence", &c.evidence, MAX_NOTE_CHARS)?;
            if c.kind.len() > 32 || c.method.len() > 32 {
                return Err(Error::InvalidInput(format!(
                    "contradiction {}: kind and method are at most 32 bytes",
                    c.id
                )));
            }
        }
        Record::Claim(c) => {
            text("claim text", &c.text, MAX_TEXT_CHARS)?;
            label("category", &c.category)?;
            check_confidence(c.confidence)?;
            if let Some(n) = &c.notes {
                text("notes", n, MAX_NOTE_CHARS)?;
            }
        }
        Record::Snapshot(s) => {
            if let Some(l) = &s.label {
                text("label", l, 100)?;
            }
            if s.hubs.len() > 100 || s.hubs.iter().any(|h| h.len() > 200) {
                return Err(Error::InvalidInput(format!(
                    "snapshot {}: at most 100 hubs of 200 bytes",
                    s.id
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> Claim {
        Claim {
            id: RecordId::new_at(Timestamp(1_767_225_600_000)),
            text: "It will rain".into(),
            category: "weather".into(),
            confidence: 0.7,
            status: ClaimStatus::Open,
            notes: None,
            verified_at: None,
            created_at: Timestamp(1_767_225_600_000),
            updated_at: Timestamp(1_767_225_600_000),
        }
    }

    #[test]
    fn a_record_reads_back_as_written_and_its_event_carries_it() {
        let r = Record::Claim(claim());
        let body = r.encode().unwrap();
        assert_eq!(Record::decode("claim", &body).unwrap(), r);
        assert!(Record::decode("belief", &body).is_err());
        assert!(Record::decode("nothing", &body).is_err());
        let e = r.event();
        assert_eq!(e.kind(), "claim.saved");
        assert!(RECORD_EVENT_TYPES.contains(&e.kind()));
        let json: serde_json::Value = serde_json::from_str(&e.encode()).unwrap();
        assert_eq!(json["record"]["text"], "It will rain");
        assert_eq!(json["id"], r.id().to_string());
    }

    #[test]
    fn inputs_are_checked() {
        assert_eq!(check_text("text", "  hi \n", 10).unwrap(), "hi");
        assert!(check_text("text", "a\r\nb", 10).is_err());
        assert!(
            check_text("text", "hi        ", 5).is_err(),
            "counted before trimming"
        );
        assert!(check_text("text", "   ", 10).is_err());
        assert!(check_text("text", "x\u{7}y", 10).is_err());
        assert!(check_text("text", &"é".repeat(11), 10).is_err());
        assert!(check_text("text", &"é".repeat(10), 10).is_ok());
        assert_eq!(check_label("domain", None).unwrap(), "general");
        assert_eq!(check_label("domain", Some(" Work/Q3 ")).unwrap(), "work/q3");
        assert!(check_label("domain", Some("")).is_err());
        assert!(check_label("domain", Some("   ")).is_err());
        assert!(check_label("domain", Some("café")).is_err());
        assert!(check_label("domain", Some("a;b")).is_err());
        assert!(check_label("domain", Some(&"a".repeat(65))).is_err());
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert!(check_confidence(bad).is_err(), "{bad}");
        }
        assert_eq!(check_confidence(0.0).unwrap(), 0.0);
        assert_eq!(check_priority(10).unwrap(), 10);
        assert!(check_priority(0).is_err());
        assert!(check_priority(11).is_err());
        assert!("x".parse::<RecordId>().is_err());
    }
}
