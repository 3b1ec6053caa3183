//! `usage` and `tiers`: what tenants used, per UTC day, and the tiers that bound them
//! (offline, against the store; `serve` writes usage every few seconds).

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::Args;
use continuum_core::keys::Caller;

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Every tenant's usage, not only --tenant's.
    #[arg(long)]
    pub all_tenants: bool,
    /// First day, YYYY-MM-DD (UTC; default: 29 days before --to).
    #[arg(long, value_name = "DAY")]
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD (UTC; default: today).
    #[arg(long, value_name = "DAY")]
    pub to: Option<String>,
}

pub async fn usage(g: &Global, a: UsageArgs) -> Result<()> {
    let (engine, _) = g.open().await?;
    let operator = Caller::local(g.tenant()?);
    let tenant = if a.all_tenants {
        None
    } else {
        Some(g.tenant()?)
    };
    let report = engine
        .usage(
            operator,
            tenant.as_ref(),
            a.from.as_deref(),
            a.to.as_deref(),
        )
        .await?;
    if g.json {
        return output::json(&report);
    }
    println!(
        "{:<20} {:<10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>11}",
        "TENANT",
        "DAY",
        "LEARN",
        "RECALL",
        "SEARCH",
        "OTHER",
        "EMBEDS",
        "WEBHOOKS",
        "MEMORIES",
        "BYTES"
    );
    for d in &report.days {
        println!(
            "{:<20} {:<10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>11}",
            d.tenant.as_str(),
            d.day,
            d.learn,
            d.recall,
            d.search,
            d.other,
            d.embeddings,
            d.webhook_deliveries,
            d.memories,
            d.bytes
        );
    }
    let t = &report.totals;
    println!(
        "{} to {}: {} requests ({} learn, {} recall, {} search, {} other), {} embeddings, {} webhook deliveries{}",
        report.from,
        report.to,
        t.requests,
        t.learn,
        t.recall,
        t.search,
        t.other,
        t.embeddings,
        t.webhook_deliveries,
        if report.truncated {
            " (truncated: narrow the days or name a tenant)"
        } else {
            ""
        }
    );
    Ok(())
}

fn quota<T: std::fmt::Display>(q: Option<T>) -> String {
    q.map_or_else(|| "unlimited".to_string(), |v| v.to_string())
}

pub async fn tiers(g: &Global) -> Result<()> {
    let tiers = g.tiers()?;
    if g.json {
        return output::json(&serde_json::json!({
            "tiers": tiers.all().collect::<Vec<_>>(),
            "default": tiers.default_tier().name,
        }));
    }
    println!(
        "{:<14} {:>12} {:>16} {:>12} {:>10}",
        "TIER", "MEMORIES", "REQUESTS/DAY", "RATE/KEY", "WEBHOOKS"
    );
    for t in tiers.all() {
        println!(
            "{:<14} {:>12} {:>16} {:>12} {:>10}{}",
            t.name,
            quota(t.max_memories),
            quota(t.requests_per_day),
            quota(t.rate_per_key.map(|r| format!("{r}/s"))),
            quota(t.max_webhooks),
            if t.name == tiers.default_tier().name {
                "  (default)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
