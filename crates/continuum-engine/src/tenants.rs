//! Tenant administration for operators: which tenants exist, a new tenant with its first admin
//! key, and erasing a tenant. None of it reads a tenant's memories: an operator sees counts and
//! keys, never content.

use crate::Engine;
use continuum_core::keys::{ApiKey, Caller, Scope};
use continuum_core::reflection::RecordKind;
use continuum_core::store::ForgetSelector;
use continuum_core::{Error, Result, TenantId, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;

/// A tenant as an operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TenantInfo {
    pub tenant: TenantId,
    pub memories: u64,
    pub last_memory_at: Option<Timestamp>,
    /// Keys that work now (not revoked, not expired).
    pub active_keys: u64,
    /// Every key ever made for it, revoked and expired ones included.
    pub keys: u64,
}

/// What erasing a tenant removed.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TenantErased {
    pub tenant: TenantId,
    /// Memories deleted, with their concepts, links, decisions, vectors and index entries.
    pub memories: u64,
    /// Keys revoked (they stay listed as revoked, so the record of who had access survives).
    pub keys_revoked: u64,
}

impl Engine {
    /// Every tenant that holds memories or keys, by id.
    pub async fn tenants(&self) -> Result<Vec<TenantInfo>> {
        let now = self.clock.now();
        let mut by_id: BTreeMap<TenantId, TenantInfo> = BTreeMap::new();
        let blank = |t: &TenantId| TenantInfo {
            tenant: t.clone(),
            memories: 0,
            last_memory_at: None,
            active_keys: 0,
            keys: 0,
        };
        for t in self.store.tenants().await? {
            let info = by_id
                .entry(t.tenant.clone())
                .or_insert_with(|| blank(&t.tenant));
            info.memories = t.memories;
            info.last_memory_at = t.last_memory_at;
        }
        for k in self.store.list_keys(None).await? {
            let info = by_id
                .entry(k.tenant.clone())
                .or_insert_with(|| blank(&k.tenant));
            info.keys += 1;
            if k.is_active(now) {
                info.active_keys += 1;
            }
        }
        Ok(by_id.into_values().collect())
    }

    /// A new tenant with its first admin key (the secret is returned once). A tenant that
    /// already holds memories or a working key is a conflict: this never hands out a key to
    /// someone else's data.
    pub async fn create_tenant(
        &self,
        tenant: &TenantId,
        name: Option<String>,
    ) -> Result<(String, ApiKey)> {
        self.create_tenant_by(tenant, name, "local").await
    }

    async fn create_tenant_by(
        &self,
        tenant: &TenantId,
        name: Option<String>,
        actor: &str,
    ) -> Result<(String, ApiKey)> {
        let existing = self.tenants().await?;
        if let Some(t) = existing
            .iter()
            .find(|t| &t.tenant == tenant && (t.memories > 0 || t.active_keys > 0))
        {
            return Err(Error::Conflict(format!(
                "tenant {tenant} already exists ({} memories, {} active keys)",
                t.memories, t.active_keys
            )));
        }
        let made = crate::keys::Made {
            actor,
            first_of_tenant: true,
        };
        self.put_new_key(tenant, Scope::Admin, None, name, None, made)
            .await
    }

    /// [`Self::tenants`] for an operator.
    pub async fn tenants_as(&self, caller: &Caller) -> Result<Vec<TenantInfo>> {
        caller.require(Scope::Operator)?;
        self.tenants().await
    }

    /// [`Self::create_tenant`] for an operator.
    pub async fn create_tenant_as(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        name: Option<String>,
    ) -> Result<(String, ApiKey)> {
        caller.require(Scope::Operator)?;
        self.create_tenant_by(tenant, name, &crate::actor_of(caller))
            .await
    }

    /// [`Self::erase_tenant`] for an operator key, which may not erase its own tenant (another
    /// operator's key must).
    pub async fn erase_tenant_as(
        &self,
        caller: &Caller,
        tenant: &TenantId,
    ) -> Result<TenantErased> {
        let own = caller.require(Scope::Operator)?;
        if caller.key.is_some() && own == tenant {
            return Err(Error::Forbidden(
                "an operator key cannot erase its own tenant (use another operator's key)".into(),
            ));
        }
        self.erase_tenant_by(tenant, &crate::actor_of(caller)).await
    }

    /// Deletes everything the tenant stored and revokes its keys.
    pub async fn erase_tenant(&self, tenant: &TenantId) -> Result<TenantErased> {
        self.erase_tenant_by(tenant, "local").await
    }

    async fn erase_tenant_by(&self, tenant: &TenantId, actor: &str) -> Result<TenantErased> {
        let keys = self.store.list_keys(Some(tenant)).await?;
        let mut records = 0;
        for kind in RecordKind::ALL {
            records += self.store.count_records(tenant, kind).await?;
        }
        let memories = self.store.forget(tenant, &ForgetSelector::All).await?;
        self.drop_webhooks(tenant).await?;
        self.vectors_changed(tenant);
        self.drop_snapshots(tenant, None);
        self.footprint_changed(tenant);
        if memories == 0 && records == 0 && keys.iter().all(|k| k.revoked_at.is_some()) {
            return Err(Error::NotFound(format!(
                "no tenant {tenant} (nothing stored, no key that is not revoked)"
            )));
        }
        let now = self.clock.now();
        let mut keys_revoked = 0;
        for k in keys.iter().filter(|k| k.revoked_at.is_none()) {
            if self.store.revoke_key(&k.prefix, now).await? {
                keys_revoked += 1;
            }
        }
        let event = continuum_core::Event::TenantErased {
            memories,
            keys_revoked,
        };
        self.store.record_events(tenant, now, &[event]).await?;
        self.audit_ok(
            actor,
            Some(tenant),
            "tenant.erased",
            serde_json::json!({ "memories": memories, "keys_revoked": keys_revoked }),
        )
        .await;
        Ok(TenantErased {
            tenant: tenant.clone(),
            memories,
            keys_revoked,
        })
    }
}
