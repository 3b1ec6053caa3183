//! `continuum.toml`: every setting that has a flag or a `CONTINUUM_*` variable, in sections.
//!
//! The file is found at `--config FILE`, at `CONTINUUM_CONFIG`, or as `continuum.toml` in the
//! data directory. Its values enter as the flags' defaults, so the precedence is flag >
//! environment > file > built-in default, and each value goes through the same parser as
//! its flag. An unknown section or key, a value of the wrong type or one its flag's parser
//! refuses stops the start with the file, the line and the key named.
//!
//! [`SETTINGS`] is the one list: it maps each `section.key` to its flag, and drives loading,
//! `config show` and `config init`.

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use continuum_core::Error;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The file's name in the data directory.
pub const FILE_NAME: &str = "continuum.toml";

/// The largest configuration file read.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;

/// What a setting's TOML value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Float,
    Bool,
    /// An array of strings.
    List,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Int => "a non-negative integer",
            Kind::Float => "a number",
            Kind::Bool => "true or false",
            Kind::List => "an array of strings",
        }
    }
}

/// One setting: where it sits in the file and which flag it fills.
struct Setting {
    /// `section.key` in the file.
    key: &'static str,
    /// The flag's argument id (its field name).
    arg: &'static str,
    /// The subcommand whose flag it is; `None` for a global flag.
    command: Option<&'static str>,
    kind: Kind,
    /// Redacted by `config show`.
    secret: bool,
}

impl Setting {
    /// The setting's flag in `cmd` (the root command, or the subcommand it belongs to).
    fn flag<'c>(&self, cmd: &'c Command) -> Result<&'c clap::Arg> {
        let target = match self.command {
            None => cmd,
            Some(sub) => cmd
                .find_subcommand(sub)
                .ok_or_else(|| Error::Internal(format!("no {sub} command")))?,
        };
        Ok(target
            .get_arguments()
            .find(|a| a.get_id() == self.arg)
            .ok_or_else(|| Error::Internal(format!("no flag for {}", self.key)))?)
    }
}

const fn global(key: &'static str, arg: &'static str, kind: Kind) -> Setting {
    Setting {
        key,
        arg,
        command: None,
        kind,
        secret: false,
    }
}

const fn serve(key: &'static str, arg: &'static str, kind: Kind) -> Setting {
    Setting {
        key,
        arg,
        command: Some("serve"),
        kind,
        secret: false,
    }
}

const fn secret(s: Setting) -> Setting {
    Setting { secret: true, ..s }
}

/// Every setting, in the order `config show` and `config init` list them.
const SETTINGS: &[Setting] = &[
    global("store.data_dir", "data_dir", Kind::Str),
    secret(global("store.url", "store", Kind::Str)),
    global("store.tenant", "tenant", Kind::Str),
    global("store.busy_timeout_ms", "busy_timeout_ms", Kind::Int),
    secret(global(
        "store.libsql_auth_token",
        "libsql_auth_token",
        Kind::Str,
    )),
    global(
        "store.libsql_sync_interval",
        "libsql_sync_interval",
        Kind::Int,
    ),
    serve("server.bind", "bind", Kind::Str),
    serve("server.cors_origins", "cors_origins", Kind::List),
    serve("server.event_retention", "event_retention", Kind::Str),
    serve("server.metrics_bind", "metrics_bind", Kind::Str),
    serve("server.no_metrics", "no_metrics", Kind::Bool),
    serve("server.no_dashboard", "no_dashboard", Kind::Bool),
    serve("server.trusted_proxies", "trusted_proxies", Kind::List),
    serve("server.tls_cert", "tls_cert", Kind::Str),
    serve("server.tls_key", "tls_key", Kind::Str),
    serve(
        "server.metrics_per_tenant",
        "metrics_per_tenant",
        Kind::Bool,
    ),
    global("limits.max_text_bytes", "max_text_bytes", Kind::Int),
    serve("limits.max_body_bytes", "max_body_bytes", Kind::Int),
    serve("limits.rate", "rate", Kind::Float),
    serve("limits.timeout_secs", "timeout_secs", Kind::Int),
    serve(
        "limits.header_timeout_secs",
        "header_timeout_secs",
        Kind::Int,
    ),
    serve("limits.max_connections", "max_connections", Kind::Int),
    serve(
        "limits.auth_failures_per_minute",
        "auth_failures_per_minute",
        Kind::Float,
    ),
    global(
        "webhooks.allow_private",
        "webhooks_allow_private",
        Kind::Bool,
    ),
    global("tiers.default", "default_tier", Kind::Str),
    global("tiers.custom", "tiers", Kind::List),
    secret(serve(
        "billing.stripe_webhook_secret",
        "stripe_webhook_secret",
        Kind::Str,
    )),
    serve("billing.stripe_prices", "stripe_prices", Kind::List),
    serve(
        "billing.stripe_fallback_tier",
        "stripe_fallback_tier",
        Kind::Str,
    ),
    global("retention.rules", "retention", Kind::List),
    global("sync.remote", "remote", Kind::Str),
    secret(global("sync.remote_key", "remote_key", Kind::Str)),
    global("sync.remote_ca", "remote_ca", Kind::Str),
    global("sync.interval_secs", "sync_interval_secs", Kind::Int),
    global("backup.destination", "backup_dest", Kind::Str),
    global("backup.schedule", "backup_schedule", Kind::Str),
    global("backup.full_every", "backup_full_every", Kind::Int),
    global(
        "backup.passphrase_file",
        "backup_passphrase_file",
        Kind::Str,
    ),
    global("backup.recipients", "backup_recipients", Kind::List),
    global("backup.identity", "backup_identity", Kind::Str),
    global("backup.unencrypted", "backup_unencrypted", Kind::Bool),
    global("backup.keep_last", "backup_keep_last", Kind::Int),
    global("backup.keep_daily", "backup_keep_daily", Kind::Int),
    global("backup.keep_weekly", "backup_keep_weekly", Kind::Int),
    global("backup.keep_monthly", "backup_keep_monthly", Kind::Int),
    global("backup.work_dir", "backup_work_dir", Kind::Str),
    global("backup.s3_endpoint", "s3_endpoint", Kind::Str),
    global("backup.s3_region", "s3_region", Kind::Str),
    global("backup.rclone", "rclone", Kind::Str),
    global("audit.signing_key", "audit_key", Kind::Str),
    global("audit.key_name", "audit_key_name", Kind::Str),
    serve("audit.checkpoint_dir", "audit_checkpoint_dir", Kind::Str),
    serve("audit.syslog", "audit_syslog", Kind::Str),
    serve("audit.syslog_format", "audit_syslog_format", Kind::Str),
    serve("audit.syslog_ca", "audit_syslog_ca", Kind::Str),
    serve(
        "audit.checkpoint_every",
        "audit_checkpoint_every",
        Kind::Int,
    ),
    serve("audit.checkpoint_secs", "audit_checkpoint_secs", Kind::Int),
    serve("federation.bind", "federation_bind", Kind::Str),
    serve(
        "federation.free_queries",
        "federation_free_queries",
        Kind::Int,
    ),
    serve("federation.min_ratio", "federation_min_ratio", Kind::Float),
    serve(
        "federation.contribute_secs",
        "federation_contribute_secs",
        Kind::Int,
    ),
    serve("federation.cert_days", "federation_cert_days", Kind::Int),
    serve("federation.sync", "federation_sync", Kind::Bool),
    global("embedder.kind", "embedder", Kind::Str),
    global("embedder.model_dir", "model_dir", Kind::Str),
    global("embedder.url", "embed_url", Kind::Str),
    global("embedder.model", "embed_model", Kind::Str),
    secret(global("embedder.api_key", "embed_api_key", Kind::Str)),
    global("recall.fusion_weights", "fusion_weights", Kind::Str),
    global("recall.ann_min_vectors", "ann_min_vectors", Kind::Int),
    global("recall.cache_entries", "recall_cache_entries", Kind::Int),
    global("recall.no_ann_snapshots", "no_ann_snapshots", Kind::Bool),
    global("recall.no_index_files", "no_index_files", Kind::Bool),
    global(
        "recall.index_file_min_memories",
        "index_file_min_memories",
        Kind::Int,
    ),
    global("recall.max_resident_mb", "max_resident_mb", Kind::Int),
    global("recall.resident_idle_secs", "resident_idle_secs", Kind::Int),
    global("log.format", "log_format", Kind::Str),
    global("log.level", "log_level", Kind::Str),
    global("log.otlp_endpoint", "otlp_endpoint", Kind::Str),
];

/// A value from the file: its text for the flag's parser, and its line.
#[derive(Debug, Clone)]
struct FileValue {
    values: Vec<String>,
    line: usize,
}

/// A loaded configuration file.
#[derive(Debug, Default)]
pub struct ConfigFile {
    pub path: Option<PathBuf>,
    values: BTreeMap<&'static str, FileValue>,
}

type Raw = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn invalid(path: &Path, line: usize, msg: impl std::fmt::Display) -> anyhow::Error {
    Error::InvalidInput(format!("{}:{line}: {msg}", path.display())).into()
}

impl ConfigFile {
    /// Reads and checks the file (types and keys; values are checked against their flags'
    /// parsers in [`ConfigFile::apply`]).
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::InvalidInput(format!("cannot read {}: {e}", path.display())))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(Error::InvalidInput(format!(
                "{} is {} bytes; a configuration file may have at most {MAX_FILE_BYTES}",
                path.display(),
                meta.len()
            ))
            .into());
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::InvalidInput(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<ConfigFile> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            invalid(path, line, e.message().trim())
        })?;
        let mut values = BTreeMap::new();
        for (section, table) in raw {
            let line = line_of(text, section.span().start);
            let toml::Value::Table(table) = table.get_ref() else {
                return Err(invalid(
                    path,
                    line,
                    format!(
                        "{} must be a [section]; settings are grouped as [store], [server], [limits], [embedder], [recall], [log]",
                        section.get_ref()
                    ),
                ));
            };
            let known: Vec<&str> = SETTINGS
                .iter()
                .filter_map(|s| s.key.strip_prefix(&format!("{}.", section.get_ref())))
                .collect();
            if known.is_empty() {
                return Err(invalid(
                    path,
                    line,
                    format!(
                        "unknown section [{}] (known: store, server, limits, embedder, recall, log)",
                        section.get_ref()
                    ),
                ));
            }
            for (key, value) in table {
                let full = format!("{}.{key}", section.get_ref());
                let line = key_line(text, section.get_ref(), key).unwrap_or(line);
                let Some(setting) = SETTINGS.iter().find(|s| s.key == full) else {
                    return Err(invalid(
                        path,
                        line,
                        format!(
                            "unknown setting {full} (known in [{}]: {})",
                            section.get_ref(),
                            known.join(", ")
                        ),
                    ));
                };
                let values_of = match (setting.kind, value) {
                    // An empty string leaves the setting unset, as an empty variable does.
                    (Kind::Str, toml::Value::String(s)) if s.trim().is_empty() => continue,
                    (Kind::Str, toml::Value::String(s)) => vec![s.clone()],
                    (Kind::Int, toml::Value::Integer(n)) if *n >= 0 => vec![n.to_string()],
                    (Kind::Float, toml::Value::Integer(n)) => vec![n.to_string()],
                    (Kind::Float, toml::Value::Float(f)) => vec![f.to_string()],
                    (Kind::Bool, toml::Value::Boolean(b)) => vec![b.to_string()],
                    (Kind::List, toml::Value::Array(items)) if items.iter().all(|i| i.is_str()) => {
                        items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect()
                    }
                    (kind, other) => {
                        return Err(invalid(
                            path,
                            line,
                            format!(
                                "{full} must be {}, not {}",
                                kind.describe(),
                                describe_value(other)
                            ),
                        ));
                    }
                };
                values.insert(
                    setting.key,
                    FileValue {
                        values: values_of,
                        line,
                    },
                );
            }
        }
        Ok(ConfigFile {
            path: Some(path.to_path_buf()),
            values,
        })
    }

    /// Makes the file's values the defaults of their flags in `cmd`, after checking each
    /// with its flag's parser.
    pub fn apply(&self, mut cmd: Command) -> Result<Command> {
        let path = self.path.clone().unwrap_or_default();
        for s in SETTINGS {
            let Some(v) = self.values.get(s.key) else {
                continue;
            };
            // Leaked: a handful of short strings, once per process.
            let leaked: Vec<&'static str> = v
                .values
                .iter()
                .map(|x| &*Box::leak(x.clone().into_boxed_str()))
                .collect();
            let arg = s.flag(&cmd)?;
            if let Err(e) = check_with_flag(arg, s.kind, &v.values) {
                let reason = e.to_string();
                let reason = reason
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ");
                return Err(invalid(&path, v.line, format!("{}: {reason}", s.key)));
            }
            let set = |a: clap::Arg| a.default_values(leaked.clone());
            cmd = match s.command {
                None => cmd.mut_arg(s.arg, set),
                Some(sub) => cmd.mut_subcommand(sub, |c| c.mut_arg(s.arg, set)),
            };
        }
        Ok(cmd)
    }
}

/// Runs `values` through the flag's parser, as if given on the command line (switches are
/// typed by the file already).
fn check_with_flag(arg: &clap::Arg, kind: Kind, values: &[String]) -> Result<(), clap::Error> {
    let (Some(long), false) = (arg.get_long(), kind == Kind::Bool) else {
        return Ok(());
    };
    let probe = Command::new("continuum").arg(
        arg.clone()
            .global(false)
            .env(None::<&str>)
            .default_value(None::<&str>)
            .required(false),
    );
    let mut argv = vec!["continuum".to_string()];
    for v in values {
        argv.push(format!("--{long}={v}"));
    }
    probe.try_get_matches_from(argv).map(|_| ())
}

/// The line of `key` in `[section]`: the first line after the section's header that sets it.
fn key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut in_section = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t.trim_start_matches('[').trim_end_matches(']').trim() == section;
            continue;
        }
        if in_section {
            let name = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            if name == key {
                return Some(i + 1);
            }
        }
    }
    None
}

fn describe_value(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(n) if *n < 0 => "a negative integer",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// Where the configuration file is: `--config`/`CONTINUUM_CONFIG`, or `continuum.toml` in the
/// data directory when it exists. An explicit path must exist.
pub fn locate(matches: &ArgMatches) -> Result<Option<PathBuf>> {
    if let Some(p) = matches.get_one::<PathBuf>("config") {
        if !p.is_file() {
            return Err(Error::InvalidInput(format!(
                "configuration file {} does not exist",
                p.display()
            ))
            .into());
        }
        return Ok(Some(p.clone()));
    }
    let dir = match matches.get_one::<PathBuf>("data_dir") {
        Some(d) => d.clone(),
        None => match dirs::data_dir() {
            Some(d) => d.join("continuum"),
            None => return Ok(None),
        },
    };
    let p = dir.join(FILE_NAME);
    Ok(p.is_file().then_some(p))
}

/// The command line parsed with the configuration file's values in place: the file is found
/// from a first parse, then its values become defaults and the arguments are parsed again.
pub fn parse_with_file(args: Vec<std::ffi::OsString>) -> Result<(crate::app::Cli, ConfigFile)> {
    use clap::{CommandFactory, FromArgMatches};
    let first = match crate::app::Cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => e.exit(),
    };
    // `config init` writes the file; it neither needs nor reads one.
    let initialising = first
        .subcommand_matches("config")
        .is_some_and(|c| c.subcommand_name() == Some("init"));
    let located = if initialising { None } else { locate(&first)? };
    let file = match located {
        Some(path) => ConfigFile::load(&path)?,
        None => ConfigFile::default(),
    };
    let cmd = file.apply(crate::app::Cli::command())?;
    let matches = match cmd.try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => e.exit(),
    };
    let cli = crate::app::Cli::from_arg_matches(&matches).map_err(|e| {
        Error::InvalidInput(e.to_string().trim_start_matches("error: ").trim().into())
    })?;
    let _ = SHOWN.set(matches);
    Ok((cli, file))
}

/// Whether a global flag was given on the command line (not by the environment, the file or
/// its default).
pub fn given_on_command_line(arg: &str) -> bool {
    SHOWN
        .get()
        .and_then(|m| m.value_source(arg))
        .is_some_and(|s| s == ValueSource::CommandLine)
}

/// The final matches, for `config show`.
static SHOWN: std::sync::OnceLock<ArgMatches> = std::sync::OnceLock::new();

/// Where a setting's effective value comes from.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Default,
    File,
    Env,
    Flag,
    Unset,
}

/// One row of `config show`.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub key: &'static str,
    pub value: Option<String>,
    pub source: Origin,
    /// The environment variable that sets it.
    pub env: Option<String>,
    /// The flag that sets it.
    pub flag: Option<String>,
}

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`; other secrets are
/// shown as `****` only.
fn redact(key: &str, value: &str) -> String {
    if key == "store.url" {
        if let Some((scheme, rest)) = value.split_once("://")
            && let Some((userinfo, host)) = rest.rsplit_once('@')
        {
            let user = userinfo.split(':').next().unwrap_or("");
            let has_password = userinfo.contains(':');
            let mut host = host.to_string();
            // Passwords may also travel as a query parameter.
            if let Some((base, query)) = host.split_once('?') {
                let q: Vec<String> = query
                    .split('&')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=****"),
                        _ => kv.to_string(),
                    })
                    .collect();
                host = format!("{base}?{}", q.join("&"));
            }
            return if has_password {
                format!("{scheme}://{user}:****@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            };
        }
        if value.contains("password") {
            return "****".into();
        }
        return value.to_string();
    }
    "****".into()
}

/// Every setting's effective value and where it came from, secrets redacted. Settings of
/// `serve` (not parsed by this command) are resolved from the environment, the file and
/// their defaults.
pub fn show(file: &ConfigFile) -> Result<Vec<Shown>> {
    use clap::CommandFactory;
    let cmd = file.apply(crate::app::Cli::command())?;
    let matches = SHOWN.get();
    let mut rows = Vec::new();
    for s in SETTINGS {
        let arg = s.flag(&cmd)?;
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        let flag = arg.get_long().map(|l| format!("--{l}"));
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let joined = |v: Vec<String>| (!v.is_empty()).then(|| v.join(","));
        let from_matches = match (s.command, matches) {
            (None, Some(m)) => m.value_source(s.arg).map(|src| {
                let raw: Vec<String> = m
                    .get_raw(s.arg)
                    .map(|r| r.map(|x| x.to_string_lossy().into_owned()).collect())
                    .unwrap_or_default();
                (src, raw)
            }),
            _ => None,
        };
        let (value, source) = match from_matches {
            Some((ValueSource::CommandLine, raw)) => (joined(raw), Origin::Flag),
            Some((ValueSource::EnvVariable, raw)) => (joined(raw), Origin::Env),
            Some((_, raw)) if file.values.contains_key(s.key) => (joined(raw), Origin::File),
            Some((_, raw)) => (joined(raw), Origin::Default),
            None => {
                let from_env = env
                    .as_deref()
                    .and_then(|e| std::env::var(e).ok())
                    .filter(|v| !v.is_empty());
                match from_env {
                    Some(v) => (Some(v), Origin::Env),
                    None if file.values.contains_key(s.key) => (joined(defaults), Origin::File),
                    None => match joined(defaults) {
                        Some(v) => (Some(v), Origin::Default),
                        None if s.kind == Kind::Bool => (Some("false".into()), Origin::Default),
                        None => (None, Origin::Unset),
                    },
                }
            }
        };
        let value = match (value, s.secret) {
            (Some(v), true) => Some(redact(s.key, &v)),
            (v, _) => v,
        };
        rows.push(Shown {
            key: s.key,
            value,
            source,
            env,
            flag,
        });
    }
    Ok(rows)
}

/// A commented configuration file with every setting at its default: a starting point.
pub fn template() -> String {
    use clap::CommandFactory;
    let cmd = crate::app::Cli::command();
    let mut out = String::from(
        "# Continuum configuration. Every setting here has a flag and most a CONTINUUM_*\n\
         # variable; precedence: flag > environment > this file > built-in default.\n\
         # Uncomment a line to change it. `continuum config show` prints the effective values.\n",
    );
    let mut section = "";
    for s in SETTINGS {
        let (sec, key) = s.key.split_once('.').unwrap_or(("", s.key));
        if sec != section {
            section = sec;
            out.push_str(&format!("\n[{sec}]\n"));
        }
        let Ok(arg) = s.flag(&cmd) else {
            continue;
        };
        if let Some(help) = arg.get_help() {
            for line in textwrap(&help.to_string(), 96) {
                out.push_str(&format!("# {line}\n"));
            }
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let example = match (s.kind, defaults.first()) {
            (Kind::List, _) => format!(
                "[{}]",
                defaults
                    .iter()
                    .map(|d| format!("{d:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (Kind::Str, Some(d)) => format!("{d:?}"),
            (Kind::Str, None) => "\"\"".into(),
            (Kind::Bool, d) => d.cloned().unwrap_or_else(|| "false".into()),
            (_, Some(d)) => d.clone(),
            (_, None) => "0".into(),
        };
        out.push_str(&format!("# {key} = {example}\n"));
    }
    out
}

fn textwrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile> {
        ConfigFile::parse(Path::new("c.toml"), text)
    }

    #[test]
    fn every_setting_names_a_real_flag() {
        use clap::CommandFactory;
        let cmd = crate::app::Cli::command();
        for s in SETTINGS {
            assert!(s.flag(&cmd).is_ok(), "{} names no flag", s.key);
        }
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_with_their_line() {
        let e = parse("[store]\nbusy_timeout_ms = 10\n\n[server]\nbnid = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:5: unknown setting server.bnid"),
            "{e}"
        );
        assert!(e.contains("bind"), "{e}");
        let e = parse("[store]\nbusy_timeout_ms = \"ten\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "c.toml:2: store.busy_timeout_ms must be a non-negative integer, not a string"
            ),
            "{e}"
        );
        let e = parse("[nope]\nx = 1\n").unwrap_err().to_string();
        assert!(e.contains("c.toml:1: unknown section [nope]"), "{e}");
        let e = parse("tenant = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("c.toml:1: tenant must be a [section]"), "{e}");
        let e = parse("[store\n").unwrap_err().to_string();
        assert!(e.starts_with("c.toml:1:"), "{e}");
    }

    #[test]
    fn values_are_checked_by_their_flags_parsers() {
        use clap::CommandFactory;
        let f = parse("\n[log]\nformat = \"xml\"\n").unwrap();
        let e = f.apply(crate::app::Cli::command()).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:3: log.format:"), "{e}");
        assert!(e.contains("xml"), "{e}");
        let f = parse("[server]\ncors_origins = [\"https://a.example\", \"https://b.example\"]\nbind = \"127.0.0.1:9\"\n").unwrap();
        assert!(f.apply(crate::app::Cli::command()).is_ok());
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            redact(
                "store.url",
                "postgres://app:hunter2@db.example:5432/mem?sslmode=require"
            ),
            "postgres://app:****@db.example:5432/mem?sslmode=require"
        );
        assert_eq!(
            redact("store.url", "postgres://app@db/mem?password=hunter2"),
            "postgres://app@db/mem?password=****"
        );
        assert_eq!(redact("embedder.api_key", "sk-123"), "****");
    }

    #[test]
    fn the_template_parses_and_sets_nothing() {
        let f = parse(&template()).unwrap();
        assert!(f.values.is_empty());
        // Uncommenting every line gives a file that loads and passes every parser.
        let uncommented: String = template()
            .lines()
            .map(
                |l| match l.strip_prefix("# ").and_then(|r| r.split_once(" = ")) {
                    Some((k, _)) if !k.contains(' ') => l[2..].to_string(),
                    _ => l.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("\n");
        let f = parse(&uncommented).unwrap();
        assert!(f.values.len() > 10, "{uncommented}");
    }
}
