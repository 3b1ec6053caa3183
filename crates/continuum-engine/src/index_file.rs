//! The text index kept in a file beside the store (SQLite: `<file>-index/text-<tenant>.idx`),
//! so that a process starts from a file read and the changes since, not from a rebuild over
//! every memory.
//!
//! A file is trusted only when everything checks: its format and checksum, its tenant, and the
//! event at the position it reflects, which must still be in the store's log and carry the
//! fingerprint written with it (a store restored from an older backup, or replaced by another
//! with its own history, no longer has it). Anything else is a rebuild, never a guess. After
//! loading, the index is caught up from the log like any other.
//!
//! Written whole to a temporary name and renamed (a crash leaves the old file or the new one),
//! from the index as a rebuild would make it (forgotten memories leave nothing in it):
//! after a build, once [`SAVE_AFTER`] changes were applied since the last save, and when
//! `serve` stops. Forgetting memories deletes the file at once. Only tenants with at least
//! `index_file_min_memories` memories get one: below that a rebuild takes milliseconds.
//! Stores without a directory for derived data (PostgreSQL, in-memory) keep the index in memory
//! only.

use crate::Engine;
use crate::index::{Slot, poisoned};
use continuum_core::event::{EventRecord, EventScope};
use continuum_core::{Error, Result, TenantId};
use continuum_index::TextIndex;
use std::path::PathBuf;

/// What [`Engine::text_index_info`] tells of a tenant's text index.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TextIndexInfo {
    /// Memories in the index this process holds (`None`: none held yet).
    pub memories: Option<usize>,
    /// How this process got it: `file` (read from its file) or `built` (from the store).
    pub origin: Option<&'static str>,
    /// How long that took, in milliseconds.
    pub ms: Option<u64>,
    /// Where its file is kept, if anywhere, and its size when one is there.
    pub file: Option<String>,
    pub file_bytes: Option<u64>,
    /// Tenants with at least this many memories get a file.
    pub min_memories: usize,
}

/// Changes applied to a tenant's index since its file was written (or read) after which it is
/// written again.
pub(crate) const SAVE_AFTER: usize = 10_000;

/// FNV-1a over the event's JSON: what a file records of the event at its position.
fn fingerprint(e: &EventRecord) -> u64 {
    crate::ann::fnv(&serde_json::to_vec(e).unwrap_or_default())
}

fn file_name(tenant: &TenantId) -> String {
    format!("text-{}.idx", crate::ann::hex(tenant.as_str()))
}

impl Engine {
    fn index_file(&self, tenant: &TenantId) -> Option<PathBuf> {
        if !self.config.index_files {
            return None;
        }
        Some(self.store.derived_dir()?.join(file_name(tenant)))
    }

    /// Deletes the tenant's index file (when memories were forgotten: a file must not outlive
    /// them); a resident index is written again at the next chance.
    pub(crate) fn drop_index_file(&self, tenant: &TenantId) {
        if let Some(path) = self.index_file(tenant) {
            let _ = std::fs::remove_file(path);
        }
        if let Ok(mut unsaved) = self.indexes.unsaved.lock() {
            unsaved.insert(tenant.clone(), SAVE_AFTER);
        }
    }

    /// The fingerprint of the tenant's event at `seq`, if the log still holds it.
    async fn fingerprint_at(&self, tenant: &TenantId, seq: u64) -> Result<Option<u64>> {
        if seq == 0 {
            return Ok(None);
        }
        match self
            .store
            .events_since(EventScope::Tenant(tenant), seq - 1, 1)
            .await
        {
            Ok(page) => Ok(page.first().filter(|e| e.seq == seq).map(fingerprint)),
            Err(Error::Gone(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The tenant's index as its file holds it, if there is a file and it can be trusted (see
    /// the module's text). A file that cannot is deleted, so it is not read again.
    pub(crate) async fn load_index_file(&self, tenant: &TenantId) -> Option<TextIndex> {
        let path = self.index_file(tenant)?;
        let started = std::time::Instant::now();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "could not read the text index file; rebuilding");
                return None;
            }
        };
        let refuse = |why: String| {
            tracing::warn!(%tenant, file = %path.display(), reason = %why, "text index file not used; rebuilding");
            let _ = std::fs::remove_file(&path);
            None
        };
        let head = match TextIndex::file_head(&bytes) {
            Ok(h) => h,
            Err(e) => return refuse(e.to_string()),
        };
        if head.tenant != tenant.as_str() {
            return refuse("it belongs to another tenant".into());
        }
        match self.fingerprint_at(tenant, head.seq).await {
            Ok(Some(f)) if f == head.fingerprint => {}
            Ok(_) => {
                return refuse(format!(
                    "the store's log no longer holds the event at position {} it was written at",
                    head.seq
                ));
            }
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "could not check the text index file; rebuilding");
                return None;
            }
        }
        let read = tokio::task::spawn_blocking(move || TextIndex::from_bytes(&bytes)).await;
        match read {
            Ok(Ok((_, index))) => {
                tracing::info!(
                    %tenant,
                    memories = index.len(),
                    seq = index.seq,
                    ms = started.elapsed().as_millis() as u64,
                    "text index read from its file"
                );
                if let Ok(mut unsaved) = self.indexes.unsaved.lock() {
                    unsaved.insert(tenant.clone(), 0);
                }
                self.index_origin(tenant, "file", started);
                Some(index)
            }
            Ok(Err(e)) => refuse(e.to_string()),
            Err(e) => refuse(e.to_string()),
        }
    }

    /// Counts `changes` applied to the tenant's index, and writes its file when a build just
    /// happened (`built`) or enough changes piled up.
    pub(crate) async fn index_moved(
        &self,
        tenant: &TenantId,
        slot: &Slot,
        changes: usize,
        built: bool,
    ) {
        // Checked before the file's path is made: this runs after every catch-up.
        let big = slot
            .read()
            .ok()
            .and_then(|i| i.as_ref().map(|i| i.len()))
            .is_some_and(|n| n >= self.config.index_file_min_memories.max(1));
        if !big || self.index_file(tenant).is_none() {
            return;
        }
        let due = match self.indexes.unsaved.lock() {
            Ok(mut unsaved) => {
                let n = unsaved.entry(tenant.clone()).or_insert(0);
                *n = if built { SAVE_AFTER } else { *n + changes };
                *n >= SAVE_AFTER
            }
            Err(_) => false,
        };
        if !due {
            return;
        }
        if self
            .indexes
            .background_saves
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            if let Ok(mut saving) = self.indexes.saving.lock()
                && !saving.insert(tenant.clone())
            {
                return; // one write per tenant at a time
            }
            let (engine, tenant, slot) = (self.clone(), tenant.clone(), slot.clone());
            tokio::spawn(async move {
                engine.save_index_file(&tenant, &slot).await;
                if let Ok(mut saving) = engine.indexes.saving.lock() {
                    saving.remove(&tenant);
                }
            });
        } else {
            self.save_index_file(tenant, slot).await;
        }
    }

    /// Writes the tenant's index to its file if it is large enough; failures are logged, never
    /// returned (the file is a cache). Returns whether a file was written.
    pub(crate) async fn save_index_file(&self, tenant: &TenantId, slot: &Slot) -> bool {
        match self.try_save_index_file(tenant, slot).await {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "could not write the text index file");
                false
            }
        }
    }

    async fn try_save_index_file(&self, tenant: &TenantId, slot: &Slot) -> Result<bool> {
        let Some(path) = self.index_file(tenant) else {
            return Ok(false);
        };
        let Some((seq, len)) = slot
            .read()
            .map_err(poisoned)?
            .as_ref()
            .map(|i| (i.seq, i.len()))
        else {
            return Ok(false);
        };
        if len < self.config.index_file_min_memories.max(1) {
            return Ok(false);
        }
        let Some(fingerprint) = self.fingerprint_at(tenant, seq).await? else {
            return Ok(false);
        };
        let started = std::time::Instant::now();
        let (slot, name) = (slot.clone(), tenant.to_string());
        let bytes = tokio::task::spawn_blocking(move || -> Result<Option<Vec<u8>>> {
            let guard = slot.read().map_err(poisoned)?;
            let Some(index) = guard.as_ref().filter(|i| i.seq == seq) else {
                return Ok(None); // moved on meanwhile: the next change writes it
            };
            Ok(Some(index.to_bytes(&name, fingerprint)))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let Some(bytes) = bytes else {
            return Ok(false);
        };
        crate::ann::write_snapshot(&path, &bytes)
            .map_err(|e| Error::Unavailable(format!("could not write {}: {e}", path.display())))?;
        if let Ok(mut unsaved) = self.indexes.unsaved.lock() {
            unsaved.insert(tenant.clone(), 0);
        }
        tracing::info!(
            %tenant,
            memories = len,
            bytes = bytes.len(),
            ms = started.elapsed().as_millis() as u64,
            "text index written to its file"
        );
        Ok(true)
    }

    pub(crate) fn index_origin(
        &self,
        tenant: &TenantId,
        origin: &'static str,
        started: std::time::Instant,
    ) {
        let took = started.elapsed();
        metrics::counter!(continuum_ops::metrics::INDEX_LOADS, "origin" => origin).increment(1);
        metrics::histogram!(continuum_ops::metrics::INDEX_LOAD_DURATION, "origin" => origin)
            .record(took.as_secs_f64());
        if let Ok(mut o) = self.indexes.origins.lock() {
            o.insert(tenant.clone(), (origin, took.as_millis() as u64));
        }
    }

    /// The tenant's text index: held or not, read from its file or built, and its file.
    pub fn text_index_info(&self, tenant: &TenantId) -> TextIndexInfo {
        let memories = self
            .resident_slot(tenant)
            .and_then(|slot| slot.read().ok().and_then(|i| i.as_ref().map(|i| i.len())));
        let origin = self
            .indexes
            .origins
            .lock()
            .ok()
            .and_then(|o| o.get(tenant).copied());
        let file = self.index_file(tenant);
        TextIndexInfo {
            memories,
            origin: origin.map(|o| o.0),
            ms: origin.map(|o| o.1),
            file_bytes: file
                .as_ref()
                .and_then(|f| std::fs::metadata(f).ok())
                .map(|m| m.len()),
            file: file.map(|f| f.display().to_string()),
            min_memories: self.config.index_file_min_memories,
        }
    }

    /// Heap bytes of the tenant's resident text index by structure; `None` when none is held.
    pub fn text_index_bytes(&self, tenant: &TenantId) -> Option<Vec<(&'static str, usize)>> {
        let slot = self.resident_slot(tenant)?;
        Some(slot.read().ok()?.as_ref()?.heap_bytes())
    }

    /// Has the index files written in the background (by a task per tenant) rather than by the
    /// read that made them due: for long-running servers, which call [`Self::save_indexes`]
    /// when they stop.
    pub fn save_indexes_in_background(&self) {
        self.indexes
            .background_saves
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reads the index of every tenant that has a file (when a server starts, so its first
    /// recalls need not), one after another. Returns how many were read.
    pub async fn load_index_files(&self) -> usize {
        let Some(dir) = self.store.derived_dir().filter(|_| self.config.index_files) else {
            return 0;
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        let tenants: Vec<TenantId> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let hex = name.strip_prefix("text-")?.strip_suffix(".idx")?;
                let bytes = continuum_core::unhex(hex)?;
                TenantId::new(String::from_utf8(bytes).ok()?).ok()
            })
            .collect();
        let mut read = 0;
        for tenant in tenants {
            match self.fresh_index(&tenant).await {
                Ok(_) => read += 1,
                Err(e) => tracing::warn!(%tenant, error = %e, "could not load the text index"),
            }
        }
        read
    }

    /// Writes the file of every resident index with changes not yet in it (when a server
    /// stops). Returns how many were written.
    pub async fn save_indexes(&self) -> usize {
        let pending: Vec<(TenantId, Slot)> = {
            let (Ok(slots), Ok(unsaved)) = (self.indexes.slots.lock(), self.indexes.unsaved.lock())
            else {
                return 0;
            };
            slots
                .iter()
                .filter(|(t, _)| unsaved.get(*t).is_some_and(|n| *n > 0))
                .map(|(t, s)| (t.clone(), s.clone()))
                .collect()
        };
        let mut written = 0;
        for (tenant, slot) in pending {
            written += usize::from(self.save_index_file(&tenant, &slot).await);
        }
        written
    }
}
