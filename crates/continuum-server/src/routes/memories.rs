//! Native endpoints: memories, search, recall, sessions, concepts and the graph.

use super::*;

#[derive(Deserialize, JsonSchema)]
pub(super) struct ListQuery {
    #[schemars(range(min = 1, max = MAX_PAGE))]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[schemars(regex(pattern = r"^[+-]?[0-9]{1,18}:[+-]?[0-9]{1,18}$"))]
    cursor: Option<String>,
    #[schemars(extend("enum" = ["user", "assistant", "thinking", "system", "document", "fact", "note", null]))]
    source: Option<String>,
    #[schemars(
        length(min = 1, max = 50),
        regex(pattern = crate::openapi::SESSION_PATTERN)
    )]
    session: Option<String>,
    /// Memories created on or after this day (`YYYY-MM-DD`, UTC).
    #[schemars(extend("format" = "date"))]
    since: Option<String>,
    /// Memories created on or before this day (`YYYY-MM-DD`, UTC).
    #[schemars(extend("format" = "date"))]
    until: Option<String>,
    /// `newest` (the default) or `oldest` first.
    #[schemars(extend("enum" = ["newest", "oldest", null]))]
    order: Option<String>,
}

/// A `YYYY-MM-DD` day as the millisecond it starts (UTC).
pub(super) fn day(name: &str, v: &Option<String>) -> AppResult<Option<i64>> {
    let Some(v) = v else { return Ok(None) };
    let shaped = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    match Timestamp::parse(v) {
        Ok(t) if shaped => Ok(Some(t.millis())),
        _ => Err(continuum_core::Error::InvalidInput(format!(
            "`{name}` is not a day (YYYY-MM-DD)"
        ))
        .into()),
    }
}

pub(super) async fn memories_list(
    State(s): St,
    auth: Auth,
    Q(q): Q<ListQuery>,
) -> AppResult<Json<Page<Memory>>> {
    let caller = &auth.caller;
    let filter = MemoryFilter {
        sources: sources(&q.source)?,
        session: session(&q.session)?,
        since: day("since", &q.since)?.map(Timestamp),
        until: day("until", &q.until)?.map(|t| Timestamp(t + 86_400_000 - 1)),
        ..Default::default()
    };
    let order = match q.order.as_deref() {
        None | Some("newest") => Order::NewestFirst,
        Some("oldest") => Order::OldestFirst,
        Some(other) => {
            return Err(continuum_core::Error::InvalidInput(format!(
                "`order` is `newest` or `oldest`, not `{other}`"
            ))
            .into());
        }
    };
    let req = PageRequest {
        limit: page(q.limit, 20)?,
        cursor: q.cursor,
        order,
    };
    Ok(Json(s.engine.list(caller, &filter, &req).await?))
}

pub(super) fn memory_id(id: &str) -> AppResult<MemoryId> {
    Ok(id.parse()?)
}

pub(super) async fn memories_get(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
) -> AppResult<Json<Memory>> {
    let caller = &auth.caller;
    Ok(Json(s.engine.get(caller, memory_id(&id)?).await?))
}

#[derive(Serialize, JsonSchema)]
pub(super) struct VersionsOut {
    /// Oldest first; the one asked about among them.
    versions: Vec<Memory>,
}

pub(super) async fn memories_versions(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
) -> AppResult<Json<VersionsOut>> {
    let versions = s.engine.versions(&auth.caller, memory_id(&id)?).await?;
    Ok(Json(VersionsOut { versions }))
}

#[derive(Serialize, JsonSchema)]
pub(super) struct MemoryConceptsOut {
    concepts: Vec<continuum_core::extract::ExtractedConcept>,
}

pub(super) async fn memories_concepts(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
) -> AppResult<Json<MemoryConceptsOut>> {
    let concepts = s
        .engine
        .memory_concepts(&auth.caller, memory_id(&id)?)
        .await?;
    Ok(Json(MemoryConceptsOut { concepts }))
}

#[derive(Serialize, JsonSchema)]
pub(super) struct Forgotten {
    /// Memories deleted.
    forgotten: u64,
}

pub(super) async fn memories_forget(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
) -> AppResult<Json<Forgotten>> {
    let caller = &auth.caller;
    let n = s
        .engine
        .forget(caller, &ForgetSelector::Ids(vec![memory_id(&id)?]))
        .await?;
    Ok(Json(Forgotten { forgotten: n }))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct SupersedeBody {
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    content: String,
    #[serde(default)]
    #[schemars(extend("enum" = ["user", "assistant", "thinking", "system", "document", "fact", "note", null]))]
    source: Option<String>,
}

pub(super) async fn memories_supersede(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
    Body(b): Body<SupersedeBody>,
) -> AppResult<Json<Memory>> {
    let caller = &auth.caller;
    let source = sources(&b.source)?.pop().unwrap_or(Source::Fact);
    let m = s
        .engine
        .supersede(
            caller,
            memory_id(&id)?,
            RememberRequest::new(b.content, source),
        )
        .await?;
    Ok(Json(m))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct SearchBody {
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    query: String,
    #[serde(default, deserialize_with = "count")]
    #[schemars(range(min = 1, max = MAX_PAGE))]
    limit: Option<usize>,
    #[serde(default, deserialize_with = "count")]
    #[schemars(range(max = continuum_core::limits::MAX_SEARCH_OFFSET))]
    offset: Option<usize>,
    #[serde(default)]
    #[schemars(extend("enum" = ["user", "assistant", "thinking", "system", "document", "fact", "note", null]))]
    source: Option<String>,
    #[serde(default)]
    #[schemars(
        length(min = 1, max = 50),
        regex(pattern = crate::openapi::SESSION_PATTERN)
    )]
    session: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct SearchOut {
    results: Vec<SearchHit>,
}

pub(super) async fn search(
    State(s): St,
    auth: Auth,
    Body(b): Body<SearchBody>,
) -> AppResult<Json<SearchOut>> {
    let caller = &auth.caller;
    let req = SearchRequest {
        query: b.query,
        filter: MemoryFilter {
            sources: sources(&b.source)?,
            session: session(&b.session)?,
            ..Default::default()
        },
        limit: Some(page(b.limit, 10)?),
        offset: search_offset(b.offset)?,
    };
    Ok(Json(SearchOut {
        results: s.engine.search(caller, &req).await?,
    }))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct RecallBody {
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    query: String,
    #[serde(default, deserialize_with = "count")]
    #[schemars(range(min = 1, max = 100_000))]
    budget_tokens: Option<usize>,
    #[serde(default, deserialize_with = "count")]
    #[schemars(range(min = 1, max = 100))]
    limit: Option<usize>,
    #[serde(default)]
    #[schemars(extend("enum" = ["user", "assistant", "thinking", "system", "document", "fact", "note", null]))]
    source: Option<String>,
    #[serde(default)]
    #[schemars(
        length(min = 1, max = 50),
        regex(pattern = crate::openapi::SESSION_PATTERN)
    )]
    session: Option<String>,
}

/// The engine's full recall: context, ranked memories with per-signal scores, concepts, links.
pub(super) async fn recall_native(
    State(s): St,
    auth: Auth,
    Body(b): Body<RecallBody>,
) -> AppResult<Json<Recall>> {
    let caller = &auth.caller;
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
    Ok(Json(s.engine.recall(caller, &req).await?))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct OffsetQuery {
    #[schemars(range(min = 1, max = MAX_PAGE))]
    pub(super) limit: Option<usize>,
    #[schemars(range(max = MAX_OFFSET))]
    pub(super) offset: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct SessionsOut {
    sessions: Vec<SessionInfo>,
}

pub(super) async fn sessions(
    State(s): St,
    auth: Auth,
    Q(q): Q<OffsetQuery>,
) -> AppResult<Json<SessionsOut>> {
    let caller = &auth.caller;
    let list = s
        .engine
        .sessions(caller, page(q.limit, 20)?, offset(q.offset)?)
        .await?;
    Ok(Json(SessionsOut { sessions: list }))
}

pub(super) async fn sessions_forget(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
) -> AppResult<Json<Forgotten>> {
    let caller = &auth.caller;
    let n = s
        .engine
        .forget(caller, &ForgetSelector::Session(SessionId::new(id)?))
        .await?;
    Ok(Json(Forgotten { forgotten: n }))
}

pub(super) async fn concept(
    State(s): St,
    auth: Auth,
    P(name): P<String>,
    Q(q): Q<OffsetQuery>,
) -> AppResult<Json<ConceptView>> {
    let caller = &auth.caller;
    Ok(Json(
        s.engine.concept(caller, &name, page(q.limit, 20)?).await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct GraphQuery {
    #[schemars(length(min = 1), regex(pattern = r"\S"))]
    concept: String,
    #[schemars(range(min = 1, max = MAX_PAGE))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct GraphNode {
    key: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mentions: Option<u64>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct GraphEdge {
    a: String,
    b: String,
    strength: f64,
    count: u64,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct GraphOut {
    nodes: Vec<GraphNode>,
    edges: Vec<GraphEdge>,
}

pub(super) async fn graph(
    State(s): St,
    auth: Auth,
    Q(q): Q<GraphQuery>,
) -> AppResult<Json<GraphOut>> {
    let caller = &auth.caller;
    let v = s
        .engine
        .concept(caller, &q.concept, page(q.limit, 20)?)
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
