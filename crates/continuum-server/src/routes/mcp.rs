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
    let mut sessions = LocalSessionManager::default();
    // The same idle limit as the per-key count below, so that both forget a session together.
    sessions.session_config.keep_alive = Some(state.config.mcp_session_idle);
    let service = StreamableHttpService::new(
        move || Ok(continuum_mcp::ContinuumMcp::per_request(engine.clone())),
        Arc::new(sessions),
        StreamableHttpServerConfig::default(),
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(state, mcp_auth))
}

/// MCP sessions a key may hold open at once; past it, opening one is answered 429.
pub(crate) const MAX_MCP_SESSIONS_PER_KEY: usize = 32;
/// An MCP session unused this long is closed (by the MCP layer) and no longer counted (the
/// default of [`crate::ServerConfig::mcp_session_idle`]).
pub const MCP_SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(300);

/// Open MCP sessions: session id → (key prefix, last use).
#[derive(Default)]
pub(crate) struct McpSessions {
    open: std::sync::Mutex<std::collections::HashMap<String, (String, Instant)>>,
}

impl McpSessions {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (String, Instant)>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
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
    let prefix = auth.caller.key.clone().unwrap_or_default();
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let closing = parts.method == Method::DELETE;
    match &session {
        Some(id) => {
            if let Some(entry) = state.mcp_sessions.lock().get_mut(id) {
                entry.1 = Instant::now();
            }
        }
        None => {
            // A new session: count the key's open ones, forgetting those idle too long.
            let mut open = state.mcp_sessions.lock();
            let idle = state.config.mcp_session_idle;
            open.retain(|_, (_, used)| used.elapsed() < idle);
            let mine = open.values().filter(|(p, _)| *p == prefix).count();
            if mine >= MAX_MCP_SESSIONS_PER_KEY {
                return ApiError::Http {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    code: "too_many_sessions",
                    message: format!(
                        "this key already holds {MAX_MCP_SESSIONS_PER_KEY} open MCP sessions (the limit); close one (DELETE /mcp) or wait for idle ones to end ({} s)",
                        state.config.mcp_session_idle.as_secs()
                    ),
                }
                .into_response();
            }
        }
    }
    parts
        .extensions
        .insert(continuum_mcp::McpCaller(auth.caller));
    let response = next.run(Request::from_parts(parts, body)).await;
    match session {
        Some(id) if closing && response.status().is_success() => {
            state.mcp_sessions.lock().remove(&id);
        }
        Some(_) => {}
        None => {
            if let Some(id) = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
            {
                state
                    .mcp_sessions
                    .lock()
                    .insert(id.to_string(), (prefix, Instant::now()));
            }
        }
    }
    response
}
