//! Reflection records: intentions kept across sessions, beliefs checked for contradictions
//! with the tenant's other beliefs of the same domain, and claims verified later to measure
//! calibration. Each write is one store transaction with its `*.saved` events.

use super::*;
use continuum_core::reflection::{
    Belief, BeliefStatus, Claim, ClaimStatus, Contradiction, ContradictionStatus, Intention,
    IntentionStatus, MAX_EVIDENCE_CHARS, MAX_EVIDENCE_ITEMS, MAX_NOTE_CHARS, MAX_RECORDS_PER_KIND,
    MAX_TEXT_CHARS, Record, RecordId, RecordKind, check_confidence, check_label, check_priority,
    check_text,
};
use continuum_core::{SessionId, Timestamp};
use continuum_reflect::contradiction::{self, Statement};
use serde::Deserialize;
use std::collections::HashMap;

/// The longest list a records read returns.
pub const MAX_RECORDS_PAGE: usize = 1_000;
/// A new belief is compared with at most this many of the domain's newest active beliefs.
pub const MAX_BELIEFS_COMPARED: usize = 1_000;
/// Of those, at most this many (the newest) are compared by meaning when an embedder is set.
pub const MAX_BELIEFS_EMBEDDED: usize = 100;
/// Cosine similarity of two statements (negation set aside) from which the embedder's
/// verdict is "the same statement".
pub const SAME_MEANING: f64 = 0.9;
/// Pending intentions listed per priority group by `resume`.
pub const MAX_RESUME_PER_GROUP: usize = 50;
/// Confidence bins of a calibration report: default and most.
pub const DEFAULT_CALIBRATION_BINS: usize = 10;
pub const MAX_CALIBRATION_BINS: usize = 20;

/// `intentions add`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
pub struct IntentionRequest {
    /// What the agent means to do (at most 2,000 characters).
    #[schemars(length(min = 1, max = 2000), regex(pattern = continuum_core::reflection::TEXT_PATTERN))]
    pub text: String,
    /// 1 (lowest) to 10 (highest); 5 when not given.
    #[schemars(range(min = 1, max = 10))]
    pub priority: Option<i64>,
    /// The session it belongs to.
    pub session: Option<SessionId>,
}

/// `intentions resume`: what is pending, by priority.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Resume {
    /// Priority 7 to 10, then 4 to 6, then 1 to 3; each highest priority first, then newest
    /// (at most 50 per group).
    pub high: Vec<Intention>,
    pub medium: Vec<Intention>,
    pub low: Vec<Intention>,
    /// How many are pending in all.
    pub pending: usize,
    /// One line for an agent's session start.
    pub summary: String,
}

/// `beliefs add`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
pub struct BeliefRequest {
    /// The statement (at most 2,000 characters).
    #[schemars(length(min = 1, max = 2000), regex(pattern = continuum_core::reflection::TEXT_PATTERN))]
    pub text: String,
    /// Beliefs are compared within a domain (`general` when not given).
    #[schemars(length(min = 1, max = 64), regex(pattern = continuum_core::reflection::LABEL_PATTERN))]
    pub domain: Option<String>,
    /// From 0 to 1; 0.8 when not given.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: Option<f64>,
    /// Why it is held (at most 10 items of 500 characters).
    #[serde(default)]
    #[schemars(length(max = 10), inner(length(min = 1, max = 500), regex(pattern = continuum_core::reflection::TEXT_PATTERN)))]
    pub evidence: Vec<String>,
}

/// What recording a belief found.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BeliefAdded {
    pub belief: Belief,
    /// Contradictions with the domain's active beliefs, found now (each recorded, open).
    pub contradictions: Vec<ContradictionView>,
    /// Active beliefs of the domain it was compared with.
    pub compared: usize,
}

/// A contradiction with the two beliefs' texts.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ContradictionView {
    #[serde(flatten)]
    pub contradiction: Contradiction,
    pub earlier_text: Option<String>,
    pub later_text: Option<String>,
}

/// `beliefs resolve`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Resolution {
    pub contradiction: Contradiction,
    pub kept: Belief,
    pub superseded: Belief,
}

/// `claims add`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
pub struct ClaimRequest {
    /// The statement (at most 2,000 characters).
    #[schemars(length(min = 1, max = 2000), regex(pattern = continuum_core::reflection::TEXT_PATTERN))]
    pub text: String,
    /// How sure, from 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
    /// Calibration is reported per category (`general` when not given).
    #[schemars(length(min = 1, max = 64), regex(pattern = continuum_core::reflection::LABEL_PATTERN))]
    pub category: Option<String>,
}

/// Which claims a calibration report covers.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
pub struct CalibrationRequest {
    /// Only this category (every category, each also on its own, when not given).
    pub category: Option<String>,
    /// Claims made at or after this time.
    pub since: Option<Timestamp>,
    /// Claims made before this time.
    pub until: Option<Timestamp>,
    /// Confidence bins (default 10, at most 20).
    pub bins: Option<usize>,
}

/// One bin of a reliability table.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReliabilityBin {
    /// Confidences in [low, high), the last bin [low, 1].
    pub low: f64,
    pub high: f64,
    pub count: usize,
    /// Mean confidence of its claims (null when empty).
    pub confidence: Option<f64>,
    /// Share of its claims that were correct (null when empty).
    pub accuracy: Option<f64>,
}

/// How well stated confidences matched outcomes, for the verified claims of a category.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CalibrationReport {
    /// The category (null: every category together).
    pub category: Option<String>,
    /// Verified claims counted.
    pub claims: usize,
    pub correct: usize,
    /// Claims in the window not verified yet (not counted).
    pub open: usize,
    /// Mean squared difference of confidence and outcome: 0 is perfect; always saying 0.5
    /// scores 0.25 (null without claims).
    pub brier: Option<f64>,
    /// Expected calibration error: the bins' |accuracy − confidence|, weighted by size.
    pub ece: Option<f64>,
    pub bins: Vec<ReliabilityBin>,
    /// Share of the claims in bins less accurate than their confidence by more than 0.05.
    pub over_confident: f64,
    /// Share of the claims in bins more accurate than their confidence by more than 0.05.
    pub under_confident: f64,
    pub advice: String,
}

/// `claims calibration`: the whole and each category.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Calibration {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    #[serde(flatten)]
    pub overall: CalibrationReport,
    /// Each category on its own (only the one asked for, when one was).
    pub categories: Vec<CalibrationReport>,
}

fn check_limit(limit: usize) -> Result<usize> {
    if limit == 0 || limit > MAX_RECORDS_PAGE {
        return Err(Error::InvalidInput(format!(
            "limit must be between 1 and {MAX_RECORDS_PAGE}"
        )));
    }
    Ok(limit)
}

fn not_found(kind: RecordKind, id: &RecordId) -> Error {
    Error::NotFound(format!("no {} {id}", kind.as_str()))
}

impl Engine {
    /// Refuses a new record of `kind` when the tenant holds the most allowed.
    pub(crate) async fn room_for(&self, tenant: &TenantId, kind: RecordKind) -> Result<()> {
        if self.store.count_records(tenant, kind).await? >= MAX_RECORDS_PER_KIND as u64 {
            return Err(Error::Conflict(format!(
                "a tenant holds at most {MAX_RECORDS_PER_KIND} {}s",
                kind.as_str()
            )));
        }
        Ok(())
    }

    async fn load(&self, tenant: &TenantId, kind: RecordKind, id: &RecordId) -> Result<Record> {
        match self.store.record(tenant, id).await? {
            Some(r) if r.kind() == kind => Ok(r),
            _ => Err(not_found(kind, id)),
        }
    }

    /// Sets an intention (pending).
    pub async fn intention_add(
        &self,
        who: impl Into<Caller>,
        req: &IntentionRequest,
    ) -> Result<Intention> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let text = check_text("text", &req.text, MAX_TEXT_CHARS)?;
        let priority = check_priority(req.priority.unwrap_or(5))?;
        self.room_for(tenant, RecordKind::Intention).await?;
        let now = self.clock.now();
        let i = Intention {
            id: RecordId::new_at(now),
            text,
            priority,
            session: req.session.clone(),
            status: IntentionStatus::Pending,
            reason: None,
            created_at: now,
            updated_at: now,
        };
        self.store
            .put_records(tenant, now, &[Record::Intention(i.clone())])
            .await?;
        Ok(i)
    }

    /// The tenant's intentions (of `status`, when given), highest priority first, then newest.
    pub async fn intentions(
        &self,
        who: impl Into<Caller>,
        status: Option<IntentionStatus>,
        limit: usize,
    ) -> Result<Vec<Intention>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let limit = check_limit(limit)?;
        let mut all = self.all_intentions(tenant, status).await?;
        all.truncate(limit);
        Ok(all)
    }

    /// Every intention of `status` (at most [`MAX_RECORDS_PER_KIND`]), in listing order.
    async fn all_intentions(
        &self,
        tenant: &TenantId,
        status: Option<IntentionStatus>,
    ) -> Result<Vec<Intention>> {
        let mut all: Vec<Intention> = self
            .store
            .records(
                tenant,
                RecordKind::Intention,
                status.map(IntentionStatus::as_str),
                MAX_RECORDS_PER_KIND,
            )
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Intention(i) => Some(i),
                _ => None,
            })
            .collect();
        all.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(b.created_at.cmp(&a.created_at))
                .then(b.id.cmp(&a.id))
        });
        Ok(all)
    }

    async fn intention_finish(
        &self,
        who: impl Into<Caller>,
        id: &RecordId,
        to: IntentionStatus,
        reason: Option<&str>,
    ) -> Result<Intention> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let reason = reason
            .map(|r| check_text("reason", r, MAX_NOTE_CHARS))
            .transpose()?;
        let Record::Intention(mut i) = self.load(tenant, RecordKind::Intention, id).await? else {
            return Err(not_found(RecordKind::Intention, id));
        };
        if i.status != IntentionStatus::Pending {
            return Err(Error::Conflict(format!(
                "intention {id} is {} already",
                i.status.as_str()
            )));
        }
        let now = self.clock.now();
        i.status = to;
        i.reason = reason;
        i.updated_at = now;
        self.store
            .put_records(tenant, now, &[Record::Intention(i.clone())])
            .await?;
        Ok(i)
    }

    /// Marks a pending intention done.
    pub async fn intention_done(&self, who: impl Into<Caller>, id: &RecordId) -> Result<Intention> {
        self.intention_finish(who, id, IntentionStatus::Done, None)
            .await
    }

    /// Abandons a pending intention, with a reason if given.
    pub async fn intention_abandon(
        &self,
        who: impl Into<Caller>,
        id: &RecordId,
        reason: Option<&str>,
    ) -> Result<Intention> {
        self.intention_finish(who, id, IntentionStatus::Abandoned, reason)
            .await
    }

    /// The pending intentions grouped by priority, for the start of a session.
    pub async fn intention_resume(&self, who: impl Into<Caller>) -> Result<Resume> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let pending = self
            .all_intentions(tenant, Some(IntentionStatus::Pending))
            .await?;
        let total = pending.len();
        let (mut high, mut medium, mut low) = (Vec::new(), Vec::new(), Vec::new());
        for i in pending {
            let group = match i.priority {
                7.. => &mut high,
                4..=6 => &mut medium,
                _ => &mut low,
            };
            if group.len() < MAX_RESUME_PER_GROUP {
                group.push(i);
            }
        }
        let summary = if total == 0 {
            "No pending intentions.".to_string()
        } else {
            let first = high
                .first()
                .or(medium.first())
                .or(low.first())
                .map(|i| format!(" First: {}", i.text.lines().next().unwrap_or_default()))
                .unwrap_or_default();
            format!(
                "{total} pending intention{} ({} high, {} medium, {} low priority).{first}",
                if total == 1 { "" } else { "s" },
                high.len(),
                medium.len(),
                low.len()
            )
        };
        Ok(Resume {
            high,
            medium,
            low,
            pending: total,
            summary,
        })
    }

    /// Records a belief and reports the contradictions it has with the tenant's active beliefs
    /// of the same domain (recorded, open, until resolved).
    pub async fn belief_add(
        &self,
        who: impl Into<Caller>,
        req: &BeliefRequest,
    ) -> Result<BeliefAdded> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let text = check_text("text", &req.text, MAX_TEXT_CHARS)?;
        let domain = check_label("domain", req.domain.as_deref())?;
        let confidence = check_confidence(req.confidence.unwrap_or(0.8))?;
        if req.evidence.len() > MAX_EVIDENCE_ITEMS {
            return Err(Error::InvalidInput(format!(
                "a belief carries at most {MAX_EVIDENCE_ITEMS} evidence items"
            )));
        }
        let evidence = req
            .evidence
            .iter()
            .map(|e| check_text("evidence", e, MAX_EVIDENCE_CHARS))
            .collect::<Result<Vec<_>>>()?;
        self.room_for(tenant, RecordKind::Belief).await?;
        let now = self.clock.now();
        let belief = Belief {
            id: RecordId::new_at(now),
            text,
            domain,
            confidence,
            evidence,
            status: BeliefStatus::Active,
            superseded_by: None,
            created_at: now,
            updated_at: now,
        };
        let others: Vec<Belief> = self
            .store
            .records(
                tenant,
                RecordKind::Belief,
                Some("active"),
                MAX_RECORDS_PER_KIND,
            )
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Belief(b) if b.domain == belief.domain => Some(b),
                _ => None,
            })
            .take(MAX_BELIEFS_COMPARED)
            .collect();
        let found = self.contradictions_with(&belief, &others).await?;
        let mut records = vec![Record::Belief(belief.clone())];
        let mut views = Vec::new();
        for (other, f) in found {
            let c = Contradiction {
                id: RecordId::new_at(now),
                earlier: other.id,
                later: belief.id,
                kind: f.kind.as_str().to_string(),
                evidence: f.evidence,
                method: f.method.to_string(),
                similarity: f.similarity,
                status: ContradictionStatus::Open,
                kept: None,
                created_at: now,
                updated_at: now,
            };
            records.push(Record::Contradiction(c.clone()));
            views.push(ContradictionView {
                contradiction: c,
                earlier_text: Some(other.text.clone()),
                later_text: Some(belief.text.clone()),
            });
        }
        self.store.put_records(tenant, now, &records).await?;
        Ok(BeliefAdded {
            belief,
            contradictions: views,
            compared: others.len(),
        })
    }

    /// The word rules against each belief; for those they do not settle, the embedder (when
    /// one is configured): the same meaning with the negation set aside, and one side negated.
    async fn contradictions_with<'a>(
        &self,
        new: &Belief,
        others: &'a [Belief],
    ) -> Result<Vec<(&'a Belief, Found)>> {
        let mine = Statement::parse(&new.text);
        let mut out = Vec::new();
        let mut unsettled = Vec::new();
        for o in others {
            let theirs = Statement::parse(&o.text);
            match contradiction::contradiction_of(&theirs, &mine) {
                Some(f) => out.push((
                    o,
                    Found {
                        kind: f.kind,
                        evidence: f.evidence,
                        method: "words",
                        similarity: None,
                    },
                )),
                None if theirs.negated() != mine.negated()
                    && !theirs.words.is_empty()
                    && !mine.words.is_empty()
                    && unsettled.len() < MAX_BELIEFS_EMBEDDED =>
                {
                    unsettled.push((o, theirs));
                }
                None => {}
            }
        }
        if let (Some(embedder), false) = (self.embedder.as_ref(), unsettled.is_empty()) {
            let mut texts = vec![mine.core()];
            texts.extend(unsettled.iter().map(|(_, s)| s.core()));
            // The word rules' findings stand when the embedder fails: the belief is recorded.
            let vectors = match embedder.embed(&texts).await {
                Ok(v) if v.len() == texts.len() => v,
                Ok(v) => {
                    tracing::warn!(
                        got = v.len(),
                        want = texts.len(),
                        "belief comparison: the embedder returned a wrong number of vectors; word rules only"
                    );
                    return Ok(out);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "belief comparison: the embedder failed; word rules only");
                    return Ok(out);
                }
            };
            for ((o, _), v) in unsettled.into_iter().zip(&vectors[1..]) {
                let sim: f64 = vectors[0]
                    .iter()
                    .zip(v)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                if sim >= SAME_MEANING {
                    let (neg, plain) = if mine.negated() {
                        (&new.text, &o.text)
                    } else {
                        (&o.text, &new.text)
                    };
                    out.push((
                        o,
                        Found {
                            kind: contradiction::Kind::Negation,
                            evidence: format!(
                                "\"{neg}\" negates what \"{plain}\" says (same meaning, cosine {sim:.2}, by {})",
                                embedder.model()
                            ),
                            method: "embedding",
                            similarity: Some((sim * 1000.0).round() / 1000.0),
                        },
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The tenant's beliefs (of a domain, of a status), newest first.
    pub async fn beliefs(
        &self,
        who: impl Into<Caller>,
        domain: Option<&str>,
        status: Option<BeliefStatus>,
        limit: usize,
    ) -> Result<Vec<Belief>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let limit = check_limit(limit)?;
        let domain = domain.map(|d| check_label("domain", Some(d))).transpose()?;
        let status = status.map(BeliefStatus::as_str);
        let read = if domain.is_some() {
            MAX_RECORDS_PER_KIND
        } else {
            limit
        };
        Ok(self
            .store
            .records(tenant, RecordKind::Belief, status, read)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Belief(b) if domain.as_ref().is_none_or(|d| *d == b.domain) => Some(b),
                _ => None,
            })
            .take(limit)
            .collect())
    }

    /// The tenant's contradictions (of a status), newest first, with both beliefs' texts.
    pub async fn contradictions(
        &self,
        who: impl Into<Caller>,
        status: Option<ContradictionStatus>,
        limit: usize,
    ) -> Result<Vec<ContradictionView>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let limit = check_limit(limit)?;
        let status = status.map(ContradictionStatus::as_str);
        let list = self
            .store
            .records(tenant, RecordKind::Contradiction, status, limit)
            .await?;
        let mut out = Vec::with_capacity(list.len());
        let mut texts: HashMap<RecordId, Option<String>> = HashMap::new();
        for r in list {
            let Record::Contradiction(c) = r else {
                continue;
            };
            for id in [c.earlier, c.later] {
                if let std::collections::hash_map::Entry::Vacant(slot) = texts.entry(id) {
                    slot.insert(match self.store.record(tenant, &id).await? {
                        Some(Record::Belief(b)) => Some(b.text),
                        _ => None,
                    });
                }
            }
            out.push(ContradictionView {
                earlier_text: texts[&c.earlier].clone(),
                later_text: texts[&c.later].clone(),
                contradiction: c,
            });
        }
        Ok(out)
    }

    /// Resolves an open contradiction by keeping one of its beliefs; the other is superseded.
    pub async fn contradiction_resolve(
        &self,
        who: impl Into<Caller>,
        id: &RecordId,
        keep: &RecordId,
    ) -> Result<Resolution> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let Record::Contradiction(mut c) = self.load(tenant, RecordKind::Contradiction, id).await?
        else {
            return Err(not_found(RecordKind::Contradiction, id));
        };
        if c.status != ContradictionStatus::Open {
            return Err(Error::Conflict(format!(
                "contradiction {id} is resolved already"
            )));
        }
        let drop = if *keep == c.earlier {
            c.later
        } else if *keep == c.later {
            c.earlier
        } else {
            return Err(Error::InvalidInput(format!(
                "keep must be one of the contradiction's beliefs ({} or {})",
                c.earlier, c.later
            )));
        };
        let load_belief = |r: Record| match r {
            Record::Belief(b) => Ok(b),
            _ => Err(Error::Internal(
                "a contradiction names a record that is no belief".into(),
            )),
        };
        let kept = load_belief(self.load(tenant, RecordKind::Belief, keep).await?)?;
        let mut superseded = load_belief(self.load(tenant, RecordKind::Belief, &drop).await?)?;
        let now = self.clock.now();
        superseded.status = BeliefStatus::Superseded;
        superseded.superseded_by = Some(kept.id);
        superseded.updated_at = now;
        c.status = ContradictionStatus::Resolved;
        c.kept = Some(kept.id);
        c.updated_at = now;
        self.store
            .put_records(
                tenant,
                now,
                &[
                    Record::Belief(superseded.clone()),
                    Record::Contradiction(c.clone()),
                ],
            )
            .await?;
        Ok(Resolution {
            contradiction: c,
            kept,
            superseded,
        })
    }

    /// Records a claim, to be verified later.
    pub async fn claim_add(&self, who: impl Into<Caller>, req: &ClaimRequest) -> Result<Claim> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let text = check_text("text", &req.text, MAX_TEXT_CHARS)?;
        let confidence = check_confidence(req.confidence)?;
        let category = check_label("category", req.category.as_deref())?;
        self.room_for(tenant, RecordKind::Claim).await?;
        let now = self.clock.now();
        let c = Claim {
            id: RecordId::new_at(now),
            text,
            category,
            confidence,
            status: ClaimStatus::Open,
            notes: None,
            verified_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store
            .put_records(tenant, now, &[Record::Claim(c.clone())])
            .await?;
        Ok(c)
    }

    /// Records whether a claim turned out correct. A claim is verified once.
    pub async fn claim_verify(
        &self,
        who: impl Into<Caller>,
        id: &RecordId,
        correct: bool,
        notes: Option<&str>,
    ) -> Result<Claim> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let notes = notes
            .map(|n| check_text("notes", n, MAX_NOTE_CHARS))
            .transpose()?;
        let Record::Claim(mut c) = self.load(tenant, RecordKind::Claim, id).await? else {
            return Err(not_found(RecordKind::Claim, id));
        };
        if c.status != ClaimStatus::Open {
            return Err(Error::Conflict(format!(
                "claim {id} was verified already ({})",
                c.status.as_str()
            )));
        }
        let now = self.clock.now();
        c.status = if correct {
            ClaimStatus::Correct
        } else {
            ClaimStatus::Wrong
        };
        c.notes = notes;
        c.verified_at = Some(now);
        c.updated_at = now;
        self.store
            .put_records(tenant, now, &[Record::Claim(c.clone())])
            .await?;
        Ok(c)
    }

    /// The tenant's claims (of a category, of a status), newest first.
    pub async fn claims(
        &self,
        who: impl Into<Caller>,
        category: Option<&str>,
        status: Option<ClaimStatus>,
        limit: usize,
    ) -> Result<Vec<Claim>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let limit = check_limit(limit)?;
        let category = category
            .map(|c| check_label("category", Some(c)))
            .transpose()?;
        let status = status.map(ClaimStatus::as_str);
        let read = if category.is_some() {
            MAX_RECORDS_PER_KIND
        } else {
            limit
        };
        Ok(self
            .store
            .records(tenant, RecordKind::Claim, status, read)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Claim(c) if category.as_ref().is_none_or(|k| *k == c.category) => Some(c),
                _ => None,
            })
            .take(limit)
            .collect())
    }

    /// How well the confidences of verified claims matched their outcomes: made in the window,
    /// of one category or of each.
    pub async fn calibration(
        &self,
        who: impl Into<Caller>,
        req: &CalibrationRequest,
    ) -> Result<Calibration> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let bins = req.bins.unwrap_or(DEFAULT_CALIBRATION_BINS);
        if bins == 0 || bins > MAX_CALIBRATION_BINS {
            return Err(Error::InvalidInput(format!(
                "bins must be between 1 and {MAX_CALIBRATION_BINS}"
            )));
        }
        // A window that ends before it starts holds no claim (an empty report, not an error).
        let category = req
            .category
            .as_deref()
            .map(|c| check_label("category", Some(c)))
            .transpose()?;
        let claims: Vec<Claim> = self
            .store
            .records(tenant, RecordKind::Claim, None, MAX_RECORDS_PER_KIND)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Claim(c)
                    if category.as_ref().is_none_or(|k| *k == c.category)
                        && req.since.is_none_or(|s| c.created_at >= s)
                        && req.until.is_none_or(|u| c.created_at < u) =>
                {
                    Some(c)
                }
                _ => None,
            })
            .collect();
        let overall = report(None, &claims, bins)?;
        let mut names: Vec<&str> = claims.iter().map(|c| c.category.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let categories = names
            .into_iter()
            .map(|n| {
                let of: Vec<Claim> = claims.iter().filter(|c| c.category == n).cloned().collect();
                report(Some(n.to_string()), &of, bins)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Calibration {
            since: req.since,
            until: req.until,
            overall: CalibrationReport {
                category: category.clone(),
                ..overall
            },
            categories,
        })
    }
}

struct Found {
    kind: contradiction::Kind,
    evidence: String,
    method: &'static str,
    similarity: Option<f64>,
}

fn report(category: Option<String>, claims: &[Claim], bins: usize) -> Result<CalibrationReport> {
    let verified: Vec<(f64, bool)> = claims
        .iter()
        .filter_map(|c| match c.status {
            ClaimStatus::Open => None,
            ClaimStatus::Correct => Some((c.confidence, true)),
            ClaimStatus::Wrong => Some((c.confidence, false)),
        })
        .collect();
    let r = continuum_reflect::calibration::report(&verified, bins).map_err(Error::Internal)?;
    let round = |x: f64| (x * 1e6).round() / 1e6;
    Ok(CalibrationReport {
        category,
        claims: r.claims,
        correct: r.correct,
        open: claims.len() - verified.len(),
        brier: r.brier.map(round),
        ece: r.ece.map(round),
        bins: r
            .bins
            .into_iter()
            .map(|b| ReliabilityBin {
                low: round(b.low),
                high: round(b.high),
                count: b.count,
                confidence: b.confidence.map(round),
                accuracy: b.accuracy.map(round),
            })
            .collect(),
        over_confident: round(r.over_confident),
        under_confident: round(r.under_confident),
        advice: r.advice,
    })
}
