//! Reading the event log (a tenant's events for `continuum events` and `GET /v1/events`, every
//! tenant's for operators and replication), consumers' named cursors, and compaction.
//!
//! The log does not grow without bound: [`Engine::compact_events`] deletes the events that
//! every named cursor has passed and that are older than a minimum retention. A reader asking
//! for events from before the compaction point gets [`Error::Gone`] and must start again from
//! a snapshot (`export` records the position to follow from); it never silently skips.

use crate::Engine;
use continuum_core::event::{EventCursor, EventRecord, EventScope, check_cursor_name};
use continuum_core::keys::{Caller, Scope};
use continuum_core::store::MAX_PAGE;
use continuum_core::{Error, Result};
use serde::Serialize;

/// The most events one read returns.
pub const MAX_EVENTS_PAGE: usize = MAX_PAGE;

/// How long events are kept at least, by default, even when every cursor has passed them.
pub const DEFAULT_EVENT_RETENTION_MILLIS: i64 = 7 * 86_400_000;

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Compaction {
    /// The compaction point after it: events up to here are gone.
    pub compacted_through: u64,
    /// Events deleted by this run.
    pub removed: u64,
    /// The cursor that kept the point from moving further, if one did.
    pub held_by: Option<String>,
}

impl Engine {
    /// The caller's tenant's events (read scope) after position `since` (0: from the start),
    /// oldest first, at most `limit` (1 to [`MAX_EVENTS_PAGE`]). A position past the end gives
    /// an empty page.
    pub async fn events(
        &self,
        who: impl Into<Caller>,
        since: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        check_limit(limit)?;
        self.store
            .events_since(EventScope::Tenant(tenant), since, limit)
            .await
    }

    /// Every tenant's events after `since`, in store order (operators, replication).
    pub async fn events_all_tenants(&self, since: u64, limit: usize) -> Result<Vec<EventRecord>> {
        check_limit(limit)?;
        self.store.events_since(EventScope::All, since, limit).await
    }
}

impl Engine {
    /// The store-wide newest event position (0 for an empty log): an operator's figure.
    pub async fn event_head(&self) -> Result<u64> {
        self.store.event_head().await
    }

    /// Consumers' named cursors.
    pub async fn event_cursors(&self) -> Result<Vec<EventCursor>> {
        self.store.event_cursors().await
    }

    /// Creates or moves a consumer's cursor to `position` (at most the log's head).
    pub async fn set_event_cursor(&self, name: &str, position: u64) -> Result<()> {
        check_cursor_name(name)?;
        let head = self.store.event_head().await?;
        if position > head {
            return Err(Error::InvalidInput(format!(
                "position {position} is past the end of the log ({head})"
            )));
        }
        let through = self.store.compacted_through().await?;
        if position < through {
            return Err(continuum_core::event::compacted_error(position, through));
        }
        self.store
            .set_event_cursor(name, position, self.clock.now())
            .await
    }

    /// Deletes a consumer's cursor (its events may then be compacted).
    pub async fn delete_event_cursor(&self, name: &str) -> Result<()> {
        check_cursor_name(name)?;
        if self.store.delete_event_cursor(name).await? {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no event cursor named {name}")))
        }
    }

    /// Deletes the events every cursor has passed that are older than `min_age_millis`.
    pub async fn compact_events(&self, min_age_millis: i64) -> Result<Compaction> {
        if min_age_millis < 0 {
            return Err(Error::InvalidInput(
                "the retention cannot be negative".into(),
            ));
        }
        let cutoff =
            continuum_core::Timestamp(self.clock.now().millis().saturating_sub(min_age_millis));
        let head = self.store.event_head().await?;
        let mut through = match self.store.first_event_at_or_after(cutoff).await? {
            Some(first_young) => first_young.saturating_sub(1),
            None => head,
        };
        let mut held_by = None;
        for c in self.store.event_cursors().await? {
            if c.position < through {
                through = c.position;
                held_by = Some(c.name);
            }
        }
        let before = self.store.compacted_through().await?;
        let removed = if through > before {
            self.store.compact_events(through).await?
        } else {
            0
        };
        Ok(Compaction {
            compacted_through: through.max(before),
            removed,
            held_by,
        })
    }
}

fn check_limit(limit: usize) -> Result<()> {
    if limit == 0 || limit > MAX_EVENTS_PAGE {
        return Err(Error::InvalidInput(format!(
            "limit must be between 1 and {MAX_EVENTS_PAGE}"
        )));
    }
    Ok(())
}
