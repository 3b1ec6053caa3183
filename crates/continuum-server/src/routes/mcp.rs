//! MCP over streamable HTTP at `/mcp`, behind the API-key check.

use super::*;

/// MCP over streamable HTTP at `/mcp`: the same tools as `continuum mcp`, each call in the
/// tenant of the request's API key (write scope: the tools store and forget).
pub(super) fn mcp_router(state: Arc<AppState>) -> Router {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    let engine = state.engine.clone();
    let service = StreamableHttpService::new(
        move || Ok(continuum_mcp::ContinuumMcp::per_request(engine.clone())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(state, mcp_auth))
}

pub(super) async fn mcp_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (mut parts, body) = request.into_parts();
    let auth = match Auth::from_request_parts(&mut parts, &state).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    // MCP sessions store and forget: write scope to open one; each tool call's engine verb
    // then checks the caller's rights again.
    if let Err(e) = auth.require(Scope::Write) {
        return e.into_response();
    }
    parts
        .extensions
        .insert(continuum_mcp::McpCaller(auth.caller));
    next.run(Request::from_parts(parts, body)).await
}
