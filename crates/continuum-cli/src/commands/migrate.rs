//! `migrate`: migrations run at every start; this applies them explicitly and shows the state.

use crate::app::Global;
use crate::output;
use anyhow::Result;

pub async fn migrate(g: &Global) -> Result<()> {
    let (_, store) = g.open().await?;
    let applied = store.applied_migrations().await?;
    let latest = store.latest_version();
    if g.json {
        let rows: Vec<_> = applied
            .iter()
            .map(|m| serde_json::json!({"version": m.version, "name": m.name, "checksum": m.checksum, "applied_at": continuum_core::Timestamp(m.applied_at)}))
            .collect();
        return output::json(&serde_json::json!({"latest": latest, "applied": rows}));
    }
    for m in &applied {
        println!(
            "v{}  {}  applied {}  sha256 {}",
            m.version,
            m.name,
            continuum_core::Timestamp(m.applied_at),
            &m.checksum[..16]
        );
    }
    println!("schema is at v{} (this build's latest)", latest);
    Ok(())
}

/// `vacuum`: rewrites the store's files so that nothing forgotten or erased stays in their
/// pages, and says how much space that gave back.
pub async fn vacuum(g: &Global) -> Result<()> {
    let (engine, _) = g.open().await?;
    let v = engine
        .vacuum_store(&continuum_core::keys::Caller::local(g.tenant()?))
        .await?;
    print_vacuumed(g, &v)
}

pub(crate) fn print_vacuumed(g: &Global, v: &continuum_core::store::Vacuumed) -> Result<()> {
    if g.json {
        return output::json(v);
    }
    println!(
        "vacuumed {} tables: {} -> {}",
        v.tables,
        super::backup::size(v.bytes_before),
        super::backup::size(v.bytes_after)
    );
    Ok(())
}
