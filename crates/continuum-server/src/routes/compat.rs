//! The original service's endpoints, with its request and response shapes.

use super::*;

#[derive(Deserialize, JsonSchema)]
pub(super) struct RecallCompat {
    /// The new message to find relevant memories for (`query` is accepted as a synonym).
    #[serde(alias = "query")]
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    message: String,
    /// How many memories to return (1 to 100; default 10).
    #[serde(default, deserialize_with = "count")]
    #[schemars(range(min = 1, max = 100))]
    max_concepts: Option<usize>,
}

/// `max_concepts` checked against its documented range.
pub(super) fn max_concepts(n: Option<usize>) -> AppResult<Option<usize>> {
    match n {
        Some(n) if !(1..=MAX_PAGE).contains(&n) => Err(ApiError::bad_request(format!(
            "max_concepts must be between 1 and {MAX_PAGE}"
        ))),
        n => Ok(n),
    }
}

#[derive(Serialize, JsonSchema)]
pub(super) struct RecallCompatOut {
    /// The `[MEMORY CONTEXT]` block for the prompt.
    context: String,
    concepts_found: usize,
    relationships_found: usize,
    query_time_ms: f64,
    tenant_id: TenantId,
}

pub(super) fn recall_compat_body(
    r: Recall,
    started: Instant,
    tenant: &TenantId,
) -> RecallCompatOut {
    RecallCompatOut {
        context: r.context,
        concepts_found: r.concepts.len(),
        relationships_found: r.links.len(),
        query_time_ms: started.elapsed().as_secs_f64() * 1000.0,
        tenant_id: tenant.clone(),
    }
}

pub(super) async fn recall_compat(
    State(s): St,
    auth: Auth,
    Body(b): Body<RecallCompat>,
) -> AppResult<Json<RecallCompatOut>> {
    let caller = &auth.caller;
    let started = Instant::now();
    let req = RecallRequest {
        query: b.message,
        limit: max_concepts(b.max_concepts)?,
        ..Default::default()
    };
    // The original shape shows the context block only: the memories are not listed.
    let r = s.engine.recall_context(caller, &req).await?;
    Ok(Json(recall_compat_body(r, started, &caller.tenant)))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct LearnCompat {
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    user_message: String,
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    ai_response: String,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    #[schemars(
        length(min = 1, max = 50),
        regex(pattern = crate::openapi::SESSION_PATTERN)
    )]
    session_id: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct LearnCompatOut {
    concepts_extracted: u64,
    decisions_detected: u64,
    links_created: u64,
    compounds_found: u64,
    tenant_id: TenantId,
}

pub(super) fn learn_compat_body(o: &LearnOutcome, tenant: &TenantId) -> LearnCompatOut {
    LearnCompatOut {
        concepts_extracted: o.concepts_extracted,
        decisions_detected: o.decisions_detected,
        links_created: o.links_created,
        compounds_found: o.compounds_found,
        tenant_id: tenant.clone(),
    }
}

pub(super) fn turn_of(b: LearnCompat) -> AppResult<Turn> {
    Ok(Turn {
        user_message: b.user_message,
        ai_response: b.ai_response,
        thinking: b.thinking,
        session_id: session(&b.session_id)?,
        metadata: b.metadata,
        timestamp: None,
    })
}

pub(super) async fn learn_compat(
    State(s): St,
    auth: Auth,
    Body(b): Body<LearnCompat>,
) -> AppResult<Json<LearnCompatOut>> {
    let caller = &auth.caller;
    let out = s.engine.learn(caller, turn_of(b)?).await?;
    Ok(Json(learn_compat_body(&out, &caller.tenant)))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct TurnCompat {
    #[serde(flatten)]
    learn: LearnCompat,
    #[serde(default, deserialize_with = "count")]
    #[schemars(range(min = 1, max = 100))]
    max_concepts: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct TurnOut {
    recall: RecallCompatOut,
    learn: LearnCompatOut,
}

/// Recall for the user's message, then learn the turn: one call per exchange.
pub(super) async fn turn_compat(
    State(s): St,
    auth: Auth,
    Body(b): Body<TurnCompat>,
) -> AppResult<Json<TurnOut>> {
    let caller = &auth.caller;
    let started = Instant::now();
    let req = RecallRequest {
        query: b.learn.user_message.clone(),
        limit: max_concepts(b.max_concepts)?,
        ..Default::default()
    };
    let r = s.engine.recall_context(caller, &req).await?;
    let recall = recall_compat_body(r, started, &caller.tenant);
    let out = s.engine.learn(caller, turn_of(b.learn)?).await?;
    Ok(Json(TurnOut {
        recall,
        learn: learn_compat_body(&out, &caller.tenant),
    }))
}

#[derive(Serialize, JsonSchema)]
pub(super) struct StatsOut {
    #[serde(flatten)]
    stats: Stats,
    tenant_id: TenantId,
    /// The original service's name for concepts.
    entities: u64,
    /// Stored messages: every memory (each side of a turn is one).
    messages: u64,
    /// The original service's name for links.
    attention_links: u64,
    /// Compound concepts are not computed: always 0.
    compound_concepts: u64,
}

pub(super) async fn stats(State(s): St, auth: Auth) -> AppResult<Json<StatsOut>> {
    let caller = &auth.caller;
    let stats = s.engine.stats(caller).await?;
    let st = &stats.store;
    Ok(Json(StatsOut {
        entities: st.concepts,
        messages: st.memories,
        attention_links: st.links,
        compound_concepts: 0,
        tenant_id: caller.tenant.clone(),
        stats,
    }))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct EntitiesQuery {
    #[schemars(range(min = 1, max = MAX_PAGE))]
    limit: Option<usize>,
    #[schemars(range(max = MAX_OFFSET))]
    offset: Option<usize>,
    entity_type: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct Entity {
    name: String,
    key: String,
    entity_type: String,
    mentions: u64,
    first_seen: Timestamp,
    last_seen: Timestamp,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct EntitiesOut {
    entities: Vec<Entity>,
    total: usize,
    limit: usize,
    offset: usize,
    tenant_id: TenantId,
}

pub(super) async fn entities(
    State(s): St,
    auth: Auth,
    Q(q): Q<EntitiesQuery>,
) -> AppResult<Json<EntitiesOut>> {
    let caller = &auth.caller;
    let (limit, offset) = (page(q.limit, 50)?, offset(q.offset)?);
    let mut list = s
        .engine
        .list_concepts(caller, continuum_core::store::MAX_PAGE, 0)
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
        tenant_id: caller.tenant.clone(),
    }))
}

#[derive(Serialize, JsonSchema)]
pub(super) struct MessagesOut {
    messages: Vec<Memory>,
    limit: usize,
    offset: usize,
    tenant_id: TenantId,
}

pub(super) async fn messages(
    State(s): St,
    auth: Auth,
    Q(q): Q<OffsetQuery>,
) -> AppResult<Json<MessagesOut>> {
    let caller = &auth.caller;
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
            .list(caller, &MemoryFilter::default(), &req)
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
        tenant_id: caller.tenant.clone(),
    }))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct SearchCompat {
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    query: String,
    #[serde(default, deserialize_with = "count")]
    #[schemars(range(min = 1, max = MAX_PAGE))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct MessagesSearchOut {
    results: Vec<SearchHit>,
    count: usize,
    tenant_id: TenantId,
}

pub(super) async fn messages_search(
    State(s): St,
    auth: Auth,
    Body(b): Body<SearchCompat>,
) -> AppResult<Json<MessagesSearchOut>> {
    let caller = &auth.caller;
    let req = SearchRequest {
        query: b.query,
        limit: Some(page(b.limit, 10)?),
        ..Default::default()
    };
    let results = s.engine.search(caller, &req).await?;
    Ok(Json(MessagesSearchOut {
        count: results.len(),
        results,
        tenant_id: caller.tenant.clone(),
    }))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct MemoryCompat {
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    entity: String,
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    content: String,
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct MemoryCreated {
    success: bool,
    id: MemoryId,
    entity: String,
    content: String,
    created_at: Timestamp,
    tenant_id: TenantId,
}

/// The original service's "store a memory about an entity".
pub(super) async fn memories_create(
    State(s): St,
    auth: Auth,
    Body(b): Body<MemoryCompat>,
) -> AppResult<(StatusCode, Json<MemoryCreated>)> {
    let caller = &auth.caller;
    if b.entity.trim().is_empty() {
        return Err(ApiError::bad_request("entity is empty"));
    }
    let mut metadata = b.metadata.unwrap_or_default();
    metadata.insert("entity".into(), Value::String(b.entity.trim().to_string()));
    let mut req = RememberRequest::new(b.content, Source::Fact);
    req.metadata = metadata;
    let m = s.engine.remember(caller, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(MemoryCreated {
            success: true,
            id: m.id,
            entity: b.entity.trim().to_string(),
            content: m.content,
            created_at: m.created_at,
            tenant_id: caller.tenant.clone(),
        }),
    ))
}
