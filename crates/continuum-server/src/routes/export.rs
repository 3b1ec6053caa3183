//! `GET /v1/export`: everything stored about the key's tenant, as `continuum export` writes
//! it (JSON Lines: a header with the snapshot's position, then memories with their concepts,
//! links, decisions and vectors), for data-subject access requests and moving a tenant.

use super::*;

/// The largest export answered in one response; a larger tenant is exported with
/// `continuum export` against the store.
pub(crate) const MAX_EXPORT_BYTES: usize = 64 * 1024 * 1024;

pub(super) async fn export_tenant(State(s): St, auth: Auth) -> AppResult<axum::response::Response> {
    use axum::response::IntoResponse;
    auth.require(Scope::Admin)?;
    let mut body: Vec<u8> = Vec::new();
    let mut too_large = false;
    let mut sink = |r: &continuum_engine::ExportRecord| -> continuum_core::Result<()> {
        let line = serde_json::to_vec(r).map_err(|e| Error::Internal(e.to_string()))?;
        if body.len() + line.len() + 1 > MAX_EXPORT_BYTES {
            too_large = true;
            return Err(Error::InvalidInput("export too large".into()));
        }
        body.extend_from_slice(&line);
        body.push(b'\n');
        Ok(())
    };
    let result = s.engine.export(&auth.caller, &mut sink, &mut |_| {}).await;
    if too_large {
        return Err(ApiError::Http {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "export_too_large",
            message: format!(
                "the tenant's export is over {} MiB; export it with `continuum export` against the store",
                MAX_EXPORT_BYTES / (1024 * 1024)
            ),
        });
    }
    result?;
    let filename = format!(
        "attachment; filename=\"{}.jsonl\"",
        auth.caller.tenant.as_str()
    );
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if let Ok(v) = HeaderValue::from_str(&filename) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
