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
    /// Entries before this position (default: no bound).
    #[schemars(regex(pattern = r"^[0-9]{1,18}$"))]
    before: Option<String>,
    /// `oldest` first (the default) or `newest` first.
    #[schemars(extend("enum" = ["oldest", "newest", null]))]
    order: Option<String>,
    /// At most this many entries (1 to 1000, default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct AuditOut {
    entries: Vec<AuditView>,
    /// Oldest first: the position to ask from next (`?since=`).
    next_since: u64,
    /// Newest first: the position to ask before next (`?order=newest&before=`); absent when
    /// the page reached the oldest entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<u64>,
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
    let before = match q.before.as_deref() {
        Some(text) => continuum_core::event::parse_position(text)?,
        None => u64::MAX,
    };
    let limit = q.limit.unwrap_or(100);
    let newest = match q.order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(other) => {
            return Err(Error::InvalidInput(format!(
                "`order` is `oldest` or `newest`, not `{other}`"
            ))
            .into());
        }
    };
    if newest {
        let entries = s
            .engine
            .audit_log_newest(&auth.caller, since, before, limit)
            .await?;
        let next_before = (entries.len() == limit)
            .then(|| entries.last().map(|e| e.seq))
            .flatten();
        return Ok(Json(AuditOut {
            next_since: entries.first().map_or(since, |e| e.seq),
            entries,
            next_before,
        }));
    }
    let mut entries = s.engine.audit_log(&auth.caller, since, limit).await?;
    entries.retain(|e| e.seq < before);
    let next_since = entries.last().map_or(since, |e| e.seq);
    Ok(Json(AuditOut {
        entries,
        next_since,
        next_before: None,
    }))
}

pub(super) async fn audit_verify(State(s): St, auth: Auth) -> AppResult<Json<AuditVerification>> {
    Ok(Json(s.engine.verify_audit(&auth.caller, |_| {}).await?))
}
