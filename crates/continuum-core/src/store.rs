//! The storage port. Every backend (SQLite, PostgreSQL, libSQL) implements [`MemoryStore`] and
//! runs the shared conformance suite in `continuum-testkit`.
//!
//! Writes are coarse on purpose: the engine prepares a [`WriteBatch`] (memories, concept
//! mentions, co-occurrence counts, decisions) with pure code, and the store applies a whole list
//! of batches in one transaction. The Hebbian arithmetic happens inside the store's own update
//! statement (`strength = min(cap, strength + increment * n)`), so concurrent writers on a shared
//! database never lose an increment. Every method takes the tenant; no method reads or changes
//! another tenant's rows.

use crate::error::Result;
use crate::event::{Event, EventRecord, EventScope};
use crate::extract::ExtractedConcept;
use crate::hebbian::HebbianRule;
use crate::ids::{MemoryId, SessionId, TenantId};
use crate::memory::{Decision, Memory, SessionInfo, Source};
use crate::time::Timestamp;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The largest page any listing returns.
pub use crate::limits::MAX_PAGE;

/// A memory to insert with the concepts it mentions.
#[derive(Debug, Clone)]
pub struct MemoryWrite {
    pub memory: Memory,
    pub concepts: Vec<ExtractedConcept>,
    /// For a memory imported from conversation history: its turn's identity and its role
    /// (`TURN_KEY/user`), unique per tenant, so a repeated import skips it (see
    /// [`MemoryGraph::imported`]). `None` for everything else.
    pub import_key: Option<String>,
    /// The `memory.created` payload, encoded ahead of the write by [`MemoryWrite::seal`] so
    /// that a store does not spend its write lock on it. `None`: the store encodes it. Seal
    /// after the last change to `memory` or `concepts` (`import_key` is not in the payload).
    pub encoded: Option<String>,
}

impl MemoryWrite {
    pub fn new(memory: Memory, concepts: Vec<ExtractedConcept>) -> Self {
        MemoryWrite {
            memory,
            concepts,
            import_key: None,
            encoded: None,
        }
    }

    /// Encodes the `memory.created` payload now (see [`MemoryWrite::encoded`]).
    pub fn seal(&mut self) {
        self.encoded = Some(self.created_payload().into_owned());
    }

    /// The `memory.created` event's stored form: the sealed one, or encoded now. Equal to
    /// [`Event::encode`] of that event, without copying the memory.
    pub fn created_payload(&self) -> std::borrow::Cow<'_, str> {
        match &self.encoded {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(crate::event::encode_memory_created(
                &self.memory,
                &self.concepts,
            )),
        }
    }
}

/// How links between two concepts change (also the payload of a `links.strengthened` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum LinkWrite {
    /// `count` more co-occurrences under the Hebbian rule.
    CoOccurred { a: String, b: String, count: u64 },
    /// Import: the link is at least this strong and this often seen (idempotent).
    AtLeast {
        a: String,
        b: String,
        strength: f64,
        count: u64,
        last_at: Timestamp,
    },
}

/// The link changes of one write, as its `links.strengthened` event records them: one entry
/// per pair and rule, pairs in key order (`a < b`), self-links left out. Co-occurrences of a
/// pair add up (a count of 0 counts 1, as stores apply it), which the Hebbian rule makes the
/// same as applying them one by one; imported floors keep the largest strength, count and time.
pub fn merge_link_writes<'a>(links: impl IntoIterator<Item = &'a LinkWrite>) -> Vec<LinkWrite> {
    use std::collections::BTreeMap;
    let mut co: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut floor: BTreeMap<(&str, &str), (f64, u64, Timestamp)> = BTreeMap::new();
    for l in links {
        let (x, y) = match l {
            LinkWrite::CoOccurred { a, b, .. } | LinkWrite::AtLeast { a, b, .. } => (a, b),
        };
        if x == y {
            continue;
        }
        let pair = if x < y {
            (x.as_str(), y.as_str())
        } else {
            (y.as_str(), x.as_str())
        };
        match l {
            LinkWrite::CoOccurred { count, .. } => *co.entry(pair).or_default() += (*count).max(1),
            LinkWrite::AtLeast {
                strength,
                count,
                last_at,
                ..
            } => {
                let e = floor.entry(pair).or_insert((*strength, *count, *last_at));
                e.0 = e.0.max(*strength);
                e.1 = e.1.max(*count);
                e.2 = e.2.max(*last_at);
            }
        }
    }
    let mut out: Vec<LinkWrite> = co
        .into_iter()
        .map(|((a, b), count)| LinkWrite::CoOccurred {
            a: a.into(),
            b: b.into(),
            count,
        })
        .collect();
    out.extend(
        floor
            .into_iter()
            .map(|((a, b), (strength, count, last_at))| LinkWrite::AtLeast {
                a: a.into(),
                b: b.into(),
                strength,
                count,
                last_at,
            }),
    );
    out
}

/// Everything one write (a learned turn, a remembered note, an imported record) changes, applied
/// atomically with the other batches of the same call.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub memories: Vec<MemoryWrite>,
    pub links: Vec<LinkWrite>,
    pub decisions: Vec<Decision>,
    /// (old, new): mark `old` superseded by `new` (which must exist or be in this batch).
    pub supersedes: Vec<(MemoryId, MemoryId)>,
    /// When the batch happened (link `last_at`, session times of no memory). Its events carry
    /// this time: for imported history, the conversation's, not the import's.
    pub at: Timestamp,
    /// When the write is made, if not at `at` (imported history): the event log's retention
    /// counts from this time, so events of old conversations imported today are kept as long
    /// as any written today.
    pub written_at: Option<Timestamp>,
}

/// What [`MemoryStore::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub memories: u64,
    pub concepts_created: u64,
    pub links_created: u64,
    pub links_strengthened: u64,
    pub decisions: u64,
    /// The event-log position after the write.
    pub change_seq: u64,
}

/// Filters shared by list, search and recall.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryFilter {
    pub sources: Vec<Source>,
    pub session: Option<SessionId>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Leave out memories that a newer one superseded.
    pub current_only: bool,
}

impl MemoryFilter {
    pub fn matches(&self, m: &Memory) -> bool {
        self.matches_head(&MemoryHead::of(m))
    }

    /// True when the filter lets everything through.
    pub fn is_empty(&self) -> bool {
        self == &MemoryFilter::default()
    }

    pub fn matches_head(&self, h: &MemoryHead) -> bool {
        (self.sources.is_empty() || self.sources.contains(&h.source))
            && self
                .session
                .as_ref()
                .is_none_or(|s| h.session.as_ref() == Some(s))
            && self.since.is_none_or(|t| h.created_at >= t)
            && self.until.is_none_or(|t| h.created_at < t)
            && (!self.current_only || !h.superseded)
    }
}

/// What ranking and filtering need of a memory, without its text: cheap to read in bulk.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryHead {
    pub id: MemoryId,
    pub source: Source,
    pub session: Option<SessionId>,
    pub created_at: Timestamp,
    pub superseded: bool,
}

impl MemoryHead {
    pub fn of(m: &Memory) -> Self {
        MemoryHead {
            id: m.id,
            source: m.source,
            session: m.session.clone(),
            created_at: m.created_at,
            superseded: m.superseded_by.is_some(),
        }
    }
}

/// Listing order by creation time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A page request: at most `limit` (capped at [`MAX_PAGE`]) items after an opaque cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
    pub order: Order,
}

/// A page of results and the cursor of the next one, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A memory as derived indexes need it: ranking facts, text and concept keys.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDoc {
    pub head: MemoryHead,
    pub content: String,
    pub concepts: Vec<String>,
    /// Who said it: the memory's `metadata.speaker`, when that is a string.
    pub speaker: Option<String>,
}

/// A memory with a lexical (BM25) score; higher is better.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub head: MemoryHead,
    pub score: f64,
}

/// A stored concept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Concept {
    pub key: String,
    pub name: String,
    pub kind: String,
    pub mentions: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// A stored link between two concepts (by key, `a < b`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Link {
    pub a: String,
    pub b: String,
    pub strength: f64,
    pub count: u64,
    pub last_at: Timestamp,
}

/// Orders links strongest first, then most seen, then by keys (every backend's `neighbours`).
pub fn sort_links(links: &mut [Link]) {
    links.sort_by(|x, y| {
        y.strength
            .total_cmp(&x.strength)
            .then(y.count.cmp(&x.count))
            .then_with(|| x.a.cmp(&y.a))
            .then_with(|| x.b.cmp(&y.b))
    });
}

/// What to forget.
#[derive(Debug, Clone, PartialEq)]
pub enum ForgetSelector {
    Ids(Vec<MemoryId>),
    Session(SessionId),
    /// Everything of the tenant.
    All,
}

/// Counts for `stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoreStats {
    pub memories: u64,
    pub sessions: u64,
    pub concepts: u64,
    pub links: u64,
    pub decisions: u64,
    /// The change-log position (the store's, across tenants).
    pub change_seq: u64,
    /// Bytes the store occupies (all tenants), when the backend knows it.
    pub store_bytes: Option<u64>,
    pub schema_version: u32,
}

/// A tenant as the store sees it: how many memories it holds, and when the newest was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TenantMemories {
    pub tenant: TenantId,
    pub memories: u64,
    pub last_memory_at: Option<Timestamp>,
}

/// The most import keys [`MemoryGraph::imported`] is asked about at once.
pub const MAX_IMPORT_KEYS: usize = 30_000;

/// Refuses a question about more than [`MAX_IMPORT_KEYS`] import keys.
pub fn check_import_keys(keys: &[String]) -> Result<()> {
    if keys.len() > MAX_IMPORT_KEYS {
        return Err(crate::Error::InvalidInput(format!(
            "at most {MAX_IMPORT_KEYS} import keys are looked up at once"
        )));
    }
    Ok(())
}

/// What [`MemoryGraph::vacuum`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Vacuumed {
    /// Tables rewritten.
    pub tables: u64,
    /// The store's size before and after, in bytes.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// One item of a consistent snapshot of a tenant (see [`MemoryStore::snapshot`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotItem {
    /// Always first: the store-wide event position the snapshot reflects.
    Begin {
        position: u64,
    },
    /// A memory with the concepts it mentions.
    Memory {
        memory: Memory,
        concepts: Vec<ExtractedConcept>,
    },
    Link(Link),
    Decision(Decision),
    /// A reflection record (intention, belief, contradiction, claim, graph snapshot).
    Record(crate::reflection::Record),
    /// A memory's sentence vector of one model.
    Vector {
        id: MemoryId,
        model: String,
        vector: Vec<f32>,
    },
}

/// Where a snapshot goes, one item at a time; an error stops the snapshot.
pub type SnapshotSink<'a> = &'a mut (dyn FnMut(SnapshotItem) -> Result<()> + Send);

/// Identity of a memory for idempotent import: same id, or same content, session and time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImportKey {
    pub id: MemoryId,
    pub content_hash: String,
    pub session: Option<SessionId>,
    pub created_at: Timestamp,
}

/// The storage port, split by capability: [`MemoryGraph`], [`EventLog`], [`VectorStore`] (with
/// [`VectorSearch`] as an optional capability), [`KeyStore`], [`WebhookStore`], [`RecordStore`],
/// [`crate::account::AccountStore`] and [`crate::audit::AuditStore`]. Every backend implements all of them and runs the
/// conformance suite of each; the engine holds an `Arc<dyn MemoryStore>`.
pub trait MemoryStore:
    MemoryGraph
    + EventLog
    + SyncStore
    + VectorStore
    + KeyStore
    + WebhookStore
    + RecordStore
    + crate::account::AccountStore
    + crate::audit::AuditStore
{
}

impl<
    T: MemoryGraph
        + EventLog
        + SyncStore
        + VectorStore
        + KeyStore
        + WebhookStore
        + RecordStore
        + crate::account::AccountStore
        + crate::audit::AuditStore,
> MemoryStore for T
{
}

/// Memories, sessions, concepts, links and decisions: the data itself, its full text, its
/// listings and what the derived index is fed from.
#[async_trait]
pub trait MemoryGraph: Send + Sync {
    /// Backend name for `stats` and `doctor`.
    fn backend(&self) -> &'static str;

    /// Applies every batch in one transaction: all of them or none.
    async fn apply(
        &self,
        tenant: &TenantId,
        rule: &HebbianRule,
        batches: Vec<WriteBatch>,
    ) -> Result<Applied>;

    /// The memories with these ids (unknown ids are left out), in no particular order.
    async fn get(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<Memory>>;

    /// The memories that `id` superseded (its earlier versions, one step back), held or not.
    async fn replaced(&self, tenant: &TenantId, id: MemoryId) -> Result<Vec<MemoryId>>;

    /// Memories matching a filter, paged by creation time.
    async fn list(
        &self,
        tenant: &TenantId,
        filter: &MemoryFilter,
        page: &PageRequest,
    ) -> Result<Page<Memory>>;

    /// Full-text search: memories matching any of `terms`, best BM25 first, at most `limit`.
    async fn text_search(
        &self,
        tenant: &TenantId,
        terms: &[String],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Result<Vec<Scored>>;

    /// The stored concepts among these keys.
    async fn concepts(&self, tenant: &TenantId, keys: &[String]) -> Result<Vec<Concept>>;

    /// Concepts by mentions (most mentioned first), paged by offset.
    async fn list_concepts(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Concept>>;

    /// For each of these concept keys, its strongest links (at most `per_concept` each),
    /// merged without repeats, strongest first.
    async fn neighbours(
        &self,
        tenant: &TenantId,
        keys: &[String],
        per_concept: usize,
    ) -> Result<Vec<Link>>;

    /// All links of the tenant, paged by offset in a stable order (for export).
    async fn list_links(&self, tenant: &TenantId, limit: usize, offset: usize)
    -> Result<Vec<Link>>;

    /// For each concept key, the newest memories mentioning it (at most `per_concept`).
    async fn mentions(
        &self,
        tenant: &TenantId,
        keys: &[String],
        per_concept: usize,
    ) -> Result<Vec<(String, MemoryHead)>>;

    /// The concepts each of these memories mentions.
    async fn concepts_of(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<(MemoryId, ExtractedConcept)>>;

    /// Decisions, newest first, paged by offset.
    async fn decisions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Decision>>;

    /// Sessions, most recently active first, paged by offset.
    async fn sessions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<SessionInfo>>;

    /// Deletes memories with their mentions and index entries; concepts no memory mentions any
    /// more are deleted with their links. Returns how many memories were deleted.
    async fn forget(&self, tenant: &TenantId, what: &ForgetSelector) -> Result<u64>;

    /// Which of these import keys the tenant already holds.
    async fn existing(&self, tenant: &TenantId, keys: &[ImportKey]) -> Result<Vec<ImportKey>>;

    /// Which of these import keys (see [`MemoryWrite::import_key`]) the tenant's memories
    /// hold (at most [`MAX_IMPORT_KEYS`] asked at once).
    async fn imported(&self, tenant: &TenantId, keys: &[String]) -> Result<Vec<String>>;

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats>;

    /// A number that differs whenever anything was committed to the store since it was last
    /// read, by this process or another, and costs far less than a query: readers compare it
    /// to skip asking for changes when there are none. Read it *before* the query it guards,
    /// so a commit in between shows at the next comparison. `None` (the default): the store
    /// cannot tell, and callers must ask every time.
    async fn commit_marker(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Streams [`SnapshotItem::Begin`], then the tenant's memories (oldest first, each with
    /// its concepts), links, decisions and vectors, all read in one read transaction: the store as it was at one
    /// moment, whatever is written meanwhile. Returns the store-wide event position the
    /// snapshot reflects: every event up to it is in it, none after it.
    async fn snapshot(&self, tenant: &TenantId, sink: SnapshotSink<'_>) -> Result<u64>;

    /// Writes a consistent copy of the whole store, every tenant, key and log, to `dest` (a
    /// file that must not exist yet) while writes go on, and returns the event position the
    /// copy reflects. `None` (the default): the backend keeps no single file to copy, and is
    /// backed up tenant by tenant through [`MemoryGraph::snapshot`].
    async fn copy_to_file(&self, _dest: &std::path::Path) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Feeds a derived index: the tenant's memories after store position `after` (0 to start),
    /// in store order, at most `limit`, each with its position.
    async fn index_scan(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, IndexDoc)>>;

    /// Feeds a derived index: these memories (unknown ids are left out).
    async fn index_docs(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<IndexDoc>>;

    /// A directory beside the store where the engine may keep derived data that is slow to
    /// rebuild (the vector neighbour graph), or `None` (in-memory stores, servers): it is then
    /// rebuilt per process. Everything in it can be deleted at any time.
    fn derived_dir(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// Gives back memory the store holds only for speed (SQLite: every connection's page
    /// cache), for a server gone quiet; the next reads fill it again. Returns how many caches
    /// were emptied. The default holds nothing to give back.
    async fn release_memory(&self) -> Result<usize> {
        Ok(0)
    }

    /// Brings the query planner's statistics up to date after a large write (an import), so
    /// that it does not plan for the tables as they were. The default has none to refresh.
    async fn refresh_statistics(&self) -> Result<()> {
        Ok(())
    }

    /// Checks the store's integrity; returns human-readable problems (empty when healthy).
    async fn check(&self) -> Result<Vec<String>>;

    /// Rewrites the store's files so that nothing deleted is left in their pages (SQLite
    /// `VACUUM` and a WAL checkpoint; PostgreSQL `VACUUM FULL` of each of the store's tables,
    /// their indexes and TOAST with them), and says how much space it gave back. Writers wait
    /// while it runs (on PostgreSQL, table by table).
    async fn vacuum(&self) -> Result<Vacuumed>;
}

/// The event log: typed events appended with every write, read store-wide or per tenant,
/// consumers' cursors and compaction.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Events after position `after` (0 to start), oldest first, at most `limit`: of one
    /// tenant, or of every tenant (store-wide order) with [`EventScope::All`].
    async fn events_since(
        &self,
        scope: EventScope<'_>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>>;

    /// The tenant's latest event position (0 when it has none), never below the compaction
    /// point (a reader caught up to it has nothing older to read).
    async fn latest_event(&self, tenant: &TenantId) -> Result<u64>;

    /// The store-wide latest event position (0 for an empty log).
    async fn event_head(&self) -> Result<u64>;

    /// The position up to which events were compacted away (0: none). Reading after an
    /// earlier position is an [`Error::Gone`].
    async fn compacted_through(&self) -> Result<u64>;

    /// Deletes the events at or below `through` and moves the compaction point there (never
    /// back). Returns how many went.
    async fn compact_events(&self, through: u64) -> Result<u64>;

    /// The first position whose event time is at or after `at`, if any.
    async fn first_event_at_or_after(&self, at: Timestamp) -> Result<Option<u64>>;

    /// Consumers' named positions.
    async fn event_cursors(&self) -> Result<Vec<crate::event::EventCursor>>;

    /// Creates or moves a named cursor.
    async fn set_event_cursor(&self, name: &str, position: u64, at: Timestamp) -> Result<()>;

    /// Deletes a named cursor; false when there was none.
    async fn delete_event_cursor(&self, name: &str) -> Result<bool>;

    /// Appends events that go with no other row change (`tenant.erased`), in one transaction.
    async fn record_events(
        &self,
        tenant: &TenantId,
        at: Timestamp,
        events: &[Event],
    ) -> Result<u64>;
}

/// What [`SyncStore::apply_remote`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteApplied {
    pub applied: u64,
    pub skipped: u64,
    /// The event-log position after the write.
    pub change_seq: u64,
}

/// Sync between nodes (see [`crate::sync`]): this store's node id, its events as they travel,
/// applying another node's events, and the state of each remote it syncs with.
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// This store's node id, made when the store was created.
    async fn node_id(&self) -> Result<String>;

    /// Gives the store a new node id (a restored or copied store is a new node): the events
    /// it wrote so far keep the old id as their origin (others that applied them skip them),
    /// and for every tenant the old id's events up to the log's head count as applied here,
    /// so they are skipped when they come back, while the old id's later ones (written by the
    /// original after the copy) are applied. Returns the new id.
    async fn renew_node_id(&self) -> Result<String>;

    /// The tenant's events of synced types after position `after`, oldest first, at most
    /// `limit` (more when the events after the last one share its origin position), with their
    /// origin (this node for events it wrote itself). `local_only`: only those; `exclude`:
    /// without the events of that origin.
    async fn sync_events(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
        local_only: bool,
        exclude: Option<&str>,
    ) -> Result<Vec<crate::sync::SyncEvent>>;

    /// Applies another node's events in one transaction, by [`crate::sync::plan`]: every event
    /// this writes carries the source event's origin and position.
    async fn apply_remote(
        &self,
        tenant: &TenantId,
        rule: &HebbianRule,
        events: &[crate::sync::SyncEvent],
    ) -> Result<RemoteApplied>;

    /// The state kept for syncing `tenant` with `remote`.
    async fn sync_peer(
        &self,
        remote: &str,
        tenant: &TenantId,
    ) -> Result<Option<crate::sync::SyncPeer>>;

    /// Every sync state kept here.
    async fn sync_peers(&self) -> Result<Vec<crate::sync::SyncPeer>>;

    /// Creates or replaces a sync state.
    async fn put_sync_peer(&self, peer: &crate::sync::SyncPeer) -> Result<()>;
}

/// Sentence vectors, per memory and model, and the vector log the derived vector index follows.
#[async_trait]
pub trait VectorStore: Send + Sync {
    /// Stores vectors of `model` (dimension `dim`) for these memories, replacing any vector
    /// they had of that model; memories that no longer exist are skipped. Returns how many were
    /// stored. Every stored vector gets a new position in the tenant's vector log.
    async fn put_vectors(
        &self,
        tenant: &TenantId,
        model: &str,
        dim: usize,
        vectors: &[(MemoryId, Vec<f32>)],
    ) -> Result<usize>;

    /// The tenant's vectors of `model` stored after vector-log position `after`, oldest first,
    /// at most `limit` (feeds the derived vector index).
    async fn vectors_since(
        &self,
        tenant: &TenantId,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::embed::StoredVector>>;

    /// Memories without a vector of `model`, after store position `after`, in store order, at
    /// most `limit`; of one tenant, or of every tenant when `tenant` is `None`.
    async fn pending_embeddings(
        &self,
        tenant: Option<&TenantId>,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::embed::PendingEmbedding>>;

    /// The tenant's vector counts per model.
    async fn vector_counts(&self, tenant: &TenantId) -> Result<Vec<crate::embed::VectorCount>>;

    /// Deletes the tenant's vectors of every model but `keep`; returns how many went.
    async fn drop_vectors_except(&self, tenant: &TenantId, keep: &str) -> Result<u64>;

    /// The store's own vector search, when it has one (PostgreSQL with pgvector); `None` by
    /// default: the engine then ranks vectors in its derived index.
    fn vector_search(&self) -> Option<&dyn VectorSearch> {
        None
    }

    /// Whether [`Self::vector_search`] offers a search.
    fn searches_vectors(&self) -> bool {
        self.vector_search().is_some()
    }
}

/// A store that ranks vectors itself (PostgreSQL with pgvector): the engine then keeps no
/// vectors in memory. Offered through [`VectorStore::vector_search`].
#[async_trait]
pub trait VectorSearch: Send + Sync {
    /// The memories passing `filter` whose vectors of `model` have the largest dot product with
    /// `query` (a unit vector), best first, at most `limit`, with that dot product. Stores with
    /// an approximate index (HNSW) may miss a few of the exact best.
    async fn nearest_vectors(
        &self,
        tenant: &TenantId,
        model: &str,
        query: &[f32],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Result<Vec<(MemoryId, f32)>>;

    /// The dot product of `query` with each of these memories' vectors of `model`; memories
    /// without one (or unknown) are left out.
    async fn vector_scores(
        &self,
        tenant: &TenantId,
        model: &str,
        query: &[f32],
        ids: &[MemoryId],
    ) -> Result<Vec<(MemoryId, f32)>>;
}

/// API keys (hashes only) and the tenants that hold data: operator administration.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every tenant holding memories, by tenant id, with its count (operator administration;
    /// never a tenant's data).
    async fn tenants(&self) -> Result<Vec<TenantMemories>>;

    /// Stores a new API key (its hash, never the secret) and appends `events` for its tenant
    /// in the same transaction (`key.created`, and `tenant.created` for a tenant's first key).
    async fn put_key(&self, key: &crate::keys::ApiKey, events: &[Event]) -> Result<()>;

    /// The key with this public prefix, if any (revoked and expired keys included).
    async fn key_by_prefix(&self, prefix: &str) -> Result<Option<crate::keys::ApiKey>>;

    /// Keys, newest first; of one tenant or of all.
    async fn list_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<crate::keys::ApiKey>>;

    /// Marks a key revoked and records `key.revoked` (a key revoked before stays as it was,
    /// with no new event); false when no such key exists.
    async fn revoke_key(&self, prefix: &str, at: Timestamp) -> Result<bool>;

    /// Records the expiry of every key that is not revoked, whose `expires_at` is at or before
    /// `now` and whose expiry was not recorded before: marks it and appends `key.expired` for
    /// its tenant, in one transaction. Returns those keys; each key is returned once, to
    /// whichever process asks first.
    async fn note_expired_keys(&self, now: Timestamp) -> Result<Vec<crate::keys::ApiKey>>;

    /// In one transaction: stores `successor`, makes the key `prefix` expire at `expires_at`
    /// (or at its own expiry, if sooner), and records `key.created` and `key.rotated`. False
    /// (and nothing changed) when `prefix` names no key that is not revoked.
    async fn rotate_key(
        &self,
        prefix: &str,
        successor: &crate::keys::ApiKey,
        expires_at: Timestamp,
    ) -> Result<bool>;
}

/// Webhook subscriptions and their delivery records (see [`crate::webhook`]).
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Inserts or replaces a subscription.
    async fn put_webhook(&self, webhook: &crate::webhook::Webhook) -> Result<()>;

    async fn webhook(&self, id: &str) -> Result<Option<crate::webhook::Webhook>>;

    /// Subscriptions of one tenant or of all (the delivery job), oldest first.
    async fn webhooks(&self, tenant: Option<&TenantId>) -> Result<Vec<crate::webhook::Webhook>>;

    /// Deletes a subscription and its delivery records; false when there was none.
    async fn delete_webhook(&self, id: &str) -> Result<bool>;

    /// Inserts or replaces a delivery record.
    async fn put_delivery(&self, delivery: &crate::webhook::Delivery) -> Result<()>;

    async fn delivery(&self, id: &str) -> Result<Option<crate::webhook::Delivery>>;

    /// A subscription's delivery records, newest event first, at most `limit`.
    async fn deliveries(
        &self,
        webhook: &str,
        limit: usize,
    ) -> Result<Vec<crate::webhook::Delivery>>;
}

/// Reflection records ([`crate::reflection`]): intentions, beliefs, contradictions, claims.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Writes records, new or changed, each with its `*.saved` event, in one transaction
    /// (all or none). Ids are the tenant's own; one already held by a record of another kind
    /// is an error. Returns the event-log position after the write.
    async fn put_records(
        &self,
        tenant: &TenantId,
        at: Timestamp,
        records: &[crate::reflection::Record],
    ) -> Result<u64>;

    /// One of the tenant's records.
    async fn record(
        &self,
        tenant: &TenantId,
        id: &crate::reflection::RecordId,
    ) -> Result<Option<crate::reflection::Record>>;

    /// The tenant's records of `kind` (with `status`, when given), newest first, at most
    /// `limit`.
    async fn records(
        &self,
        tenant: &TenantId,
        kind: crate::reflection::RecordKind,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::reflection::Record>>;

    /// How many records of `kind` the tenant holds, whatever their status.
    async fn count_records(
        &self,
        tenant: &TenantId,
        kind: crate::reflection::RecordKind,
    ) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn co(a: &str, b: &str, count: u64) -> LinkWrite {
        LinkWrite::CoOccurred {
            a: a.into(),
            b: b.into(),
            count,
        }
    }

    #[test]
    fn a_writes_link_changes_merge_per_pair_and_rule() {
        let floor = |s: f64, n: u64, t: i64| LinkWrite::AtLeast {
            a: "redis".into(),
            b: "kafka".into(),
            strength: s,
            count: n,
            last_at: Timestamp(t),
        };
        let merged = merge_link_writes(&[
            co("redis", "kafka", 1),
            co("kafka", "redis", 2),
            co("kafka", "kafka", 5),
            co("a", "b", 0),
            floor(0.3, 4, 10),
            floor(0.2, 9, 5),
        ]);
        assert_eq!(
            merged,
            vec![
                co("a", "b", 1),
                co("kafka", "redis", 3),
                LinkWrite::AtLeast {
                    a: "kafka".into(),
                    b: "redis".into(),
                    strength: 0.3,
                    count: 9,
                    last_at: Timestamp(10)
                }
            ]
        );
        assert!(merge_link_writes(&[]).is_empty());
    }
}
