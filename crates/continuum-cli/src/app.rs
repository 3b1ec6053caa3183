//! Global flags, opening the store and engine, and the mapping of errors to exit codes.

use anyhow::{Context, Result};
use clap::{Args, Parser};
use continuum_core::MemoryStore;
use continuum_core::{Error, TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig};
use continuum_store_postgres::{PostgresOptions, PostgresStore};
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
    /// Configuration file (default: continuum.toml in the data directory, when present).
    /// Precedence: flag > environment > file > default; `continuum config show` explains.
    #[arg(long, global = true, env = "CONTINUUM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory holding the store (default: the per-user data directory, e.g. ~/.local/share/continuum).
    #[arg(long, global = true, env = "CONTINUUM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where memories live: a PostgreSQL URL (postgres://user@host/db), a libSQL replica
    /// (libsql://HOST?replica=PATH, or libsql+http://HOST:PORT?replica=PATH for a plain-HTTP
    /// sync server); unset, the embedded SQLite store in --data-dir.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub store: Option<String>,
    /// The libSQL primary's auth token (with a libsql:// store).
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_LIBSQL_AUTH_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub libsql_auth_token: Option<String>,
    /// Seconds between a libSQL replica's background syncs (serve, mcp); writes also trigger one.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_LIBSQL_SYNC_INTERVAL",
        default_value_t = 5,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub libsql_sync_interval: u64,
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
    /// Fusion weights of recall's signals: lexical,graph,recency or
    /// lexical,semantic,graph,recency (default 0.75,0.6,0.15,0.10, chosen on LoCoMo).
    #[arg(long, global = true, env = "CONTINUUM_FUSION_WEIGHTS", value_name = "L,S,G,R", value_parser = parse_fusion_weights)]
    pub fusion_weights: Option<continuum_core::rank::FusionWeights>,
    /// Vectors a tenant needs before semantic search goes through an HNSW graph (fewer are
    /// all scanned, exactly).
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_ANN_MIN_VECTORS",
        default_value_t = 20_000,
        value_name = "N"
    )]
    pub ann_min_vectors: usize,
    /// Entries of each kind (concepts, links, memory texts) recall keeps per tenant between
    /// writes, instead of reading them from the store again; 0 turns the cache off.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_RECALL_CACHE_ENTRIES",
        default_value_t = 20_000,
        value_name = "N"
    )]
    pub recall_cache_entries: usize,
    /// Keep the HNSW graph in memory only, instead of saving it beside the SQLite file for the
    /// next process.
    #[arg(long, global = true, env = "CONTINUUM_NO_ANN_SNAPSHOTS")]
    pub no_ann_snapshots: bool,
    /// Keep text indexes in memory only, instead of saving them beside the SQLite file for
    /// the next process (which then rebuilds them from every memory).
    #[arg(long, global = true, env = "CONTINUUM_NO_INDEX_FILES")]
    pub no_index_files: bool,
    /// Tenants with at least this many memories get an index file beside the SQLite file.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_INDEX_FILE_MIN_MEMORIES",
        default_value_t = 20_000,
        value_name = "N"
    )]
    pub index_file_min_memories: usize,
    /// The tenants' text indexes together may hold about this many MiB; past it, the least
    /// recently used idle tenants leave memory until their next use. 0: no bound.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_MAX_RESIDENT_MB",
        default_value_t = 1024,
        value_name = "MIB"
    )]
    pub max_resident_mb: usize,
    /// A tenant's text index may leave memory (see --max-resident-mb) once unused this long.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_RESIDENT_IDLE_SECS",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub resident_idle_secs: u64,
    /// Sentence embeddings for semantic recall: none, local (a model directory on disk) or
    /// openai (any OpenAI-compatible /v1/embeddings endpoint).
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_EMBEDDER",
        default_value = "none",
        value_name = "KIND"
    )]
    pub embedder: String,
    /// Local embedder: the model directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long, global = true, env = "CONTINUUM_MODEL_DIR", value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// OpenAI-compatible embedder: the endpoint, e.g. http://localhost:11434/v1. The API key,
    /// if one is needed, comes from CONTINUUM_EMBED_API_KEY.
    #[arg(long, global = true, env = "CONTINUUM_EMBED_URL", value_name = "URL")]
    pub embed_url: Option<String>,
    /// The embedding model: the name to ask the endpoint for; for a local model, overrides the
    /// name stored with its vectors.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_EMBED_MODEL",
        value_name = "NAME"
    )]
    pub embed_model: Option<String>,
    /// The OpenAI-compatible embedder's API key (from the environment or the configuration
    /// file; a flag would show it to every user of the machine).
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_EMBED_API_KEY",
        hide = true,
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub embed_api_key: Option<String>,
    /// Log lines on standard error: pretty (for people) or json (one object per line).
    #[arg(long, global = true, env = "CONTINUUM_LOG_FORMAT", default_value = "pretty",
          value_name = "FORMAT", value_parser = ["pretty", "json"])]
    pub log_format: String,
    /// Which log lines to write: a level (error, warn, info, debug, trace) or a filter such as
    /// `warn,continuum_server=info`. RUST_LOG, when set, wins.
    #[arg(long, global = true, env = "CONTINUUM_LOG_LEVEL", default_value = "info",
          value_name = "LEVEL", value_parser = continuum_ops::logging::parse_level)]
    pub log_level: String,
    /// Send traces over OTLP/HTTP to this collector (e.g. http://127.0.0.1:4318; `/v1/traces`
    /// is appended). Unset, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT
    /// if set; otherwise traces are off.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_OTLP_ENDPOINT",
        value_name = "URL"
    )]
    pub otlp_endpoint: Option<String>,
    /// Let webhooks target private, loopback and link-local addresses (on-premises receivers,
    /// tests). Off, such targets are refused when subscribed and at every delivery.
    #[arg(long, global = true, env = "CONTINUUM_WEBHOOKS_ALLOW_PRIVATE")]
    pub webhooks_allow_private: bool,
    /// The tier of tenants never given one (default: unlimited, no quota). Built-in tiers:
    /// free, pro, enterprise, unlimited; `continuum tiers` lists them with their quotas.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_DEFAULT_TIER",
        value_name = "TIER"
    )]
    pub default_tier: Option<String>,
    /// A custom tier, or a built-in one redefined (repeatable):
    /// NAME:memories=N,requests_per_day=N,rate=R,webhooks=N (a quota left out is unlimited).
    #[arg(long = "tier", global = true, value_name = "SPEC", value_parser = parse_tier)]
    pub tiers: Vec<continuum_core::account::Tier>,
    /// The Ed25519 key that signs audit checkpoints (made on first use, readable by its owner
    /// only; default: audit-signing.key in the data directory). Keep a copy of its public key
    /// (`continuum audit public-key`) where checkpoints are checked.
    #[arg(long, global = true, env = "CONTINUUM_AUDIT_KEY", value_name = "FILE")]
    pub audit_key: Option<PathBuf>,
    /// The name checkpoints are signed under (default: continuum).
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_AUDIT_KEY_NAME",
        default_value = "continuum",
        value_name = "NAME"
    )]
    pub audit_key_name: String,
    /// A retention rule, SOURCE=AGE (repeatable): memories of that source (user, assistant,
    /// thinking, system, document, fact, note, or * for all) older than AGE (30d, 12w, 1y) are
    /// forgotten by `retention run` and by `serve` every hour.
    #[arg(long = "retention", global = true, value_name = "SOURCE=AGE", value_parser = parse_retention_rule)]
    pub retention: Vec<continuum_engine::RetentionRule>,
    /// A Continuum server to sync --tenant with (http:// or https://): `continuum sync` runs
    /// a sync; `serve` and `mcp` sync in the background.
    #[arg(long, global = true, env = "CONTINUUM_REMOTE", value_name = "URL")]
    pub remote: Option<String>,
    /// The remote's API key (write scope); prefer CONTINUUM_REMOTE_KEY or the configuration
    /// file, which other users of the machine cannot read in the process list.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_REMOTE_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub remote_key: Option<String>,
    /// PEM certificates to trust for the remote's TLS, besides the system roots.
    #[arg(long, global = true, env = "CONTINUUM_REMOTE_CA", value_name = "FILE")]
    pub remote_ca: Option<PathBuf>,
    /// Background sync (`serve`, `mcp` with --remote): a round at least this often, in
    /// seconds, and a second after local writes.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    pub sync_interval_secs: u64,
    /// Where backups are kept: file:///dir (or a path), s3://bucket/prefix, or
    /// rclone:REMOTE:path (any rclone remote: Proton Drive, Google Drive, SFTP, …).
    #[arg(
        long = "backup-dest",
        visible_alias = "dest",
        global = true,
        env = "CONTINUUM_BACKUP_DEST",
        value_name = "DEST",
        help_heading = "Backups"
    )]
    pub backup_dest: Option<String>,
    /// `serve` backs up on this schedule (UTC): hourly, daily, 'every 30m', 'every 6h' or a
    /// cron expression such as '15 3 * * *'.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_BACKUP_SCHEDULE",
        value_name = "WHEN",
        help_heading = "Backups"
    )]
    pub backup_schedule: Option<String>,
    /// A file whose first line is the backup passphrase (or set CONTINUUM_BACKUP_PASSPHRASE).
    #[arg(
        long = "backup-passphrase-file",
        visible_alias = "passphrase-file",
        global = true,
        value_name = "FILE",
        help_heading = "Backups"
    )]
    pub backup_passphrase_file: Option<PathBuf>,
    /// Encrypt backups to this age X25519 recipient (age1…) instead of a passphrase; repeatable.
    #[arg(
        long = "backup-recipient",
        visible_alias = "recipient",
        global = true,
        value_name = "AGE1…",
        help_heading = "Backups"
    )]
    pub backup_recipients: Vec<String>,
    /// An age identity file (AGE-SECRET-KEY-1… lines) that opens backups made for recipients.
    #[arg(
        long = "backup-identity",
        visible_alias = "identity",
        global = true,
        value_name = "FILE",
        help_heading = "Backups"
    )]
    pub backup_identity: Option<PathBuf>,
    /// Scheduled backups: every Nth is a full backup, the others incremental (only the events
    /// since the previous one). 0 or 1: every scheduled backup is full.
    #[arg(
        long,
        global = true,
        default_value_t = 0,
        value_name = "N",
        help_heading = "Backups"
    )]
    pub backup_full_every: u32,
    /// Write backups without encryption (never the default).
    #[arg(
        long = "backup-unencrypted",
        visible_alias = "unencrypted",
        global = true,
        help_heading = "Backups"
    )]
    pub backup_unencrypted: bool,
    /// Retention for `backup prune` and scheduled backups: keep the newest N.
    #[arg(
        long = "backup-keep-last",
        visible_alias = "keep-last",
        global = true,
        value_name = "N",
        help_heading = "Backups"
    )]
    pub backup_keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N days (UTC).
    #[arg(
        long = "backup-keep-daily",
        visible_alias = "keep-daily",
        global = true,
        value_name = "N",
        help_heading = "Backups"
    )]
    pub backup_keep_daily: Option<u32>,
    /// Keep the newest backup of each of the last N ISO weeks.
    #[arg(
        long = "backup-keep-weekly",
        visible_alias = "keep-weekly",
        global = true,
        value_name = "N",
        help_heading = "Backups"
    )]
    pub backup_keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the last N months.
    #[arg(
        long = "backup-keep-monthly",
        visible_alias = "keep-monthly",
        global = true,
        value_name = "N",
        help_heading = "Backups"
    )]
    pub backup_keep_monthly: Option<u32>,
    /// Where a backup's temporary files go (each about the store's size; default: the
    /// system's temporary directory).
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_BACKUP_WORK_DIR",
        value_name = "DIR",
        help_heading = "Backups"
    )]
    pub backup_work_dir: Option<PathBuf>,
    /// An S3-compatible endpoint for s3:// destinations (e.g. http://127.0.0.1:9000);
    /// credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_S3_ENDPOINT",
        value_name = "URL",
        help_heading = "Backups"
    )]
    pub s3_endpoint: Option<String>,
    /// The S3 region (default: AWS_REGION, else us-east-1).
    #[arg(long, global = true, value_name = "REGION", help_heading = "Backups")]
    pub s3_region: Option<String>,
    /// The rclone program for rclone: destinations (default: rclone on PATH).
    #[arg(
        long,
        global = true,
        env = "CONTINUUM_RCLONE",
        value_name = "PATH",
        help_heading = "Backups"
    )]
    pub rclone: Option<PathBuf>,
}

fn parse_retention_rule(s: &str) -> std::result::Result<continuum_engine::RetentionRule, String> {
    let (source, age) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not SOURCE=AGE (for example thinking=90d)"))?;
    let millis = crate::commands::keys::parse_validity(age)?;
    continuum_engine::RetentionRule::new(source, millis).map_err(|e| e.to_string())
}

fn parse_tier(s: &str) -> std::result::Result<continuum_core::account::Tier, String> {
    continuum_core::account::Tier::parse(s).map_err(|e| e.to_string())
}

impl Global {
    /// The backup destination the flags name (an error saying how to name one otherwise).
    pub fn backup_destination(&self) -> Result<continuum_backup::Destination> {
        let opts = continuum_backup::DestOptions {
            s3_endpoint: self.s3_endpoint.clone().filter(|s| !s.trim().is_empty()),
            s3_region: self.s3_region.clone().filter(|s| !s.trim().is_empty()),
            rclone: self.rclone.clone(),
        };
        Ok(continuum_backup::Destination::parse(
            self.backup_dest.as_deref().unwrap_or(""),
            &opts,
        )?)
    }

    /// How new backups are encrypted: recipients, else a passphrase (file, then
    /// CONTINUUM_BACKUP_PASSPHRASE), else nothing only with --unencrypted.
    pub fn backup_encryption(&self) -> Result<continuum_backup::Encryption> {
        let recipients = !self.backup_recipients.is_empty();
        let passphrase = self.backup_passphrase()?;
        if self.backup_unencrypted {
            if recipients || passphrase.is_some() {
                return Err(Error::InvalidInput(
                    "--unencrypted was given together with a passphrase or recipients; choose one"
                        .into(),
                )
                .into());
            }
            return Ok(continuum_backup::Encryption::None);
        }
        if recipients {
            if passphrase.is_some() {
                return Err(Error::InvalidInput(
                    "give either recipients (--recipient) or a passphrase, not both: an age file is opened by one kind".into(),
                )
                .into());
            }
            return Ok(continuum_backup::Encryption::recipients(
                &self.backup_recipients,
            )?);
        }
        match passphrase {
            Some(p) => Ok(continuum_backup::Encryption::Passphrase(p)),
            None => Err(Error::InvalidInput(
                "backups are encrypted: give --passphrase-file FILE, CONTINUUM_BACKUP_PASSPHRASE or --recipient age1… (or --unencrypted to write them in the clear)".into(),
            )
            .into()),
        }
    }

    fn backup_passphrase(&self) -> Result<Option<continuum_backup::crypt::SecretString>> {
        if let Some(f) = &self.backup_passphrase_file {
            return Ok(Some(continuum_backup::crypt::read_passphrase_file(f)?));
        }
        match std::env::var("CONTINUUM_BACKUP_PASSPHRASE") {
            Ok(p) if !p.is_empty() => Ok(Some(continuum_backup::crypt::passphrase(&p)?)),
            _ => Ok(None),
        }
    }

    /// What opens backups: the passphrase and the identity file given, if any.
    pub fn backup_keys(&self) -> Result<continuum_backup::Keys> {
        let mut keys = continuum_backup::Keys {
            passphrase: self.backup_passphrase()?,
            identities: vec![],
        };
        if let Some(f) = &self.backup_identity {
            keys.add_identity_file(f)?;
        }
        Ok(keys)
    }

    /// The retention rules the flags give.
    pub fn backup_retention(&self) -> continuum_backup::Retention {
        continuum_backup::Retention {
            keep_last: self.backup_keep_last,
            keep_daily: self.backup_keep_daily,
            keep_weekly: self.backup_keep_weekly,
            keep_monthly: self.backup_keep_monthly,
        }
    }

    /// The remote the sync flags name, if any.
    pub fn sync_remote(&self) -> Result<Option<continuum_sync::Remote>> {
        let Some(url) = self.remote.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let key = self.remote_key.clone().unwrap_or_default();
        Ok(Some(continuum_sync::Remote::new(
            url,
            &key,
            self.remote_ca.as_deref(),
        )?))
    }

    /// The background sync job's settings, when a remote is named.
    pub fn background_sync(&self) -> Result<Option<continuum_sync::BackgroundSync>> {
        let Some(remote) = self.sync_remote()? else {
            return Ok(None);
        };
        if self.sync_interval_secs == 0 {
            return Err(Error::InvalidInput("--sync-interval-secs must be positive".into()).into());
        }
        Ok(Some(continuum_sync::BackgroundSync {
            remote,
            tenant: self.tenant()?,
            interval: std::time::Duration::from_secs(self.sync_interval_secs),
            debounce: std::time::Duration::from_secs(1),
        }))
    }

    /// The audit checkpoint signing key (made on first use).
    pub fn audit_key(&self) -> Result<continuum_audit::AuditKey> {
        let path = match &self.audit_key {
            Some(p) => p.clone(),
            None => {
                let dir = self.data_dir()?;
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                dir.join("audit-signing.key")
            }
        };
        Ok(continuum_audit::AuditKey::load_or_create(
            &path,
            &self.audit_key_name,
        )?)
    }

    /// The tiers the flags and the configuration file define.
    pub fn tiers(&self) -> Result<continuum_core::account::Tiers> {
        Ok(continuum_core::account::Tiers::new(
            self.tiers.clone(),
            self.default_tier.as_deref(),
        )?)
    }

    /// How webhooks are delivered (`serve`'s job, `webhooks retry`).
    pub fn webhook_config(&self) -> continuum_webhooks::DeliveryConfig {
        continuum_webhooks::DeliveryConfig {
            allow_private: self.webhooks_allow_private,
            ..Default::default()
        }
    }

    /// Installs the log subscriber and the trace exporter the flags describe.
    pub fn init_logging(&self) -> Result<continuum_ops::logging::Telemetry> {
        let format = self
            .log_format
            .parse()
            .map_err(|e: String| Error::InvalidInput(e))?;
        let endpoint = self.otlp_endpoint.clone().or_else(|| {
            [
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        });
        continuum_ops::logging::init(format, &self.log_level, endpoint.as_deref())
            .map_err(|e| Error::InvalidInput(e).into())
    }

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
            ann_min_vectors: self.ann_min_vectors,
            ann_snapshots: !self.no_ann_snapshots,
            index_files: !self.no_index_files,
            index_file_min_memories: self.index_file_min_memories,
            max_resident_bytes: self.max_resident_mb.saturating_mul(1 << 20),
            resident_idle: std::time::Duration::from_secs(self.resident_idle_secs),
            recall_cache_entries: self.recall_cache_entries,
            fusion: self.fusion_weights.unwrap_or_default(),
            ..EngineConfig::default()
        }
    }

    /// Where `--store` and `--data-dir` say the store is.
    pub fn location(&self) -> Result<StoreLocation> {
        match self.store.as_deref().map(str::trim) {
            None | Some("") => Ok(StoreLocation::Sqlite(self.data_dir()?)),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(StoreLocation::Postgres {
                    url: url.to_string(),
                    schema: None,
                })
            }
            Some(url) if continuum_store_libsql::is_libsql_url(url) => Ok(StoreLocation::Libsql(
                continuum_store_libsql::LibsqlLocation::parse(url)?,
            )),
            Some(_) => Err(Error::InvalidInput(
                "unsupported --store (expected a postgres://, libsql:// or libsql+http:// URL; leave it unset for the embedded SQLite store in --data-dir)"
                    .into(),
            )
            .into()),
        }
    }

    /// Opens the configured store and the engine over it.
    pub async fn open(&self) -> Result<(Engine, Backend)> {
        let location = self.location()?;
        self.open_location(&location, self.engine_config()).await
    }

    /// What the embedder flags say.
    pub fn embedder_settings(&self) -> Result<continuum_embed::EmbedderSettings> {
        Ok(continuum_embed::EmbedderSettings {
            kind: self.embedder.parse()?,
            model_dir: self.model_dir.clone(),
            url: self.embed_url.clone(),
            model: self.embed_model.clone(),
            api_key: self.embed_api_key.clone().filter(|k| !k.is_empty()),
        })
    }

    /// Like [`Global::open`], with the configured embedder attached (commands that rank or
    /// embed: loading a local model takes a moment, so the others skip it).
    pub async fn open_semantic(&self) -> Result<(Engine, Backend)> {
        let (engine, backend) = self.open().await?;
        Ok((self.attach_embedder(engine).await?, backend))
    }

    /// Attaches the configured embedder, if any.
    pub async fn attach_embedder(&self, engine: Engine) -> Result<Engine> {
        Ok(match self.embedder_settings()?.build().await? {
            Some(e) => engine.with_embedder(e),
            None => engine,
        })
    }

    /// Opens a store at an explicit location with an explicit engine configuration.
    pub async fn open_location(
        &self,
        location: &StoreLocation,
        config: EngineConfig,
    ) -> Result<(Engine, Backend)> {
        let now = continuum_core::Clock::now(&continuum_core::SystemClock);
        let backend = match location {
            StoreLocation::Sqlite(dir) => {
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
                Backend::Sqlite(Arc::new(SqliteStore::open(
                    dir.join(STORE_FILE),
                    &opts,
                    now,
                )?))
            }
            StoreLocation::Postgres { url, schema } => {
                let opts = PostgresOptions {
                    schema: schema.clone(),
                    ..PostgresOptions::default()
                };
                Backend::Postgres(Arc::new(PostgresStore::connect(url, &opts, now).await?))
            }
            StoreLocation::Libsql(loc) => {
                let opts = continuum_store_libsql::ReplicaOptions {
                    auth_token: self.libsql_auth_token.clone(),
                };
                let replica = match continuum_store_libsql::Replica::open(loc, &opts).await {
                    Ok(r) => Some(Arc::new(r)),
                    // Another process (a running `serve`) syncs this replica: use the local
                    // store and leave syncing to it.
                    Err(Error::Conflict(m)) if m.contains("another process") => {
                        tracing::info!("{m}; this command uses the local store only");
                        None
                    }
                    Err(e) => return Err(e.into()),
                };
                let opts = SqliteOptions {
                    busy_timeout: Duration::from_millis(self.busy_timeout_ms),
                    ..SqliteOptions::default()
                };
                Backend::Libsql {
                    store: Arc::new(SqliteStore::open(&loc.replica, &opts, now)?),
                    replica,
                    location: loc.clone(),
                }
            }
        };
        let engine = Engine::new(backend.store(), config)?.with_tiers(self.tiers()?);
        if let Backend::Libsql {
            replica: Some(r), ..
        } = &backend
        {
            // Pull on open: what other replicas pushed is here before the command reads.
            if let Err(e) = r.sync(&engine).await {
                eprintln!("warning: the libSQL replica is behind: {e}");
            }
            OPEN_REPLICAS
                .lock()
                .expect("replica registry")
                .push((engine.clone(), r.clone()));
        }
        Ok((engine, backend))
    }
}

/// Where a store lives.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// The embedded store in this data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database, optionally in a schema of its own.
    Postgres { url: String, schema: Option<String> },
    /// A libSQL replica of a Turso primary.
    Libsql(continuum_store_libsql::LibsqlLocation),
}

/// The libSQL replicas this process opened (and syncs), with an engine over each: the
/// background job of `serve` and `mcp` syncs them, and [`finish_replicas`] pushes what a
/// command wrote before the process exits.
static OPEN_REPLICAS: std::sync::Mutex<Vec<(Engine, Arc<continuum_store_libsql::Replica>)>> =
    std::sync::Mutex::new(Vec::new());

/// The libSQL replicas this process syncs.
pub fn open_replicas() -> Vec<(Engine, Arc<continuum_store_libsql::Replica>)> {
    OPEN_REPLICAS.lock().expect("replica registry").clone()
}

/// A last sync round of every replica this process opened: writes reach the primary before
/// the process exits. A failure is a warning (the writes are kept locally and go with the
/// next sync), never an error of the command.
pub async fn finish_replicas() {
    let replicas = std::mem::take(&mut *OPEN_REPLICAS.lock().expect("replica registry"));
    for (engine, replica) in replicas {
        if let Err(e) = replica.sync(&engine).await {
            eprintln!(
                "warning: the libSQL replica is behind: {e}; run `continuum sync` when the primary is back"
            );
        }
    }
}

/// An open store, by backend, for what only the CLI needs to know of it.
pub enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
    /// A libSQL replica: the local store, and the journal this process syncs (None when
    /// another process syncs it).
    Libsql {
        store: Arc<SqliteStore>,
        replica: Option<Arc<continuum_store_libsql::Replica>>,
        location: continuum_store_libsql::LibsqlLocation,
    },
}

/// `L,G,R` or `L,S,G,R` as fusion weights (the others keep their defaults). Each must be a
/// finite number in [0, 10].
pub fn parse_fusion_weights(
    s: &str,
) -> std::result::Result<continuum_core::rank::FusionWeights, String> {
    let parts: Vec<f64> = s
        .split(',')
        .map(|w| w.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| "fusion weights must be comma-separated numbers".to_string())?;
    if parts.iter().any(|w| !(0.0..=10.0).contains(w)) {
        return Err("each fusion weight must lie in [0, 10]".into());
    }
    let mut w = continuum_core::rank::FusionWeights::default();
    match parts.as_slice() {
        [l, g, r] => (w.lexical, w.graph, w.recency) = (*l, *g, *r),
        [l, sem, g, r] => (w.lexical, w.semantic, w.graph, w.recency) = (*l, *sem, *g, *r),
        _ => {
            return Err(
                "fusion weights are lexical,graph,recency or lexical,semantic,graph,recency".into(),
            );
        }
    }
    Ok(w)
}

/// A migration as `continuum migrate` shows it.
pub struct MigrationRow {
    pub version: u32,
    pub name: String,
    pub checksum: String,
    pub applied_at: i64,
}

impl Backend {
    pub fn store(&self) -> Arc<dyn MemoryStore> {
        match self {
            Backend::Sqlite(s) => s.clone(),
            Backend::Postgres(p) => p.clone(),
            Backend::Libsql { store, .. } => store.clone(),
        }
    }

    /// A file path or host/database.
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite(s) => s.path().display().to_string(),
            Backend::Postgres(p) => format!("postgres://{}", p.target()),
            Backend::Libsql { location, .. } => location.describe(),
        }
    }

    pub fn latest_version(&self) -> u32 {
        match self {
            Backend::Sqlite(_) | Backend::Libsql { .. } => {
                continuum_store_sqlite::migrations::latest_version()
            }
            Backend::Postgres(_) => continuum_store_postgres::migrations::latest_version(),
        }
    }

    pub async fn applied_migrations(&self) -> Result<Vec<MigrationRow>> {
        Ok(match self {
            Backend::Sqlite(s) | Backend::Libsql { store: s, .. } => s
                .applied_migrations()?
                .into_iter()
                .map(|m| MigrationRow {
                    version: m.version,
                    name: m.name,
                    checksum: m.checksum,
                    applied_at: m.applied_at,
                })
                .collect(),
            Backend::Postgres(p) => p
                .applied_migrations()
                .await?
                .into_iter()
                .map(|m| MigrationRow {
                    version: m.version,
                    name: m.name,
                    checksum: m.checksum,
                    applied_at: m.applied_at,
                })
                .collect(),
        })
    }

    /// Bytes on disk: the SQLite file and its WAL; for PostgreSQL, the store's own estimate.
    pub async fn disk_bytes(&self, engine: &Engine, tenant: &TenantId) -> Result<u64> {
        Ok(match self {
            Backend::Sqlite(s) | Backend::Libsql { store: s, .. } => {
                let wal = s.path().with_extension("db-wal");
                [s.path().to_path_buf(), wal]
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum()
            }
            Backend::Postgres(_) => engine.stats(tenant).await?.store.store_bytes.unwrap_or(0),
        })
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
                Error::Unavailable(_) | Error::QuotaExceeded(..) => 4,
                Error::Conflict(_) | Error::Gone(_) => 5,
                Error::Unauthorized(_) | Error::Forbidden(_) => 6,
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
