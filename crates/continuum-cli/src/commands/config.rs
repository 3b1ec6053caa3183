//! `config init` and `config show`.

use crate::app::Global;
use crate::config::{self, ConfigFile};
use anyhow::Result;
use clap::{Args, Subcommand};
use continuum_core::Error;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Write a commented configuration file with every setting at its default (to --config,
    /// or continuum.toml in the data directory).
    Init {
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Every setting's effective value and where it comes from (default, file, env, flag);
    /// secrets redacted.
    Show,
}

pub fn config(g: &Global, a: ConfigArgs, file: &ConfigFile) -> Result<()> {
    match a.action {
        ConfigAction::Init { force } => {
            let path = match &g.config {
                Some(p) => p.clone(),
                None => g.data_dir()?.join(config::FILE_NAME),
            };
            if path.exists() && !force {
                return Err(Error::Conflict(format!(
                    "{} exists; pass --force to replace it",
                    path.display()
                ))
                .into());
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            std::fs::write(&path, config::template())
                .map_err(|e| Error::Unavailable(format!("cannot write {}: {e}", path.display())))?;
            if g.json {
                crate::output::json(&serde_json::json!({"written": path}))
            } else {
                println!("wrote {}", path.display());
                Ok(())
            }
        }
        ConfigAction::Show => {
            let rows = config::show(file)?;
            if g.json {
                return crate::output::json(&serde_json::json!({
                    "file": file.path,
                    "settings": rows,
                }));
            }
            match &file.path {
                Some(p) => println!("file: {}", p.display()),
                None => println!("file: none"),
            }
            let width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
            for r in rows {
                let source = serde_json::to_value(r.source)?;
                println!(
                    "{:width$}  {:8} {}",
                    r.key,
                    source.as_str().unwrap_or(""),
                    r.value.as_deref().unwrap_or("(unset)"),
                );
            }
            Ok(())
        }
    }
}
