//! Reading the event log: a tenant's events for `continuum events` and `GET /v1/events`, and
//! every tenant's for operators and replication.

use crate::Engine;
use continuum_core::event::{EventRecord, EventScope};
use continuum_core::store::MAX_PAGE;
use continuum_core::{Error, Result, TenantId};

/// The most events one read returns.
pub const MAX_EVENTS_PAGE: usize = MAX_PAGE;

impl Engine {
    /// The tenant's events after position `since` (0: from the start), oldest first, at most
    /// `limit` (1 to [`MAX_EVENTS_PAGE`]). A position past the end gives an empty page.
    pub async fn events(
        &self,
        tenant: &TenantId,
        since: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
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

fn check_limit(limit: usize) -> Result<()> {
    if limit == 0 || limit > MAX_EVENTS_PAGE {
        return Err(Error::InvalidInput(format!(
            "limit must be between 1 and {MAX_EVENTS_PAGE}"
        )));
    }
    Ok(())
}
