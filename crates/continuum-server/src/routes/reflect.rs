//! `GET /v1/insights` and `GET /v1/dream`: reflection over the key's tenant's concept graph.

use super::*;
use continuum_engine::{Dream, DreamRequest, GraphScope, Growth, Insights, Timeline};

/// The largest seed: integers above 2^53 do not survive JSON readers that use doubles.
const MAX_SEED: u64 = (1 << 53) - 1;

#[derive(Deserialize, JsonSchema)]
pub(super) struct InsightsQuery {
    /// Clusters, bridges and hypotheses returned, each (default 10).
    #[schemars(range(min = 1, max = continuum_engine::MAX_INSIGHTS))]
    limit: Option<usize>,
    /// The most mentioned concepts read (default 500).
    #[schemars(range(min = 1, max = continuum_engine::MAX_REFLECT_CONCEPTS))]
    concepts: Option<usize>,
    /// Strongest links read per concept (default 20).
    #[schemars(range(min = 1, max = continuum_engine::MAX_REFLECT_LINKS_PER_CONCEPT))]
    links: Option<usize>,
}

fn scope(concepts: Option<usize>, links: Option<usize>) -> GraphScope {
    let d = GraphScope::default();
    GraphScope {
        concepts: concepts.unwrap_or(d.concepts),
        links_per_concept: links.unwrap_or(d.links_per_concept),
    }
}

pub(super) async fn insights(
    State(s): St,
    auth: Auth,
    Q(q): Q<InsightsQuery>,
) -> AppResult<Json<Insights>> {
    let r = s
        .engine
        .insights(
            &auth.caller,
            &scope(q.concepts, q.links),
            q.limit.unwrap_or(10),
        )
        .await?;
    Ok(Json(r))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct DreamQuery {
    /// Start at this concept (default: one drawn by its link strength).
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    from: Option<String>,
    /// The same seed walks the same way (default: from the clock; returned).
    #[schemars(range(max = MAX_SEED))]
    seed: Option<u64>,
    /// Moves (default 10).
    #[schemars(range(min = 1, max = continuum_engine::MAX_DREAM_STEPS))]
    steps: Option<usize>,
    /// Above 0, at most 10 (default 1): below 1 keeps to strong links, above wanders.
    #[schemars(range(max = continuum_engine::MAX_DREAM_TEMPERATURE), extend("exclusiveMinimum" = 0))]
    temperature: Option<f64>,
    /// The most mentioned concepts read (default 500).
    #[schemars(range(min = 1, max = continuum_engine::MAX_REFLECT_CONCEPTS))]
    concepts: Option<usize>,
    /// Strongest links read per concept (default 20).
    #[schemars(range(min = 1, max = continuum_engine::MAX_REFLECT_LINKS_PER_CONCEPT))]
    links: Option<usize>,
}

pub(super) async fn dream(State(s): St, auth: Auth, Q(q): Q<DreamQuery>) -> AppResult<Json<Dream>> {
    if q.seed.is_some_and(|s| s > MAX_SEED) {
        return Err(Error::InvalidInput(format!("seed must be at most {MAX_SEED}")).into());
    }
    if q.from.as_ref().is_some_and(|f| f.len() > 200) {
        return Err(Error::InvalidInput("from is at most 200 bytes".into()).into());
    }
    let req = DreamRequest {
        from: q.from,
        seed: q.seed,
        steps: q.steps,
        temperature: q.temperature,
        scope: scope(q.concepts, q.links),
    };
    Ok(Json(s.engine.dream(&auth.caller, &req).await?))
}

pub(super) async fn concept_timeline(
    State(s): St,
    auth: Auth,
    P(name): P<String>,
) -> AppResult<Json<Timeline>> {
    Ok(Json(s.engine.concept_timeline(&auth.caller, &name).await?))
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct GrowthQuery {
    /// From this day (`YYYY-MM-DD`, UTC).
    #[schemars(extend("format" = "date"))]
    since: Option<String>,
    /// Through this day (`YYYY-MM-DD`, UTC).
    #[schemars(extend("format" = "date"))]
    until: Option<String>,
}

pub(super) async fn growth(
    State(s): St,
    auth: Auth,
    Q(q): Q<GrowthQuery>,
) -> AppResult<Json<Growth>> {
    let since = day("since", &q.since)?.map(Timestamp);
    let until = day("until", &q.until)?.map(|t| Timestamp(t + 86_400_000));
    Ok(Json(
        s.engine.concept_growth(&auth.caller, since, until).await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SnapshotBody {
    /// A name for it (at most 100 characters).
    #[schemars(
        length(min = 1, max = continuum_engine::MAX_SNAPSHOT_LABEL_CHARS),
        regex(pattern = continuum_core::reflection::TEXT_PATTERN)
    )]
    label: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct SnapshotsQuery {
    /// At most this many, newest first (default 20).
    #[schemars(range(min = 1, max = continuum_engine::MAX_RECORDS_PAGE))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct SnapshotsOut {
    snapshots: Vec<continuum_core::reflection::GraphSnapshot>,
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct CompareQuery {
    /// The earlier snapshot's id.
    #[schemars(extend("format" = "uuid"))]
    from: String,
    /// The later snapshot's id.
    #[schemars(extend("format" = "uuid"))]
    to: String,
}

pub(super) async fn snapshots_create(
    State(s): St,
    auth: Auth,
    Body(b): Body<SnapshotBody>,
) -> AppResult<(StatusCode, Json<continuum_core::reflection::GraphSnapshot>)> {
    let snap = s
        .engine
        .graph_snapshot(&auth.caller, b.label.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(snap)))
}

pub(super) async fn snapshots_list(
    State(s): St,
    auth: Auth,
    Q(q): Q<SnapshotsQuery>,
) -> AppResult<Json<SnapshotsOut>> {
    let snapshots = s
        .engine
        .graph_snapshots(&auth.caller, q.limit.unwrap_or(20))
        .await?;
    Ok(Json(SnapshotsOut { snapshots }))
}

pub(super) async fn snapshots_compare(
    State(s): St,
    auth: Auth,
    Q(q): Q<CompareQuery>,
) -> AppResult<Json<continuum_engine::SnapshotComparison>> {
    let from = q.from.parse()?;
    let to = q.to.parse()?;
    Ok(Json(
        s.engine.graph_compare(&auth.caller, &from, &to).await?,
    ))
}
