//! One module per command family; each translates flags into engine calls.

mod audit;
mod backup;
mod bench;
mod concepts;
mod config;
mod doctor;
pub(crate) mod events;
mod export;
pub(crate) mod federation;
mod import;
pub(crate) mod keys;
mod learn;
mod mcp;
mod memories;
mod migrate;
mod recall;
mod reflection;
pub(crate) mod reindex;
pub(crate) mod retention;
mod serve;
mod stats;
mod sync;
mod tenants;
mod usage;
mod webhooks;

use crate::app::{Cli, parse_time};
use anyhow::Result;
use clap::{Args, Subcommand};
use continuum_core::store::MemoryFilter;
use continuum_core::{SessionId, Source, Timestamp};

// Parsed once per process: the size of its largest variant (`serve`'s options) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API (default 127.0.0.1:8420) until Ctrl-C or SIGTERM.
    Serve(serve::ServeArgs),
    /// Serve MCP over standard input and output (for Claude Desktop, Claude Code, Cursor, …).
    Mcp,
    /// Print the REST API's OpenAPI 3.1 document (what `serve` answers at /v1/openapi.json).
    Openapi,
    /// Store a conversation turn: the user's message, the assistant's reply, optional thinking.
    Learn(learn::LearnArgs),
    /// Store one text (a fact, a document, a note).
    Remember(learn::RememberArgs),
    /// Store a new version of a memory; the old one is kept, marked superseded.
    Supersede(learn::SupersedeArgs),
    /// What is relevant to a message: ranked memories and a context block within a token budget.
    Recall(recall::RecallArgs),
    /// Embed every memory that has no vector of the configured model (resumable; with a
    /// progress bar), and optionally delete other models' vectors.
    Reindex(reindex::ReindexArgs),
    /// Full-text search over memories.
    Search(recall::SearchArgs),
    /// List memories, newest first, a page at a time.
    List(memories::ListArgs),
    /// Show one memory.
    Get(memories::GetArgs),
    /// Delete memories by id, a whole session, or everything of the tenant.
    Forget(memories::ForgetArgs),
    /// Counts: memories, sessions, concepts, links, decisions; store size.
    Stats,
    /// Conversations, most recently active first.
    Sessions(stats::PageArgs),
    /// Decisions detected in the assistant's replies, newest first.
    Decisions(stats::PageArgs),
    /// A concept's neighbours with link strengths (or its history with --timeline); without a
    /// name, the most mentioned concepts.
    Concepts(concepts::ConceptsArgs),
    /// What grew in a window: memories, new concepts and links, the most active concepts.
    Growth(concepts::GrowthArgs),
    /// Snapshots of the concept graph's shape: `create`, `list`, `compare FROM TO`.
    Snapshots(concepts::SnapshotsArgs),
    /// What the concept graph says: clusters, bridges between them, and unlinked concepts
    /// that share neighbours (associations to check).
    Insights(concepts::InsightsArgs),
    /// A seeded, repeatable random walk along the concept graph, with the memories that join
    /// each step.
    Dream(concepts::DreamArgs),
    /// Intentions kept across sessions: `add`, `list`, `done`, `abandon`, `resume` (the
    /// pending ones by priority, for a session start).
    Intentions(reflection::IntentionsArgs),
    /// Beliefs, checked for contradictions with the domain's active ones: `add`, `list`,
    /// `contradictions`, `resolve`.
    Beliefs(reflection::BeliefsArgs),
    /// Claims made with a confidence and verified later: `add`, `verify`, `list`,
    /// `calibration` (Brier score, reliability table, advice).
    Claims(reflection::ClaimsArgs),
    /// Check the data directory, the store and its indexes.
    Doctor(doctor::DoctorArgs),
    /// The configuration file: write a commented default one, or show every effective setting.
    Config(config::ConfigArgs),
    /// The tenant's event log, oldest first (one JSON object per line with --json); --follow
    /// keeps printing new events.
    Events(events::EventsArgs),
    /// Write the tenant's memories, links and decisions as JSON Lines (stdout or --output).
    Export(export::ExportArgs),
    /// Load a dump written by `export`, or conversation history with --turns.
    Import(import::ImportArgs),
    /// Create, list and revoke API keys (works offline against the store).
    Keys(keys::KeysArgs),
    /// List, create and erase tenants (works offline against the store).
    Tenants(tenants::TenantsArgs),
    /// Usage per tenant and UTC day: requests by kind, embeddings, webhook deliveries,
    /// memories and bytes stored (--tenant's; every tenant's with --all-tenants).
    Usage(usage::UsageArgs),
    /// The tiers this configuration defines, with their quotas.
    Tiers,
    /// Webhook subscriptions of --tenant: create, list, delete, rotate-secret, deliveries,
    /// retry (`serve` delivers them).
    Webhooks(webhooks::WebhooksArgs),
    /// The audit log of security-relevant acts: `verify` its hash chain, `tail [--follow]`,
    /// `export --format jsonl|syslog|cef`.
    Audit(audit::AuditArgs),
    /// Retention rules (--retention SOURCE=AGE): `run [--dry-run]` forgets, in every tenant,
    /// the memories older than their source's age (`serve` does it every hour).
    Retention(retention::RetentionArgs),
    /// Federation: a hub (`init --hub`, `invite`, `revoke`, `members`) or a member node
    /// (`join`, `share on|off`, `contribute`, `query`, `status`); the hub serves with `serve
    /// --federation-bind`.
    Federation(federation::FederationArgs),
    /// Sync --tenant with a Continuum server (--remote): push this node's events, pull the
    /// server's, until both are level; `status` shows the cursors, `reset` starts over.
    Sync(sync::SyncArgs),
    /// Encrypted backups of the store in a directory, S3 or any rclone remote (--dest):
    /// `create`, `list`, `verify ID`, `restore ID`, `prune`; `serve` runs them on
    /// --backup-schedule.
    Backup(backup::BackupArgs),
    /// Apply pending schema migrations (they also run automatically at start) and show the state.
    Migrate,
    /// Rewrite the store's files so that nothing forgotten or erased stays in their pages
    /// (SQLite VACUUM; PostgreSQL VACUUM FULL of each table); writers wait while it runs.
    Vacuum,
    /// Measure learn throughput and recall latency on generated conversations.
    Bench(bench::BenchArgs),
}

impl Command {
    /// Whether the command runs a server in the process (and so wants a runtime on every core).
    pub fn uses_every_core(&self) -> bool {
        match self {
            Command::Serve(_) => true,
            Command::Bench(b) => b.runs_a_server(),
            _ => false,
        }
    }
}

pub async fn run(cli: Cli, file: crate::config::ConfigFile) -> Result<()> {
    let outcome = dispatch(cli, file).await;
    // A libSQL replica pushes what the command wrote before the process exits.
    crate::app::finish_replicas().await;
    outcome
}

async fn dispatch(cli: Cli, file: crate::config::ConfigFile) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Config(a) => config::config(g, a, &file),
        Command::Serve(a) => serve::serve(g, a).await,
        Command::Mcp => mcp::mcp(g).await,
        Command::Openapi => crate::output::json(&continuum_server::openapi_document()),
        Command::Learn(a) => learn::learn(g, a).await,
        Command::Remember(a) => learn::remember(g, a).await,
        Command::Supersede(a) => learn::supersede(g, a).await,
        Command::Recall(a) => recall::recall(g, a).await,
        Command::Reindex(a) => reindex::reindex(g, a).await,
        Command::Search(a) => recall::search(g, a).await,
        Command::List(a) => memories::list(g, a).await,
        Command::Get(a) => memories::get(g, a).await,
        Command::Forget(a) => memories::forget(g, a).await,
        Command::Stats => stats::stats(g).await,
        Command::Sessions(a) => stats::sessions(g, a).await,
        Command::Decisions(a) => stats::decisions(g, a).await,
        Command::Concepts(a) => concepts::concepts(g, a).await,
        Command::Insights(a) => concepts::insights(g, a).await,
        Command::Growth(a) => concepts::growth(g, a).await,
        Command::Snapshots(a) => concepts::snapshots(g, a).await,
        Command::Dream(a) => concepts::dream(g, a).await,
        Command::Intentions(a) => reflection::intentions(g, a).await,
        Command::Beliefs(a) => reflection::beliefs(g, a).await,
        Command::Claims(a) => reflection::claims(g, a).await,
        Command::Doctor(a) => doctor::doctor(g, a).await,
        Command::Events(a) => events::events(g, a).await,
        Command::Export(a) => export::export(g, a).await,
        Command::Import(a) => import::import(g, a).await,
        Command::Keys(a) => keys::keys(g, a).await,
        Command::Tenants(a) => tenants::tenants(g, a).await,
        Command::Webhooks(a) => webhooks::webhooks(g, a).await,
        Command::Usage(a) => usage::usage(g, a).await,
        Command::Tiers => usage::tiers(g).await,
        Command::Migrate => migrate::migrate(g).await,
        Command::Vacuum => migrate::vacuum(g).await,
        Command::Audit(a) => audit::audit(g, a).await,
        Command::Retention(a) => retention::retention(g, a).await,
        Command::Federation(a) => federation::federation(g, a).await,
        Command::Sync(a) => sync::sync(g, a).await,
        Command::Backup(a) => backup::backup(g, a).await,
        Command::Bench(a) => bench::bench(g, a).await,
    }
}

/// Filter flags shared by recall, search and list.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only memories from this source (repeatable): user, assistant, thinking, system, document, fact, note.
    #[arg(long = "source", value_name = "SOURCE")]
    pub sources: Vec<Source>,
    /// Only memories of this session.
    #[arg(long)]
    pub session: Option<String>,
    /// Only memories created at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<Timestamp>,
    /// Only memories created before this time.
    #[arg(long, value_parser = parse_time)]
    pub until: Option<Timestamp>,
    /// Leave out memories that a newer one superseded.
    #[arg(long)]
    pub current: bool,
}

impl FilterArgs {
    pub fn to_filter(&self) -> Result<MemoryFilter> {
        Ok(MemoryFilter {
            sources: self.sources.clone(),
            session: self.session.clone().map(SessionId::new).transpose()?,
            since: self.since,
            until: self.until,
            current_only: self.current,
        })
    }
}
