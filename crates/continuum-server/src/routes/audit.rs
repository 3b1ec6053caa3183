//! `/v1/audit`: the audit log (admin: its tenant's entries; operator: all), and the check of
//! its hash chain (operator).

use super::*;
use continuum_core::audit::AuditView;
use continuum_engine::AuditVerification;

#[derive(Deserialize, JsonSchema)]
pub(super) struct AuditQuery {
    /// Entries after this position (0, the default: from the start).
    #[schemars(regex(pattern = r"^[0-9]{1,18}$"))]
    since: Option<String>,
    /// At most this many entries (1 to 1000, default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct AuditOut {
    entries: Vec<AuditView>,
    /// The position to ask from next (`?since=`).
    next_since: u64,
}

pub(super) async fn audit_list(
    State(s): St,
    auth: Auth,
    Q(q): Q<AuditQuery>,
) -> AppResult<Json<AuditOut>> {
    let since = match q.since.as_deref() {
        Some(text) => continuum_core::event::parse_position(text)?,
        None => 0,
    };
    let entries = s
        .engine
        .audit_log(&auth.caller, since, q.limit.unwrap_or(100))
        .await?;
    let next_since = entries.last().map_or(since, |e| e.seq);
    Ok(Json(AuditOut {
        entries,
        next_since,
    }))
}

pub(super) async fn audit_verify(State(s): St, auth: Auth) -> AppResult<Json<AuditVerification>> {
    Ok(Json(s.engine.verify_audit(&auth.caller, |_| {}).await?))
}
