//! Routes. Handlers translate HTTP to engine calls and back, nothing more.
//!
//! The endpoints used by clients of the original Python service keep its request and response
//! shapes (`/v1/health`, `/v1/recall`, `/v1/learn`, `/v1/turn`, `/v1/stats`, `/v1/entities`,
//! `/v1/messages`, `/v1/messages/search`, `POST /v1/memories`); the native ones expose the
//! engine's richer results.

use crate::error::ApiError;
use crate::openapi::{Api, Op, RequiredScope};
use crate::{AppState, ServerConfig};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::{Json, Router};
use continuum_core::keys::Scope;
use continuum_core::keys::{ApiKey, Caller};
use continuum_core::memory::{Metadata, SessionInfo, Turn};
use continuum_core::store::{ForgetSelector, MemoryFilter, Order, Page, PageRequest};
use continuum_core::{Error, Memory, MemoryId, SessionId, Source, TenantId, Timestamp};
use continuum_engine::{
    ConceptView, LearnOutcome, Recall, RecallRequest, RememberRequest, SearchHit, SearchRequest,
    Stats, TenantErased, TenantInfo,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;

type AppResult<T> = Result<T, ApiError>;
type St = State<Arc<AppState>>;

/// The most items a listing returns, and the largest offset of the offset-paged listings:
/// the limits every interface shares.
use continuum_core::limits::{MAX_OFFSET, MAX_RESULTS as MAX_PAGE};

/// Every REST endpoint: its route and its documentation, from one list (see [`crate::openapi`]).
pub(crate) fn api() -> (Router<Arc<AppState>>, Value) {
    use Method as M;
    use Scope::{Admin, Operator, Read, Write};
    let compat = |tag, summary| Op::new(tag, summary).compat();
    Api::new()
        .op(
            M::GET,
            "/v1/health",
            health,
            compat("service", "Liveness: the process answers").returns::<Health>(),
        )
        .op(
            M::GET,
            "/v1/ready",
            ready,
            Op::new(
                "service",
                "Readiness: the store opens and passes its checks",
            )
            .returns::<Status>(),
        )
        .op(
            M::GET,
            "/v1/openapi.json",
            openapi,
            Op::new("service", "This OpenAPI document"),
        )
        .op(
            M::POST,
            "/v1/recall",
            recall_compat,
            compat(
                "recall",
                "Recall the context for a message (original service's shape)",
            )
            .scope(Read)
            .body::<RecallCompat>()
            .returns::<RecallCompatOut>(),
        )
        .op(
            M::POST,
            "/v1/learn",
            learn_compat,
            compat("learn", "Learn a conversation turn")
                .scope(Write)
                .body::<LearnCompat>()
                .returns::<LearnCompatOut>(),
        )
        .op(
            M::POST,
            "/v1/turn",
            turn_compat,
            compat(
                "learn",
                "Recall for the user's message, then learn the turn",
            )
            .scope(Write)
            .body::<TurnCompat>()
            .returns::<TurnOut>(),
        )
        .op(
            M::GET,
            "/v1/stats",
            stats,
            compat("service", "Counts for the key's tenant")
                .scope(Read)
                .returns::<StatsOut>(),
        )
        .op(
            M::GET,
            "/v1/entities",
            entities,
            compat("concepts", "Concepts, most mentioned first, offset-paged")
                .scope(Read)
                .query::<EntitiesQuery>()
                .returns::<EntitiesOut>(),
        )
        .op(
            M::GET,
            "/v1/messages",
            messages,
            compat("memories", "Memories, newest first, offset-paged")
                .scope(Read)
                .query::<OffsetQuery>()
                .returns::<MessagesOut>(),
        )
        .op(
            M::POST,
            "/v1/messages/search",
            messages_search,
            compat("memories", "Full-text search")
                .scope(Read)
                .body::<SearchCompat>()
                .returns::<MessagesSearchOut>(),
        )
        .op(
            M::POST,
            "/v1/memories",
            memories_create,
            compat("memories", "Store a fact about an entity")
                .scope(Write)
                .body::<MemoryCompat>()
                .returns::<MemoryCreated>()
                .created(),
        )
        .op(
            M::GET,
            "/v1/memories",
            memories_list,
            Op::new("memories", "Memories, newest first, cursor-paged, filtered")
                .scope(Read)
                .query::<ListQuery>()
                .returns::<Page<Memory>>(),
        )
        .op(
            M::GET,
            "/v1/events",
            events_list,
            Op::new(
                "events",
                "The tenant's event log after a position, oldest first: every write, typed, with its payload",
            )
            .scope(Read)
            .query::<EventsQuery>()
            .returns::<EventsOut>(),
        )
        .op(
            M::GET,
            "/v1/memories/{id}",
            memories_get,
            Op::new("memories", "One memory")
                .scope(Read)
                .returns::<Memory>(),
        )
        .op(
            M::DELETE,
            "/v1/memories/{id}",
            memories_forget,
            Op::new(
                "memories",
                "Forget one memory, from the store and every index",
            )
            .scope(Write)
            .returns::<Forgotten>(),
        )
        .op(
            M::POST,
            "/v1/memories/{id}/supersede",
            memories_supersede,
            Op::new(
                "memories",
                "Store a new version; the old one is kept, marked superseded",
            )
            .scope(Write)
            .body::<SupersedeBody>()
            .returns::<Memory>(),
        )
        .op(
            M::POST,
            "/v1/search",
            search,
            Op::new("memories", "Full-text search with filters, offset-paged")
                .scope(Read)
                .body::<SearchBody>()
                .returns::<SearchOut>(),
        )
        .op(
            M::POST,
            "/v1/recall/native",
            recall_native,
            Op::new(
                "recall",
                "Recall: the context block and the ranked, explained memories",
            )
            .scope(Read)
            .body::<RecallBody>()
            .returns::<Recall>(),
        )
        .op(
            M::GET,
            "/v1/sessions",
            sessions,
            Op::new("sessions", "Conversations by recent activity")
                .scope(Read)
                .query::<OffsetQuery>()
                .returns::<SessionsOut>(),
        )
        .op(
            M::DELETE,
            "/v1/sessions/{id}",
            sessions_forget,
            Op::new("sessions", "Forget a conversation's memories")
                .scope(Write)
                .returns::<Forgotten>(),
        )
        .op(
            M::GET,
            "/v1/concepts/{name}",
            concept,
            Op::new("concepts", "A concept and its strongest links")
                .scope(Read)
                .query::<OffsetQuery>()
                .returns::<ConceptView>(),
        )
        .op(
            M::GET,
            "/v1/graph",
            graph,
            Op::new("concepts", "A concept's neighbourhood as nodes and edges")
                .scope(Read)
                .query::<GraphQuery>()
                .returns::<GraphOut>(),
        )
        .op(
            M::GET,
            "/v1/keys",
            keys_list,
            Op::new("keys", "The tenant's API keys (never their secrets)")
                .scope(Admin)
                .returns::<KeysOut>(),
        )
        .op(
            M::POST,
            "/v1/keys",
            keys_create,
            Op::new(
                "keys",
                "Create an API key for the tenant; the secret is in this response only",
            )
            .scope(Admin)
            .body::<KeyCreate>()
            .returns::<KeyCreated>()
            .created(),
        )
        .op(
            M::DELETE,
            "/v1/keys/{prefix}",
            keys_revoke,
            Op::new("keys", "Revoke one of the tenant's keys")
                .scope(Admin)
                .returns::<Revoked>(),
        )
        .op(
            M::GET,
            "/v1/tenants",
            tenants_list,
            Op::new(
                "tenants",
                "Every tenant with its memory and key counts (never its content)",
            )
            .scope(Operator)
            .returns::<TenantsOut>(),
        )
        .op(
            M::POST,
            "/v1/tenants",
            tenants_create,
            Op::new(
                "tenants",
                "Create a tenant and its first admin key; the secret is in this response only",
            )
            .scope(Operator)
            .body::<TenantCreate>()
            .returns::<TenantCreated>()
            .created(),
        )
        .op(
            M::DELETE,
            "/v1/tenants/{id}",
            tenants_erase,
            Op::new(
                "tenants",
                "Erase a tenant: delete everything it stored, revoke its keys",
            )
            .scope(Operator)
            .returns::<TenantErased>(),
        )
        .finish()
}

pub(crate) fn router(
    routes: Router<Arc<AppState>>,
    state: Arc<AppState>,
    config: &ServerConfig,
) -> Router {
    let api = routes
        .fallback(not_found)
        .with_state(state.clone())
        .merge(mcp_router(state))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ));
    match cors(config) {
        Some(layer) => api.layer(layer),
        None => api,
    }
}

/// MCP over streamable HTTP at `/mcp`: the same tools as `continuum mcp`, each call in the
/// tenant of the request's API key (write scope: the tools store and forget).
fn mcp_router(state: Arc<AppState>) -> Router {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    let engine = state.engine.clone();
    let service = StreamableHttpService::new(
        move || Ok(continuum_mcp::ContinuumMcp::per_request(engine.clone())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(state, mcp_auth))
}

async fn mcp_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (mut parts, body) = request.into_parts();
    let auth = match Auth::from_request_parts(&mut parts, &state).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let tenant = match auth.require(Scope::Write) {
        Ok(t) => t.clone(),
        Err(e) => return e.into_response(),
    };
    parts.extensions.insert(continuum_mcp::McpTenant(tenant));
    next.run(Request::from_parts(parts, body)).await
}

fn cors(config: &ServerConfig) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origins = if config.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers(Any),
    )
}

async fn not_found() -> ApiError {
    ApiError::Http {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: "no such endpoint".into(),
    }
}

/// The caller, from its API key (`X-API-Key`, or `Authorization: Bearer`). The tenant comes
/// from the key and from nowhere else.
pub(crate) struct Auth {
    caller: Caller,
}

impl Auth {
    fn require(&self, needed: Scope) -> AppResult<&TenantId> {
        Ok(self.caller.require(needed)?)
    }
}

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> AppResult<Self> {
        let presented = parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| {
                parts
                    .headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::to_string)
            })
            .ok_or_else(|| Error::Unauthorized("missing API key (send it in X-API-Key)".into()))?;
        let key = state.engine.authenticate(&presented).await?;
        let c = &state.config;
        state
            .limiter
            .take(&key.prefix, c.rate_per_second, c.rate_burst)
            .map_err(ApiError::RateLimited)?;
        let caller = Caller::of_key(&key);
        // The route's declared scope, checked before anything else of the request is read.
        if let Some(RequiredScope(needed)) = parts.extensions.get::<RequiredScope>() {
            caller.require(*needed)?;
        }
        Ok(Auth { caller })
    }
}

/// A JSON body whose rejections keep the error envelope (413 too large, 415 not JSON, 422
/// wrong shape, 400 malformed).
pub(crate) struct Body<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> AppResult<Self> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match &rejection {
                    JsonRejection::JsonDataError(_) => "invalid_input",
                    JsonRejection::JsonSyntaxError(_) => "invalid_json",
                    JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
                    _ if status == StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                    _ => "invalid_input",
                };
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "request body is over the size limit".to_string()
                } else {
                    rejection.body_text()
                };
                Err(ApiError::Http {
                    status,
                    code,
                    message,
                })
            }
        }
    }
}

fn page(limit: Option<usize>, default: usize) -> AppResult<usize> {
    let l = limit.unwrap_or(default);
    if l == 0 || l > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    Ok(l)
}

#[derive(Deserialize, JsonSchema)]
struct EventsQuery {
    /// Events after this position (0, the default: from the start). A position past the end
    /// gives an empty page.
    since: Option<String>,
    /// At most this many events (1 to 1000, default 100).
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
struct EventsOut {
    events: Vec<continuum_core::EventRecord>,
    /// The position to ask from next (`?since=`): the last event's, or the one asked from.
    next_since: u64,
}

async fn events_list(
    State(s): St,
    auth: Auth,
    Query(q): Query<EventsQuery>,
) -> AppResult<Json<EventsOut>> {
    let since = match q.since.as_deref() {
        Some(text) => continuum_core::event::parse_position(text)?,
        None => 0,
    };
    let events = s
        .engine
        .events_as(&auth.caller, since, q.limit.unwrap_or(100))
        .await?;
    let next_since = events.last().map_or(since, |e| e.seq);
    Ok(Json(EventsOut { events, next_since }))
}

fn offset(o: Option<usize>) -> AppResult<usize> {
    let o = o.unwrap_or(0);
    if o > MAX_OFFSET {
        return Err(ApiError::bad_request(format!(
            "offset may be at most {MAX_OFFSET}"
        )));
    }
    Ok(o)
}

fn sources(s: &Option<String>) -> AppResult<Vec<Source>> {
    Ok(s.as_deref()
        .map(str::parse)
        .transpose()?
        .into_iter()
        .collect())
}

fn session(s: &Option<String>) -> AppResult<Option<SessionId>> {
    Ok(s.clone().map(SessionId::new).transpose()?)
}

// ---- health --------------------------------------------------------------------------

#[derive(Serialize, JsonSchema)]
struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        service: "continuum",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Serialize, JsonSchema)]
struct Status {
    status: &'static str,
}

async fn ready(State(s): St) -> AppResult<Json<Status>> {
    let problems = s.engine.check().await?;
    if problems.is_empty() {
        Ok(Json(Status { status: "ready" }))
    } else {
        Err(Error::Unavailable(problems.join("; ")).into())
    }
}

/// The OpenAPI document of this API, built once.
async fn openapi(State(s): St) -> Json<Value> {
    Json(s.openapi.clone())
}

// ---- compatibility endpoints ---------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
struct RecallCompat {
    /// The new message to find relevant memories for.
    message: String,
    /// How many memories to return (1 to 100; default 10).
    #[serde(default)]
    max_concepts: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
struct RecallCompatOut {
    /// The `[MEMORY CONTEXT]` block for the prompt.
    context: String,
    concepts_found: usize,
    relationships_found: usize,
    query_time_ms: f64,
    tenant_id: TenantId,
}

fn recall_compat_body(r: Recall, started: Instant, tenant: &TenantId) -> RecallCompatOut {
    RecallCompatOut {
        context: r.context,
        concepts_found: r.concepts.len(),
        relationships_found: r.links.len(),
        query_time_ms: started.elapsed().as_secs_f64() * 1000.0,
        tenant_id: tenant.clone(),
    }
}

async fn recall_compat(
    State(s): St,
    auth: Auth,
    Body(b): Body<RecallCompat>,
) -> AppResult<Json<RecallCompatOut>> {
    let tenant = auth.require(Scope::Read)?;
    let started = Instant::now();
    let req = RecallRequest {
        query: b.message,
        limit: b.max_concepts.map(|n| n.clamp(1, MAX_PAGE)),
        ..Default::default()
    };
    // The original shape shows the context block only: the memories are not listed.
    let r = s.engine.recall_context(tenant, &req).await?;
    Ok(Json(recall_compat_body(r, started, tenant)))
}

#[derive(Deserialize, JsonSchema)]
struct LearnCompat {
    user_message: String,
    ai_response: String,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    session_id: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct LearnCompatOut {
    concepts_extracted: u64,
    decisions_detected: u64,
    links_created: u64,
    compounds_found: u64,
    tenant_id: TenantId,
}

fn learn_compat_body(o: &LearnOutcome, tenant: &TenantId) -> LearnCompatOut {
    LearnCompatOut {
        concepts_extracted: o.concepts_extracted,
        decisions_detected: o.decisions_detected,
        links_created: o.links_created,
        compounds_found: o.compounds_found,
        tenant_id: tenant.clone(),
    }
}

fn turn_of(b: LearnCompat) -> AppResult<Turn> {
    Ok(Turn {
        user_message: b.user_message,
        ai_response: b.ai_response,
        thinking: b.thinking,
        session_id: session(&b.session_id)?,
        metadata: b.metadata,
        timestamp: None,
    })
}

async fn learn_compat(
    State(s): St,
    auth: Auth,
    Body(b): Body<LearnCompat>,
) -> AppResult<Json<LearnCompatOut>> {
    let tenant = auth.require(Scope::Write)?;
    let out = s.engine.learn(tenant, turn_of(b)?).await?;
    Ok(Json(learn_compat_body(&out, tenant)))
}

#[derive(Deserialize, JsonSchema)]
struct TurnCompat {
    #[serde(flatten)]
    learn: LearnCompat,
    #[serde(default)]
    max_concepts: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
struct TurnOut {
    recall: RecallCompatOut,
    learn: LearnCompatOut,
}

/// Recall for the user's message, then learn the turn: one call per exchange.
async fn turn_compat(
    State(s): St,
    auth: Auth,
    Body(b): Body<TurnCompat>,
) -> AppResult<Json<TurnOut>> {
    let tenant = auth.require(Scope::Write)?;
    let started = Instant::now();
    let req = RecallRequest {
        query: b.learn.user_message.clone(),
        limit: b.max_concepts.map(|n| n.clamp(1, MAX_PAGE)),
        ..Default::default()
    };
    let r = s.engine.recall_context(tenant, &req).await?;
    let recall = recall_compat_body(r, started, tenant);
    let out = s.engine.learn(tenant, turn_of(b.learn)?).await?;
    Ok(Json(TurnOut {
        recall,
        learn: learn_compat_body(&out, tenant),
    }))
}

#[derive(Serialize, JsonSchema)]
struct StatsOut {
    #[serde(flatten)]
    stats: Stats,
    tenant_id: TenantId,
}

async fn stats(State(s): St, auth: Auth) -> AppResult<Json<StatsOut>> {
    let tenant = auth.require(Scope::Read)?;
    let stats = s.engine.stats(tenant).await?;
    Ok(Json(StatsOut {
        stats,
        tenant_id: tenant.clone(),
    }))
}

#[derive(Deserialize, JsonSchema)]
struct EntitiesQuery {
    limit: Option<usize>,
    offset: Option<usize>,
    entity_type: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct Entity {
    name: String,
    key: String,
    entity_type: String,
    mentions: u64,
    first_seen: Timestamp,
    last_seen: Timestamp,
}

#[derive(Serialize, JsonSchema)]
struct EntitiesOut {
    entities: Vec<Entity>,
    total: usize,
    limit: usize,
    offset: usize,
    tenant_id: TenantId,
}

async fn entities(
    State(s): St,
    auth: Auth,
    Query(q): Query<EntitiesQuery>,
) -> AppResult<Json<EntitiesOut>> {
    let tenant = auth.require(Scope::Read)?;
    let (limit, offset) = (page(q.limit, 50)?, offset(q.offset)?);
    let mut list = s
        .engine
        .list_concepts(tenant, continuum_core::store::MAX_PAGE, 0)
        .await?;
    if let Some(t) = &q.entity_type {
        list.retain(|c| c.kind.eq_ignore_ascii_case(t));
    }
    let total = list.len();
    let entities = list
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|c| Entity {
            name: c.name,
            key: c.key,
            entity_type: c.kind,
            mentions: c.mentions,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
        })
        .collect();
    Ok(Json(EntitiesOut {
        entities,
        total,
        limit,
        offset,
        tenant_id: tenant.clone(),
    }))
}

#[derive(Serialize, JsonSchema)]
struct MessagesOut {
    messages: Vec<Memory>,
    limit: usize,
    offset: usize,
    tenant_id: TenantId,
}

async fn messages(
    State(s): St,
    auth: Auth,
    Query(q): Query<OffsetQuery>,
) -> AppResult<Json<MessagesOut>> {
    let tenant = auth.require(Scope::Read)?;
    let (limit, offset) = (page(q.limit, 50)?, offset(q.offset)?);
    // Offset paging over the newest-first listing (bounded by MAX_OFFSET).
    let mut items = Vec::new();
    let mut req = PageRequest {
        limit: continuum_core::store::MAX_PAGE,
        cursor: None,
        order: Order::NewestFirst,
    };
    while items.len() < offset + limit {
        let p = s
            .engine
            .list(tenant, &MemoryFilter::default(), &req)
            .await?;
        items.extend(p.items);
        match p.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
    }
    let messages = items.into_iter().skip(offset).take(limit).collect();
    Ok(Json(MessagesOut {
        messages,
        limit,
        offset,
        tenant_id: tenant.clone(),
    }))
}

#[derive(Deserialize, JsonSchema)]
struct SearchCompat {
    query: String,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
struct MessagesSearchOut {
    results: Vec<SearchHit>,
    count: usize,
    tenant_id: TenantId,
}

async fn messages_search(
    State(s): St,
    auth: Auth,
    Body(b): Body<SearchCompat>,
) -> AppResult<Json<MessagesSearchOut>> {
    let tenant = auth.require(Scope::Read)?;
    let req = SearchRequest {
        query: b.query,
        limit: Some(page(b.limit, 10)?),
        ..Default::default()
    };
    let results = s.engine.search(tenant, &req).await?;
    Ok(Json(MessagesSearchOut {
        count: results.len(),
        results,
        tenant_id: tenant.clone(),
    }))
}

#[derive(Deserialize, JsonSchema)]
struct MemoryCompat {
    entity: String,
    content: String,
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Serialize, JsonSchema)]
struct MemoryCreated {
    success: bool,
    id: MemoryId,
    entity: String,
    content: String,
    created_at: Timestamp,
    tenant_id: TenantId,
}

/// The original service's "store a memory about an entity".
async fn memories_create(
    State(s): St,
    auth: Auth,
    Body(b): Body<MemoryCompat>,
) -> AppResult<(StatusCode, Json<MemoryCreated>)> {
    let tenant = auth.require(Scope::Write)?;
    if b.entity.trim().is_empty() {
        return Err(ApiError::bad_request("entity is empty"));
    }
    let mut metadata = b.metadata.unwrap_or_default();
    metadata.insert("entity".into(), Value::String(b.entity.trim().to_string()));
    let mut req = RememberRequest::new(b.content, Source::Fact);
    req.metadata = metadata;
    let m = s.engine.remember(tenant, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(MemoryCreated {
            success: true,
            id: m.id,
            entity: b.entity.trim().to_string(),
            content: m.content,
            created_at: m.created_at,
            tenant_id: tenant.clone(),
        }),
    ))
}

// ---- native endpoints ----------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    source: Option<String>,
    session: Option<String>,
}

async fn memories_list(
    State(s): St,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> AppResult<Json<Page<Memory>>> {
    let tenant = auth.require(Scope::Read)?;
    let filter = MemoryFilter {
        sources: sources(&q.source)?,
        session: session(&q.session)?,
        ..Default::default()
    };
    let req = PageRequest {
        limit: page(q.limit, 20)?,
        cursor: q.cursor,
        order: Order::NewestFirst,
    };
    Ok(Json(s.engine.list(tenant, &filter, &req).await?))
}

fn memory_id(id: &str) -> AppResult<MemoryId> {
    Ok(id.parse()?)
}

async fn memories_get(State(s): St, auth: Auth, Path(id): Path<String>) -> AppResult<Json<Memory>> {
    let tenant = auth.require(Scope::Read)?;
    Ok(Json(s.engine.get(tenant, memory_id(&id)?).await?))
}

#[derive(Serialize, JsonSchema)]
struct Forgotten {
    /// Memories deleted.
    forgotten: u64,
}

async fn memories_forget(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Json<Forgotten>> {
    let tenant = auth.require(Scope::Write)?;
    let n = s
        .engine
        .forget(tenant, &ForgetSelector::Ids(vec![memory_id(&id)?]))
        .await?;
    Ok(Json(Forgotten { forgotten: n }))
}

#[derive(Deserialize, JsonSchema)]
struct SupersedeBody {
    content: String,
    #[serde(default)]
    source: Option<String>,
}

async fn memories_supersede(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    Body(b): Body<SupersedeBody>,
) -> AppResult<Json<Memory>> {
    let tenant = auth.require(Scope::Write)?;
    let source = sources(&b.source)?.pop().unwrap_or(Source::Fact);
    let m = s
        .engine
        .supersede(
            tenant,
            memory_id(&id)?,
            RememberRequest::new(b.content, source),
        )
        .await?;
    Ok(Json(m))
}

#[derive(Deserialize, JsonSchema)]
struct SearchBody {
    query: String,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct SearchOut {
    results: Vec<SearchHit>,
}

async fn search(State(s): St, auth: Auth, Body(b): Body<SearchBody>) -> AppResult<Json<SearchOut>> {
    let tenant = auth.require(Scope::Read)?;
    let req = SearchRequest {
        query: b.query,
        filter: MemoryFilter {
            sources: sources(&b.source)?,
            session: session(&b.session)?,
            ..Default::default()
        },
        limit: Some(page(b.limit, 10)?),
        offset: offset(b.offset)?,
    };
    Ok(Json(SearchOut {
        results: s.engine.search(tenant, &req).await?,
    }))
}

#[derive(Deserialize, JsonSchema)]
struct RecallBody {
    query: String,
    #[serde(default)]
    budget_tokens: Option<usize>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

/// The engine's full recall: context, ranked memories with per-signal scores, concepts, links.
async fn recall_native(
    State(s): St,
    auth: Auth,
    Body(b): Body<RecallBody>,
) -> AppResult<Json<Recall>> {
    let tenant = auth.require(Scope::Read)?;
    let req = RecallRequest {
        query: b.query,
        budget_tokens: b.budget_tokens,
        limit: b.limit,
        filter: MemoryFilter {
            sources: sources(&b.source)?,
            session: session(&b.session)?,
            ..Default::default()
        },
    };
    Ok(Json(s.engine.recall(tenant, &req).await?))
}

#[derive(Deserialize, JsonSchema)]
struct OffsetQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
struct SessionsOut {
    sessions: Vec<SessionInfo>,
}

async fn sessions(
    State(s): St,
    auth: Auth,
    Query(q): Query<OffsetQuery>,
) -> AppResult<Json<SessionsOut>> {
    let tenant = auth.require(Scope::Read)?;
    let list = s
        .engine
        .sessions(tenant, page(q.limit, 20)?, offset(q.offset)?)
        .await?;
    Ok(Json(SessionsOut { sessions: list }))
}

async fn sessions_forget(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Json<Forgotten>> {
    let tenant = auth.require(Scope::Write)?;
    let n = s
        .engine
        .forget(tenant, &ForgetSelector::Session(SessionId::new(id)?))
        .await?;
    Ok(Json(Forgotten { forgotten: n }))
}

async fn concept(
    State(s): St,
    auth: Auth,
    Path(name): Path<String>,
    Query(q): Query<OffsetQuery>,
) -> AppResult<Json<ConceptView>> {
    let tenant = auth.require(Scope::Read)?;
    Ok(Json(
        s.engine.concept(tenant, &name, page(q.limit, 20)?).await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
struct GraphQuery {
    concept: String,
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
struct GraphNode {
    key: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mentions: Option<u64>,
}

#[derive(Serialize, JsonSchema)]
struct GraphEdge {
    a: String,
    b: String,
    strength: f64,
    count: u64,
}

#[derive(Serialize, JsonSchema)]
struct GraphOut {
    nodes: Vec<GraphNode>,
    edges: Vec<GraphEdge>,
}

async fn graph(State(s): St, auth: Auth, Query(q): Query<GraphQuery>) -> AppResult<Json<GraphOut>> {
    let tenant = auth.require(Scope::Read)?;
    let v = s
        .engine
        .concept(tenant, &q.concept, page(q.limit, 20)?)
        .await?;
    let nodes = std::iter::once(GraphNode {
        key: v.concept.key.clone(),
        name: v.concept.name.clone(),
        mentions: Some(v.concept.mentions),
    })
    .chain(v.neighbours.iter().map(|n| GraphNode {
        key: n.key.clone(),
        name: n.name.clone(),
        mentions: None,
    }))
    .collect();
    let edges = v
        .neighbours
        .iter()
        .map(|n| GraphEdge {
            a: v.concept.key.clone(),
            b: n.key.clone(),
            strength: n.strength,
            count: n.count,
        })
        .collect();
    Ok(Json(GraphOut { nodes, edges }))
}

// ---- keys (admin scope, own tenant) --------------------------------------------------

#[derive(Serialize, JsonSchema)]
struct KeysOut {
    keys: Vec<ApiKey>,
}

async fn keys_list(State(s): St, auth: Auth) -> AppResult<Json<KeysOut>> {
    Ok(Json(KeysOut {
        keys: s.engine.list_keys_as(&auth.caller).await?,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct KeyCreate {
    scope: String,
    #[serde(default)]
    expires_in_days: Option<i64>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct KeyCreated {
    #[serde(flatten)]
    key: ApiKey,
    /// The secret: shown here once, stored only as a hash.
    #[serde(rename = "key")]
    secret: String,
}

async fn keys_create(
    State(s): St,
    auth: Auth,
    Body(b): Body<KeyCreate>,
) -> AppResult<(StatusCode, Json<KeyCreated>)> {
    let scope: Scope = b.scope.parse()?;
    let valid = b.expires_in_days.map(|d| d.saturating_mul(86_400_000));
    let (secret, key) = s
        .engine
        .create_key_as(&auth.caller, scope, valid, b.name)
        .await?;
    Ok((StatusCode::CREATED, Json(KeyCreated { key, secret })))
}

#[derive(Serialize, JsonSchema)]
struct Revoked {
    /// The revoked key's prefix.
    revoked: String,
}

async fn keys_revoke(
    State(s): St,
    auth: Auth,
    Path(prefix): Path<String>,
) -> AppResult<Json<Revoked>> {
    s.engine.revoke_key_as(&auth.caller, &prefix).await?;
    Ok(Json(Revoked { revoked: prefix }))
}

// ---- tenants (operator scope) --------------------------------------------------------

#[derive(Serialize, JsonSchema)]
struct TenantsOut {
    tenants: Vec<TenantInfo>,
}

async fn tenants_list(State(s): St, auth: Auth) -> AppResult<Json<TenantsOut>> {
    Ok(Json(TenantsOut {
        tenants: s.engine.tenants_as(&auth.caller).await?,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TenantCreate {
    /// The new tenant's id: 1 to 64 characters of `A-Z a-z 0-9 _ . -`.
    tenant: String,
    /// A name for its first admin key.
    #[serde(default)]
    name: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct TenantCreated {
    tenant: TenantId,
    /// The first admin key's record.
    admin_key: ApiKey,
    /// Its secret: shown here once, stored only as a hash.
    key: String,
}

async fn tenants_create(
    State(s): St,
    auth: Auth,
    Body(b): Body<TenantCreate>,
) -> AppResult<(StatusCode, Json<TenantCreated>)> {
    let tenant = TenantId::new(b.tenant)?;
    let (key, admin_key) = s
        .engine
        .create_tenant_as(&auth.caller, &tenant, b.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TenantCreated {
            tenant,
            admin_key,
            key,
        }),
    ))
}

async fn tenants_erase(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Json<TenantErased>> {
    let tenant = TenantId::new(id)?;
    Ok(Json(s.engine.erase_tenant_as(&auth.caller, &tenant).await?))
}
