//! Continuum as a Model Context Protocol server, built on the official Rust SDK (`rmcp`).
//!
//! Each tool is one engine verb: `memory_store` = learn, `memory_recall` = recall, and so on.
//! Results are short text a model can read, with the full data as structured content beside
//! it. The tenant is fixed when the server starts (configuration for stdio, the credential for
//! HTTP), never taken from a tool argument. Bad input (empty text, over a limit, an unknown id)
//! is a tool error with a readable message, not a protocol failure.
//!
//! Not here: the transport loop itself (`continuum mcp` runs [`serve_stdio`]); the HTTP mount
//! belongs to the REST server.

use continuum_core::account::UsageKind;
use continuum_core::keys::Caller;
use continuum_core::memory::{Metadata, Turn};
use continuum_core::store::{ForgetSelector, MemoryFilter, Order, PageRequest};
use continuum_core::{Error, MemoryId, SessionId, Source, TenantId, Timestamp};
use continuum_engine::{Engine, RecallRequest, RememberRequest, SearchRequest};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_handler,
    tool_router,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The most results a listing or search tool returns at once.
pub use continuum_core::limits::MAX_RESULTS;

/// The MCP server over one engine and one tenant.
#[derive(Clone)]
pub struct ContinuumMcp {
    engine: Engine,
    /// The tenant for stdio; over HTTP each request carries its caller ([`McpCaller`]).
    tenant: Option<TenantId>,
    tool_router: ToolRouter<Self>,
}

/// The caller of an authenticated HTTP request (its key's tenant and scope): the REST server's
/// auth layer puts it in the request's extensions, from where each tool call reads it and hands
/// it to the engine, which decides what it may do. Never taken from tool arguments.
#[derive(Debug, Clone)]
pub struct McpCaller(pub Caller);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreArgs {
    /// What the user said in this turn.
    pub user_message: String,
    /// What the assistant answered.
    pub ai_response: String,
    /// The assistant's reasoning for this turn, if any; stored as its own recallable memory.
    #[serde(default)]
    pub thinking: Option<String>,
    /// A conversation id, to group turns of one session.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Extra facts about the turn (a JSON object).
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallArgs {
    /// The message to find relevant memories for: usually the user's latest message.
    pub query: String,
    /// Token budget of the returned context block (default 1000).
    #[serde(default)]
    pub budget_tokens: Option<usize>,
    /// How many memories to rank (default 10, at most 100).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only memories from this source: user, assistant, thinking, system, document, fact or note.
    /// Use "thinking" to recall how you reasoned before.
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Words to look for.
    pub query: String,
    /// Only memories from this source.
    #[serde(default)]
    pub source: Option<String>,
    /// Only memories of this conversation.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Results per page (default 10, at most 100).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RememberArgs {
    /// The text to remember.
    pub content: String,
    /// fact, document, note (default), user, assistant, thinking or system.
    #[serde(default)]
    pub source: Option<String>,
    /// A conversation id.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Extra facts about it (a JSON object).
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdArgs {
    /// A memory id, as returned by the other tools.
    pub id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Memories per page (default 20, at most 100).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Only memories from this source.
    #[serde(default)]
    pub source: Option<String>,
    /// Only memories of this conversation.
    #[serde(default)]
    pub session_id: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgetArgs {
    /// The memory to delete.
    #[serde(default)]
    pub id: Option<String>,
    /// Delete every memory of this conversation instead.
    #[serde(default)]
    pub session_id: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConceptArgs {
    /// A concept name, any case (a person, project, tool, place…).
    pub concept: String,
    /// How many neighbours to return (default 20, at most 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentionSetArgs {
    /// What you mean to do, in one sentence.
    pub text: String,
    /// 1 (lowest) to 10 (highest); 5 when not given.
    #[serde(default)]
    pub priority: Option<i64>,
    /// The conversation it belongs to.
    #[serde(default)]
    pub session: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentionListArgs {
    /// `pending`, `done` or `abandoned` (default: every status).
    #[serde(default)]
    pub status: Option<continuum_core::reflection::IntentionStatus>,
    /// At most this many (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordIdArgs {
    /// The record's id.
    pub id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentionAbandonArgs {
    /// The intention's id.
    pub id: String,
    /// Why it is abandoned.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BeliefRecordArgs {
    /// The statement you hold true.
    pub text: String,
    /// Beliefs are compared within a domain (default `general`).
    #[serde(default)]
    pub domain: Option<String>,
    /// From 0 to 1 (default 0.8).
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Why you hold it (at most 10 short items).
    #[serde(default)]
    pub evidence: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BeliefListArgs {
    /// Only this domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// `active` or `superseded` (default: both).
    #[serde(default)]
    pub status: Option<continuum_core::reflection::BeliefStatus>,
    /// At most this many (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContradictionListArgs {
    /// `open` or `resolved` (default: both).
    #[serde(default)]
    pub status: Option<continuum_core::reflection::ContradictionStatus>,
    /// At most this many (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContradictionResolveArgs {
    /// The contradiction's id.
    pub id: String,
    /// The id of the belief to keep (one of the two); the other is superseded.
    pub keep: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRecordArgs {
    /// The statement.
    pub text: String,
    /// How sure you are, from 0 to 1.
    pub confidence: f64,
    /// Calibration is reported per category (default `general`).
    #[serde(default)]
    pub category: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimVerifyArgs {
    /// The claim's id.
    pub id: String,
    /// Whether it turned out correct.
    pub correct: bool,
    /// What showed it.
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalibrationArgs {
    /// Only this category (default: all, and each on its own).
    #[serde(default)]
    pub category: Option<String>,
    /// Claims made on or after this time (RFC 3339 or YYYY-MM-DD).
    #[serde(default)]
    pub since: Option<String>,
    /// Claims made before this time (RFC 3339 or YYYY-MM-DD).
    #[serde(default)]
    pub until: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimelineArgs {
    /// The concept (any case).
    pub name: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrowthArgs {
    /// From this time (RFC 3339 or YYYY-MM-DD).
    #[serde(default)]
    pub since: Option<String>,
    /// Until this time, not included (RFC 3339 or YYYY-MM-DD).
    #[serde(default)]
    pub until: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotArgs {
    /// A name for the snapshot.
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareArgs {
    /// The earlier snapshot's id (default: the second newest).
    #[serde(default)]
    pub from: Option<String>,
    /// The later snapshot's id (default: the newest).
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InsightsArgs {
    /// Clusters, bridges and hypotheses returned, each (default 10, at most 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DreamArgs {
    /// A concept to start from (default: one drawn by its link strength).
    #[serde(default)]
    pub from: Option<String>,
    /// The same seed walks the same way (default: from the clock; returned).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Moves (default 10, at most 200).
    #[serde(default)]
    pub steps: Option<usize>,
    /// Above 0, at most 10 (default 1): below 1 keeps to strong links, above wanders along weak ones.
    #[serde(default)]
    pub temperature: Option<f64>,
}

/// A tool result: readable text plus the structured data.
fn ok(text: String, data: Value) -> Result<CallToolResult, McpError> {
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(data);
    Ok(r)
}

/// An engine error as a tool error the model can read and act on.
fn tool_error(e: Error) -> Result<CallToolResult, McpError> {
    let message = match &e {
        Error::Internal(_) => {
            "internal error in the memory server (details are in its log)".to_string()
        }
        other => other.to_string(),
    };
    if let Error::Internal(detail) = &e {
        tracing::error!(error = %detail, "MCP tool: internal error");
    }
    let mut r = CallToolResult::error(vec![ContentBlock::text(format!(
        "error ({}): {message}",
        e.code()
    ))]);
    r.structured_content = Some(json!({"error": {"code": e.code(), "message": message}}));
    Ok(r)
}

fn source(s: &Option<String>) -> Result<Option<Source>, Error> {
    s.as_deref().map(str::parse).transpose()
}

fn session(s: &Option<String>) -> Result<Option<SessionId>, Error> {
    s.clone().map(SessionId::new).transpose()
}

fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, Error> {
    let l = limit.unwrap_or(default);
    if l == 0 || l > MAX_RESULTS {
        return Err(Error::InvalidInput(format!(
            "limit must be between 1 and {MAX_RESULTS}"
        )));
    }
    Ok(l)
}

fn preview(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    }
}

fn memory_line(m: &continuum_core::Memory) -> String {
    let day = m.created_at.to_rfc3339();
    format!(
        "{} [{} {}] {}",
        m.id,
        day.get(..10).unwrap_or(&day),
        m.source,
        preview(&m.content, 200)
    )
}

macro_rules! try_tool {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return tool_error(e),
        }
    };
}

#[tool_router]
impl ContinuumMcp {
    /// A server whose every call uses `tenant` (stdio).
    pub fn new(engine: Engine, tenant: TenantId) -> Self {
        ContinuumMcp {
            engine,
            tenant: Some(tenant),
            tool_router: Self::tool_router(),
        }
    }

    /// A server that takes each call's tenant from its authenticated HTTP request.
    pub fn per_request(engine: Engine) -> Self {
        ContinuumMcp {
            engine,
            tenant: None,
            tool_router: Self::tool_router(),
        }
    }

    /// The caller of a tool call, counted as a request of `kind` by metering (and refused
    /// when its tenant's daily request quota is used up).
    async fn caller_for(
        &self,
        ctx: &RequestContext<RoleServer>,
        kind: UsageKind,
    ) -> Result<Caller, Error> {
        let caller = self.caller_of(ctx)?;
        self.engine.admit_request(&caller, kind).await?;
        Ok(caller)
    }

    /// The caller of a tool call: the authenticated HTTP request's, or over stdio the local
    /// caller of the tenant the server was started for.
    fn caller_of(&self, ctx: &RequestContext<RoleServer>) -> Result<Caller, Error> {
        if let Some(parts) = ctx.extensions.get::<http::request::Parts>()
            && let Some(McpCaller(c)) = parts.extensions.get::<McpCaller>()
        {
            return Ok(c.clone());
        }
        self.tenant.clone().map(Caller::local).ok_or_else(|| {
            Error::Unauthorized("this MCP request carries no authenticated tenant".into())
        })
    }

    #[tool(
        description = "Store one conversation turn in long-term memory: the user's message, your reply, and optionally your reasoning. Call this after every exchange worth remembering. Concepts and their links are extracted automatically."
    )]
    async fn memory_store(
        &self,
        Parameters(a): Parameters<StoreArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Learn).await);
        let turn = Turn {
            user_message: a.user_message,
            ai_response: a.ai_response,
            thinking: a.thinking,
            session_id: try_tool!(session(&a.session_id)),
            metadata: a.metadata,
            timestamp: None,
        };
        let out = try_tool!(self.engine.learn(&caller, turn).await);
        let text = format!(
            "Stored {} memories. Concepts: {}. {} links, {} decisions.",
            out.memory_ids.len(),
            if out.concepts.is_empty() {
                "none".into()
            } else {
                out.concepts.join(", ")
            },
            out.links_created,
            out.decisions_detected
        );
        ok(text, json!(out))
    }

    #[tool(
        description = "Recall what you know that is relevant to a message. Returns a [MEMORY CONTEXT] block to use in your answer, within a token budget, plus the ranked memories with ids. Call this at the start of a turn."
    )]
    async fn memory_recall(
        &self,
        Parameters(a): Parameters<RecallArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Recall).await);
        let filter = MemoryFilter {
            sources: try_tool!(source(&a.source)).into_iter().collect(),
            ..Default::default()
        };
        let req = RecallRequest {
            query: a.query,
            budget_tokens: a.budget_tokens,
            limit: a.limit,
            filter,
        };
        let r = try_tool!(self.engine.recall(&caller, &req).await);
        let mut text = if r.context.is_empty() {
            "Nothing relevant is remembered.".to_string()
        } else {
            r.context.clone()
        };
        if !r.memories.is_empty() {
            text.push_str("\n\nIds (best first): ");
            text.push_str(
                &r.memories
                    .iter()
                    .map(|m| m.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        ok(text, json!(r))
    }

    #[tool(
        description = "Search memories by words, with optional source and conversation filters. Paged: pass next_cursor to get more."
    )]
    async fn memory_search(
        &self,
        Parameters(a): Parameters<SearchArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Search).await);
        let limit = try_tool!(page_limit(a.limit, 10));
        let offset: usize =
            match a.cursor.as_deref() {
                None => 0,
                Some(c) => try_tool!(c.parse().map_err(|_| Error::InvalidInput(format!(
                    "'{c}' is not a cursor from this tool"
                )))),
            };
        let req = SearchRequest {
            query: a.query,
            filter: MemoryFilter {
                sources: try_tool!(source(&a.source)).into_iter().collect(),
                session: try_tool!(session(&a.session_id)),
                ..Default::default()
            },
            limit: Some(limit),
            offset,
        };
        let hits = try_tool!(self.engine.search(&caller, &req).await);
        let next_cursor = (hits.len() == limit).then(|| (offset + limit).to_string());
        let mut text = if hits.is_empty() {
            "No matches.".to_string()
        } else {
            String::new()
        };
        for h in &hits {
            text.push_str(&memory_line(&h.memory));
            text.push('\n');
        }
        if let Some(c) = &next_cursor {
            text.push_str(&format!("More: cursor {c}"));
        }
        ok(
            text.trim_end().to_string(),
            json!({"results": hits, "next_cursor": next_cursor}),
        )
    }

    #[tool(
        description = "Remember one piece of text on its own: a fact, a preference, a document excerpt or a note."
    )]
    async fn memory_remember(
        &self,
        Parameters(a): Parameters<RememberArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Learn).await);
        let req = RememberRequest {
            content: a.content,
            source: try_tool!(source(&a.source)).unwrap_or(Source::Note),
            kind: None,
            session: try_tool!(session(&a.session_id)),
            metadata: a.metadata.unwrap_or_else(Metadata::new),
            created_at: None,
        };
        let m = try_tool!(self.engine.remember(&caller, req).await);
        ok(format!("Remembered {}.", m.id), json!(m))
    }

    #[tool(description = "Get one memory by id, with its full text and metadata.")]
    async fn memory_get(
        &self,
        Parameters(a): Parameters<IdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let id: MemoryId = try_tool!(a.id.parse());
        let m = try_tool!(self.engine.get(&caller, id).await);
        ok(format!("{}\n{}", memory_line(&m), m.content), json!(m))
    }

    #[tool(
        description = "List memories, newest first, one page at a time (never the whole store). Pass next_cursor for the next page."
    )]
    async fn memory_list(
        &self,
        Parameters(a): Parameters<ListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let page = PageRequest {
            limit: try_tool!(page_limit(a.limit, 20)),
            cursor: a.cursor,
            order: Order::NewestFirst,
        };
        let filter = MemoryFilter {
            sources: try_tool!(source(&a.source)).into_iter().collect(),
            session: try_tool!(session(&a.session_id)),
            ..Default::default()
        };
        let p = try_tool!(self.engine.list(&caller, &filter, &page).await);
        let mut text = if p.items.is_empty() {
            "No memories.".to_string()
        } else {
            String::new()
        };
        for m in &p.items {
            text.push_str(&memory_line(m));
            text.push('\n');
        }
        if let Some(c) = &p.next_cursor {
            text.push_str(&format!("More: cursor {c}"));
        }
        ok(text.trim_end().to_string(), json!(p))
    }

    #[tool(
        description = "Forget (permanently delete) one memory by id, or every memory of a conversation."
    )]
    async fn memory_forget(
        &self,
        Parameters(a): Parameters<ForgetArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let what = match (&a.id, &a.session_id) {
            (Some(id), None) => ForgetSelector::Ids(vec![try_tool!(id.parse())]),
            (None, Some(s)) => ForgetSelector::Session(try_tool!(SessionId::new(s.clone()))),
            _ => return tool_error(Error::InvalidInput("give either id or session_id".into())),
        };
        let n = try_tool!(self.engine.forget(&caller, &what).await);
        ok(format!("Forgot {n} memories."), json!({"forgotten": n}))
    }

    #[tool(
        description = "Counts of what is remembered: memories, conversations, concepts, links, decisions."
    )]
    async fn memory_stats(
        &self,
        Parameters(_): Parameters<NoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let s = try_tool!(self.engine.stats(&caller).await);
        let text = format!(
            "{} memories in {} conversations; {} concepts, {} links, {} decisions.",
            s.store.memories, s.store.sessions, s.store.concepts, s.store.links, s.store.decisions
        );
        ok(text, json!(s))
    }

    #[tool(
        description = "Explore the concept graph: a concept's most strongly linked concepts (link strength 0.1 to 1.0 grows each time they come up together)."
    )]
    async fn concept_graph(
        &self,
        Parameters(a): Parameters<ConceptArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let limit = try_tool!(page_limit(a.limit, 20));
        let v = try_tool!(self.engine.concept(&caller, &a.concept, limit).await);
        let mut text = format!(
            "{} ({}, {} mentions)",
            v.concept.name, v.concept.kind, v.concept.mentions
        );
        if v.neighbours.is_empty() {
            text.push_str(": no linked concepts yet.");
        }
        for n in &v.neighbours {
            text.push_str(&format!("\n- {} ({:.2})", n.name, n.strength));
        }
        ok(text, json!(v))
    }

    #[tool(
        description = "Set an intention: something you mean to do, kept across sessions until you complete or abandon it. Priority 1-10 (7+ is high)."
    )]
    async fn intention_set(
        &self,
        Parameters(a): Parameters<IntentionSetArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let session = try_tool!(a.session.map(SessionId::new).transpose());
        let req = continuum_engine::IntentionRequest {
            text: a.text,
            priority: a.priority,
            session,
        };
        let i = try_tool!(self.engine.intention_add(&caller, &req).await);
        ok(
            format!("Intention {} set (priority {}).", i.id, i.priority),
            json!(i),
        )
    }

    #[tool(description = "List your intentions, highest priority first, then newest.")]
    async fn intention_list(
        &self,
        Parameters(a): Parameters<IntentionListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let list = try_tool!(
            self.engine
                .intentions(&caller, a.status, a.limit.unwrap_or(50))
                .await
        );
        let text = if list.is_empty() {
            "No intentions.".to_string()
        } else {
            list.iter()
                .map(|i| {
                    format!(
                        "- [{}] p{} {} ({})",
                        i.status.as_str(),
                        i.priority,
                        i.text,
                        i.id
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        ok(text, json!({ "intentions": list }))
    }

    #[tool(description = "Mark a pending intention complete.")]
    async fn intention_complete(
        &self,
        Parameters(a): Parameters<RecordIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let id = try_tool!(a.id.parse());
        let i = try_tool!(self.engine.intention_done(&caller, &id).await);
        ok(format!("Done: {}", i.text), json!(i))
    }

    #[tool(description = "Abandon a pending intention, saying why.")]
    async fn intention_abandon(
        &self,
        Parameters(a): Parameters<IntentionAbandonArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let id = try_tool!(a.id.parse());
        let i = try_tool!(
            self.engine
                .intention_abandon(&caller, &id, a.reason.as_deref())
                .await
        );
        ok(format!("Abandoned: {}", i.text), json!(i))
    }

    #[tool(
        description = "Call at the start of a session: your pending intentions grouped by priority (high 7-10, medium 4-6, low 1-3), with a one-line summary."
    )]
    async fn intention_resume(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let r = try_tool!(self.engine.intention_resume(&caller).await);
        let mut text = r.summary.clone();
        for (name, group) in [("High", &r.high), ("Medium", &r.medium), ("Low", &r.low)] {
            if !group.is_empty() {
                text.push_str(&format!("\n{name}:"));
                for i in group.iter() {
                    text.push_str(&format!("\n- p{} {} ({})", i.priority, i.text, i.id));
                }
            }
        }
        ok(text, json!(r))
    }

    #[tool(
        description = "Record a belief (a statement you hold true, in a domain, with a confidence). It is compared with your active beliefs of the same domain; contradictions found are returned and kept until resolved."
    )]
    async fn belief_record(
        &self,
        Parameters(a): Parameters<BeliefRecordArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let req = continuum_engine::BeliefRequest {
            text: a.text,
            domain: a.domain,
            confidence: a.confidence,
            evidence: a.evidence,
        };
        let r = try_tool!(self.engine.belief_add(&caller, &req).await);
        let mut text = format!(
            "Belief {} recorded in '{}' (compared with {}).",
            r.belief.id, r.belief.domain, r.compared
        );
        if r.contradictions.is_empty() {
            text.push_str(" No contradiction.");
        }
        for c in &r.contradictions {
            text.push_str(&format!(
                "\nContradicts \"{}\" ({}: {}); resolve with contradiction_resolve id {}.",
                c.earlier_text.as_deref().unwrap_or("?"),
                c.contradiction.kind,
                c.contradiction.evidence,
                c.contradiction.id
            ));
        }
        ok(text, json!(r))
    }

    #[tool(description = "List your beliefs, newest first.")]
    async fn belief_list(
        &self,
        Parameters(a): Parameters<BeliefListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let list = try_tool!(
            self.engine
                .beliefs(
                    &caller,
                    a.domain.as_deref(),
                    a.status,
                    a.limit.unwrap_or(50)
                )
                .await
        );
        let text = if list.is_empty() {
            "No beliefs.".to_string()
        } else {
            list.iter()
                .map(|b| {
                    format!(
                        "- [{}] {} ({}, {:.2}, {})",
                        b.status.as_str(),
                        b.text,
                        b.domain,
                        b.confidence,
                        b.id
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        ok(text, json!({ "beliefs": list }))
    }

    #[tool(description = "List contradictions found between your beliefs, newest first.")]
    async fn contradiction_list(
        &self,
        Parameters(a): Parameters<ContradictionListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let list = try_tool!(
            self.engine
                .contradictions(&caller, a.status, a.limit.unwrap_or(50))
                .await
        );
        let text = if list.is_empty() {
            "No contradictions.".to_string()
        } else {
            list.iter()
                .map(|c| {
                    format!(
                        "- [{}] \"{}\" vs \"{}\" ({}; id {})",
                        c.contradiction.status.as_str(),
                        c.earlier_text.as_deref().unwrap_or("?"),
                        c.later_text.as_deref().unwrap_or("?"),
                        c.contradiction.kind,
                        c.contradiction.id
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        ok(text, json!({ "contradictions": list }))
    }

    #[tool(
        description = "Resolve a contradiction by keeping one of its two beliefs; the other is superseded."
    )]
    async fn contradiction_resolve(
        &self,
        Parameters(a): Parameters<ContradictionResolveArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let id = try_tool!(a.id.parse());
        let keep = try_tool!(a.keep.parse());
        let r = try_tool!(self.engine.contradiction_resolve(&caller, &id, &keep).await);
        ok(
            format!(
                "Kept \"{}\"; \"{}\" is superseded.",
                r.kept.text, r.superseded.text
            ),
            json!(r),
        )
    }

    #[tool(
        description = "Record a claim with your confidence (0 to 1) and a category, to verify later with claim_verify; verified claims measure how well calibrated you are."
    )]
    async fn claim_record(
        &self,
        Parameters(a): Parameters<ClaimRecordArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let req = continuum_engine::ClaimRequest {
            text: a.text,
            confidence: a.confidence,
            category: a.category,
        };
        let c = try_tool!(self.engine.claim_add(&caller, &req).await);
        ok(
            format!("Claim {} recorded ({:.2}).", c.id, c.confidence),
            json!(c),
        )
    }

    #[tool(description = "Record whether a claim turned out correct (once per claim).")]
    async fn claim_verify(
        &self,
        Parameters(a): Parameters<ClaimVerifyArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let id = try_tool!(a.id.parse());
        let c = try_tool!(
            self.engine
                .claim_verify(&caller, &id, a.correct, a.notes.as_deref())
                .await
        );
        ok(
            format!("Claim {} is {}.", c.id, c.status.as_str()),
            json!(c),
        )
    }

    #[tool(
        description = "How well calibrated your verified claims are: Brier score, reliability table, expected calibration error and one sentence of advice, overall and per category."
    )]
    async fn claim_calibration(
        &self,
        Parameters(a): Parameters<CalibrationArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let since = try_tool!(a.since.as_deref().map(Timestamp::parse).transpose());
        let until = try_tool!(a.until.as_deref().map(Timestamp::parse).transpose());
        let req = continuum_engine::CalibrationRequest {
            category: a.category,
            since,
            until,
            bins: None,
        };
        let r = try_tool!(self.engine.calibration(&caller, &req).await);
        let line = |c: &continuum_engine::CalibrationReport| match c.brier {
            Some(b) => format!(
                "{}: {} verified, {} correct, Brier {:.3}, ECE {:.3}. {}",
                c.category.as_deref().unwrap_or("all"),
                c.claims,
                c.correct,
                b,
                c.ece.unwrap_or(0.0),
                c.advice
            ),
            None => format!(
                "{}: no verified claims yet ({} open).",
                c.category.as_deref().unwrap_or("all"),
                c.open
            ),
        };
        let mut text = line(&r.overall);
        for c in &r.categories {
            text.push_str(&format!("\n- {}", line(c)));
        }
        ok(text, json!(r))
    }

    #[tool(
        description = "How a concept evolved: when it was created, first linked to each other concept, when links passed strength 0.5, 0.8 and the cap, and when beliefs mentioning it were contradicted."
    )]
    async fn concept_timeline(
        &self,
        Parameters(a): Parameters<TimelineArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let t = try_tool!(self.engine.concept_timeline(&caller, &a.name).await);
        let mut text = format!("{} ({} mentions)", t.concept.name, t.mentions);
        for e in &t.entries {
            let what = match (e.other.as_deref(), e.strength, e.detail.as_deref()) {
                (Some(o), Some(s), _) => format!("{} {o} ({s:.2})", e.kind),
                (_, _, Some(d)) => format!("{}: {d}", e.kind),
                _ => e.kind.to_string(),
            };
            text.push_str(&format!("\n- {} {what}", e.at));
        }
        ok(text, json!(t))
    }

    #[tool(
        description = "What grew in a time window: memories, new concepts and links, and the most active concepts."
    )]
    async fn concept_growth(
        &self,
        Parameters(a): Parameters<GrowthArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let since = try_tool!(a.since.as_deref().map(Timestamp::parse).transpose());
        let until = try_tool!(a.until.as_deref().map(Timestamp::parse).transpose());
        let g = try_tool!(self.engine.concept_growth(&caller, since, until).await);
        let active: Vec<&str> = g
            .most_active
            .iter()
            .take(10)
            .map(|c| c.name.as_str())
            .collect();
        let text = format!(
            "{} memories, {} new concepts, {} new links. Most active: {}",
            g.memories,
            g.new_concepts,
            g.new_links,
            if active.is_empty() {
                "none".to_string()
            } else {
                active.join(", ")
            }
        );
        ok(text, json!(g))
    }

    #[tool(
        description = "Take a snapshot of your concept graph's shape (counts, clusters, modularity, hubs) to compare with later ones."
    )]
    async fn graph_snapshot(
        &self,
        Parameters(a): Parameters<SnapshotArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let s = try_tool!(
            self.engine
                .graph_snapshot(&caller, a.label.as_deref())
                .await
        );
        ok(
            format!(
                "Snapshot {}: {} concepts, {} links, {} clusters, modularity {:.2}.",
                s.id, s.concepts, s.links, s.clusters, s.modularity
            ),
            json!(s),
        )
    }

    #[tool(
        description = "Compare two graph snapshots (default: the two newest): how memories, concepts, links, clusters and hubs changed."
    )]
    async fn graph_compare(
        &self,
        Parameters(a): Parameters<CompareArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let (from, to) = match (a.from, a.to) {
            (Some(f), Some(t)) => (try_tool!(f.parse()), try_tool!(t.parse())),
            (None, None) => {
                let newest = try_tool!(self.engine.graph_snapshots(&caller, 2).await);
                if newest.len() < 2 {
                    return tool_error(Error::InvalidInput(
                        "take two snapshots with graph_snapshot before comparing".into(),
                    ));
                }
                (newest[1].id, newest[0].id)
            }
            _ => {
                return tool_error(Error::InvalidInput(
                    "give both from and to, or neither".into(),
                ));
            }
        };
        let c = try_tool!(self.engine.graph_compare(&caller, &from, &to).await);
        ok(c.summary.clone(), json!(c))
    }

    #[tool(
        description = "Reflect on the concept graph: clusters of related concepts, concepts that bridge clusters, and pairs of concepts never mentioned together that share neighbours (associations worth checking)."
    )]
    async fn insights(
        &self,
        Parameters(a): Parameters<InsightsArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let scope = continuum_engine::GraphScope::default();
        let r = try_tool!(
            self.engine
                .insights(&caller, &scope, a.limit.unwrap_or(10))
                .await
        );
        let names = |cs: &[continuum_engine::ConceptRef]| {
            cs.iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut text = format!(
            "{} concepts, {} links; modularity {:.2}.",
            r.graph.concepts, r.graph.links, r.modularity
        );
        for c in &r.clusters {
            text.push_str(&format!(
                "\nCluster {} ({}): {}",
                c.id,
                c.size,
                names(&c.concepts)
            ));
        }
        for b in &r.bridges {
            text.push_str(&format!(
                "\nBridge: {} ({:.3})",
                b.concept.name, b.betweenness
            ));
        }
        for h in &r.hypotheses {
            text.push_str(&format!(
                "\nHypothesis: {} ~ {} via {} ({:.3})",
                h.a.name,
                h.b.name,
                names(&h.via),
                h.score
            ));
        }
        for p in &r.similar {
            text.push_str(&format!(
                "\nClose in meaning, not linked: {} ~ {} ({:.2})",
                p.a.name, p.b.name, p.similarity
            ));
        }
        ok(text, json!(r))
    }

    #[tool(
        description = "Dream: a seeded, repeatable random walk along the concept graph (weak links followed more at higher temperature), with the memories that join each step."
    )]
    async fn dream(
        &self,
        Parameters(a): Parameters<DreamArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = try_tool!(self.caller_for(&ctx, UsageKind::Other).await);
        let req = continuum_engine::DreamRequest {
            from: a.from,
            seed: a.seed,
            steps: a.steps,
            temperature: a.temperature,
            scope: Default::default(),
        };
        let d = try_tool!(self.engine.dream(&caller, &req).await);
        let walk: Vec<String> = d
            .steps
            .iter()
            .map(|s| match s.by {
                "jump" => format!("(jump) {}", s.concept.name),
                _ if s.weak => format!("(weak) {}", s.concept.name),
                _ => s.concept.name.clone(),
            })
            .collect();
        let text = if walk.is_empty() {
            "No links to walk along yet.".to_string()
        } else {
            format!(
                "{} (seed {}; {} weak links, {} jumps)",
                walk.join(" → "),
                d.seed,
                d.weak_links,
                d.jumps
            )
        };
        ok(text, json!(d))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ContinuumMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("continuum", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Long-term memory across conversations. At the start of a turn call memory_recall with \
                 the user's message and use the context it returns; after answering, call \
                 memory_store with the user's message and your reply. Use memory_remember for \
                 standalone facts and memory_forget when the user asks you to forget something.",
            )
    }
}

/// Serves MCP over standard input and output until the client disconnects. Nothing but
/// protocol messages is written to standard output.
pub async fn serve_stdio(
    server: ContinuumMcp,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}
