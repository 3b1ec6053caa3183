//! Test support shared by Continuum's crates (`publish = false`).
//!
//! The heart is [`conformance`]: one suite of behaviours every [`MemoryStore`] must show. A
//! backend runs it with [`store_conformance!`], giving a factory that makes a fresh, empty store
//! per call; each case becomes its own `#[tokio::test]`.

pub mod conformance;

pub use conformance::audit_tampering_is_named;

use continuum_core::time::ManualClock;
use continuum_core::{MemoryStore, TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A fresh store and whatever must live as long as it (a temp dir, a scratch database).
pub struct TestStore {
    pub store: Arc<dyn MemoryStore>,
    pub guard: Box<dyn Any + Send + Sync>,
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Makes a fresh, empty store on each call.
pub type Factory = dyn Fn() -> BoxFuture<TestStore> + Send + Sync;

/// The moment test clocks start at: 2026-01-01T00:00:00Z.
pub const T0: Timestamp = Timestamp(1_767_225_600_000);

/// An engine with default configuration over `store`, on a manual clock at [`T0`].
pub fn engine(store: Arc<dyn MemoryStore>) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let engine = Engine::new(store, EngineConfig::default())
        .expect("default config is valid")
        .with_clock(clock.clone());
    (engine, clock)
}

pub fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid tenant id")
}

/// A stand-in embedder for testing how vectors flow through stores, indexes and ranking (the
/// real models are tested in `continuum-embed`): each word counts towards a topic, synonyms
/// towards the same one, so paraphrases without a shared word get close vectors.
#[derive(Default)]
pub struct TopicEmbedder {
    calls: std::sync::atomic::AtomicUsize,
}

const TOPICS: &[&[&str]] = &[
    &["dog", "pet", "puppy", "cat", "animal"],
    &[
        "chasing", "fetch", "play", "balls", "tennis", "likes", "adores",
    ],
    &["budget", "money", "review", "quarterly"],
    &["deploy", "service", "kubernetes"],
    &["naps", "sleeps", "sun", "sunshine", "day"],
];

impl TopicEmbedder {
    /// Calls to `embed` so far.
    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl continuum_core::embed::Embedder for TopicEmbedder {
    fn model(&self) -> &str {
        "test-topics"
    }

    fn dim(&self) -> usize {
        TOPICS.len() + 1
    }

    async fn embed(&self, texts: &[String]) -> continuum_core::Result<Vec<Vec<f32>>> {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; TOPICS.len() + 1];
                v[TOPICS.len()] = 0.05;
                for w in t.split(|c: char| !c.is_alphanumeric()) {
                    let w = w.to_lowercase();
                    if let Some(i) = TOPICS.iter().position(|ws| ws.contains(&w.as_str())) {
                        v[i] += 1.0;
                    }
                }
                continuum_core::embed::normalize(&mut v);
                v
            })
            .collect())
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each given `$factory` (an expression
/// of type `&'static Factory` or anything that derefs to it).
///
/// `store_conformance!(FACTORY, require_env = "VAR")` skips every case, saying why, when the
/// environment variable `VAR` is unset (for backends that need a running service).
#[macro_export]
macro_rules! store_conformance {
    ($factory:expr) => {
        $crate::store_conformance!(@all $factory; None);
    };
    ($factory:expr, require_env = $var:expr) => {
        $crate::store_conformance!(@all $factory; Some($var));
    };
    (@all $factory:expr; $var:expr) => {
        $crate::store_conformance!(@cases $factory; $var;
            learn_stores_each_side_and_links_its_concepts,
            hebbian_links_grow_by_increment_and_cap,
            batched_learn_equals_turn_by_turn,
            a_failed_write_changes_nothing,
            recall_ranks_the_matching_memory_first,
            recall_prefers_turns_by_a_speaker_the_query_names,
            recall_places_events_in_time_for_a_when_question,
            recall_prefers_the_period_a_question_names,
            recall_follows_concept_links,
            recall_filters_by_source,
            recall_collapses_duplicates,
            supersede_keeps_history_and_demotes_the_old,
            list_pages_newest_first_without_gaps,
            forget_removes_memories_everywhere,
            forget_unknown_is_not_found,
            tenants_never_see_each_other,
            reflection_reads_one_tenant_and_repeats_by_seed,
            intentions_resume_by_priority_and_change_state_once,
            beliefs_report_contradictions_in_their_domain_and_resolve,
            the_embedder_finds_a_negated_paraphrase_the_words_miss,
            claims_calibrate_per_category_and_window,
            reflection_records_are_the_tenants_own_events_and_go_with_it,
            a_concepts_timeline_and_growth_are_read_from_its_events,
            insights_name_concepts_close_in_meaning_that_are_not_linked,
            graph_snapshots_are_kept_per_tenant_and_compared,
            reflection_records_travel_in_an_export_and_import_once,
            the_audit_log_reads_oldest_or_newest_first_per_tenant,
            export_then_import_reproduces_recall,
            import_is_idempotent,
            imported_turns_are_known_by_their_key,
            event_log_numbers_every_write_in_order,
            events_carry_what_they_describe,
            the_store_wide_read_sees_every_tenant_and_a_tenant_read_one,
            concurrent_writers_get_positions_in_commit_order,
            forgetting_scrubs_past_events_and_keys_are_recorded,
            export_is_a_snapshot_at_a_position_with_vectors,
            compaction_respects_cursors_and_retention,
            imported_history_is_kept_as_long_as_todays_writes,
            awkward_text_is_stored_and_found,
            sessions_and_decisions_are_recorded,
            store_check_finds_no_problems,
            the_index_follows_writes_made_after_it_was_built,
            the_commit_marker_moves_with_every_write,
            the_store_full_text_search_ranks_and_isolates,
            the_store_full_text_search_follows_writes_and_forgets,
            a_concept_made_by_a_link_is_named_by_its_first_mention,
            api_keys_are_stored_hashed_and_revocable,
            webhooks_are_stored_per_tenant_hold_their_cursor_and_go_with_the_tenant,
            a_rotated_key_works_until_the_overlap_ends_and_its_successor_after,
            expired_keys_are_recorded_once,
            engine_verbs_decide_rights_from_the_caller,
            vectors_are_kept_per_model_and_tenant,
            recall_finds_paraphrases_through_vectors,
            stores_that_search_vectors_agree_with_an_exact_scan,
            tenants_are_listed_created_and_erased_whole,
            usage_is_counted_per_tenant_and_day_and_added_up_by_flushes,
            quotas_refuse_past_the_tier_and_a_new_tier_applies_at_once,
            billing_events_apply_once_and_never_undo_a_later_one,
            the_audit_log_records_security_acts_in_one_verified_chain,
            sync_applies_another_nodes_events_once_and_forgets_win,
            a_renewed_node_keeps_its_past_under_the_old_id,
            reflection_records_sync_and_the_latest_version_wins
        );
    };
    (@cases $factory:expr; $var:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let var: Option<&str> = $var;
                if let Some(var) = var {
                    if std::env::var(var).is_err() {
                        eprintln!("skipping {}: {var} is not set", stringify!($case));
                        return;
                    }
                }
                $crate::conformance::$case($factory).await;
            }
        )*
    };
}
