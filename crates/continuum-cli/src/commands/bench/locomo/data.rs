//! Reading a LoCoMo file and storing its conversations, one tenant each.

use crate::output;
use anyhow::Result;
use continuum_core::memory::Metadata;
use continuum_core::{Error, MemoryId, SessionId, Source, TenantId, Timestamp};
use continuum_engine::{Engine, RememberRequest};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Question categories scored (5, adversarial, has no evidence to find).
pub(super) const SCORED: [u64; 4] = [1, 2, 3, 4];

/// "1:56 pm on 8 May, 2023" → a timestamp (taken as UTC).
pub(super) fn parse_session_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    for fmt in [
        "%I:%M %p on %d %B, %Y",
        "%I:%M %p on %d %b, %Y",
        "%H:%M on %d %B, %Y",
    ] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Timestamp(dt.and_utc().timestamp_millis()));
        }
    }
    Timestamp::parse(s).ok()
}

struct Turn {
    dia_id: String,
    speaker: String,
    text: String,
}

struct Session {
    number: u64,
    at: Option<Timestamp>,
    turns: Vec<Turn>,
}

fn sessions(conv: &serde_json::Map<String, Value>) -> Vec<Session> {
    let mut out: Vec<Session> = conv
        .iter()
        .filter_map(|(k, v)| {
            let n: u64 = k.strip_prefix("session_")?.parse().ok()?;
            let turns = v.as_array()?;
            let at = conv
                .get(&format!("session_{n}_date_time"))
                .and_then(Value::as_str)
                .and_then(parse_session_time);
            let turns = turns
                .iter()
                .filter_map(|t| {
                    let mut text = t.get("text")?.as_str()?.trim().to_string();
                    if let Some(c) = t.get("blip_caption").and_then(Value::as_str) {
                        text = format!("{text} [image: {}]", c.trim());
                    }
                    Some(Turn {
                        dia_id: t.get("dia_id")?.as_str()?.trim().to_string(),
                        speaker: t
                            .get("speaker")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .trim()
                            .to_string(),
                        text,
                    })
                })
                .filter(|t| !t.text.is_empty())
                .collect();
            Some(Session {
                number: n,
                at,
                turns,
            })
        })
        .collect();
    out.sort_by_key(|s| s.number);
    out
}

/// A question with the turns that answer it.
pub(super) struct Question {
    pub(super) category: u64,
    pub(super) text: String,
    pub(super) evidence: HashSet<String>,
    /// The sessions of the evidence turns.
    pub(super) sessions: HashSet<u64>,
}

/// One conversation as stored: its tenant, its memories' turns, and its questions.
pub(super) struct Conversation {
    pub(super) tenant: TenantId,
    /// Memory → (turn id, session number).
    pub(super) turn_of: HashMap<MemoryId, (String, u64)>,
    pub(super) questions: Vec<Question>,
}

/// Stores every conversation (one tenant each) and collects the questions to ask.
pub(super) async fn ingest_all(
    engine: &Engine,
    samples: &[Value],
    half: Option<&str>,
    quiet: bool,
) -> Result<(Vec<Conversation>, usize, usize, usize)> {
    let (mut memories, mut skipped_q, mut skipped_ids) = (0usize, 0usize, 0usize);
    let mut question_no = 0usize;
    let mut convs = Vec::new();
    let pb = output::progress(samples.len() as u64, "conversations", quiet);
    for (i, sample) in samples.iter().enumerate() {
        let conv = sample
            .get("conversation")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::InvalidInput(format!("sample {i} has no conversation object")))?;
        let tenant = TenantId::new(format!("locomo-{i}"))?;
        let mut turn_of: HashMap<MemoryId, (String, u64)> = HashMap::new();
        // Turn id → its session.
        let mut known: HashMap<String, u64> = HashMap::new();
        let mut last_at = Timestamp(0);
        for session in sessions(conv) {
            // A session without a readable date follows the previous one by a day.
            let start = session
                .at
                .unwrap_or(Timestamp(last_at.millis() + 86_400_000));
            let sid = SessionId::new(format!("session_{}", session.number))?;
            for (j, turn) in session.turns.iter().enumerate() {
                let mut metadata = Metadata::new();
                metadata.insert("speaker".into(), turn.speaker.clone().into());
                metadata.insert("dia_id".into(), turn.dia_id.clone().into());
                let content = if turn.speaker.is_empty() {
                    turn.text.clone()
                } else {
                    format!("{}: {}", turn.speaker, turn.text)
                };
                let at = Timestamp(start.millis() + j as i64 * 1000);
                let m = engine
                    .remember(
                        &tenant,
                        RememberRequest {
                            content,
                            source: Source::User,
                            kind: Some("turn".into()),
                            session: Some(sid.clone()),
                            metadata,
                            created_at: Some(at),
                        },
                    )
                    .await?;
                turn_of.insert(m.id, (turn.dia_id.clone(), session.number));
                known.insert(turn.dia_id.clone(), session.number);
                memories += 1;
                last_at = at;
            }
        }
        let mut questions = Vec::new();
        for qa in sample
            .get("qa")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(category) = qa.get("category").and_then(Value::as_u64) else {
                continue;
            };
            if !SCORED.contains(&category) {
                continue;
            }
            question_no += 1;
            match half {
                Some("a") if question_no.is_multiple_of(2) => continue,
                Some("b") if !question_no.is_multiple_of(2) => continue,
                _ => {}
            }
            let question = qa
                .get("question")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            let evidence: Vec<String> = qa
                .get("evidence")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|e| e.trim().to_string())
                .collect();
            let valid: HashSet<String> = evidence
                .iter()
                .filter(|e| known.contains_key(*e))
                .cloned()
                .collect();
            let sessions = valid.iter().map(|e| known[e]).collect();
            skipped_ids += evidence.len() - valid.len();
            if question.is_empty() || valid.is_empty() {
                skipped_q += 1;
                continue;
            }
            questions.push(Question {
                category,
                text: question.to_string(),
                evidence: valid,
                sessions,
            });
        }
        convs.push(Conversation {
            tenant,
            turn_of,
            questions,
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok((convs, memories, skipped_q, skipped_ids))
}
