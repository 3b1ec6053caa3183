//! Portable export and idempotent import, as JSON Lines.
//!
//! A dump is one JSON object per line: a `header`, then every `memory` (oldest first, each with
//! the concepts it mentions), every `link` (with its strength and count) and every `decision`.
//! Importing a dump into an empty store reproduces the tenant exactly, so recall gives the same
//! results. Import is idempotent: a memory already present (same id, or same content hash,
//! session and time) is skipped, links are raised to at least the dumped strength, and decisions
//! are keyed by id.

use crate::Engine;
use continuum_core::extract::ExtractedConcept;
use continuum_core::memory::Decision;
use continuum_core::store::{
    ImportKey, LinkWrite, MAX_PAGE, MemoryFilter, MemoryWrite, Order, PageRequest, WriteBatch,
};
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
}

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
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportOutcome {
    pub memories_added: u64,
    pub memories_skipped: u64,
    pub links: u64,
    pub decisions: u64,
}

impl Engine {
    /// Streams the tenant's dump to `sink`, one record at a time (memory use stays bounded by
    /// the page size). `progress` is told how many memories were written so far.
    pub async fn export(
        &self,
        tenant: &TenantId,
        sink: &mut dyn FnMut(&ExportRecord) -> Result<()>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        sink(&ExportRecord::Header(ExportHeader {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            tenant: tenant.clone(),
            exported_at: self.clock.now(),
        }))?;
        let mut page = PageRequest {
            limit: MAX_PAGE,
            cursor: None,
            order: Order::OldestFirst,
        };
        let mut written = 0u64;
        loop {
            let p = self
                .store
                .list(tenant, &MemoryFilter::default(), &page)
                .await?;
            let ids: Vec<_> = p.items.iter().map(|m| m.id).collect();
            let mentions = self.store.concepts_of(tenant, &ids).await?;
            for m in p.items {
                let concepts = mentions
                    .iter()
                    .filter(|(id, _)| *id == m.id)
                    .map(|(_, c)| c.clone())
                    .collect();
                sink(&ExportRecord::Memory {
                    memory: m,
                    concepts,
                })?;
                written += 1;
            }
            progress(written);
            match p.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let mut offset = 0;
        loop {
            let links = self.store.list_links(tenant, MAX_PAGE, offset).await?;
            let n = links.len();
            for l in links {
                sink(&ExportRecord::Link {
                    a: l.a,
                    b: l.b,
                    strength: l.strength,
                    count: l.count,
                    last_at: l.last_at,
                })?;
            }
            if n < MAX_PAGE {
                break;
            }
            offset += n;
        }
        let mut offset = 0;
        loop {
            let ds = self.store.decisions(tenant, MAX_PAGE, offset).await?;
            let n = ds.len();
            for d in ds {
                sink(&ExportRecord::Decision(d))?;
            }
            if n < MAX_PAGE {
                break;
            }
            offset += n;
        }
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
        }
    }

    /// Imports records (a chunk of a dump, header excluded) in one transaction.
    pub async fn import(
        &self,
        tenant: &TenantId,
        records: Vec<ExportRecord>,
    ) -> Result<ImportOutcome> {
        let mut out = ImportOutcome::default();
        let mut memories = Vec::new();
        let mut links = Vec::new();
        let mut decisions = Vec::new();
        for r in records {
            self.validate_record(&r)?;
            match r {
                ExportRecord::Header(_) => unreachable!("validate_record refuses headers"),
                ExportRecord::Memory { memory, concepts } => {
                    memories.push(MemoryWrite { memory, concepts })
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
        };
        let applied = self
            .store
            .apply(tenant, &self.config.hebbian, vec![batch])
            .await?;
        out.memories_added = applied.memories;
        out.links = applied.links_created + applied.links_strengthened;
        out.decisions = applied.decisions;
        Ok(out)
    }
}
