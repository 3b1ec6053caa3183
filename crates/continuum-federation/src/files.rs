//! A node's federation files, in its data directory's `federation/` folder: keys (mode 0600),
//! certificates, and JSON state written whole (temporary file, then rename) under a lock file,
//! so that a running server and a CLI command never interleave their changes.

use crate::Error;
use crate::identity::{NodeKey, hex};
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
    write_atomic(path, format!("{}\n", hex(&key.seed())).as_bytes(), true)
}

pub(crate) fn read_key(path: &Path) -> Result<NodeKey, Error> {
    let seed = crate::identity::unhex32(read(path)?.trim())
        .ok_or_else(|| Error::Malformed(format!("{} is not a key file", path.display())))?;
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
