//! Reflection records of the key's tenant: `/v1/intentions`, `/v1/beliefs`,
//! `/v1/contradictions`, `/v1/claims` and `/v1/calibration`.

use super::*;
use continuum_core::reflection::{
    Belief, BeliefStatus, Claim, ClaimStatus, ContradictionStatus, Intention, IntentionStatus,
    LABEL_PATTERN, MAX_EVIDENCE_CHARS, MAX_EVIDENCE_ITEMS, MAX_LABEL_CHARS, MAX_NOTE_CHARS,
    MAX_TEXT_CHARS, RecordId, TEXT_PATTERN,
};
use continuum_engine::{
    BeliefAdded, BeliefRequest, Calibration, CalibrationRequest, ClaimRequest, ContradictionView,
    IntentionRequest, MAX_CALIBRATION_BINS, MAX_RECORDS_PAGE, Resolution, Resume,
};

fn id(s: &str) -> AppResult<RecordId> {
    Ok(s.parse::<RecordId>()?)
}

fn limit(l: Option<usize>) -> usize {
    l.unwrap_or(50)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct IntentionBody {
    /// What the agent means to do.
    #[schemars(length(min = 1, max = MAX_TEXT_CHARS), regex(pattern = TEXT_PATTERN))]
    text: String,
    /// 1 (lowest) to 10 (highest); 5 when not given.
    #[serde(default, deserialize_with = "whole")]
    #[schemars(range(min = 1, max = 10))]
    priority: Option<i64>,
    /// The session it belongs to.
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::openapi::SESSION_PATTERN))]
    session: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct IntentionsQuery {
    /// Only intentions of this status.
    status: Option<IntentionStatus>,
    /// At most this many, highest priority first, then newest (default 50).
    #[schemars(range(min = 1, max = MAX_RECORDS_PAGE))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct IntentionsOut {
    intentions: Vec<Intention>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AbandonBody {
    /// Why (at most 1,000 characters).
    #[schemars(length(min = 1, max = MAX_NOTE_CHARS), regex(pattern = TEXT_PATTERN))]
    reason: Option<String>,
}

pub(super) async fn intentions_add(
    State(s): St,
    auth: Auth,
    Body(b): Body<IntentionBody>,
) -> AppResult<(StatusCode, Json<Intention>)> {
    let req = IntentionRequest {
        text: b.text,
        priority: b.priority,
        session: session(&b.session)?,
    };
    let i = s.engine.intention_add(&auth.caller, &req).await?;
    Ok((StatusCode::CREATED, Json(i)))
}

pub(super) async fn intentions_list(
    State(s): St,
    auth: Auth,
    Q(q): Q<IntentionsQuery>,
) -> AppResult<Json<IntentionsOut>> {
    let intentions = s
        .engine
        .intentions(&auth.caller, q.status, limit(q.limit))
        .await?;
    Ok(Json(IntentionsOut { intentions }))
}

pub(super) async fn intentions_resume(State(s): St, auth: Auth) -> AppResult<Json<Resume>> {
    Ok(Json(s.engine.intention_resume(&auth.caller).await?))
}

pub(super) async fn intentions_done(
    State(s): St,
    auth: Auth,
    P(i): P<String>,
) -> AppResult<Json<Intention>> {
    Ok(Json(s.engine.intention_done(&auth.caller, &id(&i)?).await?))
}

pub(super) async fn intentions_abandon(
    State(s): St,
    auth: Auth,
    P(i): P<String>,
    Body(b): Body<AbandonBody>,
) -> AppResult<Json<Intention>> {
    Ok(Json(
        s.engine
            .intention_abandon(&auth.caller, &id(&i)?, b.reason.as_deref())
            .await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BeliefBody {
    /// The statement.
    #[schemars(length(min = 1, max = MAX_TEXT_CHARS), regex(pattern = TEXT_PATTERN))]
    text: String,
    /// Beliefs are compared within a domain (`general` when not given; kept in lower case).
    #[schemars(length(min = 1, max = MAX_LABEL_CHARS), regex(pattern = LABEL_PATTERN))]
    domain: Option<String>,
    /// From 0 to 1; 0.8 when not given.
    #[schemars(range(min = 0.0, max = 1.0))]
    confidence: Option<f64>,
    /// Why it is held.
    #[serde(default)]
    #[schemars(
        length(max = MAX_EVIDENCE_ITEMS),
        inner(length(min = 1, max = MAX_EVIDENCE_CHARS), regex(pattern = TEXT_PATTERN))
    )]
    evidence: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct BeliefsQuery {
    /// Only this domain.
    #[schemars(length(min = 1, max = MAX_LABEL_CHARS), regex(pattern = LABEL_PATTERN))]
    domain: Option<String>,
    /// Only beliefs of this status.
    status: Option<BeliefStatus>,
    /// At most this many, newest first (default 50).
    #[schemars(range(min = 1, max = MAX_RECORDS_PAGE))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct BeliefsOut {
    beliefs: Vec<Belief>,
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct ContradictionsQuery {
    /// Only contradictions of this status.
    status: Option<ContradictionStatus>,
    /// At most this many, newest first (default 50).
    #[schemars(range(min = 1, max = MAX_RECORDS_PAGE))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct ContradictionsOut {
    contradictions: Vec<ContradictionView>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolveBody {
    /// The belief to keep: one of the contradiction's two; the other is superseded.
    #[schemars(extend("format" = "uuid"))]
    keep: String,
}

pub(super) async fn beliefs_add(
    State(s): St,
    auth: Auth,
    Body(b): Body<BeliefBody>,
) -> AppResult<(StatusCode, Json<BeliefAdded>)> {
    let req = BeliefRequest {
        text: b.text,
        domain: b.domain,
        confidence: b.confidence,
        evidence: b.evidence,
    };
    let added = s.engine.belief_add(&auth.caller, &req).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

pub(super) async fn beliefs_list(
    State(s): St,
    auth: Auth,
    Q(q): Q<BeliefsQuery>,
) -> AppResult<Json<BeliefsOut>> {
    let beliefs = s
        .engine
        .beliefs(&auth.caller, q.domain.as_deref(), q.status, limit(q.limit))
        .await?;
    Ok(Json(BeliefsOut { beliefs }))
}

pub(super) async fn contradictions_list(
    State(s): St,
    auth: Auth,
    Q(q): Q<ContradictionsQuery>,
) -> AppResult<Json<ContradictionsOut>> {
    let contradictions = s
        .engine
        .contradictions(&auth.caller, q.status, limit(q.limit))
        .await?;
    Ok(Json(ContradictionsOut { contradictions }))
}

pub(super) async fn contradictions_resolve(
    State(s): St,
    auth: Auth,
    P(i): P<String>,
    Body(b): Body<ResolveBody>,
) -> AppResult<Json<Resolution>> {
    let keep = b.keep.parse::<RecordId>()?;
    Ok(Json(
        s.engine
            .contradiction_resolve(&auth.caller, &id(&i)?, &keep)
            .await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ClaimBody {
    /// The statement.
    #[schemars(length(min = 1, max = MAX_TEXT_CHARS), regex(pattern = TEXT_PATTERN))]
    text: String,
    /// How sure, from 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    confidence: f64,
    /// Calibration is reported per category (`general` when not given; kept in lower case).
    #[schemars(length(min = 1, max = MAX_LABEL_CHARS), regex(pattern = LABEL_PATTERN))]
    category: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyBody {
    /// Whether the claim turned out correct.
    correct: bool,
    /// What showed it (at most 1,000 characters).
    #[schemars(length(min = 1, max = MAX_NOTE_CHARS), regex(pattern = TEXT_PATTERN))]
    notes: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct ClaimsQuery {
    /// Only this category.
    #[schemars(length(min = 1, max = MAX_LABEL_CHARS), regex(pattern = LABEL_PATTERN))]
    category: Option<String>,
    /// Only claims of this status.
    status: Option<ClaimStatus>,
    /// At most this many, newest first (default 50).
    #[schemars(range(min = 1, max = MAX_RECORDS_PAGE))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct ClaimsOut {
    claims: Vec<Claim>,
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct CalibrationQuery {
    /// Only this category.
    #[schemars(length(min = 1, max = MAX_LABEL_CHARS), regex(pattern = LABEL_PATTERN))]
    category: Option<String>,
    /// Claims made on or after this day (`YYYY-MM-DD`, UTC).
    #[schemars(extend("format" = "date"))]
    since: Option<String>,
    /// Claims made on or before this day (`YYYY-MM-DD`, UTC).
    #[schemars(extend("format" = "date"))]
    until: Option<String>,
    /// Confidence bins (default 10).
    #[schemars(range(min = 1, max = MAX_CALIBRATION_BINS))]
    bins: Option<usize>,
}

pub(super) async fn claims_add(
    State(s): St,
    auth: Auth,
    Body(b): Body<ClaimBody>,
) -> AppResult<(StatusCode, Json<Claim>)> {
    let req = ClaimRequest {
        text: b.text,
        confidence: b.confidence,
        category: b.category,
    };
    let c = s.engine.claim_add(&auth.caller, &req).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

pub(super) async fn claims_list(
    State(s): St,
    auth: Auth,
    Q(q): Q<ClaimsQuery>,
) -> AppResult<Json<ClaimsOut>> {
    let claims = s
        .engine
        .claims(
            &auth.caller,
            q.category.as_deref(),
            q.status,
            limit(q.limit),
        )
        .await?;
    Ok(Json(ClaimsOut { claims }))
}

pub(super) async fn claims_verify(
    State(s): St,
    auth: Auth,
    P(i): P<String>,
    Body(b): Body<VerifyBody>,
) -> AppResult<Json<Claim>> {
    Ok(Json(
        s.engine
            .claim_verify(&auth.caller, &id(&i)?, b.correct, b.notes.as_deref())
            .await?,
    ))
}

pub(super) async fn calibration(
    State(s): St,
    auth: Auth,
    Q(q): Q<CalibrationQuery>,
) -> AppResult<Json<Calibration>> {
    let req = CalibrationRequest {
        category: q.category,
        since: day("since", &q.since)?.map(Timestamp),
        // The whole last day.
        until: day("until", &q.until)?.map(|t| Timestamp(t + 86_400_000)),
        bins: q.bins,
    };
    Ok(Json(s.engine.calibration(&auth.caller, &req).await?))
}
