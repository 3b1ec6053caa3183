//! Sync between nodes, the engine's side (see [`continuum_core::sync`] for the merge rules):
//! serving pulls and pushes for a key's tenant, reading the events this node wrote for a
//! remote, applying a remote's events, and the kept state of each remote. The HTTP client that
//! drives a sync round lives in the `continuum-sync` crate.

use crate::Engine;
use continuum_core::event::Event;
use continuum_core::keys::{Caller, Scope};
use continuum_core::store::RemoteApplied;
use continuum_core::sync::{
    MAX_SYNC_EVENTS, PullPage, PushReceipt, PushRequest, SyncEvent, SyncPeer, check_events,
    check_node_id, check_push,
};
use continuum_core::{Error, Result, TenantId};

/// The most concepts one synced memory may carry, and links one synced event.
pub const MAX_SYNC_CONCEPTS: usize = 1000;
pub const MAX_SYNC_LINKS: usize = 100_000;

impl Engine {
    /// This node's id (made when its store was created).
    pub async fn node_id(&self) -> Result<String> {
        self.store.node_id().await
    }

    /// Gives this store a new node id, remembering the old id's events as its own (see
    /// [`continuum_core::store::SyncStore::renew_node_id`]): what a restored or copied store
    /// needs before it syncs. Operators only.
    pub async fn renew_node_id(&self, who: impl Into<Caller>) -> Result<String> {
        who.into().require(Scope::Operator)?;
        self.store.renew_node_id().await
    }

    /// Every synced event of `tenant` after `after` (any origin, with it), at most `limit`
    /// (more when a group sharing an origin position would be split): what an incremental
    /// backup holds. Operators only.
    pub async fn synced_events(
        &self,
        who: impl Into<Caller>,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<SyncEvent>> {
        who.into().require(Scope::Operator)?;
        self.store
            .sync_events(tenant, after, limit.clamp(1, MAX_SYNC_EVENTS), false, None)
            .await
    }

    /// `GET /v1/sync/pull`: the key's tenant's synced events after `since` (write scope), at
    /// most `limit` (1 to [`MAX_SYNC_EVENTS`]), leaving out those of origin `exclude` (the
    /// puller's own, which it has).
    pub async fn sync_pull(
        &self,
        who: impl Into<Caller>,
        since: u64,
        limit: usize,
        exclude: Option<&str>,
    ) -> Result<PullPage> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        if limit == 0 || limit > MAX_SYNC_EVENTS {
            return Err(Error::InvalidInput(format!(
                "limit must be between 1 and {MAX_SYNC_EVENTS}"
            )));
        }
        if let Some(x) = exclude {
            check_node_id(x)?;
        }
        // Read before the events: anything committed after it is in the page or comes next.
        let head = self.store.latest_event(tenant).await?;
        let events = self
            .store
            .sync_events(tenant, since, limit, false, exclude)
            .await?;
        let last = events.last().map(|e| e.seq);
        let next = if events.len() >= limit {
            last.unwrap_or(since)
        } else {
            since.max(head).max(last.unwrap_or(0))
        };
        Ok(PullPage {
            tenant: tenant.clone(),
            node: self.store.node_id().await?,
            events,
            next,
            head: head.max(next),
        })
    }

    /// `POST /v1/sync/push`: applies another node's events to the key's tenant (write scope),
    /// all of them or none. A batch naming another tenant, too large, or holding a malformed
    /// event is refused whole, and the error names the offending event.
    pub async fn sync_push(&self, who: impl Into<Caller>, req: PushRequest) -> Result<PushReceipt> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        check_push(tenant, &req)?;
        let node = self.store.node_id().await?;
        if req.node == node {
            return Err(Error::InvalidInput(
                "this push comes from this node itself (a copied store keeps its node id; \
                 give the copy a new one before syncing it)"
                    .into(),
            ));
        }
        self.check_sync_payloads(&req.events)?;
        let creates = req
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e.event,
                    Event::MemoryCreated {
                        memory: Some(_),
                        ..
                    }
                )
            })
            .count() as u64;
        self.check_storage(tenant, creates).await?;
        let through = req.events.last().map(|e| e.seq).unwrap_or(0);
        let r = self
            .store
            .apply_remote(tenant, &self.config.hebbian, &req.events)
            .await?;
        if !req.events.is_empty() {
            self.audit_ok(
                &crate::actor_of(&caller),
                Some(tenant),
                "sync.received",
                serde_json::json!({
                    "node": req.node,
                    "events": req.events.len(),
                    "applied": r.applied,
                    "skipped": r.skipped,
                    "through": through,
                }),
            )
            .await;
        }
        Ok(PushReceipt {
            node,
            applied: r.applied,
            skipped: r.skipped,
            through,
        })
    }

    /// The events this node wrote itself for `tenant` after local position `after`, oldest
    /// first, at most `limit`: what a push to a remote carries.
    pub async fn sync_outgoing(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<SyncEvent>> {
        self.store
            .sync_events(tenant, after, limit.min(MAX_SYNC_EVENTS), true, None)
            .await
    }

    /// How many events this node wrote itself for `tenant` after `after` wait to be pushed,
    /// counted up to `cap`.
    pub async fn sync_waiting(&self, tenant: &TenantId, after: u64, cap: usize) -> Result<u64> {
        let mut n = 0u64;
        let mut pos = after;
        while (n as usize) < cap {
            let page = self
                .store
                .sync_events(tenant, pos, MAX_SYNC_EVENTS, true, None)
                .await?;
            let Some(last) = page.last() else { break };
            pos = last.seq;
            n += page.len() as u64;
        }
        Ok(n)
    }

    /// Applies a page pulled from a remote to the local `tenant`: the page's events must all
    /// be of the page's tenant; they are checked like a push, then applied in one transaction.
    pub async fn sync_apply(&self, tenant: &TenantId, page: &PullPage) -> Result<RemoteApplied> {
        if page.events.len() > MAX_SYNC_EVENTS * 2 {
            return Err(Error::InvalidInput(format!(
                "the remote sent {} events in one page (at most {} expected)",
                page.events.len(),
                MAX_SYNC_EVENTS * 2
            )));
        }
        check_node_id(&page.node)?;
        let mut events = page.events.clone();
        for e in &mut events {
            if e.tenant != page.tenant {
                return Err(Error::InvalidInput(
                    "the remote sent an event of another tenant than its page's".into(),
                ));
            }
            e.tenant = tenant.clone();
        }
        // The same checks as a push, a push's worth at a time.
        for chunk in events.chunks(MAX_SYNC_EVENTS) {
            check_events(tenant, &page.node, chunk)
                .map_err(|err| Error::InvalidInput(format!("the remote's page: {err}")))?;
        }
        self.check_sync_payloads(&events)?;
        self.store
            .apply_remote(tenant, &self.config.hebbian, &events)
            .await
    }

    /// The tenant's latest event position in this node's log.
    pub async fn latest_event_of(&self, tenant: &TenantId) -> Result<u64> {
        self.store.latest_event(tenant).await
    }

    /// The kept state of syncing `tenant` with `remote`.
    pub async fn sync_peer(&self, remote: &str, tenant: &TenantId) -> Result<Option<SyncPeer>> {
        self.store.sync_peer(remote, tenant).await
    }

    /// Every kept sync state.
    pub async fn sync_peers(&self) -> Result<Vec<SyncPeer>> {
        self.store.sync_peers().await
    }

    /// Saves a sync state, and holds the local log from compaction past what the remote has
    /// not acknowledged (a cursor named after the remote and tenant).
    pub async fn put_sync_peer(&self, peer: &SyncPeer) -> Result<()> {
        self.store.put_sync_peer(peer).await?;
        let name = sync_cursor_name(&peer.remote, &peer.tenant);
        let through = self.store.compacted_through().await?;
        self.store
            .set_event_cursor(&name, peer.pushed_through.max(through), self.clock.now())
            .await
    }

    fn check_sync_payloads(&self, events: &[SyncEvent]) -> Result<()> {
        for (i, e) in events.iter().enumerate() {
            let at = |err: Error| Error::InvalidInput(format!("event {i}: {err}"));
            match &e.event {
                Event::MemoryCreated {
                    memory: Some(m),
                    concepts,
                    ..
                } => {
                    self.config
                        .check_text("memory content", &m.content)
                        .map_err(at)?;
                    if concepts.len() > MAX_SYNC_CONCEPTS {
                        return Err(at(Error::InvalidInput(format!(
                            "more than {MAX_SYNC_CONCEPTS} concepts"
                        ))));
                    }
                    if m.kind.is_empty() || m.kind.len() > 64 {
                        return Err(at(Error::InvalidInput(
                            "a memory kind is 1 to 64 bytes".into(),
                        )));
                    }
                }
                Event::DecisionCreated {
                    decision: Some(d), ..
                } => self
                    .config
                    .check_text("decision text", &d.text)
                    .map_err(at)?,
                Event::LinksStrengthened { links } if links.len() > MAX_SYNC_LINKS => {
                    return Err(at(Error::InvalidInput(format!(
                        "more than {MAX_SYNC_LINKS} links"
                    ))));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The event cursor that keeps a remote's unacknowledged events from compaction.
pub fn sync_cursor_name(remote: &str, tenant: &TenantId) -> String {
    let h = continuum_core::sha256_hex(format!("{remote}\n{}", tenant.as_str()).as_bytes());
    format!("sync-{}", &h[..16])
}
