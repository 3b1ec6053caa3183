//! The audit log's tail, made detectable: Ed25519-signed checkpoints of its hash chain.
//!
//! The chain in the store ([`continuum_core::audit`]) shows an entry altered, removed or
//! reordered, but not a tail cut off, nor a chain rewritten from some entry on by someone
//! who can write the database. A checkpoint records the log's size and head hash at a moment,
//! signed with a key kept outside the store; kept somewhere else (another machine, a log
//! collector, a backup), it lets `continuum audit verify --checkpoint FILE` prove that the log
//! still holds those entries, unchanged.
//!
//! The format is a signed note in the style of transparency logs (C2SP `tlog-checkpoint`):
//!
//! ```text
//! <origin>
//! <size>
//! <base64 of the head hash>
//!
//! — <key name> <base64 of (4-byte key id ‖ 64-byte Ed25519 signature)>
//! ```
//!
//! The signature covers the three lines before the blank one, newlines included. The key id
//! is the first four bytes of `SHA-256(<key name> ‖ "\n" ‖ 0x01 ‖ <public key>)`. A public key
//! is written `<key name>+<hex key id>+<base64 of (0x01 ‖ public key)>`.

pub mod syslog;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use continuum_core::keys::Caller;
use continuum_core::{Error, Result};
use continuum_engine::Engine;
use ed25519_dalek::{Signer, Verifier};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The origin line of this project's checkpoints.
pub const ORIGIN: &str = "continuum audit log";
/// The longest checkpoint file read.
pub const MAX_CHECKPOINT_BYTES: usize = 4096;
/// The Ed25519 algorithm byte of signed notes.
const ALG_ED25519: u8 = 0x01;

/// A signing key and the name it signs under.
pub struct AuditKey {
    name: String,
    key: ed25519_dalek::SigningKey,
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(Error::InvalidInput(format!(
            "'{name}' is not a key name (1 to 64 characters, no spaces or '+')"
        )));
    }
    Ok(())
}

impl AuditKey {
    /// The key in `path` (base64 of its 32-byte seed), made there first (readable by its
    /// owner only) when the file does not exist.
    pub fn load_or_create(path: &Path, name: &str) -> Result<AuditKey> {
        check_name(name)?;
        let seed = match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = B64.decode(text.trim()).map_err(|_| {
                    Error::InvalidInput(format!(
                        "{} is not an audit signing key (base64 of 32 bytes)",
                        path.display()
                    ))
                })?;
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    Error::InvalidInput(format!(
                        "{} is not an audit signing key (32 bytes)",
                        path.display()
                    ))
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed)
                    .map_err(|e| Error::Internal(format!("no randomness for a key: {e}")))?;
                write_private(path, &B64.encode(seed))?;
                tracing::info!(path = %path.display(), "made a new audit signing key");
                seed
            }
            Err(e) => {
                return Err(Error::Unavailable(format!(
                    "cannot read the audit signing key {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(AuditKey {
            name: name.to_string(),
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// The public key, as `<name>+<hex key id>+<base64(0x01 ‖ key)>`.
    pub fn public(&self) -> String {
        let public = self.key.verifying_key().to_bytes();
        let id = key_id(&self.name, &public);
        let mut tagged = vec![ALG_ED25519];
        tagged.extend_from_slice(&public);
        format!(
            "{}+{}+{}",
            self.name,
            id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            B64.encode(tagged)
        )
    }

    /// A checkpoint of a log of `size` entries whose last hash is `head_hash` (hex).
    pub fn sign(&self, size: u64, head_hash: &str) -> Result<String> {
        let hash = unhex(head_hash)
            .ok_or_else(|| Error::Internal(format!("'{head_hash}' is not a SHA-256 hash")))?;
        let body = format!("{ORIGIN}\n{size}\n{}\n", B64.encode(hash));
        let public = self.key.verifying_key().to_bytes();
        let mut sig = key_id(&self.name, &public).to_vec();
        sig.extend_from_slice(&self.key.sign(body.as_bytes()).to_bytes());
        Ok(format!(
            "{body}\n\u{2014} {} {}\n",
            self.name,
            B64.encode(sig)
        ))
    }
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        Error::Unavailable(format!(
            "cannot create the audit signing key {}: {e}",
            path.display()
        ))
    })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::Unavailable(format!("cannot write {}: {e}", path.display())))
}

/// 32 bytes (a SHA-256 or a signature half) as 64 hex digits, or `None`.
fn unhex(s: &str) -> Option<Vec<u8>> {
    (s.len() == 64).then(|| continuum_core::unhex(s)).flatten()
}

/// A checkpoint read and its signature checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub size: u64,
    /// The head hash, hex.
    pub head_hash: String,
    /// The key name that signed it.
    pub signer: String,
}

/// A public key from its text form.
pub struct PublicKey {
    name: String,
    id: [u8; 4],
    key: ed25519_dalek::VerifyingKey,
}

impl PublicKey {
    pub fn parse(text: &str) -> Result<PublicKey> {
        let bad = || Error::InvalidInput("an audit public key is NAME+KEYID+BASE64".into());
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let tagged = B64.decode(key).map_err(|_| bad())?;
        if tagged.len() != 33 || tagged[0] != ALG_ED25519 {
            return Err(bad());
        }
        let public: [u8; 32] = tagged[1..].try_into().map_err(|_| bad())?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public).map_err(|_| bad())?;
        let expected = key_id(name, &public);
        if id
            != expected
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        {
            return Err(Error::InvalidInput(
                "the audit public key's id does not match its name and key".into(),
            ));
        }
        Ok(PublicKey {
            name: name.to_string(),
            id: expected,
            key,
        })
    }
}

impl Checkpoint {
    /// Reads `text` and checks its signature with `key`.
    pub fn verify(text: &str, key: &PublicKey) -> Result<Checkpoint> {
        let bad = |why: &str| Error::InvalidInput(format!("not a valid checkpoint: {why}"));
        if text.len() > MAX_CHECKPOINT_BYTES {
            return Err(bad("too long"));
        }
        let (body, sigs) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let body = format!("{body}\n");
        let lines: Vec<&str> = body.lines().collect();
        if lines.len() != 3 || lines[0] != ORIGIN {
            return Err(bad("the body is not origin, size and hash"));
        }
        let size: u64 = lines[1]
            .parse()
            .map_err(|_| bad("the size is not a number"))?;
        let hash = B64
            .decode(lines[2])
            .ok()
            .filter(|h| h.len() == 32)
            .ok_or_else(|| bad("the hash is not base64 of 32 bytes"))?;
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                continue;
            };
            let Some((name, sig)) = rest.split_once(' ') else {
                continue;
            };
            let Ok(sig) = B64.decode(sig) else { continue };
            if name != key.name || sig.len() != 68 || sig[..4] != key.id {
                continue;
            }
            let signature = ed25519_dalek::Signature::from_bytes(
                sig[4..].try_into().expect("64 bytes checked above"),
            );
            if key.key.verify(body.as_bytes(), &signature).is_ok() {
                return Ok(Checkpoint {
                    size,
                    head_hash: hash.iter().map(|b| format!("{b:02x}")).collect(),
                    signer: name.to_string(),
                });
            }
            return Err(bad("the signature does not match"));
        }
        Err(bad("no signature by this key"))
    }
}

/// What checking the log against a checkpoint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointCheck {
    /// The log holds the checkpoint's entries, unchanged, and its chain is intact.
    Holds,
    /// The log has fewer entries than the checkpoint recorded: its tail was cut.
    Truncated { entries: u64 },
    /// The entry at the checkpoint's size has another hash: the chain was rewritten.
    Rewritten,
}

/// Checks the log in `engine` against `checkpoint` (the chain itself is verified by the
/// caller, with [`Engine::verify_audit`]).
pub async fn check(
    engine: &Engine,
    who: &Caller,
    checkpoint: &Checkpoint,
) -> Result<CheckpointCheck> {
    if checkpoint.size == 0 {
        return Ok(CheckpointCheck::Holds);
    }
    let head = engine.audit_head(who.clone()).await?;
    if head < checkpoint.size {
        return Ok(CheckpointCheck::Truncated { entries: head });
    }
    let at = engine
        .audit_entries(who.clone(), checkpoint.size - 1, 1)
        .await?;
    match at.first() {
        Some(e) if e.seq == checkpoint.size && e.hash == checkpoint.head_hash => {
            Ok(CheckpointCheck::Holds)
        }
        Some(e) if e.seq == checkpoint.size => Ok(CheckpointCheck::Rewritten),
        _ => Ok(CheckpointCheck::Truncated {
            entries: checkpoint.size - 1,
        }),
    }
}

/// When the checkpoint job signs.
#[derive(Debug, Clone)]
pub struct CheckpointPolicy {
    /// Where checkpoints are written: `checkpoint-<size>.txt` and `latest.txt`. Point it at
    /// storage on another machine (a mount, a synced folder).
    pub dir: PathBuf,
    /// Sign after this many new entries…
    pub every_entries: u64,
    /// …or this long after the last checkpoint, if anything was appended.
    pub every: Duration,
}

/// Signs checkpoints until `stop`: each new stretch of the chain is verified first (a broken
/// chain is never signed: the job fails and says where), then signed and written, and the
/// checkpoint is logged (so that log shipping carries it off the machine too).
pub async fn run_checkpoints(
    engine: Engine,
    key: std::sync::Arc<AuditKey>,
    policy: CheckpointPolicy,
    stop: continuum_engine::CancellationToken,
) -> std::result::Result<(), String> {
    let operator = Caller::local(continuum_core::TenantId::new("system").expect("a valid id"));
    tokio::fs::create_dir_all(&policy.dir)
        .await
        .map_err(|e| format!("creating {}: {e}", policy.dir.display()))?;
    let mut verified: Option<(u64, String)> = None;
    let mut signed_at = tokio::time::Instant::now();
    let mut signed_size = 0u64;
    let poll = Duration::from_secs(1).min(policy.every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(poll) => {}
        }
        let head = engine
            .audit_head(operator.clone())
            .await
            .map_err(|e| e.to_string())?;
        let due = head > signed_size
            && (head - signed_size >= policy.every_entries || signed_at.elapsed() >= policy.every);
        if !due {
            continue;
        }
        // Verify what was appended since the last verified entry.
        loop {
            let after = verified.as_ref().map_or(0, |v| v.0);
            let page = engine
                .audit_entries(operator.clone(), after, 10_000)
                .await
                .map_err(|e| e.to_string())?;
            if page.is_empty() {
                break;
            }
            if let Some(f) = continuum_core::audit::verify_chain(verified.clone(), &page) {
                metrics::counter!(continuum_ops::metrics::AUDIT_CHAIN_BROKEN).increment(1);
                return Err(format!(
                    "the audit log is broken at entry {} ({}): {}; no checkpoint signed",
                    f.seq, f.problem, f.detail
                ));
            }
            let last = page.last().expect("not empty");
            verified = Some((last.seq, last.hash.clone()));
        }
        let Some((size, hash)) = verified.clone() else {
            continue;
        };
        let note = key.sign(size, &hash).map_err(|e| e.to_string())?;
        let file = policy.dir.join(format!("checkpoint-{size}.txt"));
        let tmp = policy.dir.join(".latest.tmp");
        tokio::fs::write(&file, &note)
            .await
            .and(tokio::fs::write(&tmp, &note).await)
            .and(tokio::fs::rename(&tmp, policy.dir.join("latest.txt")).await)
            .map_err(|e| format!("writing a checkpoint to {}: {e}", policy.dir.display()))?;
        tracing::info!(size, head_hash = %hash, checkpoint = %note.replace('\n', "\\n"), "audit checkpoint signed");
        signed_size = size;
        signed_at = tokio::time::Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_with_its_key_only_and_any_change_breaks_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::load_or_create(&dir.path().join("k"), "node-1").unwrap();
        let again = AuditKey::load_or_create(&dir.path().join("k"), "node-1").unwrap();
        assert_eq!(key.public(), again.public(), "the key is kept in its file");
        let hash = "ab".repeat(32);
        let note = key.sign(42, &hash).unwrap();
        assert!(note.starts_with("continuum audit log\n42\n"), "{note}");
        let public = PublicKey::parse(&key.public()).unwrap();
        let c = Checkpoint::verify(&note, &public).unwrap();
        assert_eq!((c.size, c.head_hash.as_str()), (42, hash.as_str()));

        let forged = note.replace("\n42\n", "\n41\n");
        assert!(Checkpoint::verify(&forged, &public).is_err());
        let other = AuditKey::load_or_create(&dir.path().join("other"), "node-1").unwrap();
        let other_public = PublicKey::parse(&other.public()).unwrap();
        assert!(Checkpoint::verify(&note, &other_public).is_err());
        let mut tampered_key = key.public();
        tampered_key.replace_range(0..4, "evil");
        assert!(
            PublicKey::parse(&tampered_key).is_err(),
            "the id binds the name"
        );
        assert!(Checkpoint::verify("garbage", &public).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("k"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "only its owner reads the key");
        }
    }

    #[test]
    fn the_key_id_follows_the_signed_note_rule() {
        // SHA-256("n" ‖ "\n" ‖ 0x01 ‖ 32 zero bytes), first four bytes, computed independently:
        // python3 -c 'import hashlib; print(hashlib.sha256(b"n\n\x01" + bytes(32)).hexdigest()[:8])'
        assert_eq!(hex4(key_id("n", &[0u8; 32])), "6986284b");
    }

    fn hex4(b: [u8; 4]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
