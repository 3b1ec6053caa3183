//! The audit log: an append-only record of security-relevant acts (authentication failures,
//! keys made, rotated and revoked, tenants made and erased, tiers set, whole sessions or
//! tenants forgotten, exports), hash-chained so that an altered, removed or reordered entry is
//! found.
//!
//! Each entry's `body` is its canonical encoding: compact JSON with the fields in a fixed
//! order (`seq`, `at`, `tenant`, `actor`, `action`, `outcome`, `source`, `details`; object keys
//! in `details` sorted), written once and stored as it is. Its hash is
//! `SHA-256(prev_hash ‖ body)` over the raw 32-byte previous hash (zeros for the first entry)
//! and the body's bytes; hashes are stored as lower-case hex. The chain is one for the whole
//! store (every tenant), appended under the store's write lock, so concurrent writers still
//! make one chain. Entries hold no memory text: details are ids, counts and names.

use crate::{Error, Result, TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The largest `details` (its JSON), in bytes.
pub const MAX_DETAILS_BYTES: usize = 4096;

/// An act to record.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub at: Timestamp,
    /// The tenant acted on (`None`: the whole server).
    pub tenant: Option<TenantId>,
    /// Who acted: `key:<prefix>`, `local` (someone with the store in hand: the CLI), `system`
    /// (a job), `stripe`, or `anonymous` (an unauthenticated request).
    pub actor: String,
    /// What was done, e.g. `key.created` (see [`ACTIONS`]).
    pub action: &'static str,
    /// `ok` or `refused`.
    pub outcome: &'static str,
    /// The client's address, when a request made it.
    pub source: Option<String>,
    /// Ids, counts and names; never memory text or secrets.
    pub details: serde_json::Value,
}

/// Every action the audit log records.
pub const ACTIONS: &[&str] = &[
    "auth.failed",
    "key.created",
    "key.revoked",
    "key.rotated",
    "key.expired",
    "tenant.created",
    "tenant.erased",
    "tenant.tier_set",
    "memories.forgotten",
    "retention.applied",
    "export",
    "import",
    "store.copied",
    "backup.created",
    "backup.restored",
    "store.vacuumed",
    "sync.received",
    "webhook.created",
    "webhook.deleted",
    "webhook.secret_rotated",
    "server.started",
    "federation.joined",
    "federation.refused",
    "federation.revoked",
    "federation.granted",
    "federation.renewed",
];

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    pub seq: u64,
    /// The canonical encoding the hash covers.
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

/// An entry's fields, read back from its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditView {
    pub seq: u64,
    pub at: String,
    pub tenant: Option<String>,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub source: Option<String>,
    pub details: serde_json::Value,
    pub hash: String,
}

/// The body's field order, fixed by this struct.
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    at: String,
    tenant: Option<&'a str>,
    actor: &'a str,
    action: &'a str,
    outcome: &'a str,
    source: Option<&'a str>,
    details: serde_json::Value,
}

/// A body read back (owned: escaped strings cannot be borrowed).
#[derive(Deserialize)]
struct ReadBody {
    seq: u64,
    at: String,
    tenant: Option<String>,
    actor: String,
    action: String,
    outcome: String,
    source: Option<String>,
    details: serde_json::Value,
}

/// `v` with every object's keys sorted (whatever map the JSON library was built with).
fn sorted(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            serde_json::Value::Object(out)
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

impl AuditRecord {
    /// Checks the record before it is written: a known action, details within bounds.
    pub fn check(&self) -> Result<()> {
        if !ACTIONS.contains(&self.action) {
            return Err(Error::Internal(format!(
                "unknown audit action {}",
                self.action
            )));
        }
        let size = serde_json::to_string(&self.details)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        if size > MAX_DETAILS_BYTES {
            return Err(Error::Internal(format!(
                "audit details of {} are {size} bytes (at most {MAX_DETAILS_BYTES})",
                self.action
            )));
        }
        Ok(())
    }

    /// The canonical body of this record as entry `seq`.
    pub fn body(&self, seq: u64) -> String {
        let body = Body {
            seq,
            at: self.at.to_rfc3339(),
            tenant: self.tenant.as_ref().map(|t| t.as_str()),
            actor: &self.actor,
            action: self.action,
            outcome: self.outcome,
            source: self.source.as_deref(),
            details: sorted(&self.details),
        };
        serde_json::to_string(&body).expect("a body serializes")
    }
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    crate::unhex(s)?.try_into().ok()
}

/// `SHA-256(prev ‖ body)` as hex; `None` when `prev` is not 64 hex digits.
pub fn chain_hash(prev: &str, body: &str) -> Option<String> {
    let prev = unhex32(prev)?;
    let mut h = Sha256::new();
    h.update(prev);
    h.update(body.as_bytes());
    Some(
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    )
}

/// The entry that follows `prev` (`None`: the first) for `record`.
pub fn next_entry(prev: Option<(u64, &str)>, record: &AuditRecord) -> AuditEntry {
    let (seq, prev_hash) = match prev {
        Some((s, h)) => (s + 1, h.to_string()),
        None => (1, GENESIS.to_string()),
    };
    let body = record.body(seq);
    let hash = chain_hash(&prev_hash, &body).unwrap_or_default();
    AuditEntry {
        seq,
        body,
        prev_hash,
        hash,
    }
}

impl AuditEntry {
    /// The entry's fields (from its body).
    pub fn view(&self) -> Result<AuditView> {
        let b: ReadBody = serde_json::from_str(&self.body).map_err(|e| {
            Error::Internal(format!("audit entry {} is not readable: {e}", self.seq))
        })?;
        Ok(AuditView {
            seq: b.seq,
            at: b.at,
            tenant: b.tenant,
            actor: b.actor,
            action: b.action,
            outcome: b.outcome,
            source: b.source,
            details: b.details,
            hash: self.hash.clone(),
        })
    }
}

/// What is wrong at one place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ChainFault {
    /// The entry where the chain breaks (the first missing one, for a gap).
    pub seq: u64,
    /// `altered` (the body or hash does not match), `missing` (entries removed: a gap),
    /// `reordered` (the previous hash is not the previous entry's), `renumbered` (the body's
    /// position is not the row's).
    pub problem: &'static str,
    pub detail: String,
}

/// Checks entries that follow `prev` (the last verified entry's position and hash; `None`
/// from the start); returns the first fault.
pub fn verify_chain(prev: Option<(u64, String)>, entries: &[AuditEntry]) -> Option<ChainFault> {
    let (mut seq, mut hash) = prev.unwrap_or((0, GENESIS.to_string()));
    for e in entries {
        if e.seq != seq + 1 {
            return Some(ChainFault {
                seq: seq + 1,
                problem: "missing",
                detail: format!(
                    "entries {} to {} are missing (the next one is {})",
                    seq + 1,
                    e.seq.saturating_sub(1),
                    e.seq
                ),
            });
        }
        let body_seq = serde_json::from_str::<serde_json::Value>(&e.body)
            .ok()
            .and_then(|v| v["seq"].as_u64());
        if e.prev_hash != hash {
            return Some(ChainFault {
                seq: e.seq,
                problem: "reordered",
                detail: format!(
                    "entry {} does not follow entry {} (its previous hash differs)",
                    e.seq, seq
                ),
            });
        }
        if chain_hash(&e.prev_hash, &e.body).as_deref() != Some(e.hash.as_str()) {
            return Some(ChainFault {
                seq: e.seq,
                problem: "altered",
                detail: format!("entry {} was changed after it was written", e.seq),
            });
        }
        if body_seq != Some(e.seq) {
            return Some(ChainFault {
                seq: e.seq,
                problem: "renumbered",
                detail: format!(
                    "entry {} holds the body of entry {}",
                    e.seq,
                    body_seq.map_or("?".into(), |s| s.to_string())
                ),
            });
        }
        seq = e.seq;
        hash = e.hash.clone();
    }
    None
}

/// Escapes a structured-data parameter value (RFC 5424 section 6.3.3: `"`, `\` and `]`).
fn sd_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl AuditView {
    /// The entry as an RFC 5424 syslog message (facility authpriv; severity notice, or
    /// warning for a refusal), the fields as structured data, the details as the message.
    pub fn to_syslog(&self, host: &str) -> String {
        let severity = if self.outcome == "ok" { 5 } else { 4 };
        let pri = 10 * 8 + severity;
        let mut sd = format!(
            "[continuum@32473 seq=\"{}\" action=\"{}\" outcome=\"{}\" actor=\"{}\"",
            self.seq,
            sd_escape(&self.action),
            sd_escape(&self.outcome),
            sd_escape(&self.actor)
        );
        if let Some(t) = &self.tenant {
            sd.push_str(&format!(" tenant=\"{}\"", sd_escape(t)));
        }
        if let Some(s) = &self.source {
            sd.push_str(&format!(" source=\"{}\"", sd_escape(s)));
        }
        sd.push_str(&format!(" hash=\"{}\"]", self.hash));
        let host = if host.is_empty() { "-" } else { host };
        format!(
            "<{pri}>1 {} {host} continuum - {} {sd} {}",
            self.at, self.action, self.details
        )
    }

    /// The entry as an ArcSight CEF line (`CEF:0|…`).
    pub fn to_cef(&self, version: &str) -> String {
        fn header(v: &str) -> String {
            v.replace('\\', "\\\\").replace('|', "\\|")
        }
        fn ext(v: &str) -> String {
            v.replace('\\', "\\\\")
                .replace('=', "\\=")
                .replace('\n', "\\n")
                .replace('\r', "\\r")
        }
        let severity = if self.outcome == "ok" { 3 } else { 6 };
        let at = chrono::DateTime::parse_from_rfc3339(&self.at)
            .map(|d| d.timestamp_millis())
            .unwrap_or_default();
        let mut line = format!(
            "CEF:0|Continuum|Continuum|{}|{}|{}|{severity}|rt={at} suser={} outcome={} cn1Label=seq cn1={}",
            header(version),
            header(&self.action),
            header(&self.action),
            ext(&self.actor),
            ext(&self.outcome),
            self.seq
        );
        if let Some(t) = &self.tenant {
            line.push_str(&format!(" cs1Label=tenant cs1={}", ext(t)));
        }
        if let Some(s) = &self.source {
            line.push_str(&format!(" src={}", ext(s)));
        }
        line.push_str(&format!(
            " cs2Label=hash cs2={} msg={}",
            self.hash,
            ext(&self.details.to_string())
        ));
        line
    }
}

/// The audit log's storage: appended under the store's write lock, read in order.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `records` after the current last entry (one transaction; the chain continues
    /// from whatever another process appended last). Returns the new entries.
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<Vec<AuditEntry>>;
    /// The last entry's position (0: none yet).
    async fn audit_head(&self) -> Result<u64>;
    /// How far the consumer `name` has got (0: nowhere yet).
    async fn audit_cursor(&self, name: &str) -> Result<u64>;
    /// Records that the consumer `name` has handled every entry up to `seq`.
    async fn set_audit_cursor(&self, name: &str, seq: u64, at: Timestamp) -> Result<()>;
    /// Entries after `after`, in order: every tenant's, or one tenant's; at most `limit`.
    async fn audit_entries(
        &self,
        tenant: Option<&TenantId>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>>;
    /// Entries after `after` and before `before` (both exclusive), newest first: every
    /// tenant's, or one tenant's; at most `limit`.
    async fn audit_entries_before(
        &self,
        tenant: Option<&TenantId>,
        after: u64,
        before: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &'static str, details: serde_json::Value) -> AuditRecord {
        AuditRecord {
            at: Timestamp(1_767_225_600_000),
            tenant: Some(TenantId::new("acme").unwrap()),
            actor: "local".into(),
            action,
            outcome: "ok",
            source: None,
            details,
        }
    }

    fn chain(n: usize) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|e| (e.seq, e.hash.as_str()));
            let e = next_entry(prev, &record("key.created", serde_json::json!({"n": i})));
            out.push(e);
        }
        out
    }

    #[test]
    fn bodies_are_canonical_whatever_the_key_order() {
        let a = record("export", serde_json::json!({"b": 1, "a": {"y": 2, "x": 1}}));
        let mut m = serde_json::Map::new();
        m.insert("a".into(), serde_json::json!({"x": 1, "y": 2}));
        m.insert("b".into(), serde_json::json!(1));
        let b = record("export", serde_json::Value::Object(m));
        assert_eq!(a.body(7), b.body(7));
        assert_eq!(
            a.body(7),
            r#"{"seq":7,"at":"2026-01-01T00:00:00.000Z","tenant":"acme","actor":"local","action":"export","outcome":"ok","source":null,"details":{"a":{"x":1,"y":2},"b":1}}"#
        );
    }

    #[test]
    fn the_hash_is_sha256_over_the_raw_previous_hash_and_the_body() {
        // Computed independently: python3 -c 'import hashlib;
        // print(hashlib.sha256(bytes(32) + b"{}").hexdigest())'
        assert_eq!(
            chain_hash(GENESIS, "{}").unwrap(),
            "fb1634c4e6cd4b1f1afe3ce2d6ef080f7ac5d1f357d723ad4dfca782733b62db"
        );
        assert_eq!(chain_hash("zz", "{}"), None);
    }

    #[test]
    fn a_clean_chain_verifies_and_every_kind_of_tampering_is_named() {
        let c = chain(5);
        assert_eq!(verify_chain(None, &c), None);
        assert_eq!(
            verify_chain(Some((2, c[1].hash.clone())), &c[2..]),
            None,
            "verification can continue from a verified entry"
        );

        let mut altered = c.clone();
        altered[2].body = altered[2].body.replace("\"n\":2", "\"n\":9");
        let f = verify_chain(None, &altered).unwrap();
        assert_eq!((f.seq, f.problem), (3, "altered"));

        let mut removed = c.clone();
        removed.remove(3);
        let f = verify_chain(None, &removed).unwrap();
        assert_eq!((f.seq, f.problem), (4, "missing"));

        let mut swapped = c.clone();
        swapped.swap(1, 2);
        let (a, b) = (swapped[1].seq, swapped[2].seq);
        swapped[1].seq = b;
        swapped[2].seq = a;
        let f = verify_chain(None, &swapped).unwrap();
        assert_eq!((f.seq, f.problem), (2, "reordered"));

        // Rehashing an altered entry breaks the link to the next one.
        let mut rehashed = c.clone();
        rehashed[1].body = rehashed[1].body.replace("\"n\":1", "\"n\":8");
        rehashed[1].hash = chain_hash(&rehashed[1].prev_hash, &rehashed[1].body).unwrap();
        let f = verify_chain(None, &rehashed).unwrap();
        assert_eq!((f.seq, f.problem), (3, "reordered"));
    }

    #[test]
    fn syslog_and_cef_lines_escape_what_their_formats_reserve() {
        let mut r = record("auth.failed", serde_json::json!({"reason": "bad=key\nx"}));
        r.outcome = "refused";
        r.source = Some("10.0.0.1".into());
        r.actor = "a\"b]c|d".into();
        let v = next_entry(None, &r).view().unwrap();
        let syslog = v.to_syslog("host1");
        assert!(syslog.starts_with("<84>1 2026-01-01T00:00:00.000Z host1 continuum - auth.failed [continuum@32473 seq=\"1\""), "{syslog}");
        assert!(syslog.contains(r#"actor="a\"b\]c|d""#), "{syslog}");
        assert!(syslog.contains(r#"source="10.0.0.1""#));
        let cef = v.to_cef("0.1.0");
        assert!(cef.starts_with("CEF:0|Continuum|Continuum|0.1.0|auth.failed|auth.failed|6|rt=1767225600000 suser=a\"b]c|d outcome=refused"), "{cef}");
        assert!(cef.contains(r#"msg={"reason":"bad\=key\\nx"}"#), "{cef}");
        assert!(!cef.contains('\n'));
    }

    #[test]
    fn records_are_checked() {
        assert!(record("key.created", serde_json::json!({})).check().is_ok());
        assert!(record("nonsense", serde_json::json!({})).check().is_err());
        let big = serde_json::json!({"x": "a".repeat(MAX_DETAILS_BYTES)});
        assert!(record("export", big).check().is_err());
    }
}
