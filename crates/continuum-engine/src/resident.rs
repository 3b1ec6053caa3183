//! A bound on the memory the tenants' text indexes hold together (`max_resident_bytes`,
//! `--max-resident-mb`).
//!
//! Every read notes when it used its tenant's index. After an index is read from its file or
//! built, and whenever a server's upkeep job asks, the resident indexes are measured (their
//! estimated heap bytes, the vector graph left out), and while they hold more than the bound,
//! the least recently used tenant idle for `resident_idle` or longer leaves memory: its file
//! is written first when it has changes the file lacks (so its next use reads the file rather
//! than rebuilding), then its index and its read cache are dropped. An index some task holds
//! (a recall, a graph build, a save) is never dropped, nor one used since it was measured;
//! the next use of a dropped tenant loads it again like a first use.

use crate::Engine;
use crate::index::{Slot, poisoned};
use continuum_core::{Result, TenantId};
use std::sync::Arc;
use std::time::Instant;

/// What one pass of [`Engine::bound_resident_indexes`] found and did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ResidentIndexes {
    /// Tenants whose index is held after the pass, and their estimated heap bytes.
    pub tenants: usize,
    pub bytes: usize,
    /// Tenants whose index left memory in this pass.
    pub evicted: Vec<TenantId>,
}

/// What [`Engine::release_memory_when_quiet`] saw last: the store's commit marker, the latest
/// index read, and whether the caches were given back since.
pub(crate) struct Quiet {
    marker: u64,
    read: Option<Instant>,
    released: bool,
}

/// A resident index as measured: its tenant, slot, bytes and when it was last used.
struct Held {
    tenant: TenantId,
    slot: Slot,
    bytes: usize,
    used: Option<Instant>,
}

impl Engine {
    /// Gives back the store's caches (SQLite's page caches) once the engine has gone quiet:
    /// called periodically (`serve` does, every 15 s), it releases when neither a commit to
    /// the store nor a recall happened since the previous call, then not again until there
    /// was activity. Stores that cannot tell when they were written to are left alone.
    /// Returns whether it released.
    pub async fn release_memory_when_quiet(&self) -> Result<bool> {
        let Some(marker) = self.store.commit_marker().await? else {
            return Ok(false);
        };
        let read = self
            .indexes
            .used
            .lock()
            .map_err(poisoned)?
            .values()
            .max()
            .copied();
        {
            let mut seen = self.indexes.quiet.lock().map_err(poisoned)?;
            match seen.as_mut() {
                Some(q) if q.marker == marker && q.read == read => {
                    if q.released {
                        return Ok(false);
                    }
                    q.released = true;
                }
                _ => {
                    *seen = Some(Quiet {
                        marker,
                        read,
                        released: false,
                    });
                    return Ok(false);
                }
            }
        }
        let emptied = self.store.release_memory().await?;
        tracing::debug!(caches = emptied, "quiet: store caches given back");
        Ok(true)
    }

    /// Notes that the tenant's index is being read now.
    pub(crate) fn index_used(&self, tenant: &TenantId) {
        // Every read comes here: the tenant's name is copied only on its first.
        if let Ok(mut used) = self.indexes.used.lock() {
            match used.get_mut(tenant) {
                Some(at) => *at = Instant::now(),
                None => {
                    used.insert(tenant.clone(), Instant::now());
                }
            }
        }
    }

    /// After a tenant's index came into memory: bounds the resident indexes, in a task of its
    /// own in servers (it may write files), at once otherwise.
    pub(crate) async fn bound_resident_after_load(&self) {
        if self.config.max_resident_bytes == 0 {
            return;
        }
        if self
            .indexes
            .background_saves
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let engine = self.clone();
            tokio::spawn(async move {
                engine.bound_resident_indexes().await;
            });
        } else {
            self.bound_resident_indexes().await;
        }
    }

    fn held_indexes(&self) -> Vec<Held> {
        let slots: Vec<(TenantId, Slot)> = match self.indexes.slots.lock() {
            Ok(s) => s.iter().map(|(t, s)| (t.clone(), s.clone())).collect(),
            Err(_) => return Vec::new(),
        };
        let used = self
            .indexes
            .used
            .lock()
            .map(|u| u.clone())
            .unwrap_or_default();
        slots
            .into_iter()
            .filter_map(|(tenant, slot)| {
                let bytes = slot
                    .read()
                    .ok()?
                    .as_ref()?
                    .heap_bytes()
                    .iter()
                    .map(|(_, b)| b)
                    .sum();
                let used = used.get(&tenant).copied();
                Some(Held {
                    tenant,
                    slot,
                    bytes,
                    used,
                })
            })
            .collect()
    }

    /// Drops the least recently used idle tenants' indexes while the resident ones hold more
    /// than `max_resident_bytes` (see the module's text), and records the resident figures in
    /// the metrics.
    pub async fn bound_resident_indexes(&self) -> ResidentIndexes {
        let mut held = self.held_indexes();
        let mut bytes: usize = held.iter().map(|h| h.bytes).sum();
        let mut tenants = held.len();
        let mut evicted = Vec::new();
        let limit = self.config.max_resident_bytes;
        if limit > 0 && bytes > limit {
            // Least recently used first (never used by a read: first of all).
            held.sort_by_key(|h| h.used);
            let now = Instant::now();
            for h in held {
                if bytes <= limit {
                    break;
                }
                if h.used
                    .is_some_and(|u| now.duration_since(u) < self.config.resident_idle)
                {
                    break; // the rest were used more recently still
                }
                if self.evict(&h).await {
                    bytes -= h.bytes;
                    tenants -= 1;
                    evicted.push(h.tenant);
                }
            }
        }
        metrics::gauge!(continuum_ops::metrics::INDEX_RESIDENT_TENANTS).set(tenants as f64);
        metrics::gauge!(continuum_ops::metrics::INDEX_RESIDENT_BYTES).set(bytes as f64);
        ResidentIndexes {
            tenants,
            bytes,
            evicted,
        }
    }

    /// Writes the tenant's file if it lacks changes, then drops its index, unless someone
    /// holds or used it meanwhile. Returns whether it was dropped.
    async fn evict(&self, h: &Held) -> bool {
        let unsaved = self
            .indexes
            .unsaved
            .lock()
            .is_ok_and(|u| u.get(&h.tenant).is_some_and(|n| *n > 0));
        if unsaved {
            self.save_index_file(&h.tenant, &h.slot).await;
        }
        let Ok(mut used) = self.indexes.used.lock() else {
            return false;
        };
        {
            let Ok(mut slots) = self.indexes.slots.lock() else {
                return false;
            };
            // Still the tenant's slot, referenced by the map and `h` only (no read, graph
            // build or save holds it), and not read since it was measured.
            let same = slots
                .get(&h.tenant)
                .is_some_and(|s| Arc::ptr_eq(s, &h.slot));
            if !same || Arc::strong_count(&h.slot) != 2 || used.get(&h.tenant).copied() != h.used {
                return false;
            }
            slots.remove(&h.tenant);
        }
        used.remove(&h.tenant);
        drop(used);
        let tenant = &h.tenant;
        if let Ok(mut m) = self.indexes.unsaved.lock() {
            m.remove(tenant);
        }
        if let Ok(mut m) = self.indexes.origins.lock() {
            m.remove(tenant);
        }
        if let Ok(mut m) = self.indexes.first_loads.lock() {
            m.remove(tenant);
        }
        if let Ok(mut c) = self.indexes.reads.lock() {
            c.drop_tenant(tenant);
        }
        metrics::counter!(continuum_ops::metrics::INDEX_EVICTIONS).increment(1);
        tracing::info!(%tenant, bytes = h.bytes, "text index left memory (over --max-resident-mb)");
        true
    }
}
