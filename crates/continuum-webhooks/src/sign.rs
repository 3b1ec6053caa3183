//! Standard Webhooks signatures: HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the
//! base64-decoded part of a `whsec_` secret, sent as `v1,<base64>` (several, space-separated,
//! while a rotated-out secret still signs).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use continuum_core::{Error, Result};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a timestamp may be from the verifier's clock, either way (the reference
/// libraries' value).
pub const TOLERANCE_SECS: i64 = 300;

fn key(secret: &str) -> Result<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .map_err(|_| Error::InvalidInput("a webhook secret is whsec_ and base64".into()))
}

fn mac(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)?)
        .map_err(|_| Error::Internal("an HMAC key was refused".into()))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// One signature: `v1,<base64 of the HMAC>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let tag = mac(secret, id, timestamp, body)?.finalize().into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let mut parts = Vec::with_capacity(secrets.len());
    for s in secrets {
        parts.push(sign(s, id, timestamp, body)?);
    }
    Ok(parts.join(" "))
}

/// Verifies a delivery as a receiver would: the timestamp within [`TOLERANCE_SECS`] of `now`
/// and any `v1` signature in the header made with `secret` (compared in constant time).
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
    now: i64,
) -> bool {
    let Ok(ts) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    if (now - ts).abs() > TOLERANCE_SECS {
        return false;
    }
    header.split(' ').any(|sig| {
        let Some(encoded) = sig.strip_prefix("v1,") else {
            return false;
        };
        let (Ok(expected), Ok(m)) = (STANDARD.decode(encoded), mac(secret, id, ts, body)) else {
            return false;
        };
        m.verify_slice(&expected).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector of the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1649367553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn the_reference_vector_signs_and_verifies() {
        assert_eq!(sign(SECRET, ID, TS, BODY).unwrap(), EXPECTED);
        assert!(verify(SECRET, ID, "1649367553", BODY, EXPECTED, TS + 10));
    }

    #[test]
    fn tampering_old_or_future_timestamps_and_other_secrets_fail() {
        let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert!(!verify(SECRET, ID, "1649367553", b"{}", EXPECTED, TS));
        assert!(!verify(
            SECRET,
            "msg_other",
            "1649367553",
            BODY,
            EXPECTED,
            TS
        ));
        assert!(!verify(SECRET, ID, "1649367553", BODY, EXPECTED, TS + 301));
        assert!(!verify(SECRET, ID, "1649367553", BODY, EXPECTED, TS - 301));
        assert!(!verify(other, ID, "1649367553", BODY, EXPECTED, TS));
        assert!(!verify(SECRET, ID, "1649367553", BODY, "v1,AAAA", TS));
        assert!(!verify(SECRET, ID, "not-a-time", BODY, EXPECTED, TS));
        // Two signatures during a rotation: either secret verifies.
        let both = signature_header(&[other, SECRET], ID, TS, BODY).unwrap();
        assert!(verify(SECRET, ID, "1649367553", BODY, &both, TS));
        assert!(verify(other, ID, "1649367553", BODY, &both, TS));
    }
}
