//! `GET /v1/backups`: the backups at the destination this server backs up to (operator only:
//! a backup holds every tenant). The server knows backups only through a [`BackupCatalog`]
//! the process hands it (the CLI's `serve` does when `--backup-schedule` is set).

use super::*;

/// One backup at the destination, as `continuum backup list` shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BackupSummary {
    pub id: String,
    /// False for an upload that did not finish (it has no manifest and cannot be restored).
    pub complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// `sqlite-file`, `logical` or `incremental`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The backup an incremental one builds on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub tenants: u64,
    pub memories: u64,
    /// Bytes at the destination.
    pub stored_bytes: u64,
    /// Why the manifest could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What the server can ask about backups.
pub trait BackupCatalog: Send + Sync + std::fmt::Debug {
    /// The destination, with any credential left out.
    fn destination(&self) -> String;
    /// The schedule, as configured.
    fn schedule(&self) -> String;
    /// The backups at the destination, oldest first.
    fn list(
        &self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<BackupSummary>, String>> + Send + '_>,
    >;
}

#[derive(Serialize, JsonSchema)]
pub(super) struct BackupsOut {
    destination: String,
    schedule: String,
    backups: Vec<BackupSummary>,
}

pub(super) async fn backups_list(State(s): St, auth: Auth) -> AppResult<Json<BackupsOut>> {
    auth.require(Scope::Operator)?;
    let Some(catalog) = s.config.backups.as_ref() else {
        return Err(Error::NotFound(
            "backups are not scheduled on this server (see `continuum serve --backup-schedule`)"
                .into(),
        )
        .into());
    };
    let backups = catalog.list().await.map_err(|e| {
        tracing::warn!(error = %e, "listing backups failed");
        ApiError::Http {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "backups_unavailable",
            message: "the backup destination could not be listed; the server's log says why".into(),
        }
    })?;
    Ok(Json(BackupsOut {
        destination: catalog.destination(),
        schedule: catalog.schedule(),
        backups,
    }))
}
