//! Portable export and idempotent import, as JSON Lines.
//!
//! A dump is one JSON object per line: a `header`, then every `memory` (oldest first, each with
//! the concepts it mentions), every `link` (with its strength and count), every `decision`,
//! every reflection `record` (intentions, beliefs, contradictions, claims, graph snapshots, as
//! `{"type": "record", "kind", "record"}`) and every `vector` (with its model and dimension, so
//! a restored store needs no re-embedding).
//! It is a consistent snapshot, read in one transaction while writes go on, and its header
//! records the event-log `position` it reflects: replaying the tenant's events after it brings
//! a restored copy up to date. Importing a dump into an empty store reproduces the tenant
//! exactly, so recall gives the same results. Import is idempotent: a memory already present (same id, or same content hash,
//! session and time) is skipped, links are raised to at least the dumped strength, and decisions
//! are keyed by id.

use crate::Engine;
use continuum_core::extract::ExtractedConcept;
use continuum_core::keys::{Caller, Scope};
use continuum_core::memory::Decision;
use continuum_core::store::{ImportKey, LinkWrite, MemoryWrite, SnapshotItem, WriteBatch};
use continuum_core::{Error, Memory, Result, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

pub const EXPORT_FORMAT: &str = "continuum-export";
pub const EXPORT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportHeader {
    pub format: String,
    pub version: u32,
    pub tenant: TenantId,
    pub exported_at: Timestamp,
    /// The store-wide event position the dump reflects (absent in dumps of older releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

/// The largest vector dimension a dump may carry.
pub const MAX_VECTOR_DIM: usize = 8192;

/// One line of a dump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ExportRecord {
    Header(ExportHeader),
    Memory {
        #[serde(flatten)]
        memory: Memory,
        #[serde(default)]
        concepts: Vec<ExtractedConcept>,
    },
    Link {
        a: String,
        b: String,
        strength: f64,
        count: u64,
        last_at: Timestamp,
    },
    Decision(Decision),
    /// A reflection record of `kind` (`intention`, `belief`, `contradiction`, `claim`,
    /// `snapshot`), as the API shows it.
    Record {
        kind: String,
        record: serde_json::Value,
    },
    /// A memory's sentence vector of `model`.
    Vector {
        id: continuum_core::MemoryId,
        model: String,
        dim: usize,
        vector: Vec<f32>,
    },
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportOutcome {
    pub memories_added: u64,
    pub memories_skipped: u64,
    pub links: u64,
    pub decisions: u64,
    #[serde(default)]
    pub vectors: u64,
    /// Reflection records written (new, or changed since the dump was taken elsewhere).
    #[serde(default)]
    pub records: u64,
}

impl Engine {
    /// Streams the tenant's dump to `sink`, one record at a time (memory use stays bounded by
    /// the store's fetch size), from one consistent snapshot. `progress` is told how many
    /// memories were written so far. Returns the memories written.
    #[tracing::instrument(name = "engine.export", level = "debug", skip_all)]
    pub async fn export(
        &self,
        who: impl Into<Caller>,
        sink: &mut (dyn FnMut(&ExportRecord) -> Result<()> + Send),
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let exported_at = self.clock.now();
        let mut written = 0u64;
        let mut each = |item: SnapshotItem| -> Result<()> {
            let record = match item {
                SnapshotItem::Begin { position } => ExportRecord::Header(ExportHeader {
                    format: EXPORT_FORMAT.into(),
                    version: EXPORT_VERSION,
                    tenant: tenant.clone(),
                    exported_at,
                    position: Some(position),
                }),
                SnapshotItem::Memory { memory, concepts } => {
                    written += 1;
                    if written.is_multiple_of(1000) {
                        progress(written);
                    }
                    ExportRecord::Memory { memory, concepts }
                }
                SnapshotItem::Link(l) => ExportRecord::Link {
                    a: l.a,
                    b: l.b,
                    strength: l.strength,
                    count: l.count,
                    last_at: l.last_at,
                },
                SnapshotItem::Decision(d) => ExportRecord::Decision(d),
                SnapshotItem::Record(r) => ExportRecord::Record {
                    kind: r.kind().as_str().to_string(),
                    record: serde_json::from_str(&r.encode()?)
                        .map_err(|e| Error::Internal(format!("export: {e}")))?,
                },
                SnapshotItem::Vector { id, model, vector } => ExportRecord::Vector {
                    id,
                    model,
                    dim: vector.len(),
                    vector,
                },
            };
            sink(&record)
        };
        self.store.snapshot(tenant, &mut each).await?;
        progress(written);
        self.audit_ok(
            &crate::actor_of(&caller),
            Some(tenant),
            "export",
            serde_json::json!({ "records": written }),
        )
        .await;
        Ok(written)
    }

    /// Checks one dump record as `import` would, without storing anything.
    pub fn validate_record(&self, r: &ExportRecord) -> Result<()> {
        match r {
            ExportRecord::Header(_) => Err(Error::InvalidInput(
                "a dump header may only appear on the first line".into(),
            )),
            ExportRecord::Memory { memory, .. } => {
                self.config.check_text("memory content", &memory.content)?;
                if continuum_core::memory::content_hash(&memory.content) != memory.content_hash {
                    return Err(Error::InvalidInput(format!(
                        "memory {}: content_hash does not match its content",
                        memory.id
                    )));
                }
                Ok(())
            }
            ExportRecord::Link { a, b, strength, .. } => {
                if !(0.0..=1.0).contains(strength) {
                    return Err(Error::InvalidInput(format!(
                        "link {a} <-> {b} has strength {strength}, outside [0, 1]"
                    )));
                }
                if a.is_empty() || b.is_empty() || a == b {
                    return Err(Error::InvalidInput(format!(
                        "link {a} <-> {b} is not a pair of concepts"
                    )));
                }
                Ok(())
            }
            ExportRecord::Decision(d) => self.config.check_text("decision", &d.text),
            ExportRecord::Record { kind, record } => record_of(kind, record).map(|_| ()),
            ExportRecord::Vector {
                id,
                model,
                dim,
                vector,
            } => {
                if model.is_empty() || model.len() > 200 {
                    return Err(Error::InvalidInput(format!(
                        "vector of {id}: the model name must be 1 to 200 bytes"
                    )));
                }
                if *dim == 0 || *dim > MAX_VECTOR_DIM || vector.len() != *dim {
                    return Err(Error::InvalidInput(format!(
                        "vector of {id}: {} values for dimension {dim} (at most {MAX_VECTOR_DIM})",
                        vector.len()
                    )));
                }
                if vector.iter().any(|x| !x.is_finite()) {
                    return Err(Error::InvalidInput(format!(
                        "vector of {id} holds a value that is not a finite number"
                    )));
                }
                Ok(())
            }
        }
    }

    /// Imports records (a chunk of a dump, header excluded) in one transaction.
    #[tracing::instrument(name = "engine.import", level = "debug", skip_all)]
    pub async fn import(
        &self,
        who: impl Into<Caller>,
        records: Vec<ExportRecord>,
    ) -> Result<ImportOutcome> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let mut out = ImportOutcome::default();
        let mut memories = Vec::new();
        let mut links = Vec::new();
        let mut decisions = Vec::new();
        let mut reflections = Vec::new();
        let mut vectors: std::collections::BTreeMap<(String, usize), Vec<_>> = Default::default();
        for r in records {
            self.validate_record(&r)?;
            match r {
                ExportRecord::Header(_) => unreachable!("validate_record refuses headers"),
                ExportRecord::Memory { memory, concepts } => {
                    memories.push(MemoryWrite::new(memory, concepts))
                }
                ExportRecord::Link {
                    a,
                    b,
                    strength,
                    count,
                    last_at,
                } => links.push(LinkWrite::AtLeast {
                    a,
                    b,
                    strength,
                    count,
                    last_at,
                }),
                ExportRecord::Decision(d) => decisions.push(d),
                ExportRecord::Record { kind, record } => {
                    reflections.push(record_of(&kind, &record)?)
                }
                ExportRecord::Vector {
                    id,
                    model,
                    dim,
                    vector,
                } => vectors.entry((model, dim)).or_default().push((id, vector)),
            }
        }
        let keys: Vec<ImportKey> = memories
            .iter()
            .map(|w| ImportKey {
                id: w.memory.id,
                content_hash: w.memory.content_hash.clone(),
                session: w.memory.session.clone(),
                created_at: w.memory.created_at,
            })
            .collect();
        let existing = self.store.existing(tenant, &keys).await?;
        let before = memories.len();
        memories.retain(|w| {
            !existing.iter().any(|k| {
                k.id == w.memory.id
                    || (k.content_hash == w.memory.content_hash
                        && k.created_at == w.memory.created_at
                        && k.session == w.memory.session)
            })
        });
        // A dump may repeat a memory; keep the first.
        let mut seen = std::collections::HashSet::new();
        memories.retain(|w| seen.insert(w.memory.id));
        out.memories_skipped = (before - memories.len()) as u64;
        let batch = WriteBatch {
            memories,
            links,
            decisions,
            supersedes: Vec::new(),
            at: self.clock.now(),
            written_at: None,
        };
        let adding = crate::learn::footprint_of(std::slice::from_ref(&batch));
        self.check_storage(tenant, adding.memories).await?;
        let applied = self
            .store
            .apply(tenant, &self.config.hebbian, vec![batch])
            .await?;
        out.memories_added = applied.memories;
        self.note_stored(tenant, adding);
        out.links = applied.links_created + applied.links_strengthened;
        out.decisions = applied.decisions;
        // Vectors go after the memories they belong to (a dump lists them last); a vector of
        // a memory not in the store is skipped by the store.
        for ((model, dim), list) in vectors {
            out.vectors += self.store.put_vectors(tenant, &model, dim, &list).await? as u64;
        }
        if out.vectors > 0 {
            self.vectors_changed(tenant);
        }
        // Records already here as dumped are left alone (no new event); the rest are written.
        let mut changed = Vec::new();
        for r in reflections {
            if self.store.record(tenant, &r.id()).await?.as_ref() != Some(&r) {
                changed.push(r);
            }
        }
        if !changed.is_empty() {
            self.store
                .put_records(tenant, self.clock.now(), &changed)
                .await?;
        }
        out.records = changed.len() as u64;
        self.audit_ok(
            &crate::actor_of(&caller),
            Some(tenant),
            "import",
            serde_json::json!({
                "memories_added": out.memories_added,
                "memories_skipped": out.memories_skipped,
            }),
        )
        .await;
        Ok(out)
    }
}

/// A dumped record, read and checked as the API would have taken it.
fn record_of(kind: &str, value: &serde_json::Value) -> Result<continuum_core::reflection::Record> {
    use continuum_core::reflection::{Record, check_record};
    let body = serde_json::to_string(value).map_err(|e| Error::InvalidInput(e.to_string()))?;
    let r = Record::decode(kind, &body)
        .map_err(|e| Error::InvalidInput(format!("a {kind} record cannot be read: {e}")))?;
    check_record(&r)?;
    Ok(r)
}
