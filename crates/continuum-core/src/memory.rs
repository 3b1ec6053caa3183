//! Memories, the stored pieces of text, and the records that hang off them.

use crate::error::{Error, Result};
use crate::ids::{MemoryId, SessionId};
use crate::time::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Who or what a memory came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    User,
    Assistant,
    /// The assistant's reasoning, recallable on its own ("how did I approach this before?").
    Thinking,
    System,
    Document,
    Fact,
    Note,
}

impl Source {
    pub const ALL: [Source; 7] = [
        Source::User,
        Source::Assistant,
        Source::Thinking,
        Source::System,
        Source::Document,
        Source::Fact,
        Source::Note,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::User => "user",
            Source::Assistant => "assistant",
            Source::Thinking => "thinking",
            Source::System => "system",
            Source::Document => "document",
            Source::Fact => "fact",
            Source::Note => "note",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Source::ALL
            .into_iter()
            .find(|src| src.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "unknown source '{s}' (expected one of: user, assistant, thinking, system, document, fact, note)"
                ))
            })
    }
}

/// Free-form JSON metadata attached to a memory. Always a JSON object.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// One stored piece of text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Memory {
    pub id: MemoryId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionId>,
    pub source: Source,
    pub kind: String,
    pub content: String,
    #[serde(default)]
    pub metadata: Metadata,
    pub created_at: Timestamp,
    /// Hex SHA-256 of the content, for exact-duplicate detection.
    pub content_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<MemoryId>,
}

impl Memory {
    pub fn is_superseded(&self) -> bool {
        self.superseded_by.is_some()
    }
}

/// A memory about to be stored: everything but what the store assigns.
pub type NewMemory = Memory;

/// Hex SHA-256 of a text.
pub fn content_hash(text: &str) -> String {
    crate::sha256_hex(text.as_bytes())
}

/// One conversation turn as an agent hands it over: the shape of the original service's learn
/// request, so its clients and history files work unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    pub user_message: String,
    pub ai_response: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// When the turn happened; defaults to now. Lets history imports keep their real times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

/// A decision detected in an assistant's reply ("I will…", "Let's…").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    pub id: MemoryId,
    /// The memory the decision was found in.
    pub memory_id: MemoryId,
    pub text: String,
    pub created_at: Timestamp,
}

/// A conversation, as the store summarises it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionInfo {
    pub id: SessionId,
    pub started_at: Timestamp,
    pub last_at: Timestamp,
    pub memories: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            content_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sources_parse_case_insensitively_and_reject_unknown() {
        assert_eq!("Thinking".parse::<Source>().unwrap(), Source::Thinking);
        let err = "robot".parse::<Source>().unwrap_err();
        assert!(err.to_string().contains("unknown source 'robot'"));
    }

    #[test]
    fn turn_json_matches_the_original_learn_request() {
        let t: Turn = serde_json::from_str(
            r#"{"user_message":"hi","ai_response":"hello","thinking":"greet","session_id":"s1","metadata":{"k":1}}"#,
        )
        .unwrap();
        assert_eq!(t.session_id.unwrap().as_str(), "s1");
        assert!(serde_json::from_str::<Turn>(r#"{"user_message":"hi"}"#).is_err());
        assert!(
            serde_json::from_str::<Turn>(r#"{"user_message":"a","ai_response":"b","x":1}"#)
                .is_err()
        );
    }
}
