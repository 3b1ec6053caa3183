//! Sealing and opening a backup's data: the plain snapshot, compressed with zstd, encrypted
//! with age (a passphrase through scrypt, or X25519 recipients), hashed on both sides.
//!
//! age encrypts in 64 KiB chunks, each authenticated (ChaCha20-Poly1305, STREAM): a changed,
//! missing or reordered chunk, or a truncated file, fails to decrypt. No key is ever made up
//! here: encryption needs a passphrase or recipients the user gave, decryption the passphrase
//! or identities the user gave, and a backup is written unencrypted only when asked.

use crate::manifest::{Digest, EncryptionInfo, hex};
pub use age::secrecy::SecretString;
use continuum_core::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::str::FromStr;

/// The zstd level: 3 (zstd's default) compresses a store about 3x at well over 100 MB/s.
const ZSTD_LEVEL: i32 = 3;
/// The largest passphrase read from a file or the environment.
pub const MAX_PASSPHRASE_BYTES: usize = 1024;
/// The most recipients a backup may be encrypted to.
pub const MAX_RECIPIENTS: usize = 64;
/// The largest identity file read.
pub const MAX_IDENTITY_FILE_BYTES: u64 = 1024 * 1024;

/// How new backups are encrypted.
#[derive(Clone)]
pub enum Encryption {
    /// age with a passphrase (scrypt, work factor tuned to about a second on this machine).
    Passphrase(SecretString),
    /// age to these X25519 recipients (`age1…`); any one of their identities restores.
    Recipients(Vec<age::x25519::Recipient>),
    /// Not encrypted (only when the user says so).
    None,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.info().scheme)
    }
}

impl Encryption {
    /// Parses `age1…` recipients.
    pub fn recipients(list: &[String]) -> Result<Encryption> {
        if list.is_empty() || list.len() > MAX_RECIPIENTS {
            return Err(Error::InvalidInput(format!(
                "give 1 to {MAX_RECIPIENTS} recipients"
            )));
        }
        let parsed = list
            .iter()
            .map(|r| {
                age::x25519::Recipient::from_str(r.trim()).map_err(|e| {
                    Error::InvalidInput(format!(
                        "'{}' is not an age X25519 recipient (age1…): {e}",
                        r.chars().take(80).collect::<String>()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Encryption::Recipients(parsed))
    }

    pub fn info(&self) -> EncryptionInfo {
        match self {
            Encryption::Passphrase(_) => EncryptionInfo {
                scheme: "age-passphrase".into(),
                recipients: 0,
            },
            Encryption::Recipients(r) => EncryptionInfo {
                scheme: "age-x25519".into(),
                recipients: r.len(),
            },
            Encryption::None => EncryptionInfo {
                scheme: "none".into(),
                recipients: 0,
            },
        }
    }

    pub fn encrypts(&self) -> bool {
        !matches!(self, Encryption::None)
    }
}

/// What opens encrypted backups: a passphrase, identities, or both.
#[derive(Default)]
pub struct Keys {
    pub passphrase: Option<SecretString>,
    pub identities: Vec<Box<dyn age::Identity + Send + Sync>>,
}

impl Keys {
    /// Reads an age identity file (`AGE-SECRET-KEY-1…` lines, `#` comments).
    pub fn add_identity_file(&mut self, path: &Path) -> Result<()> {
        let len = std::fs::metadata(path)
            .map_err(|e| Error::InvalidInput(format!("identity file {}: {e}", path.display())))?
            .len();
        if len > MAX_IDENTITY_FILE_BYTES {
            return Err(Error::InvalidInput(format!(
                "identity file {} is over {MAX_IDENTITY_FILE_BYTES} bytes",
                path.display()
            )));
        }
        let bytes = std::fs::read(path)
            .map_err(|e| Error::InvalidInput(format!("identity file {}: {e}", path.display())))?;
        let file = age::IdentityFile::from_buffer(&bytes[..]).map_err(|e| {
            Error::InvalidInput(format!(
                "identity file {} is not an age identity file: {e}",
                path.display()
            ))
        })?;
        let ids = file.into_identities().map_err(|e| {
            Error::InvalidInput(format!(
                "identity file {} holds an identity this build cannot use: {e}",
                path.display()
            ))
        })?;
        if ids.is_empty() {
            return Err(Error::InvalidInput(format!(
                "identity file {} holds no identity",
                path.display()
            )));
        }
        self.identities.extend(ids);
        Ok(())
    }
}

/// Writes a new age X25519 identity to `path` (a new file, readable by its owner only) and
/// returns its recipient (`age1…`), what `--recipient` takes. The file is what restores:
/// keep a copy somewhere other than the backups.
pub fn generate_identity(path: &Path) -> Result<String> {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => Error::Conflict(format!(
            "{} already exists; an identity file is never overwritten",
            path.display()
        )),
        _ => io_err("creating", path, e),
    })?;
    let text = format!(
        "# created by continuum backup keygen\n# recipient: {recipient}\n{}\n",
        id.to_string().expose_secret()
    );
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| io_err("writing", path, e))?;
    Ok(recipient)
}

/// Reads a passphrase: the file's first line (a trailing newline is not part of it).
pub fn read_passphrase_file(path: &Path) -> Result<SecretString> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| Error::InvalidInput(format!("passphrase file {}: {e}", path.display())))?;
    let mut buf = Vec::new();
    (&mut f)
        .take(MAX_PASSPHRASE_BYTES as u64 + 2)
        .read_to_end(&mut buf)
        .map_err(|e| Error::InvalidInput(format!("passphrase file {}: {e}", path.display())))?;
    let text = String::from_utf8(buf).map_err(|_| {
        Error::InvalidInput(format!(
            "passphrase file {} is not UTF-8 text",
            path.display()
        ))
    })?;
    passphrase(text.lines().next().unwrap_or(""))
}

/// Checks a passphrase given as text.
pub fn passphrase(text: &str) -> Result<SecretString> {
    let p = text.trim_end_matches(['\r', '\n']);
    if p.is_empty() {
        return Err(Error::InvalidInput("the backup passphrase is empty".into()));
    }
    if p.len() > MAX_PASSPHRASE_BYTES {
        return Err(Error::InvalidInput(format!(
            "the backup passphrase is over {MAX_PASSPHRASE_BYTES} bytes"
        )));
    }
    Ok(SecretString::from(p.to_string()))
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W> Hashing<W> {
    pub(crate) fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    pub(crate) fn finish(self) -> (W, Digest) {
        (
            self.inner,
            Digest {
                bytes: self.bytes,
                sha256: hex(&self.hash.finalize()),
            },
        )
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

enum Crypt<W: Write> {
    Age(age::stream::StreamWriter<W>),
    Plain(W),
}

impl<W: Write> Write for Crypt<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Crypt::Age(w) => w.write(buf),
            Crypt::Plain(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Crypt::Age(w) => w.flush(),
            Crypt::Plain(w) => w.flush(),
        }
    }
}

type Stored = Hashing<io::BufWriter<std::fs::File>>;

/// The writing end: plain bytes in, the sealed object written to a file.
pub struct Sealer {
    inner: Hashing<zstd::stream::write::Encoder<'static, Crypt<Stored>>>,
}

impl Sealer {
    /// Starts a sealed object in `file` (created, truncated).
    pub fn create(file: &Path, encryption: &Encryption) -> Result<Sealer> {
        let f = std::fs::File::create(file).map_err(|e| io_err("creating", file, e))?;
        let stored = Hashing::new(io::BufWriter::with_capacity(1 << 20, f));
        let crypt = match encryption {
            Encryption::Passphrase(p) => Crypt::Age(
                age::Encryptor::with_user_passphrase(p.clone())
                    .wrap_output(stored)
                    .map_err(|e| io_err("writing", file, e))?,
            ),
            Encryption::Recipients(list) => {
                let e = age::Encryptor::with_recipients(list.iter().map(|r| r as _))
                    .map_err(|e| Error::InvalidInput(format!("age recipients: {e}")))?;
                Crypt::Age(
                    e.wrap_output(stored)
                        .map_err(|e| io_err("writing", file, e))?,
                )
            }
            Encryption::None => Crypt::Plain(stored),
        };
        let zstd = zstd::stream::write::Encoder::new(crypt, ZSTD_LEVEL)
            .map_err(|e| Error::Internal(format!("zstd: {e}")))?;
        Ok(Sealer {
            inner: Hashing::new(zstd),
        })
    }

    /// Finishes the object and syncs it to disk: the plain and the stored digests.
    pub fn finish(self) -> Result<(Digest, Digest)> {
        let (zstd, plain) = self.inner.finish();
        let crypt = zstd
            .finish()
            .map_err(|e| Error::Unavailable(format!("writing the backup: {e}")))?;
        let stored = match crypt {
            Crypt::Age(w) => w
                .finish()
                .map_err(|e| Error::Unavailable(format!("writing the backup: {e}")))?,
            Crypt::Plain(w) => w,
        };
        let (buf, stored) = stored.finish();
        let f = buf
            .into_inner()
            .map_err(|e| Error::Unavailable(format!("writing the backup: {}", e.error())))?;
        f.sync_all()
            .map_err(|e| Error::Unavailable(format!("syncing the backup: {e}")))?;
        Ok((plain, stored))
    }
}

impl Write for Sealer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The size and SHA-256 of a file.
pub fn digest_file(path: &Path) -> Result<Digest> {
    let f = std::fs::File::open(path).map_err(|e| io_err("reading", path, e))?;
    let mut h = Hashing::new(BufReader::with_capacity(1 << 20, f));
    io::copy(&mut h, &mut io::sink()).map_err(|e| io_err("reading", path, e))?;
    Ok(h.finish().1)
}

/// The reading end: decrypts and decompresses a sealed object, hashing the plain bytes.
pub struct Opener {
    inner: Hashing<Box<dyn Read + Send>>,
}

impl Opener {
    /// Opens the sealed object in `file`. `id` names the backup in errors. A wrong key is
    /// `Unauthorized`; bytes that are not a backup of this kind are `Conflict`.
    pub fn open(file: &Path, encrypted: bool, keys: &Keys, id: &str) -> Result<Opener> {
        let f = std::fs::File::open(file).map_err(|e| io_err("reading", file, e))?;
        let buffered = BufReader::with_capacity(1 << 20, f);
        let decrypted: Box<dyn Read + Send> = if encrypted {
            let d = age::Decryptor::new_buffered(buffered).map_err(|e| damaged(id, e))?;
            let mut ids: Vec<&dyn age::Identity> = Vec::new();
            let scrypt = keys
                .passphrase
                .as_ref()
                .map(|p| age::scrypt::Identity::new(p.clone()));
            if d.is_scrypt() {
                match &scrypt {
                    Some(s) => ids.push(s),
                    None => {
                        return Err(Error::Unauthorized(format!(
                            "backup {id} is encrypted with a passphrase; give --passphrase-file or CONTINUUM_BACKUP_PASSPHRASE"
                        )));
                    }
                }
            } else {
                if keys.identities.is_empty() {
                    return Err(Error::Unauthorized(format!(
                        "backup {id} is encrypted to age recipients; give the identity file with --identity"
                    )));
                }
                ids.extend(
                    keys.identities
                        .iter()
                        .map(|i| i.as_ref() as &dyn age::Identity),
                );
            }
            Box::new(d.decrypt(ids.into_iter()).map_err(|e| match e {
                // At this stage (the header), a stanza that fails to unwrap is a wrong key.
                age::DecryptError::NoMatchingKeys
                | age::DecryptError::KeyDecryptionFailed
                | age::DecryptError::DecryptionFailed => {
                    Error::Unauthorized(format!(
                        "the passphrase or identity given does not open backup {id}"
                    ))
                }
                age::DecryptError::ExcessiveWork { required, target } => Error::Unavailable(
                    format!(
                        "backup {id}'s passphrase needs scrypt work factor {required}; this machine accepts up to {} (about 16 s)",
                        target + 4
                    ),
                ),
                other => damaged(id, other),
            })?)
        } else {
            Box::new(buffered)
        };
        let zstd = zstd::stream::read::Decoder::new(decrypted)
            .map_err(|e| Error::Internal(format!("zstd: {e}")))?;
        Ok(Opener {
            inner: Hashing::new(Box::new(zstd)),
        })
    }

    /// The digest of the plain bytes read so far.
    pub fn finish(self) -> Digest {
        self.inner.finish().1
    }
}

impl Read for Opener {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Reads one `\n`-terminated line of at most `max` bytes.
pub(crate) fn read_line_limited(r: &mut impl BufRead, max: usize) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.take(max as u64 + 1).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a line longer than {max} bytes or cut short"),
        ));
    }
    line.pop();
    Ok(line)
}

/// A backup that decrypts or decompresses wrongly: damaged, truncated or not a backup.
pub(crate) fn damaged(id: &str, e: impl std::fmt::Display) -> Error {
    Error::Conflict(format!(
        "backup {id} is damaged or not a Continuum backup: {e}"
    ))
}

pub(crate) fn io_err(what: &str, path: &Path, e: io::Error) -> Error {
    Error::Unavailable(format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x25519() -> (age::x25519::Identity, Encryption) {
        let id = age::x25519::Identity::generate();
        let enc = Encryption::recipients(&[id.to_public().to_string()]).unwrap();
        (id, enc)
    }

    fn seal(enc: &Encryption, plain: &[u8]) -> (tempfile::TempDir, std::path::PathBuf, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data");
        let mut s = Sealer::create(&p, enc).unwrap();
        s.write_all(plain).unwrap();
        let (d, stored) = s.finish().unwrap();
        assert_eq!(d.bytes, plain.len() as u64);
        assert_eq!(digest_file(&p).unwrap(), stored);
        (dir, p, d)
    }

    fn open_all(p: &Path, encrypted: bool, keys: &Keys) -> Result<Vec<u8>> {
        let mut o = Opener::open(p, encrypted, keys, "b")?;
        let mut out = Vec::new();
        o.read_to_end(&mut out).map_err(|e| damaged("b", e))?;
        Ok(out)
    }

    #[test]
    fn sealed_bytes_open_with_the_right_identity_only() {
        // Incompressible, so the sealed object is as large as the plain text.
        let mut rng = fastrand::Rng::with_seed(7);
        let plain: Vec<u8> = (0..300_000).map(|_| rng.u8(..)).collect();
        let (id, enc) = x25519();
        let (_d, p, digest) = seal(&enc, &plain);
        let raw = std::fs::read(&p).unwrap();
        assert!(raw.starts_with(b"age-encryption.org/v1\n"));
        assert!(
            !raw.windows(16).any(|w| plain.windows(16).next() == Some(w)),
            "nothing of the plain text shows"
        );
        let keys = Keys {
            passphrase: None,
            identities: vec![Box::new(id)],
        };
        let mut o = Opener::open(&p, true, &keys, "b").unwrap();
        let mut out = Vec::new();
        o.read_to_end(&mut out).unwrap();
        assert_eq!(out, plain);
        assert_eq!(o.finish(), digest);

        let (other, _) = x25519();
        let wrong = Keys {
            passphrase: None,
            identities: vec![Box::new(other)],
        };
        assert!(matches!(
            open_all(&p, true, &wrong),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            open_all(&p, true, &Keys::default()),
            Err(Error::Unauthorized(_))
        ));
        // One flipped byte in the payload: a chunk fails to authenticate.
        let mut flipped = raw.clone();
        let at = raw.len() - 100;
        flipped[at] ^= 0x01;
        std::fs::write(&p, &flipped).unwrap();
        assert!(matches!(open_all(&p, true, &keys), Err(Error::Conflict(_))));
        // Truncated: the last chunk is missing.
        std::fs::write(&p, &raw[..raw.len() - 70_000]).unwrap();
        assert!(matches!(open_all(&p, true, &keys), Err(Error::Conflict(_))));
    }

    #[test]
    fn a_passphrase_opens_what_it_sealed_and_nothing_else_does() {
        let pass = passphrase("correct horse battery staple\n").unwrap();
        let (_d, p, _) = seal(&Encryption::Passphrase(pass.clone()), b"hello backup");
        let keys = Keys {
            passphrase: Some(pass),
            identities: vec![],
        };
        assert_eq!(open_all(&p, true, &keys).unwrap(), b"hello backup");
        let wrong = Keys {
            passphrase: Some(passphrase("wrong horse").unwrap()),
            identities: vec![],
        };
        assert!(matches!(
            open_all(&p, true, &wrong),
            Err(Error::Unauthorized(_))
        ));
        assert!(passphrase("").is_err());
        assert!(passphrase(&"x".repeat(MAX_PASSPHRASE_BYTES + 1)).is_err());
    }

    #[test]
    fn unencrypted_is_plain_zstd() {
        let (_d, p, _) = seal(&Encryption::None, b"plain words");
        let raw = std::fs::read(&p).unwrap();
        assert_eq!(zstd::decode_all(&raw[..]).unwrap(), b"plain words");
        assert_eq!(
            open_all(&p, false, &Keys::default()).unwrap(),
            b"plain words"
        );
        assert!(Encryption::recipients(&["age1nope".into()]).is_err());
        assert!(Encryption::recipients(&[]).is_err());
    }
}
