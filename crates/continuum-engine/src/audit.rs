//! The audit log from the engine's side: recording security-relevant acts, reading the log,
//! and verifying its chain (see [`continuum_core::audit`]).
//!
//! An act is recorded after it succeeded, in a transaction of its own: if the audit write
//! fails the act stands, the failure is logged at error level and counted in
//! `continuum_audit_failures_total`.

use crate::Engine;
use continuum_core::audit::{AuditEntry, AuditRecord, AuditView, ChainFault, verify_chain};
use continuum_core::keys::{Caller, Scope};
use continuum_core::{Result, TenantId};
use serde::Serialize;

/// Entries read per page, by `audit_log` and `verify_audit`.
pub const MAX_AUDIT_PAGE: usize = 1000;
const VERIFY_PAGE: usize = 10_000;

fn check_limit(limit: usize, max: usize) -> Result<()> {
    if limit == 0 || limit > max {
        return Err(continuum_core::Error::InvalidInput(format!(
            "limit must be between 1 and {max}"
        )));
    }
    Ok(())
}

/// Who a caller is, as the audit log names it.
pub fn actor_of(caller: &Caller) -> String {
    match &caller.key {
        Some(prefix) => format!("key:{prefix}"),
        None => "local".into(),
    }
}

/// What `audit verify` found.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AuditVerification {
    /// Entries checked.
    pub entries: u64,
    /// The last entry checked, and its hash (what a checkpoint records).
    pub head_seq: u64,
    pub head_hash: String,
    /// `None`: the chain is intact.
    pub fault: Option<ChainFault>,
}

impl Engine {
    /// Records acts (one transaction). Never fails the caller: a failed write is logged.
    pub(crate) async fn audit(&self, records: Vec<AuditRecord>) {
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.store.append_audit(&records).await {
            metrics::counter!(continuum_ops::metrics::AUDIT_FAILURES).increment(1);
            let actions: Vec<&str> = records.iter().map(|r| r.action).collect();
            tracing::error!(error = %e, ?actions, "an audit entry could not be written");
        }
    }

    /// A record of an act of `actor` on `tenant` that succeeded, now.
    pub(crate) fn audit_record(
        &self,
        actor: &str,
        tenant: &TenantId,
        action: &'static str,
        details: serde_json::Value,
    ) -> AuditRecord {
        AuditRecord {
            at: self.clock.now(),
            tenant: Some(tenant.clone()),
            actor: actor.to_string(),
            action,
            outcome: "ok",
            source: None,
            details,
        }
    }

    /// An act of `actor` on `tenant` that succeeded.
    pub(crate) async fn audit_ok(
        &self,
        actor: &str,
        tenant: Option<&TenantId>,
        action: &'static str,
        details: serde_json::Value,
    ) {
        self.audit(vec![AuditRecord {
            at: self.clock.now(),
            tenant: tenant.cloned(),
            actor: actor.to_string(),
            action,
            outcome: "ok",
            source: None,
            details,
        }])
        .await
    }

    /// Records a failed authentication: the presented key's prefix (never the secret), the
    /// client's address and why.
    pub async fn audit_auth_failure(
        &self,
        key_prefix: Option<&str>,
        source: Option<String>,
        reason: &str,
    ) {
        self.audit(vec![AuditRecord {
            at: self.clock.now(),
            tenant: None,
            actor: "anonymous".into(),
            action: "auth.failed",
            outcome: "refused",
            source,
            details: serde_json::json!({
                "key_prefix": key_prefix,
                "reason": reason.chars().take(200).collect::<String>(),
            }),
        }])
        .await
    }

    /// Records a federation act on this hub: a node joined, was refused (join or message, with
    /// the reason), revoked or granted unlimited access. Node ids and reasons only.
    pub async fn audit_federation(
        &self,
        action: &'static str,
        refused: bool,
        details: serde_json::Value,
    ) {
        self.audit(vec![AuditRecord {
            at: self.clock.now(),
            tenant: None,
            actor: "federation".into(),
            action,
            outcome: if refused { "refused" } else { "ok" },
            source: None,
            details,
        }])
        .await
    }

    /// Records the start of a server with its (non-secret) settings.
    pub async fn audit_start(&self, settings: serde_json::Value) {
        self.audit_ok("system", None, "server.started", settings)
            .await
    }

    /// Entries after `after`, oldest first, at most `limit` (1 to [`MAX_AUDIT_PAGE`]): an
    /// admin's tenant's, or (operator) every tenant's and the server's own.
    pub async fn audit_log(
        &self,
        who: impl Into<Caller>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditView>> {
        let caller = who.into();
        let tenant = audit_reader(&caller, limit)?;
        self.store
            .audit_entries(tenant, after, limit)
            .await?
            .iter()
            .map(AuditEntry::view)
            .collect()
    }

    /// Entries after `after` and before `before` (both exclusive; `u64::MAX`: from the
    /// newest), newest first, at most `limit`: what [`Engine::audit_log`] shows, the other way
    /// round.
    pub async fn audit_log_newest(
        &self,
        who: impl Into<Caller>,
        after: u64,
        before: u64,
        limit: usize,
    ) -> Result<Vec<AuditView>> {
        let caller = who.into();
        let tenant = audit_reader(&caller, limit)?;
        self.store
            .audit_entries_before(tenant, after, before, limit)
            .await?
            .iter()
            .map(AuditEntry::view)
            .collect()
    }

    /// The last entry's position (operator; 0: none yet).
    pub async fn audit_head(&self, who: impl Into<Caller>) -> Result<u64> {
        who.into().require(Scope::Operator)?;
        self.store.audit_head().await
    }

    /// How far the audit consumer `name` has got (operator).
    pub async fn audit_cursor(&self, who: impl Into<Caller>, name: &str) -> Result<u64> {
        who.into().require(Scope::Operator)?;
        self.store.audit_cursor(name).await
    }

    /// Moves the audit consumer `name` to `seq` (operator).
    pub async fn set_audit_cursor(
        &self,
        who: impl Into<Caller>,
        name: &str,
        seq: u64,
    ) -> Result<()> {
        who.into().require(Scope::Operator)?;
        self.store
            .set_audit_cursor(name, seq, self.clock.now())
            .await
    }

    /// The raw entries (body and hashes), for export and checkpoints (operator).
    pub async fn audit_entries(
        &self,
        who: impl Into<Caller>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        who.into().require(Scope::Operator)?;
        check_limit(limit, VERIFY_PAGE)?;
        self.store.audit_entries(None, after, limit).await
    }

    /// Walks the whole chain (operator) and reports the first fault, if any.
    pub async fn verify_audit(
        &self,
        who: impl Into<Caller>,
        mut progress: impl FnMut(u64),
    ) -> Result<AuditVerification> {
        who.into().require(Scope::Operator)?;
        let mut prev: Option<(u64, String)> = None;
        let mut entries = 0u64;
        loop {
            let after = prev.as_ref().map_or(0, |p| p.0);
            let page = self.store.audit_entries(None, after, VERIFY_PAGE).await?;
            if page.is_empty() {
                break;
            }
            if let Some(fault) = verify_chain(prev.clone(), &page) {
                let (head_seq, head_hash) = prev.unwrap_or((0, String::new()));
                return Ok(AuditVerification {
                    entries: entries + fault.seq.saturating_sub(head_seq + 1),
                    head_seq,
                    head_hash,
                    fault: Some(fault),
                });
            }
            entries += page.len() as u64;
            let last = page.last().expect("a page that is not empty");
            prev = Some((last.seq, last.hash.clone()));
            progress(entries);
        }
        let (head_seq, head_hash) = prev.unwrap_or((0, continuum_core::audit::GENESIS.into()));
        Ok(AuditVerification {
            entries,
            head_seq,
            head_hash,
            fault: None,
        })
    }
}

/// Whose entries `caller` reads: its own tenant's for an admin, every one (None) for an
/// operator; refused below admin or for a page over [`MAX_AUDIT_PAGE`].
fn audit_reader(caller: &Caller, limit: usize) -> Result<Option<&TenantId>> {
    let own = caller.require(Scope::Admin)?;
    check_limit(limit, MAX_AUDIT_PAGE)?;
    Ok((!caller.scope.allows(Scope::Operator)).then_some(own))
}
