//! `--store libsql://HOST[:PORT]?replica=PATH` and `libsql+http://HOST:PORT?replica=PATH`.

use continuum_core::{Error, Result};
use std::path::{Path, PathBuf};

/// Where a libSQL store lives: its primary (a Turso sync server) and its local replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibsqlLocation {
    /// The primary's base URL, `https://HOST[:PORT]` or `http://HOST:PORT`.
    pub primary: String,
    /// The local store file (SQLite), which every read and write goes to. The replicated
    /// journal sits beside it (see [`LibsqlLocation::journal`]).
    pub replica: PathBuf,
}

/// Whether a `--store` value names a libSQL store.
pub fn is_libsql_url(url: &str) -> bool {
    let u = url.trim();
    u.starts_with("libsql://") || u.starts_with("libsql+http://")
}

impl LibsqlLocation {
    /// Parses a `--store` value. The URL never carries the auth token (it would show in
    /// logs and process lists): that comes from `CONTINUUM_LIBSQL_AUTH_TOKEN` or the config.
    pub fn parse(url: &str) -> Result<LibsqlLocation> {
        let url = url.trim();
        let (scheme, plain) = if let Some(rest) = url.strip_prefix("libsql://") {
            ("https", rest)
        } else if let Some(rest) = url.strip_prefix("libsql+http://") {
            ("http", rest)
        } else {
            return Err(Error::InvalidInput(
                "a libSQL store URL starts with libsql:// (TLS) or libsql+http:// (plain)".into(),
            ));
        };
        let parsed = url::Url::parse(&format!("{scheme}://{plain}"))
            .map_err(|e| Error::InvalidInput(format!("the libSQL store URL is not a URL: {e}")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Error::InvalidInput(
                "the libSQL store URL must not hold credentials; give the auth token in \
                 CONTINUUM_LIBSQL_AUTH_TOKEN or [store] libsql_auth_token"
                    .into(),
            ));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::InvalidInput("the libSQL store URL names no host".into()))?;
        if parsed.path() != "/" && !parsed.path().is_empty() {
            return Err(Error::InvalidInput(format!(
                "the libSQL store URL has a path ({}); expected libsql://HOST[:PORT]?replica=PATH",
                parsed.path()
            )));
        }
        let mut replica = None;
        for (k, v) in parsed.query_pairs() {
            match k.as_ref() {
                "replica" => {
                    replica = Some(PathBuf::from(v.as_ref())).filter(|p| !p.as_os_str().is_empty())
                }
                "authToken" | "auth_token" | "token" => {
                    return Err(Error::InvalidInput(
                        "the libSQL store URL must not hold the auth token; give it in \
                         CONTINUUM_LIBSQL_AUTH_TOKEN or [store] libsql_auth_token"
                            .into(),
                    ));
                }
                other => {
                    return Err(Error::InvalidInput(format!(
                        "unknown parameter '{other}' in the libSQL store URL (known: replica)"
                    )));
                }
            }
        }
        let replica = replica.ok_or_else(|| {
            Error::InvalidInput(
                "the libSQL store URL needs ?replica=PATH, the local replica's file".into(),
            )
        })?;
        let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Ok(LibsqlLocation {
            primary: format!("{scheme}://{host}{port}"),
            replica,
        })
    }

    /// The replicated journal's file, beside the local store: `PATH.libsql` (the sync engine
    /// keeps its own files next to it, named after it).
    pub fn journal(&self) -> PathBuf {
        with_suffix(&self.replica, ".libsql")
    }

    /// The lock file that makes one process at a time the replica's syncer.
    pub fn lock_file(&self) -> PathBuf {
        with_suffix(&self.replica, ".libsql.lock")
    }

    /// How the store is shown (`stats`, `doctor`): never a secret.
    pub fn describe(&self) -> String {
        let scheme = if self.primary.starts_with("https://") {
            "libsql://"
        } else {
            "libsql+http://"
        };
        let host = self
            .primary
            .split_once("://")
            .map(|(_, h)| h)
            .unwrap_or(&self.primary);
        format!("{scheme}{host} (replica {})", self.replica.display())
    }
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_schemes() {
        let l = LibsqlLocation::parse("libsql://edge.example.com?replica=/tmp/r.db").unwrap();
        assert_eq!(l.primary, "https://edge.example.com");
        assert_eq!(l.replica, PathBuf::from("/tmp/r.db"));
        assert_eq!(l.journal(), PathBuf::from("/tmp/r.db.libsql"));
        let l = LibsqlLocation::parse("libsql+http://127.0.0.1:8080?replica=a/b.db").unwrap();
        assert_eq!(l.primary, "http://127.0.0.1:8080");
        assert_eq!(l.replica, PathBuf::from("a/b.db"));
        assert_eq!(
            l.describe(),
            "libsql+http://127.0.0.1:8080 (replica a/b.db)"
        );
        assert!(is_libsql_url(" libsql://x?replica=y"));
        assert!(!is_libsql_url("postgres://x"));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let err = |u: &str| LibsqlLocation::parse(u).unwrap_err().to_string();
        assert!(err("libsql://h").contains("replica=PATH"));
        assert!(err("libsql://h?replica=").contains("replica=PATH"));
        assert!(
            err("libsql://h?replica=x&authToken=s3cret").contains("must not hold the auth token")
        );
        assert!(!err("libsql://h?replica=x&authToken=s3cret").contains("s3cret"));
        assert!(err("libsql://u:pw@h?replica=x").contains("credentials"));
        assert!(!err("libsql://u:pw@h?replica=x").contains("pw"));
        assert!(err("libsql://h/db?replica=x").contains("has a path"));
        assert!(err("libsql://h?replica=x&mode=fast").contains("unknown parameter 'mode'"));
        assert!(err("postgres://h").contains("starts with libsql://"));
    }
}
