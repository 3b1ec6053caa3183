//! `learn`, `remember`, `supersede`.

use crate::app::{Global, parse_time};
use crate::output;
use anyhow::{Context, Result};
use clap::Args;
use continuum_core::memory::{Metadata, Turn};
use continuum_core::{Error, MemoryId, SessionId, Source, Timestamp};
use continuum_engine::RememberRequest;
use std::io::Read;

#[derive(Debug, Args)]
pub struct LearnArgs {
    /// The user's message.
    #[arg(long)]
    pub user: String,
    /// The assistant's reply.
    #[arg(long)]
    pub assistant: String,
    /// The assistant's reasoning, stored as its own recallable memory.
    #[arg(long)]
    pub thinking: Option<String>,
    /// Conversation id.
    #[arg(long)]
    pub session: Option<String>,
    /// Metadata entry KEY=VALUE (repeatable; VALUE is parsed as JSON when it is valid JSON).
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, serde_json::Value)>,
    /// When the turn happened (default: now).
    #[arg(long, value_parser = parse_time)]
    pub at: Option<Timestamp>,
}

#[derive(Debug, Args)]
pub struct RememberArgs {
    /// The text to store; `-` reads it from standard input.
    pub text: String,
    /// Where it came from.
    #[arg(long, default_value = "note")]
    pub source: Source,
    /// A free-form kind (default: the source).
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub session: Option<String>,
    /// Metadata entry KEY=VALUE (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, serde_json::Value)>,
    /// When it was written (default: now).
    #[arg(long, value_parser = parse_time)]
    pub at: Option<Timestamp>,
}

#[derive(Debug, Args)]
pub struct SupersedeArgs {
    /// The memory the new text replaces.
    pub id: String,
    /// The new text; `-` reads it from standard input.
    pub text: String,
    #[arg(long, default_value = "fact")]
    pub source: Source,
}

fn parse_meta(s: &str) -> Result<(String, serde_json::Value), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE"))?;
    if k.trim().is_empty() {
        return Err(format!("'{s}' has an empty key"));
    }
    let value =
        serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
    Ok((k.trim().to_string(), value))
}

fn metadata(pairs: Vec<(String, serde_json::Value)>) -> Metadata {
    pairs.into_iter().collect()
}

fn text_arg(text: String) -> Result<String> {
    if text == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        return String::from_utf8(buf)
            .map_err(|_| Error::InvalidInput("standard input is not valid UTF-8".into()).into());
    }
    Ok(text)
}

fn session(s: Option<String>) -> Result<Option<SessionId>> {
    Ok(s.map(SessionId::new).transpose()?)
}

pub async fn learn(g: &Global, a: LearnArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    let turn = Turn {
        user_message: a.user,
        ai_response: a.assistant,
        thinking: a.thinking,
        session_id: session(a.session)?,
        metadata: if a.meta.is_empty() {
            None
        } else {
            Some(metadata(a.meta))
        },
        timestamp: a.at,
    };
    let out = engine.learn(&tenant, turn).await?;
    if g.json {
        return output::json(&out);
    }
    println!(
        "learned {} memories; concepts: {}; {} links ({} new); {} decisions",
        out.memory_ids.len(),
        if out.concepts.is_empty() {
            "none".to_string()
        } else {
            out.concepts.join(", ")
        },
        out.links_created,
        out.links_new,
        out.decisions_detected
    );
    for id in &out.memory_ids {
        println!("  {id}");
    }
    Ok(())
}

pub async fn remember(g: &Global, a: RememberArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let text = text_arg(a.text)?;
    let (engine, _) = g.open().await?;
    let req = RememberRequest {
        content: text,
        source: a.source,
        kind: a.kind,
        session: session(a.session)?,
        metadata: metadata(a.meta),
        created_at: a.at,
    };
    let m = engine.remember(&tenant, req).await?;
    if g.json {
        return output::json(&m);
    }
    println!("remembered {}", m.id);
    Ok(())
}

pub async fn supersede(g: &Global, a: SupersedeArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let id: MemoryId = a.id.parse()?;
    let text = text_arg(a.text)?;
    let (engine, _) = g.open().await?;
    let m = engine
        .supersede(&tenant, id, RememberRequest::new(text, a.source))
        .await?;
    if g.json {
        return output::json(&m);
    }
    println!("{} now supersedes {id}", m.id);
    Ok(())
}
