//! Every federation message is an envelope signed by its sender.
//!
//! On the wire a message is a JSON object with two strings:
//!
//! ```json
//! {"envelope": "{\"v\":1,\"type\":\"query\",\"sender\":\"…\",\"at\":…,\"nonce\":\"…\",\"body\":{…}}",
//!  "signature": "base64 of the Ed25519 signature of the envelope string's UTF-8 bytes"}
//! ```
//!
//! The signature covers the exact bytes of the envelope text as sent, so no canonical form is
//! needed and any changed byte fails it. A receiver ([`Verifier::open`]) checks, in order: the
//! size, the shape, the version, that the sender is a node it knows (and the one the TLS
//! connection proved, when given), the signature (`verify_strict`), the clock (at most
//! [`MAX_SKEW_MS`] off), and that the sender's nonce was not seen within the window (replay).
//! A nonce is remembered only once its signature was checked, so forged messages cannot fill
//! the replay cache.

use crate::identity::{NodeId, NodeKey, hex};
use crate::{Error, Refusal};
use base64::Engine as _;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The envelope version this build writes and reads.
pub const PROTOCOL_VERSION: u8 = 1;
/// The largest message accepted, signature and all.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// How far a message's time may be from the receiver's clock, either way.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;
/// How many nonces a verifier remembers at most (past it, new messages are refused as busy
/// until the oldest leave the window).
pub const MAX_REMEMBERED_NONCES: usize = 1_000_000;

/// What a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    Hello,
    Contribute,
    Query,
    Result,
    Sync,
    Heartbeat,
}

impl MessageType {
    pub const ALL: [MessageType; 6] = [
        MessageType::Hello,
        MessageType::Contribute,
        MessageType::Query,
        MessageType::Result,
        MessageType::Sync,
        MessageType::Heartbeat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Hello => "hello",
            MessageType::Contribute => "contribute",
            MessageType::Query => "query",
            MessageType::Result => "result",
            MessageType::Sync => "sync",
            MessageType::Heartbeat => "heartbeat",
        }
    }
}

/// A message's signed content.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub v: u8,
    #[serde(rename = "type")]
    pub kind: MessageType,
    pub sender: NodeId,
    /// When it was sealed, in Unix milliseconds.
    pub at: i64,
    /// 32 lowercase hex digits, fresh for every message.
    pub nonce: String,
    pub body: serde_json::Value,
}

/// A message as sent: the envelope's text and its signature.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    pub envelope: String,
    pub signature: String,
}

impl Sealed {
    /// Seals `body` as a `kind` message from `key`'s node at `now_ms`, with a fresh nonce.
    pub fn seal(
        key: &NodeKey,
        kind: MessageType,
        body: serde_json::Value,
        now_ms: i64,
    ) -> Result<Sealed, Error> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)
            .map_err(|e| Error::Internal(format!("no random source: {e}")))?;
        Sealed::seal_with_nonce(key, kind, body, now_ms, &hex(&nonce))
    }

    /// As [`Sealed::seal`] with a given nonce (tests, and re-sending a message unchanged).
    pub fn seal_with_nonce(
        key: &NodeKey,
        kind: MessageType,
        body: serde_json::Value,
        now_ms: i64,
        nonce: &str,
    ) -> Result<Sealed, Error> {
        let envelope = Envelope {
            v: PROTOCOL_VERSION,
            kind,
            sender: key.id().clone(),
            at: now_ms,
            nonce: nonce.to_string(),
            body,
        };
        let text = serde_json::to_string(&envelope).map_err(|e| Error::Internal(e.to_string()))?;
        let signature = key.sign(text.as_bytes());
        let sealed = Sealed {
            envelope: text,
            signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        };
        if sealed.to_bytes().len() > MAX_MESSAGE_BYTES {
            return Err(Error::TooLarge(format!(
                "a message is at most {MAX_MESSAGE_BYTES} bytes"
            )));
        }
        Ok(sealed)
    }

    /// The bytes to send.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Checks received messages and remembers their nonces for the replay window.
pub struct Verifier {
    max_skew_ms: i64,
    max_nonces: usize,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// (sender, nonce) → the time after which it may be forgotten.
    until: HashMap<(NodeId, String), i64>,
    order: VecDeque<(i64, NodeId, String)>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new(MAX_SKEW_MS, MAX_REMEMBERED_NONCES)
    }
}

impl Verifier {
    pub fn new(max_skew_ms: i64, max_nonces: usize) -> Verifier {
        Verifier {
            max_skew_ms,
            max_nonces,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Opens a received message: every check in the module's order; the first that fails is
    /// the refusal. `key_of` gives a known node's public key (none: unknown or revoked);
    /// `peer`, when the transport proved who sent it (mutual TLS), must be the sender.
    pub fn open(
        &self,
        wire: &[u8],
        key_of: impl Fn(&NodeId) -> Option<ed25519_dalek::VerifyingKey>,
        peer: Option<&NodeId>,
        now_ms: i64,
    ) -> Result<Envelope, Refusal> {
        if wire.len() > MAX_MESSAGE_BYTES {
            return Err(Refusal::TooLarge(wire.len()));
        }
        let sealed: Sealed = serde_json::from_slice(wire)
            .map_err(|e| Refusal::Malformed(format!("not a sealed message: {e}")))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed.signature.as_bytes())
            .map_err(|_| Refusal::Malformed("the signature is not base64".into()))?;
        let raw: [u8; 64] = raw
            .try_into()
            .map_err(|_| Refusal::Malformed("a signature is 64 bytes".into()))?;
        let signature = ed25519_dalek::Signature::from_bytes(&raw);
        // The version first, from the raw JSON, so a newer envelope is named as such rather
        // than as malformed.
        let version = serde_json::from_str::<serde_json::Value>(&sealed.envelope)
            .ok()
            .and_then(|v| v.get("v").and_then(|v| v.as_u64()));
        match version {
            Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
            Some(v) => return Err(Refusal::Version(v)),
            None => return Err(Refusal::Malformed("the envelope has no version".into())),
        }
        let envelope: Envelope = serde_json::from_str(&sealed.envelope)
            .map_err(|e| Refusal::Malformed(format!("the envelope: {e}")))?;
        if let Some(peer) = peer
            && *peer != envelope.sender
        {
            return Err(Refusal::NotThePeer {
                sender: envelope.sender,
                peer: peer.clone(),
            });
        }
        let key = key_of(&envelope.sender)
            .ok_or_else(|| Refusal::UnknownSender(envelope.sender.clone()))?;
        key.verify_strict(sealed.envelope.as_bytes(), &signature)
            .map_err(|_| Refusal::BadSignature(envelope.sender.clone()))?;
        let skew = now_ms - envelope.at;
        if skew.abs() > self.max_skew_ms {
            return Err(Refusal::Stale { skew_ms: skew });
        }
        if envelope.nonce.len() != 32
            || !envelope
                .nonce
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(Refusal::Malformed(
                "a nonce is 32 lowercase hex digits".into(),
            ));
        }
        self.remember(&envelope, now_ms)?;
        Ok(envelope)
    }

    /// Records the message's nonce, refusing one seen within the window.
    fn remember(&self, e: &Envelope, now_ms: i64) -> Result<(), Refusal> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Refusal::Busy("the replay cache lock was poisoned".into()))?;
        // Forget what left the window: a message that old is refused as stale anyway.
        while let Some((until, ..)) = seen.order.front()
            && *until < now_ms
        {
            if let Some((_, node, nonce)) = seen.order.pop_front() {
                seen.until.remove(&(node, nonce));
            }
        }
        let k = (e.sender.clone(), e.nonce.clone());
        if seen.until.contains_key(&k) {
            return Err(Refusal::Replayed(e.sender.clone()));
        }
        if seen.until.len() >= self.max_nonces {
            return Err(Refusal::Busy(format!(
                "{} messages within the replay window; try again shortly",
                self.max_nonces
            )));
        }
        // Kept until the message could no longer pass the clock check.
        let until = e.at.max(now_ms) + self.max_skew_ms;
        seen.until.insert(k.clone(), until);
        seen.order.push_back((until, k.0, k.1));
        // Out-of-order expiries (a message from the future) are fine: the front is a bound.
        Ok(())
    }

    /// Nonces remembered now.
    pub fn remembered(&self) -> usize {
        self.seen.lock().map(|s| s.until.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: i64 = 1_796_000_000_000;

    fn keys() -> (NodeKey, NodeKey) {
        (NodeKey::from_seed(&[1; 32]), NodeKey::from_seed(&[2; 32]))
    }

    fn lookup<'a>(
        known: &'a [&'a NodeKey],
    ) -> impl Fn(&NodeId) -> Option<ed25519_dalek::VerifyingKey> + 'a {
        move |id| known.iter().find(|k| k.id() == id).map(|k| k.public())
    }

    #[test]
    fn a_sealed_message_opens_once() {
        let (a, b) = keys();
        let v = Verifier::default();
        let m = Sealed::seal(&a, MessageType::Query, json!({"q": "rust"}), NOW).unwrap();
        let e = v
            .open(&m.to_bytes(), lookup(&[&a, &b]), Some(a.id()), NOW + 10)
            .unwrap();
        assert_eq!(
            (e.kind, &e.sender, &e.body),
            (MessageType::Query, a.id(), &json!({"q": "rust"}))
        );
        // The same bytes again: a replay.
        assert!(matches!(
            v.open(&m.to_bytes(), lookup(&[&a, &b]), None, NOW + 20),
            Err(Refusal::Replayed(_))
        ));
        assert_eq!(v.remembered(), 1);
    }

    #[test]
    fn every_check_refuses_with_its_own_reason() {
        let (a, b) = keys();
        let v = Verifier::default();
        let known = [&a];
        let m = Sealed::seal(&a, MessageType::Contribute, json!({"n": 1}), NOW).unwrap();

        // A tampered byte in the signed body.
        let mut t = m.clone();
        t.envelope = t.envelope.replace("\"n\":1", "\"n\":2");
        assert!(matches!(
            v.open(&t.to_bytes(), lookup(&known), None, NOW),
            Err(Refusal::BadSignature(_))
        ));
        // Ten minutes off, either way.
        for at in [NOW - 600_000, NOW + 600_000] {
            let s = Sealed::seal(&a, MessageType::Hello, json!({}), at).unwrap();
            assert!(matches!(
                v.open(&s.to_bytes(), lookup(&known), None, NOW),
                Err(Refusal::Stale { .. })
            ));
        }
        // An unknown (or revoked) sender; and a sender that is not the TLS peer.
        let s = Sealed::seal(&b, MessageType::Hello, json!({}), NOW).unwrap();
        assert!(matches!(
            v.open(&s.to_bytes(), lookup(&known), None, NOW),
            Err(Refusal::UnknownSender(_))
        ));
        assert!(matches!(
            v.open(&m.to_bytes(), lookup(&known), Some(b.id()), NOW),
            Err(Refusal::NotThePeer { .. })
        ));
        // A signature made by another key over the same text.
        let forged = Sealed {
            envelope: m.envelope.clone(),
            signature: base64::engine::general_purpose::STANDARD
                .encode(b.sign(m.envelope.as_bytes()).to_bytes()),
        };
        assert!(matches!(
            v.open(&forged.to_bytes(), lookup(&known), None, NOW),
            Err(Refusal::BadSignature(_))
        ));
        // Garbage, a newer version, an oversized message.
        assert!(matches!(
            v.open(b"{}", lookup(&known), None, NOW),
            Err(Refusal::Malformed(_))
        ));
        let newer = m.envelope.replace("\"v\":1", "\"v\":2");
        let newer = Sealed {
            signature: base64::engine::general_purpose::STANDARD
                .encode(a.sign(newer.as_bytes()).to_bytes()),
            envelope: newer,
        };
        assert!(matches!(
            v.open(&newer.to_bytes(), lookup(&known), None, NOW),
            Err(Refusal::Version(2))
        ));
        let big = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            v.open(&big, lookup(&known), None, NOW),
            Err(Refusal::TooLarge(_))
        ));
        // None of the refused ones was remembered; the genuine one still opens.
        assert_eq!(v.remembered(), 0);
        v.open(&m.to_bytes(), lookup(&known), None, NOW).unwrap();
    }

    #[test]
    fn nonces_leave_the_cache_with_the_window_and_the_cache_is_bounded() {
        let (a, _) = keys();
        let v = Verifier::new(MAX_SKEW_MS, 2);
        let seal = |at: i64, n: &str| {
            Sealed::seal_with_nonce(&a, MessageType::Heartbeat, json!({}), at, &n.repeat(32))
                .unwrap()
                .to_bytes()
        };
        v.open(&seal(NOW, "1"), lookup(&[&a]), None, NOW).unwrap();
        v.open(&seal(NOW, "2"), lookup(&[&a]), None, NOW).unwrap();
        assert!(matches!(
            v.open(&seal(NOW, "3"), lookup(&[&a]), None, NOW),
            Err(Refusal::Busy(_))
        ));
        // Past the window the old nonces are forgotten, and room is back.
        let later = NOW + 2 * MAX_SKEW_MS + 1;
        v.open(&seal(later, "3"), lookup(&[&a]), None, later)
            .unwrap();
        assert_eq!(v.remembered(), 1);
    }

    fn body() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "\\PC{0,40}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_codec_round_trips_and_any_flipped_byte_is_refused(
            kind in proptest::sample::select(MessageType::ALL.to_vec()),
            body in body(),
            at in (NOW - 200_000)..(NOW + 200_000),
            flip in any::<proptest::sample::Index>(),
        ) {
            let (a, _) = keys();
            let m = Sealed::seal(&a, kind, body.clone(), at).unwrap();
            let wire = m.to_bytes();
            let back = Verifier::default().open(&wire, lookup(&[&a]), Some(a.id()), NOW).unwrap();
            prop_assert_eq!(back.kind, kind);
            prop_assert_eq!(back.at, at);
            prop_assert_eq!(&back.body, &body);
            // Change one byte of the envelope's text (keeping it a string): refused.
            let mut text = m.envelope.clone().into_bytes();
            let i = flip.index(text.len());
            text[i] = if text[i] == b'x' { b'y' } else { b'x' };
            if let Ok(text) = String::from_utf8(text) && text != m.envelope {
                let t = Sealed { envelope: text, signature: m.signature.clone() };
                prop_assert!(Verifier::default().open(&t.to_bytes(), lookup(&[&a]), None, NOW).is_err());
            }
        }
    }
}
