//! Error kinds that callers act on. Interfaces map each kind to a status code or exit code in one
//! exhaustive `match`; the message is written for the person who made the request.

/// What went wrong, by what the caller can do about it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// The named thing does not exist (in this tenant).
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong: empty text, over a limit, malformed data.
    #[error("{0}")]
    InvalidInput(String),
    /// The request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// No valid credential was presented.
    #[error("{0}")]
    Unauthorized(String),
    /// The credential is valid but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// What was asked for is gone for good: events before the log's compaction point. The
    /// caller must start again from a snapshot.
    #[error("{0}")]
    Gone(String),
    /// The store cannot serve now: locked by another process, read-only, unreachable.
    #[error("{0}")]
    Unavailable(String),
    /// A quota of the tenant's tier is used up (the message names it and says when it resets
    /// or what to do); the seconds until it resets, when it does.
    #[error("{0}")]
    QuotaExceeded(String, Option<u64>),
    /// A fault inside Continuum or its store; details belong in logs.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A short, stable code for machine-readable output (`--json`, API errors).
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "not_found",
            Error::InvalidInput(_) => "invalid_input",
            Error::Conflict(_) => "conflict",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::Gone(_) => "gone",
            Error::Unavailable(_) => "unavailable",
            Error::QuotaExceeded(..) => "quota_exceeded",
            Error::Internal(_) => "internal",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
