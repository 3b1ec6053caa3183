//! A node's federation files, in its data directory's `federation/` folder: keys (mode 0600),
//! certificates, and JSON state written whole (temporary file, then rename) under a lock file,
//! so that a running server and a CLI command never interleave their changes.

use crate::Error;
use crate::identity::{NodeKey, hex};
use continuum_core::unhex;
use std::path::{Path, PathBuf};

pub(crate) fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Internal(format!("{what} {}: {e}", path.display()))
}

/// Writes `bytes` to `path` in full or not at all; `secret` files get mode 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), Error> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new();
    f.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        f.mode(0o600);
    }
    let _ = secret;
    let mut file = f.open(&tmp).map_err(|e| io("writing", &tmp, e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("renaming", &tmp, e))
}

pub(crate) fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| io("reading", path, e))
}

pub(crate) fn write_key(path: &Path, key: &NodeKey) -> Result<(), Error> {
    write_atomic(path, key_text(key, None)?.as_bytes(), true)
}

pub(crate) fn read_key(path: &Path) -> Result<NodeKey, Error> {
    read_key_with(path, None)
}

/// The first line of a key file sealed with a passphrase.
const SEALED_KEY_HEADER: &str = "continuum-sealed-key v1";
/// PBKDF2-HMAC-SHA256 rounds for a passphrase (OWASP's 2023 figure for this hash).
const PBKDF2_ROUNDS: u32 = 600_000;
/// The shortest and longest passphrase taken.
pub const MIN_PASSPHRASE_CHARS: usize = 8;
pub const MAX_PASSPHRASE_BYTES: usize = 1024;

fn check_passphrase(p: &str) -> Result<(), Error> {
    if p.chars().count() < MIN_PASSPHRASE_CHARS || p.len() > MAX_PASSPHRASE_BYTES {
        return Err(Error::Malformed(format!(
            "a passphrase is {MIN_PASSPHRASE_CHARS} to {MAX_PASSPHRASE_BYTES} bytes long"
        )));
    }
    Ok(())
}

fn sealing_key(
    passphrase: &str,
    salt: &[u8],
    rounds: u32,
) -> Result<aws_lc_rs::aead::LessSafeKey, Error> {
    let rounds = std::num::NonZeroU32::new(rounds)
        .ok_or_else(|| Error::Malformed("a sealed key file names zero rounds".into()))?;
    let mut k = [0u8; 32];
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        passphrase.as_bytes(),
        &mut k,
    );
    let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &k)
        .map_err(|_| Error::Internal("the sealing key".into()))?;
    Ok(aws_lc_rs::aead::LessSafeKey::new(unbound))
}

/// A key file's text: the seed in hex, or, with a passphrase, the seed sealed with
/// AES-256-GCM under a key derived from the passphrase by PBKDF2-HMAC-SHA256.
pub(crate) fn key_text(key: &NodeKey, passphrase: Option<&str>) -> Result<String, Error> {
    let Some(passphrase) = passphrase else {
        return Ok(format!("{}\n", hex(&key.seed())));
    };
    check_passphrase(passphrase)?;
    let (mut salt, mut nonce) = ([0u8; 16], [0u8; 12]);
    getrandom::fill(&mut salt)
        .and_then(|_| getrandom::fill(&mut nonce))
        .map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    let mut sealed = key.seed().to_vec();
    sealing_key(passphrase, &salt, PBKDF2_ROUNDS)?
        .seal_in_place_append_tag(
            aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
            aws_lc_rs::aead::Aad::from(SEALED_KEY_HEADER.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| Error::Internal("sealing the key".into()))?;
    Ok(format!(
        "{SEALED_KEY_HEADER}\nkdf pbkdf2-sha256 {PBKDF2_ROUNDS} {}\naead aes-256-gcm {}\n{}\n",
        hex(&salt),
        hex(&nonce),
        hex(&sealed)
    ))
}

/// Whether the key file at `path` is sealed with a passphrase.
pub(crate) fn key_is_sealed(path: &Path) -> Result<bool, Error> {
    Ok(read(path)?.starts_with(SEALED_KEY_HEADER))
}

/// Reads a key file, opening a sealed one with `passphrase` (a clear error when it is
/// missing or wrong).
pub(crate) fn read_key_with(path: &Path, passphrase: Option<&str>) -> Result<NodeKey, Error> {
    let text = read(path)?;
    let bad = || Error::Malformed(format!("{} is not a key file", path.display()));
    if !text.starts_with(SEALED_KEY_HEADER) {
        let seed = crate::identity::unhex32(text.trim()).ok_or_else(bad)?;
        return Ok(NodeKey::from_seed(&seed));
    }
    let Some(passphrase) = passphrase else {
        return Err(Error::Malformed(format!(
            "{} is sealed with a passphrase: set CONTINUUM_FEDERATION_PASSPHRASE",
            path.display()
        )));
    };
    let lines: Vec<&str> = text.lines().collect();
    let [_, kdf, aead, sealed] = lines.as_slice() else {
        return Err(bad());
    };
    let kdf: Vec<&str> = kdf.split(' ').collect();
    let aead: Vec<&str> = aead.split(' ').collect();
    let (["kdf", "pbkdf2-sha256", rounds, salt], ["aead", "aes-256-gcm", nonce]) =
        (kdf.as_slice(), aead.as_slice())
    else {
        return Err(bad());
    };
    let rounds: u32 = rounds.parse().map_err(|_| bad())?;
    if rounds > 10_000_000 {
        return Err(bad());
    }
    let salt = unhex(salt).ok_or_else(bad)?;
    let nonce: [u8; 12] = unhex(nonce)
        .and_then(|n| n.try_into().ok())
        .ok_or_else(bad)?;
    let mut sealed = unhex(sealed).ok_or_else(bad)?;
    let seed = sealing_key(passphrase, &salt, rounds)?
        .open_in_place(
            aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
            aws_lc_rs::aead::Aad::from(SEALED_KEY_HEADER.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| {
            Error::Malformed(format!(
                "the passphrase does not open {} (wrong passphrase, or the file was changed)",
                path.display()
            ))
        })?;
    let seed: [u8; 32] = (&*seed).try_into().map_err(|_| bad())?;
    Ok(NodeKey::from_seed(&seed))
}

/// Reads the JSON state at `path` (the default when missing), applies `f`, and writes it back
/// when `f` succeeded, holding `path`'s lock file throughout.
pub(crate) fn update<T, R>(
    path: &Path,
    f: impl FnOnce(&mut T) -> Result<R, Error>,
) -> Result<R, Error>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Default,
{
    let lock_path = path.with_extension("lock");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io("opening", &lock_path, e))?;
    lock.lock().map_err(|e| io("locking", &lock_path, e))?;
    let mut state: T = load(path)?;
    let out = f(&mut state)?;
    let body = serde_json::to_vec_pretty(&state).map_err(|e| Error::Internal(e.to_string()))?;
    write_atomic(path, &body, false)?;
    Ok(out)
}

/// The JSON state at `path`, or the default when the file does not exist.
pub(crate) fn load<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, Error> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::Malformed(format!("{} is damaged: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(io("reading", path, e)),
    }
}

/// The federation folder of a data directory.
pub fn folder(data_dir: &Path) -> PathBuf {
    data_dir.join("federation")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_with_its_passphrase_only() {
        let d = std::env::temp_dir().join(format!("continuum-key-{}", std::process::id()));
        let path = d.join("ca.key");
        let key = NodeKey::from_seed(&[7; 32]);
        let text = key_text(&key, Some("correct horse battery")).unwrap();
        write_atomic(&path, text.as_bytes(), true).unwrap();
        // The seed is not in the file.
        assert!(!text.contains(&hex(&key.seed())), "{text}");
        assert!(key_is_sealed(&path).unwrap());
        let opened = read_key_with(&path, Some("correct horse battery")).unwrap();
        assert_eq!(opened.seed(), key.seed());
        let wrong = read_key_with(&path, Some("wrong horse battery"))
            .err()
            .unwrap();
        assert!(wrong.to_string().contains("does not open"), "{wrong}");
        let missing = read_key(&path).err().unwrap();
        assert!(
            missing
                .to_string()
                .contains("CONTINUUM_FEDERATION_PASSPHRASE"),
            "{missing}"
        );
        // A flipped byte of the sealed seed is caught by the tag.
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let last = lines.pop().unwrap();
        let flipped = format!(
            "{}{}",
            if last.starts_with('0') { '1' } else { '0' },
            &last[1..]
        );
        lines.push(flipped);
        std::fs::write(&path, lines.join("\n")).unwrap();
        assert!(read_key_with(&path, Some("correct horse battery")).is_err());
        // Short passphrases are refused; a plain key file needs none.
        assert!(key_text(&key, Some("short")).is_err());
        write_atomic(&path, key_text(&key, None).unwrap().as_bytes(), true).unwrap();
        assert!(!key_is_sealed(&path).unwrap());
        assert_eq!(
            read_key_with(&path, Some("ignored")).unwrap().seed(),
            key.seed()
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
