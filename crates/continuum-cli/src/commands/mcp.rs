//! `mcp`: Continuum as an MCP server over standard input and output, for Claude Desktop,
//! Claude Code, Cursor and any other MCP client. Standard output carries protocol messages
//! only; errors go to standard error.

use crate::app::Global;
use anyhow::Result;
use continuum_core::Error;
use continuum_mcp::{ContinuumMcp, serve_stdio};

pub async fn mcp(g: &Global) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _store) = g.open_semantic().await?;
    let jobs = continuum_ops::Supervisor::new();
    crate::commands::reindex::spawn_worker(&engine, &jobs)?;
    crate::commands::serve::spawn_usage_flush(&engine, &jobs)?;
    crate::commands::serve::spawn_sync(g, &engine, &jobs)?;
    let result = serve_stdio(ContinuumMcp::new(engine, tenant))
        .await
        .map_err(|e| {
            Error::Unavailable(format!("the MCP session ended with an error: {e}")).into()
        });
    jobs.shutdown(crate::commands::serve::SHUTDOWN_GRACE).await;
    result
}
