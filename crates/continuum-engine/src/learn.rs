//! Writes: `learn` (a conversation turn), `remember` (one text) and `supersede`.

use crate::Engine;
use continuum_core::extract::ExtractedConcept;
use continuum_core::hebbian::canonical_pair;
use continuum_core::keys::{Caller, Scope};
use continuum_core::memory::{Decision, Metadata, Turn, content_hash};
use continuum_core::store::{Applied, LinkWrite, MemoryWrite, WriteBatch};
use continuum_core::{Memory, MemoryId, Result, SessionId, Source, TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// What a `learn` stored. The first five fields keep the original service's response names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LearnOutcome {
    /// Distinct concepts found in the turn(s).
    pub concepts_extracted: u64,
    pub decisions_detected: u64,
    /// Links created or strengthened.
    pub links_created: u64,
    /// Multi-word concepts ("Claude Desktop") among those extracted.
    pub compounds_found: u64,
    pub turns: u64,
    pub memory_ids: Vec<MemoryId>,
    /// Concept keys of the turn (of the last turn for a batch).
    pub concepts: Vec<String>,
    pub concepts_created: u64,
    pub links_new: u64,
    pub links_strengthened: u64,
    /// The change-log position after the write.
    pub change_seq: u64,
}

/// One text to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RememberRequest {
    pub content: String,
    #[serde(default = "default_source")]
    pub source: Source,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub session: Option<SessionId>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
}

fn default_source() -> Source {
    Source::Note
}

impl RememberRequest {
    pub fn new(content: impl Into<String>, source: Source) -> Self {
        RememberRequest {
            content: content.into(),
            source,
            kind: None,
            session: None,
            metadata: Metadata::new(),
            created_at: None,
        }
    }
}

/// The longest `id` an imported turn may carry.
pub const MAX_TURN_ID_CHARS: usize = 200;

/// The identity of a turn of imported history: its own `id` when the history gives one (at
/// most [`MAX_TURN_ID_CHARS`] characters, no control characters), else a hash of its session,
/// time and both texts. A turn without a time is identified by its session and texts alone.
pub fn turn_key(id: Option<&str>, turn: &Turn) -> Result<String> {
    if let Some(id) = id {
        if id.is_empty()
            || id.chars().count() > MAX_TURN_ID_CHARS
            || id.chars().any(char::is_control)
        {
            return Err(continuum_core::Error::InvalidInput(format!(
                "a turn's id is 1 to {MAX_TURN_ID_CHARS} characters without control characters"
            )));
        }
        return Ok(format!("id:{id}"));
    }
    let mut h = String::new();
    for part in [
        turn.session_id.as_ref().map_or("", |s| s.as_str()),
        &turn
            .timestamp
            .map(|t| t.millis().to_string())
            .unwrap_or_default(),
        &turn.user_message,
        &turn.ai_response,
    ] {
        // Length-prefixed, so no two different turns join into the same text.
        h.push_str(&format!("{}:{part};", part.len()));
    }
    Ok(format!(
        "h:{}",
        &continuum_core::sha256_hex(h.as_bytes())[..32]
    ))
}

/// The roles a turn's memories are keyed by, after the turn's key (`KEY/user`).
const TURN_ROLES: [&str; 3] = ["user", "assistant", "thinking"];

/// Turns validated and turned into write batches, ready for [`Engine::apply_turns`].
#[derive(Debug)]
pub struct PreparedTurns {
    batches: Vec<WriteBatch>,
    outcome: LearnOutcome,
}

impl PreparedTurns {
    pub fn turns(&self) -> u64 {
        self.outcome.turns
    }
}

/// A turn turned into a write batch, with what the outcome reports about it.
struct PreparedTurn {
    batch: WriteBatch,
    turn_concepts: Vec<ExtractedConcept>,
}

impl Engine {
    fn new_memory(
        &self,
        content: &str,
        source: Source,
        kind: &str,
        session: Option<SessionId>,
        metadata: Metadata,
        at: Timestamp,
    ) -> MemoryWrite {
        let concepts = self.extractor.concepts(content);
        let mut write = MemoryWrite::new(
            Memory {
                id: MemoryId::new_at(at.millis()),
                session,
                source,
                kind: kind.to_string(),
                content: content.to_string(),
                metadata,
                created_at: at,
                content_hash: content_hash(content),
                valid_until: None,
                superseded_by: None,
            },
            concepts,
        );
        // Encoded here, outside the store's write lock (and on the preparing thread of a
        // bulk import).
        write.seal();
        write
    }

    /// Checks a turn as `learn` would, without storing anything (imports validate whole files
    /// before writing).
    pub fn validate_turn(&self, turn: &Turn) -> Result<()> {
        let cfg = &self.config;
        cfg.check_text("user message", &turn.user_message)?;
        cfg.check_text("assistant response", &turn.ai_response)?;
        if let Some(t) = turn.thinking.as_deref().filter(|t| !t.trim().is_empty()) {
            cfg.check_text("thinking", t)?;
        }
        Ok(())
    }

    fn prepare_turn(&self, turn: Turn, now: Timestamp, key: Option<&str>) -> Result<PreparedTurn> {
        let cfg = &self.config;
        self.validate_turn(&turn)?;
        let thinking = turn.thinking.filter(|t| !t.trim().is_empty());
        let at = turn.timestamp.unwrap_or(now);
        let metadata = turn.metadata.unwrap_or_default();
        let mut memories = vec![
            self.new_memory(
                &turn.user_message,
                Source::User,
                "message",
                turn.session_id.clone(),
                metadata.clone(),
                at,
            ),
            self.new_memory(
                &turn.ai_response,
                Source::Assistant,
                "message",
                turn.session_id.clone(),
                metadata.clone(),
                at,
            ),
        ];
        if let Some(t) = &thinking {
            memories.push(self.new_memory(
                t,
                Source::Thinking,
                "thinking",
                turn.session_id.clone(),
                metadata,
                at,
            ));
        }

        if let Some(key) = key {
            for (m, role) in memories.iter_mut().zip(TURN_ROLES) {
                m.import_key = Some(format!("{key}/{role}"));
            }
        }

        // The turn's concepts, in order of appearance, capped: every pair co-occurred once.
        let mut seen = HashSet::new();
        let turn_concepts: Vec<ExtractedConcept> = memories
            .iter()
            .flat_map(|m| m.concepts.iter())
            .filter(|c| seen.insert(c.key.clone()))
            .take(cfg.max_concepts_per_turn)
            .cloned()
            .collect();
        let mut links = Vec::new();
        for (i, x) in turn_concepts.iter().enumerate() {
            for y in &turn_concepts[i + 1..] {
                let (a, b) = canonical_pair(&x.key, &y.key);
                links.push(LinkWrite::CoOccurred {
                    a: a.to_string(),
                    b: b.to_string(),
                    count: 1,
                });
            }
        }
        let assistant_id = memories[1].memory.id;
        let decisions = self
            .extractor
            .decisions(&turn.ai_response)
            .into_iter()
            .map(|text| Decision {
                id: MemoryId::new_at(at.millis()),
                memory_id: assistant_id,
                text,
                created_at: at,
            })
            .collect();
        Ok(PreparedTurn {
            batch: WriteBatch {
                memories,
                links,
                decisions,
                supersedes: Vec::new(),
                at,
                written_at: Some(now),
            },
            turn_concepts,
        })
    }

    /// Which of these turn keys ([`turn_key`]) the caller's tenant already holds a memory of
    /// (any of the turn's sides: a turn partly forgotten since is not brought back).
    pub async fn imported_turns(
        &self,
        who: impl Into<Caller>,
        keys: &[String],
    ) -> Result<HashSet<String>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let per = continuum_core::store::MAX_IMPORT_KEYS / TURN_ROLES.len();
        let mut held = HashSet::new();
        for chunk in keys.chunks(per) {
            let asked: Vec<String> = chunk
                .iter()
                .flat_map(|k| TURN_ROLES.iter().map(move |r| format!("{k}/{r}")))
                .collect();
            for k in self.store.imported(tenant, &asked).await? {
                if let Some((turn, _)) = k.rsplit_once('/') {
                    held.insert(turn.to_string());
                }
            }
        }
        Ok(held)
    }

    /// Stores a conversation turn: one memory per side (user, assistant, and thinking when
    /// given), the concepts they mention, Hebbian links between the turn's concepts, and the
    /// assistant's decisions. One transaction: all of it or nothing.
    pub async fn learn(&self, who: impl Into<Caller>, turn: Turn) -> Result<LearnOutcome> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        self.learn_many(tenant, vec![turn]).await
    }

    /// Stores many turns in one transaction (bulk import of history). Every turn is validated
    /// before anything is written; co-occurrences are summed per link, which the Hebbian rule
    /// makes equal to applying the turns one by one.
    #[tracing::instrument(name = "engine.learn", level = "debug", skip_all, fields(turns = turns.len()))]
    pub async fn learn_many(
        &self,
        who: impl Into<Caller>,
        turns: Vec<Turn>,
    ) -> Result<LearnOutcome> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let started = std::time::Instant::now();
        let prepared = self.prepare_turns(turns)?;
        let out = self.apply_turns(tenant, prepared).await;
        metrics::histogram!(continuum_ops::metrics::LEARN_DURATION)
            .record(started.elapsed().as_secs_f64());
        out
    }

    /// The CPU half of [`Engine::learn_many`]: validation, extraction, hashing, link counting.
    /// Pure and `Send`, so bulk imports can prepare the next batch on another thread while the
    /// store writes this one.
    pub fn prepare_turns(&self, turns: Vec<Turn>) -> Result<PreparedTurns> {
        self.prepare_keyed_turns(turns.into_iter().map(|t| (t, None)).collect())
    }

    /// As [`Engine::prepare_turns`], for imported history: each turn with its [`turn_key`],
    /// which its memories keep so that importing it again skips it
    /// ([`Engine::imported_turns`]); the store refuses a key it already holds.
    pub fn prepare_keyed_turns(&self, turns: Vec<(Turn, Option<String>)>) -> Result<PreparedTurns> {
        let now = self.clock.now();
        let mut outcome = LearnOutcome {
            turns: turns.len() as u64,
            ..Default::default()
        };
        let mut all_concepts = HashSet::new();
        let mut pair_counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut batches = Vec::with_capacity(turns.len());
        for (turn, key) in turns {
            let p = self.prepare_turn(turn, now, key.as_deref())?;
            for c in &p.turn_concepts {
                if all_concepts.insert(c.key.clone()) && c.key.contains(' ') {
                    outcome.compounds_found += 1;
                }
            }
            outcome.concepts = p.turn_concepts.iter().map(|c| c.key.clone()).collect();
            outcome
                .memory_ids
                .extend(p.batch.memories.iter().map(|m| m.memory.id));
            let mut batch = p.batch;
            for l in batch.links.drain(..) {
                if let LinkWrite::CoOccurred { a, b, count } = l {
                    *pair_counts.entry((a, b)).or_default() += count;
                }
            }
            batches.push(batch);
        }
        if let Some(last) = batches.last_mut() {
            last.links = pair_counts
                .into_iter()
                .map(|((a, b), count)| LinkWrite::CoOccurred { a, b, count })
                .collect();
        }
        outcome.concepts_extracted = all_concepts.len() as u64;
        Ok(PreparedTurns { batches, outcome })
    }

    /// The store half of [`Engine::learn_many`]: one transaction.
    pub async fn apply_turns(
        &self,
        who: impl Into<Caller>,
        prepared: PreparedTurns,
    ) -> Result<LearnOutcome> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let PreparedTurns {
            batches,
            mut outcome,
        } = prepared;
        let adding = footprint_of(&batches);
        self.check_storage(tenant, adding.memories).await?;
        let applied: Applied = self
            .store
            .apply(tenant, &self.config.hebbian, batches)
            .await?;
        self.note_stored(tenant, adding);
        self.wake_embedder();
        outcome.decisions_detected = applied.decisions;
        outcome.links_created = applied.links_created + applied.links_strengthened;
        outcome.concepts_created = applied.concepts_created;
        outcome.links_new = applied.links_created;
        outcome.links_strengthened = applied.links_strengthened;
        outcome.change_seq = applied.change_seq;
        Ok(outcome)
    }

    /// Stores one text (a fact, a document, a note) with its concepts.
    #[tracing::instrument(name = "engine.remember", level = "debug", skip_all)]
    pub async fn remember(&self, who: impl Into<Caller>, req: RememberRequest) -> Result<Memory> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        self.remember_inner(tenant, req, None).await
    }

    /// Stores `req` as the new version of memory `old`: the old one is kept, marked superseded
    /// (and demoted in recall), never destroyed.
    #[tracing::instrument(name = "engine.supersede", level = "debug", skip_all)]
    pub async fn supersede(
        &self,
        who: impl Into<Caller>,
        old: MemoryId,
        req: RememberRequest,
    ) -> Result<Memory> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        // Fail early with NotFound rather than storing the new text first.
        self.get(tenant, old).await?;
        self.remember_inner(tenant, req, Some(old)).await
    }

    /// Stores many texts in one transaction, each under an import key (at most
    /// [`MAX_KEYED_TEXTS`]): a key the tenant already holds is skipped, so sending the same
    /// items again (a lost acknowledgement, a resumed copy) stores each once. Every text is
    /// checked before anything is written.
    #[tracing::instrument(name = "engine.remember_keyed", level = "debug", skip_all, fields(texts = items.len()))]
    pub async fn remember_keyed(
        &self,
        who: impl Into<Caller>,
        items: Vec<(RememberRequest, String)>,
    ) -> Result<KeyedOutcome> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        if items.len() > MAX_KEYED_TEXTS {
            return Err(continuum_core::Error::InvalidInput(format!(
                "at most {MAX_KEYED_TEXTS} texts are stored at once"
            )));
        }
        if items.is_empty() {
            return Ok(KeyedOutcome::default());
        }
        let keys: Vec<String> = items.iter().map(|(_, k)| k.clone()).collect();
        let held: HashSet<String> = self
            .store
            .imported(tenant, &keys)
            .await?
            .into_iter()
            .collect();
        let mut seen = HashSet::new();
        let mut batches = Vec::new();
        let mut out = KeyedOutcome::default();
        for (req, key) in items {
            if held.contains(&key) || !seen.insert(key.clone()) {
                out.skipped += 1;
                continue;
            }
            let mut batch = self.remember_batch(req, None)?;
            batch.memories[0].import_key = Some(key);
            out.stored.push(batch.memories[0].memory.clone());
            batches.push(batch);
        }
        if batches.is_empty() {
            return Ok(out);
        }
        let adding = footprint_of(&batches);
        self.check_storage(tenant, adding.memories).await?;
        self.store
            .apply(tenant, &self.config.hebbian, batches)
            .await?;
        self.note_stored(tenant, adding);
        self.wake_embedder();
        Ok(out)
    }

    async fn remember_inner(
        &self,
        tenant: &TenantId,
        req: RememberRequest,
        supersedes: Option<MemoryId>,
    ) -> Result<Memory> {
        let batch = self.remember_batch(req, supersedes)?;
        let memory = batch.memories[0].memory.clone();
        let adding = footprint_of(std::slice::from_ref(&batch));
        self.check_storage(tenant, adding.memories).await?;
        self.store
            .apply(tenant, &self.config.hebbian, vec![batch])
            .await?;
        self.note_stored(tenant, adding);
        self.wake_embedder();
        Ok(memory)
    }

    /// One text as a write batch: its memory, and links between its concepts.
    fn remember_batch(
        &self,
        req: RememberRequest,
        supersedes: Option<MemoryId>,
    ) -> Result<WriteBatch> {
        self.config.check_text("text", &req.content)?;
        let now = self.clock.now();
        let at = req.created_at.unwrap_or(now);
        let kind = req.kind.unwrap_or_else(|| req.source.as_str().to_string());
        let write = self.new_memory(
            &req.content,
            req.source,
            &kind,
            req.session,
            req.metadata,
            at,
        );
        let memory = write.memory.clone();
        let mut links = Vec::new();
        let keys: Vec<&str> = write
            .concepts
            .iter()
            .take(self.config.max_concepts_per_turn)
            .map(|c| c.key.as_str())
            .collect();
        for (i, x) in keys.iter().enumerate() {
            for y in &keys[i + 1..] {
                let (a, b) = canonical_pair(x, y);
                links.push(LinkWrite::CoOccurred {
                    a: a.into(),
                    b: b.into(),
                    count: 1,
                });
            }
        }
        Ok(WriteBatch {
            memories: vec![write],
            links,
            decisions: Vec::new(),
            supersedes: supersedes.map(|old| (old, memory.id)).into_iter().collect(),
            at,
            written_at: Some(now),
        })
    }
}

/// The most texts [`Engine::remember_keyed`] stores at once.
pub const MAX_KEYED_TEXTS: usize = 1000;

/// What [`Engine::remember_keyed`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KeyedOutcome {
    /// The memories stored now.
    pub stored: Vec<Memory>,
    /// Texts whose key the tenant already held (or that repeated a key of this call).
    pub skipped: u64,
}

/// The memories and bytes of text a write adds.
pub(crate) fn footprint_of(batches: &[WriteBatch]) -> continuum_core::account::Footprint {
    let mut f = continuum_core::account::Footprint::default();
    for m in batches.iter().flat_map(|b| &b.memories) {
        f.memories += 1;
        f.bytes += m.memory.content.len() as u64;
    }
    f
}
