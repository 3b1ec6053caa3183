//! Global flags, opening the store and engine, and the mapping of errors to exit codes.

use anyhow::{Context, Result};
use clap::{Args, Parser};
use continuum_core::{Error, TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig};
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Continuum: local-first memory for AI agents.
#[derive(Debug, Parser)]
#[command(name = "continuum", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: crate::commands::Command,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Directory holding the store (default: the per-user data directory, e.g. ~/.local/share/continuum).
    #[arg(long, global = true, env = "CONTINUUM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Tenant whose memories to use.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_TENANT",
        default_value = "default"
    )]
    pub tenant: String,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long to wait for another process's lock on the store, in milliseconds.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_BUSY_TIMEOUT_MS",
        default_value_t = 5000,
        value_name = "MS"
    )]
    pub busy_timeout_ms: u64,
    /// Largest text accepted (a message, a note, a query), in bytes.
    #[arg(long, global = true, env = "CONTINUUM_MAX_TEXT_BYTES", default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_text_bytes: usize,
}

impl Global {
    pub fn tenant(&self) -> Result<TenantId> {
        Ok(TenantId::new(self.tenant.clone())?)
    }

    pub fn data_dir(&self) -> Result<PathBuf> {
        match &self.data_dir {
            Some(d) => Ok(d.clone()),
            None => dirs::data_dir()
                .map(|d| d.join("continuum"))
                .context("no per-user data directory is known on this system; pass --data-dir"),
        }
    }

    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            max_text_bytes: self.max_text_bytes,
            ..EngineConfig::default()
        }
    }

    /// Opens the store in the data directory (creating both when missing) and the engine.
    pub fn open(&self) -> Result<(Engine, Arc<SqliteStore>)> {
        let dir = self.data_dir()?;
        self.open_at(&dir)
    }

    pub fn open_at(&self, dir: &std::path::Path) -> Result<(Engine, Arc<SqliteStore>)> {
        self.open_with(dir, self.engine_config())
    }

    /// Opens the store in `dir` with an explicit engine configuration.
    pub fn open_with(
        &self,
        dir: &std::path::Path,
        config: EngineConfig,
    ) -> Result<(Engine, Arc<SqliteStore>)> {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::Unavailable(format!(
                "data directory {} exists but is not a directory",
                dir.display()
            ))
            .into());
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let opts = SqliteOptions {
            busy_timeout: Duration::from_millis(self.busy_timeout_ms),
            ..SqliteOptions::default()
        };
        let now = continuum_core::Clock::now(&continuum_core::SystemClock);
        let store = Arc::new(SqliteStore::open(dir.join(STORE_FILE), &opts, now)?);
        let engine = Engine::new(store.clone(), config)?;
        Ok((engine, store))
    }
}

/// The store's file name inside the data directory.
pub const STORE_FILE: &str = "continuum.db";

/// Exit code and error code for an error.
pub fn classify(err: &anyhow::Error) -> (u8, &'static str) {
    match err.downcast_ref::<Error>() {
        Some(e) => {
            let code = match e {
                Error::InvalidInput(_) => 2,
                Error::NotFound(_) => 3,
                Error::Unavailable(_) => 4,
                Error::Conflict(_) => 5,
                Error::Internal(_) => 1,
            };
            (code, e.code())
        }
        None => (1, "internal"),
    }
}

/// The error chain on one line.
pub fn one_line(err: &anyhow::Error) -> String {
    let parts: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    parts.join(": ").replace('\n', " ")
}

/// Parses a time flag.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).map_err(|e| e.to_string())
}
