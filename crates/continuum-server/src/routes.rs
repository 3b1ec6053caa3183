//! Routes. Handlers translate HTTP to engine calls and back, nothing more.
//!
//! The endpoints used by clients of the original Python service keep its request and response
//! shapes (`/v1/health`, `/v1/recall`, `/v1/learn`, `/v1/turn`, `/v1/stats`, `/v1/entities`,
//! `/v1/messages`, `/v1/messages/search`, `POST /v1/memories`); the native ones expose the
//! engine's richer results.

use crate::error::ApiError;
use crate::{AppState, ServerConfig};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use continuum_core::keys::Scope;
use continuum_core::memory::{Metadata, Turn};
use continuum_core::store::{ForgetSelector, MemoryFilter, Order, PageRequest};
use continuum_core::{Error, MemoryId, SessionId, Source, TenantId};
use continuum_engine::{LearnOutcome, Recall, RecallRequest, RememberRequest, SearchRequest};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;

type AppResult<T> = Result<T, ApiError>;
type St = State<Arc<AppState>>;

/// The most items a listing returns.
const MAX_PAGE: usize = 100;
/// The largest offset the offset-paged compatibility listings accept.
const MAX_OFFSET: usize = 10_000;

pub(crate) fn router(state: Arc<AppState>, config: &ServerConfig) -> Router {
    let api = Router::new()
        .route("/v1/health", get(health))
        .route("/v1/ready", get(ready))
        .route("/v1/recall", post(recall_compat))
        .route("/v1/learn", post(learn_compat))
        .route("/v1/turn", post(turn_compat))
        .route("/v1/stats", get(stats))
        .route("/v1/entities", get(entities))
        .route("/v1/messages", get(messages))
        .route("/v1/messages/search", post(messages_search))
        .route("/v1/memories", post(memories_create).get(memories_list))
        .route(
            "/v1/memories/{id}",
            get(memories_get).delete(memories_forget),
        )
        .route("/v1/memories/{id}/supersede", post(memories_supersede))
        .route("/v1/search", post(search))
        .route("/v1/recall/native", post(recall_native))
        .route("/v1/sessions", get(sessions))
        .route("/v1/sessions/{id}", delete(sessions_forget))
        .route("/v1/concepts/{name}", get(concept))
        .route("/v1/graph", get(graph))
        .route("/v1/keys", get(keys_list).post(keys_create))
        .route("/v1/keys/{prefix}", delete(keys_revoke))
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
    tenant: TenantId,
    scope: Scope,
}

impl Auth {
    fn require(&self, needed: Scope) -> AppResult<&TenantId> {
        if self.scope.allows(needed) {
            Ok(&self.tenant)
        } else {
            Err(Error::Forbidden(format!(
                "this key has {} scope; this needs {needed}",
                self.scope
            ))
            .into())
        }
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
        Ok(Auth {
            tenant: key.tenant,
            scope: key.scope,
        })
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

async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "service": "continuum", "version": env!("CARGO_PKG_VERSION")}))
}

async fn ready(State(s): St) -> AppResult<Json<Value>> {
    let problems = s.engine.check().await?;
    if problems.is_empty() {
        Ok(Json(json!({"status": "ready"})))
    } else {
        Err(Error::Unavailable(problems.join("; ")).into())
    }
}

// ---- compatibility endpoints ---------------------------------------------------------

#[derive(Deserialize)]
struct RecallCompat {
    message: String,
    #[serde(default)]
    max_concepts: Option<usize>,
}

fn recall_compat_body(r: &Recall, started: Instant, tenant: &TenantId) -> Value {
    json!({
        "context": r.context,
        "concepts_found": r.concepts.len(),
        "relationships_found": r.links.len(),
        "query_time_ms": started.elapsed().as_secs_f64() * 1000.0,
        "tenant_id": tenant,
    })
}

async fn recall_compat(
    State(s): St,
    auth: Auth,
    Body(b): Body<RecallCompat>,
) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Read)?;
    let started = Instant::now();
    let req = RecallRequest {
        query: b.message,
        limit: b.max_concepts.map(|n| n.clamp(1, MAX_PAGE)),
        ..Default::default()
    };
    let r = s.engine.recall(tenant, &req).await?;
    Ok(Json(recall_compat_body(&r, started, tenant)))
}

#[derive(Deserialize)]
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

fn learn_compat_body(o: &LearnOutcome, tenant: &TenantId) -> Value {
    json!({
        "concepts_extracted": o.concepts_extracted,
        "decisions_detected": o.decisions_detected,
        "links_created": o.links_created,
        "compounds_found": o.compounds_found,
        "tenant_id": tenant,
    })
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
) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Write)?;
    let out = s.engine.learn(tenant, turn_of(b)?).await?;
    Ok(Json(learn_compat_body(&out, tenant)))
}

#[derive(Deserialize)]
struct TurnCompat {
    #[serde(flatten)]
    learn: LearnCompat,
    #[serde(default)]
    max_concepts: Option<usize>,
}

/// Recall for the user's message, then learn the turn: one call per exchange.
async fn turn_compat(
    State(s): St,
    auth: Auth,
    Body(b): Body<TurnCompat>,
) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Write)?;
    let started = Instant::now();
    let req = RecallRequest {
        query: b.learn.user_message.clone(),
        limit: b.max_concepts.map(|n| n.clamp(1, MAX_PAGE)),
        ..Default::default()
    };
    let r = s.engine.recall(tenant, &req).await?;
    let recall = recall_compat_body(&r, started, tenant);
    let out = s.engine.learn(tenant, turn_of(b.learn)?).await?;
    Ok(Json(
        json!({"recall": recall, "learn": learn_compat_body(&out, tenant)}),
    ))
}

async fn stats(State(s): St, auth: Auth) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Read)?;
    let st = s.engine.stats(tenant).await?;
    let mut v = json!(st);
    v["tenant_id"] = json!(tenant);
    Ok(Json(v))
}

#[derive(Deserialize)]
struct EntitiesQuery {
    limit: Option<usize>,
    offset: Option<usize>,
    entity_type: Option<String>,
}

async fn entities(
    State(s): St,
    auth: Auth,
    Query(q): Query<EntitiesQuery>,
) -> AppResult<Json<Value>> {
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
    let entities: Vec<Value> = list
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|c| json!({"name": c.name, "key": c.key, "entity_type": c.kind, "mentions": c.mentions, "first_seen": c.first_seen, "last_seen": c.last_seen}))
        .collect();
    Ok(Json(
        json!({"entities": entities, "total": total, "limit": limit, "offset": offset, "tenant_id": tenant}),
    ))
}

#[derive(Deserialize)]
struct MessagesQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn messages(
    State(s): St,
    auth: Auth,
    Query(q): Query<MessagesQuery>,
) -> AppResult<Json<Value>> {
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
    let page: Vec<_> = items.into_iter().skip(offset).take(limit).collect();
    Ok(Json(
        json!({"messages": page, "limit": limit, "offset": offset, "tenant_id": tenant}),
    ))
}

#[derive(Deserialize)]
struct SearchCompat {
    query: String,
    #[serde(default)]
    limit: Option<usize>,
}

async fn messages_search(
    State(s): St,
    auth: Auth,
    Body(b): Body<SearchCompat>,
) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Read)?;
    let req = SearchRequest {
        query: b.query,
        limit: Some(page(b.limit, 10)?),
        ..Default::default()
    };
    let hits = s.engine.search(tenant, &req).await?;
    Ok(Json(
        json!({"results": hits, "count": hits.len(), "tenant_id": tenant}),
    ))
}

#[derive(Deserialize)]
struct MemoryCompat {
    entity: String,
    content: String,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// The original service's "store a memory about an entity".
async fn memories_create(
    State(s): St,
    auth: Auth,
    Body(b): Body<MemoryCompat>,
) -> AppResult<(StatusCode, Json<Value>)> {
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
        Json(
            json!({"success": true, "id": m.id, "entity": b.entity.trim(), "content": m.content, "created_at": m.created_at, "tenant_id": tenant}),
        ),
    ))
}

// ---- native endpoints ----------------------------------------------------------------

#[derive(Deserialize)]
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
) -> AppResult<Json<Value>> {
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
    Ok(Json(json!(s.engine.list(tenant, &filter, &req).await?)))
}

fn memory_id(id: &str) -> AppResult<MemoryId> {
    Ok(id.parse()?)
}

async fn memories_get(State(s): St, auth: Auth, Path(id): Path<String>) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Read)?;
    Ok(Json(json!(s.engine.get(tenant, memory_id(&id)?).await?)))
}

async fn memories_forget(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Write)?;
    let n = s
        .engine
        .forget(tenant, &ForgetSelector::Ids(vec![memory_id(&id)?]))
        .await?;
    Ok(Json(json!({"forgotten": n})))
}

#[derive(Deserialize)]
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
) -> AppResult<Json<Value>> {
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
    Ok(Json(json!(m)))
}

#[derive(Deserialize)]
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

async fn search(State(s): St, auth: Auth, Body(b): Body<SearchBody>) -> AppResult<Json<Value>> {
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
    Ok(Json(
        json!({"results": s.engine.search(tenant, &req).await?}),
    ))
}

#[derive(Deserialize)]
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
) -> AppResult<Json<Value>> {
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
    Ok(Json(json!(s.engine.recall(tenant, &req).await?)))
}

#[derive(Deserialize)]
struct OffsetQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn sessions(
    State(s): St,
    auth: Auth,
    Query(q): Query<OffsetQuery>,
) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Read)?;
    let list = s
        .engine
        .sessions(tenant, page(q.limit, 20)?, offset(q.offset)?)
        .await?;
    Ok(Json(json!({"sessions": list})))
}

async fn sessions_forget(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Write)?;
    let n = s
        .engine
        .forget(tenant, &ForgetSelector::Session(SessionId::new(id)?))
        .await?;
    Ok(Json(json!({"forgotten": n})))
}

async fn concept(
    State(s): St,
    auth: Auth,
    Path(name): Path<String>,
    Query(q): Query<OffsetQuery>,
) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Read)?;
    Ok(Json(json!(
        s.engine.concept(tenant, &name, page(q.limit, 20)?).await?
    )))
}

#[derive(Deserialize)]
struct GraphQuery {
    concept: String,
    limit: Option<usize>,
}

async fn graph(State(s): St, auth: Auth, Query(q): Query<GraphQuery>) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Read)?;
    let v = s
        .engine
        .concept(tenant, &q.concept, page(q.limit, 20)?)
        .await?;
    let nodes: Vec<Value> = std::iter::once(
        json!({"key": v.concept.key, "name": v.concept.name, "mentions": v.concept.mentions}),
    )
    .chain(
        v.neighbours
            .iter()
            .map(|n| json!({"key": n.key, "name": n.name})),
    )
    .collect();
    let edges: Vec<Value> = v
        .neighbours
        .iter()
        .map(|n| json!({"a": v.concept.key, "b": n.key, "strength": n.strength, "count": n.count}))
        .collect();
    Ok(Json(json!({"nodes": nodes, "edges": edges})))
}

// ---- keys (admin scope, own tenant) --------------------------------------------------

async fn keys_list(State(s): St, auth: Auth) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Admin)?;
    Ok(Json(
        json!({"keys": s.engine.list_keys(Some(tenant)).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyCreate {
    scope: String,
    #[serde(default)]
    expires_in_days: Option<i64>,
    #[serde(default)]
    name: Option<String>,
}

async fn keys_create(
    State(s): St,
    auth: Auth,
    Body(b): Body<KeyCreate>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let tenant = auth.require(Scope::Admin)?.clone();
    let scope: Scope = b.scope.parse()?;
    let valid = b.expires_in_days.map(|d| d.saturating_mul(86_400_000));
    let (secret, key) = s.engine.create_key(&tenant, scope, valid, b.name).await?;
    let mut v = json!(key);
    v["key"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)))
}

async fn keys_revoke(
    State(s): St,
    auth: Auth,
    Path(prefix): Path<String>,
) -> AppResult<Json<Value>> {
    let tenant = auth.require(Scope::Admin)?;
    // Only the caller's own tenant's keys: another tenant's prefix is "not found".
    let owned = s
        .engine
        .list_keys(Some(tenant))
        .await?
        .into_iter()
        .any(|k| k.prefix == prefix);
    if !owned {
        return Err(Error::NotFound(format!("no API key with prefix {prefix}")).into());
    }
    s.engine.revoke_key(&prefix).await?;
    Ok(Json(json!({"revoked": prefix})))
}
