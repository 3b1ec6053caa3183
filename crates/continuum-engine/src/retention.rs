//! Retention: rules that forget memories of a source once they are older than an age (for
//! example the assistant's `thinking` after 90 days), applied to every tenant by the
//! `retention` job of `serve` and by `continuum retention run [--dry-run]`.
//!
//! A run forgets through [`Engine::forget`]: the memories leave the store, the full-text
//! index, vectors and vector graphs, their text is scrubbed from past events, and
//! `memory.forgotten` events reach replicas, streams and webhooks. Each tenant's run is one
//! audit entry with its counts.

use crate::Engine;
use continuum_core::store::{ForgetSelector, MemoryFilter, Order, PageRequest};
use continuum_core::{Error, MemoryId, Result, Source, TenantId, Timestamp};
use serde::Serialize;

/// Memories forgotten per transaction.
const BATCH: usize = 500;
/// Memory ids listed per tenant and rule by a dry run (the counts are always complete).
pub const MAX_DRY_RUN_IDS: usize = 1000;

/// One rule: memories of `source` (every source when `None`) older than `max_age_millis`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RetentionRule {
    pub source: Option<Source>,
    pub max_age_millis: i64,
}

impl RetentionRule {
    /// `SOURCE=AGE`, the age in milliseconds already parsed by the caller; `*` for every source.
    pub fn new(source: &str, max_age_millis: i64) -> Result<RetentionRule> {
        if max_age_millis <= 0 {
            return Err(Error::InvalidInput(
                "a retention age must be positive".into(),
            ));
        }
        let source = match source.trim() {
            "*" => None,
            s => Some(s.parse::<Source>().map_err(|_| {
                Error::InvalidInput(format!(
                    "'{s}' is not a source (user, assistant, thinking, system, document, fact, note, or *)"
                ))
            })?),
        };
        Ok(RetentionRule {
            source,
            max_age_millis,
        })
    }

    fn label(&self) -> String {
        match self.source {
            Some(s) => s.as_str().to_string(),
            None => "*".into(),
        }
    }
}

/// What a rule did (or would do) to one tenant.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RetentionHit {
    pub tenant: TenantId,
    /// The rule's source (`*`: every source).
    pub source: String,
    /// Memories created before this were (or would be) forgotten.
    pub before: Timestamp,
    pub memories: u64,
    /// A dry run's ids (at most [`MAX_DRY_RUN_IDS`] per tenant and rule).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<MemoryId>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RetentionReport {
    pub dry_run: bool,
    pub forgotten: u64,
    pub hits: Vec<RetentionHit>,
}

impl Engine {
    /// The ids `rule` selects in `tenant` now, oldest first, at most `limit`.
    async fn retention_ids(
        &self,
        tenant: &TenantId,
        rule: &RetentionRule,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<MemoryId>> {
        let filter = MemoryFilter {
            sources: rule.source.into_iter().collect(),
            until: Some(before),
            ..MemoryFilter::default()
        };
        let page = PageRequest {
            limit,
            cursor: None,
            order: Order::OldestFirst,
        };
        Ok(self
            .store
            .list(tenant, &filter, &page)
            .await?
            .items
            .into_iter()
            .map(|m| m.id)
            .collect())
    }

    /// Applies `rules` to every tenant (an operator's act): forgets what they select, or with
    /// `dry_run` only reports it. `progress` is told the memories forgotten so far.
    pub async fn apply_retention(
        &self,
        rules: &[RetentionRule],
        dry_run: bool,
        mut progress: impl FnMut(u64),
    ) -> Result<RetentionReport> {
        let now = self.clock.now();
        let mut report = RetentionReport {
            dry_run,
            forgotten: 0,
            hits: Vec::new(),
        };
        for t in self.store.tenants().await? {
            let tenant = t.tenant;
            let mut forgotten_here = Vec::new();
            for rule in rules {
                let before = Timestamp(now.millis().saturating_sub(rule.max_age_millis));
                let mut hit = RetentionHit {
                    tenant: tenant.clone(),
                    source: rule.label(),
                    before,
                    memories: 0,
                    ids: Vec::new(),
                };
                if dry_run {
                    // Count in pages without deleting: walk with a cursor.
                    let filter = MemoryFilter {
                        sources: rule.source.into_iter().collect(),
                        until: Some(before),
                        ..MemoryFilter::default()
                    };
                    let mut cursor = None;
                    loop {
                        let page = PageRequest {
                            limit: BATCH,
                            cursor: cursor.take(),
                            order: Order::OldestFirst,
                        };
                        let p = self.store.list(&tenant, &filter, &page).await?;
                        hit.memories += p.items.len() as u64;
                        for m in p.items {
                            if hit.ids.len() < MAX_DRY_RUN_IDS {
                                hit.ids.push(m.id);
                            }
                        }
                        match p.next_cursor {
                            Some(c) => cursor = Some(c),
                            None => break,
                        }
                    }
                } else {
                    loop {
                        let ids = self.retention_ids(&tenant, rule, before, BATCH).await?;
                        if ids.is_empty() {
                            break;
                        }
                        // A memory forgotten meanwhile by someone else is no error here.
                        let n = match self.forget(&tenant, &ForgetSelector::Ids(ids)).await {
                            Err(Error::NotFound(_)) => 0,
                            other => other?,
                        };
                        if n == 0 {
                            break;
                        }
                        hit.memories += n;
                        report.forgotten += n;
                        progress(report.forgotten);
                    }
                }
                if hit.memories > 0 {
                    forgotten_here.push(serde_json::json!({
                        "source": hit.source,
                        "before": hit.before.to_rfc3339(),
                        "memories": hit.memories,
                    }));
                    report.hits.push(hit);
                }
            }
            if !dry_run && !forgotten_here.is_empty() {
                self.audit_ok(
                    "system",
                    Some(&tenant),
                    "retention.applied",
                    serde_json::json!({ "rules": forgotten_here }),
                )
                .await;
            }
        }
        Ok(report)
    }
}
