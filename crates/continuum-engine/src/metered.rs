//! Store-call latency by operation: a store that times every call of the one it wraps into
//! `continuum_store_operation_duration_seconds{op}` and otherwise does nothing. The engine
//! wraps every store it is given, so each backend is measured alike.

use async_trait::async_trait;
use continuum_core::account::{AccountStore, BillingRecord, Footprint, Plan, UsageDay, UsageDelta};
use continuum_core::extract::ExtractedConcept;
use continuum_core::hebbian::HebbianRule;
use continuum_core::memory::{Decision, SessionInfo};
use continuum_core::store::*;
use continuum_core::*;
use std::sync::Arc;
use std::time::Instant;

/// A store whose calls are timed, and whose event-writing calls are announced on the
/// second field (a counter bumped after each, for [`crate::Engine::written`]).
pub(crate) struct Metered(
    pub(crate) Arc<dyn MemoryStore>,
    pub(crate) Arc<tokio::sync::watch::Sender<u64>>,
);

impl Metered {
    /// Announces that events may have been written (also after a failed call: a commit that
    /// reported an error may still have landed, and a needless wake costs one read).
    fn wrote<T>(&self, out: T) -> T {
        self.1.send_modify(|n| *n = n.wrapping_add(1));
        out
    }
}

/// Runs `call`, recording its latency under `op` (a method name: a bounded label set).
async fn timed<T>(op: &'static str, call: impl std::future::Future<Output = T>) -> T {
    use tracing::Instrument;
    let started = Instant::now();
    // A span per store call for traces (debug: disabled unless a trace exporter wants it).
    let span = tracing::debug_span!("store", otel.name = op, db.operation.name = op);
    let out = call.instrument(span).await;
    metrics::histogram!(continuum_ops::metrics::STORE_DURATION, "op" => op)
        .record(started.elapsed().as_secs_f64());
    out
}

#[async_trait]
impl MemoryGraph for Metered {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        rule: &HebbianRule,
        batches: Vec<WriteBatch>,
    ) -> Result<Applied> {
        self.wrote(timed("apply", self.0.apply(tenant, rule, batches)).await)
    }

    async fn get(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<Memory>> {
        timed("get", self.0.get(tenant, ids)).await
    }

    async fn replaced(&self, tenant: &TenantId, id: MemoryId) -> Result<Vec<MemoryId>> {
        timed("replaced", self.0.replaced(tenant, id)).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &MemoryFilter,
        page: &PageRequest,
    ) -> Result<Page<Memory>> {
        timed("list", self.0.list(tenant, filter, page)).await
    }

    async fn text_search(
        &self,
        tenant: &TenantId,
        terms: &[String],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Result<Vec<Scored>> {
        timed(
            "text_search",
            self.0.text_search(tenant, terms, filter, limit),
        )
        .await
    }

    async fn concepts(&self, tenant: &TenantId, keys: &[String]) -> Result<Vec<Concept>> {
        timed("concepts", self.0.concepts(tenant, keys)).await
    }

    async fn list_concepts(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Concept>> {
        timed("list_concepts", self.0.list_concepts(tenant, limit, offset)).await
    }

    async fn neighbours(
        &self,
        tenant: &TenantId,
        keys: &[String],
        per_concept: usize,
    ) -> Result<Vec<Link>> {
        timed("neighbours", self.0.neighbours(tenant, keys, per_concept)).await
    }

    async fn list_links(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Link>> {
        timed("list_links", self.0.list_links(tenant, limit, offset)).await
    }

    async fn mentions(
        &self,
        tenant: &TenantId,
        keys: &[String],
        per_concept: usize,
    ) -> Result<Vec<(String, MemoryHead)>> {
        timed("mentions", self.0.mentions(tenant, keys, per_concept)).await
    }

    async fn concepts_of(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<(MemoryId, ExtractedConcept)>> {
        timed("concepts_of", self.0.concepts_of(tenant, ids)).await
    }

    async fn decisions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Decision>> {
        timed("decisions", self.0.decisions(tenant, limit, offset)).await
    }

    async fn sessions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<SessionInfo>> {
        timed("sessions", self.0.sessions(tenant, limit, offset)).await
    }

    async fn forget(&self, tenant: &TenantId, what: &ForgetSelector) -> Result<u64> {
        self.wrote(timed("forget", self.0.forget(tenant, what)).await)
    }

    async fn imported(&self, tenant: &TenantId, keys: &[String]) -> Result<Vec<String>> {
        timed("imported", self.0.imported(tenant, keys)).await
    }

    async fn existing(&self, tenant: &TenantId, keys: &[ImportKey]) -> Result<Vec<ImportKey>> {
        timed("existing", self.0.existing(tenant, keys)).await
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        timed("stats", self.0.stats(tenant)).await
    }

    async fn commit_marker(&self) -> Result<Option<u64>> {
        timed("commit_marker", self.0.commit_marker()).await
    }

    async fn copy_to_file(&self, dest: &std::path::Path) -> Result<Option<u64>> {
        timed("copy_to_file", self.0.copy_to_file(dest)).await
    }

    async fn snapshot(&self, tenant: &TenantId, sink: SnapshotSink<'_>) -> Result<u64> {
        timed("snapshot", self.0.snapshot(tenant, sink)).await
    }

    async fn index_scan(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, IndexDoc)>> {
        timed("index_scan", self.0.index_scan(tenant, after, limit)).await
    }

    async fn index_docs(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<IndexDoc>> {
        timed("index_docs", self.0.index_docs(tenant, ids)).await
    }

    fn derived_dir(&self) -> Option<std::path::PathBuf> {
        self.0.derived_dir()
    }

    async fn release_memory(&self) -> Result<usize> {
        timed("release_memory", self.0.release_memory()).await
    }

    async fn refresh_statistics(&self) -> Result<()> {
        timed("refresh_statistics", self.0.refresh_statistics()).await
    }

    async fn check(&self) -> Result<Vec<String>> {
        timed("check", self.0.check()).await
    }

    async fn vacuum(&self) -> Result<continuum_core::store::Vacuumed> {
        timed("vacuum", self.0.vacuum()).await
    }
}

#[async_trait]
impl EventLog for Metered {
    async fn events_since(
        &self,
        scope: EventScope<'_>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
        timed("events_since", self.0.events_since(scope, after, limit)).await
    }

    async fn latest_event(&self, tenant: &TenantId) -> Result<u64> {
        timed("latest_event", self.0.latest_event(tenant)).await
    }

    async fn event_head(&self) -> Result<u64> {
        timed("event_head", self.0.event_head()).await
    }

    async fn compacted_through(&self) -> Result<u64> {
        timed("compacted_through", self.0.compacted_through()).await
    }

    async fn compact_events(&self, through: u64) -> Result<u64> {
        timed("compact_events", self.0.compact_events(through)).await
    }

    async fn first_event_at_or_after(&self, at: Timestamp) -> Result<Option<u64>> {
        timed(
            "first_event_at_or_after",
            self.0.first_event_at_or_after(at),
        )
        .await
    }

    async fn event_cursors(&self) -> Result<Vec<continuum_core::event::EventCursor>> {
        timed("event_cursors", self.0.event_cursors()).await
    }

    async fn set_event_cursor(&self, name: &str, position: u64, at: Timestamp) -> Result<()> {
        timed(
            "set_event_cursor",
            self.0.set_event_cursor(name, position, at),
        )
        .await
    }

    async fn delete_event_cursor(&self, name: &str) -> Result<bool> {
        timed("delete_event_cursor", self.0.delete_event_cursor(name)).await
    }

    async fn record_events(
        &self,
        tenant: &TenantId,
        at: Timestamp,
        events: &[Event],
    ) -> Result<u64> {
        self.wrote(timed("record_events", self.0.record_events(tenant, at, events)).await)
    }
}

#[async_trait]
impl VectorStore for Metered {
    async fn put_vectors(
        &self,
        tenant: &TenantId,
        model: &str,
        dim: usize,
        vectors: &[(MemoryId, Vec<f32>)],
    ) -> Result<usize> {
        timed(
            "put_vectors",
            self.0.put_vectors(tenant, model, dim, vectors),
        )
        .await
    }

    async fn vectors_since(
        &self,
        tenant: &TenantId,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<continuum_core::embed::StoredVector>> {
        timed(
            "vectors_since",
            self.0.vectors_since(tenant, model, after, limit),
        )
        .await
    }

    async fn pending_embeddings(
        &self,
        tenant: Option<&TenantId>,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<continuum_core::embed::PendingEmbedding>> {
        timed(
            "pending_embeddings",
            self.0.pending_embeddings(tenant, model, after, limit),
        )
        .await
    }

    async fn vector_counts(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<continuum_core::embed::VectorCount>> {
        timed("vector_counts", self.0.vector_counts(tenant)).await
    }

    async fn drop_vectors_except(&self, tenant: &TenantId, keep: &str) -> Result<u64> {
        timed(
            "drop_vectors_except",
            self.0.drop_vectors_except(tenant, keep),
        )
        .await
    }

    fn vector_search(&self) -> Option<&dyn VectorSearch> {
        self.0.vector_search()
    }

    fn searches_vectors(&self) -> bool {
        self.0.searches_vectors()
    }
}

#[async_trait]
impl KeyStore for Metered {
    async fn tenants(&self) -> Result<Vec<TenantMemories>> {
        timed("tenants", self.0.tenants()).await
    }

    async fn put_key(&self, key: &continuum_core::keys::ApiKey, events: &[Event]) -> Result<()> {
        self.wrote(timed("put_key", self.0.put_key(key, events)).await)
    }

    async fn key_by_prefix(&self, prefix: &str) -> Result<Option<continuum_core::keys::ApiKey>> {
        timed("key_by_prefix", self.0.key_by_prefix(prefix)).await
    }

    async fn list_keys(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<continuum_core::keys::ApiKey>> {
        timed("list_keys", self.0.list_keys(tenant)).await
    }

    async fn revoke_key(&self, prefix: &str, at: Timestamp) -> Result<bool> {
        self.wrote(timed("revoke_key", self.0.revoke_key(prefix, at)).await)
    }

    async fn note_expired_keys(&self, now: Timestamp) -> Result<Vec<continuum_core::keys::ApiKey>> {
        let out = timed("note_expired_keys", self.0.note_expired_keys(now)).await;
        match out {
            Ok(keys) if !keys.is_empty() => self.wrote(Ok(keys)),
            other => other,
        }
    }

    async fn rotate_key(
        &self,
        prefix: &str,
        successor: &continuum_core::keys::ApiKey,
        expires_at: Timestamp,
    ) -> Result<bool> {
        self.wrote(
            timed(
                "rotate_key",
                self.0.rotate_key(prefix, successor, expires_at),
            )
            .await,
        )
    }
}

#[async_trait]
impl WebhookStore for Metered {
    async fn put_webhook(&self, w: &continuum_core::webhook::Webhook) -> Result<()> {
        timed("put_webhook", self.0.put_webhook(w)).await
    }

    async fn webhook(&self, id: &str) -> Result<Option<continuum_core::webhook::Webhook>> {
        timed("webhook", self.0.webhook(id)).await
    }

    async fn webhooks(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<continuum_core::webhook::Webhook>> {
        timed("webhooks", self.0.webhooks(tenant)).await
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool> {
        timed("delete_webhook", self.0.delete_webhook(id)).await
    }

    async fn put_delivery(&self, d: &continuum_core::webhook::Delivery) -> Result<()> {
        timed("put_delivery", self.0.put_delivery(d)).await
    }

    async fn delivery(&self, id: &str) -> Result<Option<continuum_core::webhook::Delivery>> {
        timed("delivery", self.0.delivery(id)).await
    }

    async fn deliveries(
        &self,
        webhook: &str,
        limit: usize,
    ) -> Result<Vec<continuum_core::webhook::Delivery>> {
        timed("deliveries", self.0.deliveries(webhook, limit)).await
    }
}

#[async_trait]
impl RecordStore for Metered {
    async fn put_records(
        &self,
        tenant: &TenantId,
        at: Timestamp,
        records: &[continuum_core::reflection::Record],
    ) -> Result<u64> {
        self.wrote(timed("put_records", self.0.put_records(tenant, at, records)).await)
    }

    async fn record(
        &self,
        tenant: &TenantId,
        id: &continuum_core::reflection::RecordId,
    ) -> Result<Option<continuum_core::reflection::Record>> {
        timed("record", self.0.record(tenant, id)).await
    }

    async fn records(
        &self,
        tenant: &TenantId,
        kind: continuum_core::reflection::RecordKind,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<continuum_core::reflection::Record>> {
        timed("records", self.0.records(tenant, kind, status, limit)).await
    }

    async fn count_records(
        &self,
        tenant: &TenantId,
        kind: continuum_core::reflection::RecordKind,
    ) -> Result<u64> {
        timed("count_records", self.0.count_records(tenant, kind)).await
    }
}

#[async_trait]
impl AccountStore for Metered {
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<Vec<UsageDay>> {
        timed("add_usage", self.0.add_usage(deltas)).await
    }

    async fn usage(
        &self,
        tenant: Option<&TenantId>,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<UsageDay>> {
        timed("usage", self.0.usage(tenant, from, to, limit)).await
    }

    async fn footprint(&self, tenant: &TenantId) -> Result<Footprint> {
        timed("footprint", self.0.footprint(tenant)).await
    }

    async fn put_plan(&self, plan: &Plan) -> Result<()> {
        timed("put_plan", self.0.put_plan(plan)).await
    }

    async fn plan(&self, tenant: &TenantId) -> Result<Option<Plan>> {
        timed("plan", self.0.plan(tenant)).await
    }

    async fn plans(&self) -> Result<Vec<Plan>> {
        timed("plans", self.0.plans()).await
    }

    async fn record_billing_event(
        &self,
        id: &str,
        at: Timestamp,
        forget_before: Timestamp,
        plan: Option<&Plan>,
    ) -> Result<BillingRecord> {
        timed(
            "record_billing_event",
            self.0.record_billing_event(id, at, forget_before, plan),
        )
        .await
    }
}

#[async_trait]
impl continuum_core::audit::AuditStore for Metered {
    async fn append_audit(
        &self,
        records: &[continuum_core::audit::AuditRecord],
    ) -> Result<Vec<continuum_core::audit::AuditEntry>> {
        timed("append_audit", self.0.append_audit(records)).await
    }

    async fn audit_head(&self) -> Result<u64> {
        timed("audit_head", self.0.audit_head()).await
    }

    async fn audit_cursor(&self, name: &str) -> Result<u64> {
        timed("audit_cursor", self.0.audit_cursor(name)).await
    }

    async fn set_audit_cursor(&self, name: &str, seq: u64, at: Timestamp) -> Result<()> {
        timed("set_audit_cursor", self.0.set_audit_cursor(name, seq, at)).await
    }

    async fn audit_entries(
        &self,
        tenant: Option<&TenantId>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<continuum_core::audit::AuditEntry>> {
        timed("audit_entries", self.0.audit_entries(tenant, after, limit)).await
    }

    async fn audit_entries_before(
        &self,
        tenant: Option<&TenantId>,
        after: u64,
        before: u64,
        limit: usize,
    ) -> Result<Vec<continuum_core::audit::AuditEntry>> {
        timed(
            "audit_entries_before",
            self.0.audit_entries_before(tenant, after, before, limit),
        )
        .await
    }
}

#[async_trait]
impl SyncStore for Metered {
    async fn renew_node_id(&self) -> Result<String> {
        timed("renew_node_id", self.0.renew_node_id()).await
    }

    async fn node_id(&self) -> Result<String> {
        timed("node_id", self.0.node_id()).await
    }

    async fn sync_events(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
        local_only: bool,
        exclude: Option<&str>,
    ) -> Result<Vec<continuum_core::sync::SyncEvent>> {
        timed(
            "sync_events",
            self.0
                .sync_events(tenant, after, limit, local_only, exclude),
        )
        .await
    }

    async fn apply_remote(
        &self,
        tenant: &TenantId,
        rule: &HebbianRule,
        events: &[continuum_core::sync::SyncEvent],
    ) -> Result<RemoteApplied> {
        self.wrote(timed("apply_remote", self.0.apply_remote(tenant, rule, events)).await)
    }

    async fn sync_peer(
        &self,
        remote: &str,
        tenant: &TenantId,
    ) -> Result<Option<continuum_core::sync::SyncPeer>> {
        timed("sync_peer", self.0.sync_peer(remote, tenant)).await
    }

    async fn sync_peers(&self) -> Result<Vec<continuum_core::sync::SyncPeer>> {
        timed("sync_peers", self.0.sync_peers()).await
    }

    async fn put_sync_peer(&self, peer: &continuum_core::sync::SyncPeer) -> Result<()> {
        timed("put_sync_peer", self.0.put_sync_peer(peer)).await
    }
}
