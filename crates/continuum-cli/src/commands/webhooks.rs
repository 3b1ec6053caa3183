//! `webhooks`: a tenant's webhook subscriptions, offline against the store (`serve` runs the
//! delivery job). The signing secret is printed once, at creation and at rotation.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    pub action: WebhooksAction,
}

#[derive(Debug, Subcommand)]
pub enum WebhooksAction {
    /// Subscribe URL to --tenant's events from now on; prints the signing secret once.
    Create {
        url: String,
        /// Event types to send, comma-separated (default: every type).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// The tenant's subscriptions (never their secrets).
    List,
    /// Delete a subscription and its delivery records.
    Delete { id: String },
    /// A new signing secret; the old one still signs beside it for --overlap (30m, 12h, 1d;
    /// default 1h; 0 for none). Prints the new secret once.
    RotateSecret {
        id: String,
        #[arg(long, default_value = "1h", value_parser = crate::commands::keys::parse_overlap)]
        overlap: i64,
    },
    /// A subscription's deliveries, newest event first.
    Deliveries {
        id: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Send a delivery again now (a dead letter, say) and show the result.
    Retry { id: String, delivery: String },
}

fn print_view(w: &continuum_engine::WebhookView) {
    println!(
        "{}  {:<8} {}  position {}  events {}{}{}",
        w.id,
        format!("{:?}", w.state).to_lowercase(),
        w.url,
        w.position,
        if w.events.is_empty() {
            "all".to_string()
        } else {
            w.events.join(",")
        },
        w.failing_since
            .map(|t| format!("  failing since {t}"))
            .unwrap_or_default(),
        w.disabled_reason
            .as_ref()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default()
    );
}

pub async fn webhooks(g: &Global, a: WebhooksArgs) -> Result<()> {
    let (engine, _) = g.open().await?;
    let tenant = g.tenant()?;
    match a.action {
        WebhooksAction::Create {
            url,
            events,
            description,
        } => {
            continuum_webhooks::check_target(&url, g.webhooks_allow_private)?;
            let events = events
                .into_iter()
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect();
            let created = engine
                .create_webhook(&tenant, &url, events, description)
                .await?;
            if g.json {
                return output::json(&created);
            }
            println!("{}", created.secret);
            eprintln!(
                "created webhook {} for tenant '{tenant}' to {}; the secret above is shown only this once",
                created.webhook.id, created.webhook.url
            );
        }
        WebhooksAction::List => {
            let list = engine.webhooks(&tenant).await?;
            if g.json {
                return output::json(&list);
            }
            if list.is_empty() {
                println!("no webhooks");
            }
            list.iter().for_each(print_view);
        }
        WebhooksAction::Delete { id } => {
            engine.delete_webhook(&tenant, &id).await?;
            if g.json {
                return output::json(&serde_json::json!({"deleted": id}));
            }
            eprintln!("deleted webhook {id}");
        }
        WebhooksAction::RotateSecret { id, overlap } => {
            let rotated = engine.rotate_webhook_secret(&tenant, &id, overlap).await?;
            if g.json {
                return output::json(&rotated);
            }
            println!("{}", rotated.secret);
            eprintln!(
                "new secret for webhook {id}{}",
                rotated
                    .webhook
                    .previous_secret_until
                    .map(|t| format!("; the old one also signs until {t}"))
                    .unwrap_or_default()
            );
        }
        WebhooksAction::Deliveries { id, limit } => {
            let list = engine.webhook_deliveries(&tenant, &id, limit).await?;
            if g.json {
                return output::json(&list);
            }
            if list.is_empty() {
                println!("no deliveries");
            }
            for d in list {
                println!(
                    "{}  {:<9} {:<18} attempts {}{}{}",
                    d.id,
                    format!("{:?}", d.state).to_lowercase(),
                    d.event_type,
                    d.attempts,
                    d.last_status
                        .map(|s| format!("  last status {s}"))
                        .unwrap_or_default(),
                    d.last_error.map(|e| format!("  ({e})")).unwrap_or_default()
                );
            }
        }
        WebhooksAction::Retry { id, delivery } => {
            let (w, d) = engine.webhook_delivery(&tenant, &id, &delivery).await?;
            let sender = continuum_webhooks::Deliverer::new(engine.clone(), g.webhook_config())?;
            let d = sender.retry(&w, d).await?;
            if g.json {
                return output::json(&d);
            }
            println!(
                "{}: {}{}",
                d.id,
                format!("{:?}", d.state).to_lowercase(),
                d.last_error.map(|e| format!(" ({e})")).unwrap_or_default()
            );
        }
    }
    Ok(())
}
