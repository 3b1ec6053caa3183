//! `concepts [NAME]`.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct ConceptsArgs {
    /// A concept (any case); omit to list the most mentioned concepts.
    pub name: Option<String>,
    /// How many neighbours or concepts to show.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
}

pub async fn concepts(g: &Global, a: ConceptsArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    match a.name {
        Some(name) => {
            let view = engine.concept(&tenant, &name, a.limit).await?;
            if g.json {
                return output::json(&view);
            }
            let c = &view.concept;
            println!(
                "{} ({}, {} mentions, last seen {})",
                c.name, c.kind, c.mentions, c.last_seen
            );
            if view.neighbours.is_empty() {
                println!("  no linked concepts");
            }
            for n in &view.neighbours {
                println!(
                    "  {:.2}  {}  ({} co-occurrences)",
                    n.strength, n.name, n.count
                );
            }
        }
        None => {
            let list = engine.list_concepts(&tenant, a.limit, a.offset).await?;
            if g.json {
                return output::json(&list);
            }
            if list.is_empty() {
                println!("no concepts");
            }
            for c in list {
                println!("{:>6}  {}  ({})", c.mentions, c.name, c.kind);
            }
        }
    }
    Ok(())
}
