//! API keys: create (the secret is returned once), authenticate, list, revoke.

use crate::Engine;
use continuum_core::keys::{ApiKey, Caller, Scope, format_key, hash_key, key_prefix, same_hash};
use continuum_core::{Error, Event, Result, TenantId, Timestamp};

/// The longest a key may be valid for, in days.
pub const MAX_KEY_DAYS: i64 = 3650;

/// Stored key records kept between requests (see [`Engine::authenticate`]); the cache is
/// emptied when full.
const MAX_VERIFIED_KEYS: usize = 10_000;

/// The longest overlap a rotation may give the old key, in days.
pub const MAX_ROTATION_OVERLAP_DAYS: i64 = 30;

/// A fresh key (secret and record) from the system's random source.
fn make_key(
    tenant: &TenantId,
    scope: Scope,
    name: Option<String>,
    now: Timestamp,
    expires_at: Option<Timestamp>,
) -> (String, ApiKey) {
    let mut random = [0u8; 32];
    random[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    random[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let (secret, prefix) = format_key(&random);
    let key = ApiKey {
        prefix,
        tenant: tenant.clone(),
        scope,
        hash: hash_key(&secret),
        name,
        created_at: now,
        expires_at,
        revoked_at: None,
        max_age_ms: None,
    };
    (secret, key)
}

/// What a rotation made: the new key's secret (shown once) and record, and when the old key
/// stops working.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub secret: String,
    pub key: ApiKey,
    pub old_prefix: String,
    pub old_expires_at: Timestamp,
}

/// Who makes a key, and whether it is a new tenant's first (for the event log and the audit
/// log).
pub(crate) struct Made<'a> {
    pub(crate) actor: &'a str,
    pub(crate) first_of_tenant: bool,
}

impl<'a> Made<'a> {
    pub(crate) fn by(actor: &'a str) -> Self {
        Made {
            actor,
            first_of_tenant: false,
        }
    }
}

impl Engine {
    /// Creates a key for `tenant`; returns the secret (shown once, stored only as a hash) and
    /// the stored record.
    pub async fn create_key(
        &self,
        tenant: &TenantId,
        scope: Scope,
        valid_for_millis: Option<i64>,
        name: Option<String>,
    ) -> Result<(String, ApiKey)> {
        self.put_new_key(
            tenant,
            scope,
            valid_for_millis,
            name,
            None,
            Made::by("local"),
        )
        .await
    }

    /// [`Self::create_key`] for a key due for rotation once it is `max_age_millis` old (it
    /// still works after; `keys list`, `doctor` and the metrics point it out).
    pub async fn create_key_with_max_age(
        &self,
        tenant: &TenantId,
        scope: Scope,
        valid_for_millis: Option<i64>,
        name: Option<String>,
        max_age_millis: Option<i64>,
    ) -> Result<(String, ApiKey)> {
        self.put_new_key(
            tenant,
            scope,
            valid_for_millis,
            name,
            max_age_millis,
            Made::by("local"),
        )
        .await
    }

    /// Makes and stores a key, recording `key.created` (after `tenant.created` when `first`).
    pub(crate) async fn put_new_key(
        &self,
        tenant: &TenantId,
        scope: Scope,
        valid_for_millis: Option<i64>,
        name: Option<String>,
        max_age_millis: Option<i64>,
        made: Made<'_>,
    ) -> Result<(String, ApiKey)> {
        let (first, actor) = (made.first_of_tenant, made.actor);
        if let Some(ms) = max_age_millis
            && (ms <= 0 || ms > MAX_KEY_DAYS * 86_400_000)
        {
            return Err(Error::InvalidInput(format!(
                "a key's maximum age must be between 1 ms and {MAX_KEY_DAYS} days"
            )));
        }
        if let Some(ms) = valid_for_millis
            && (ms <= 0 || ms > MAX_KEY_DAYS * 86_400_000)
        {
            return Err(Error::InvalidInput(format!(
                "a key's validity must be between 1 ms and {MAX_KEY_DAYS} days"
            )));
        }
        if name.as_deref().is_some_and(|n| n.chars().count() > 200) {
            return Err(Error::InvalidInput(
                "key name is over 200 characters".into(),
            ));
        }
        let now = self.clock.now();
        let (secret, mut key) = make_key(
            tenant,
            scope,
            name,
            now,
            valid_for_millis.map(|ms| Timestamp(now.millis() + ms)),
        );
        key.max_age_ms = max_age_millis;
        let created = Event::KeyCreated {
            prefix: key.prefix.clone(),
            scope: key.scope,
            name: key.name.clone(),
            expires_at: key.expires_at,
        };
        let events = if first {
            vec![Event::TenantCreated, created]
        } else {
            vec![created]
        };
        self.store.put_key(&key, &events).await?;
        let mut records = Vec::new();
        if first {
            records.push(self.audit_record(actor, tenant, "tenant.created", serde_json::json!({})));
        }
        records.push(self.audit_record(
            actor,
            tenant,
            "key.created",
            serde_json::json!({
                "prefix": key.prefix,
                "scope": key.scope.as_str(),
                "expires_at": key.expires_at.map(|t| t.to_rfc3339()),
            }),
        ));
        self.audit(records).await;
        Ok((secret, key))
    }

    /// The key a presented secret belongs to, if it is valid now. Costs one indexed lookup, or
    /// none while the store's commit marker shows no write since the key was last read (a
    /// revocation is a write, so it takes effect at once, from any process).
    pub async fn authenticate(&self, secret: &str) -> Result<ApiKey> {
        let refused = || Error::Unauthorized("invalid, expired or revoked API key".into());
        let prefix = key_prefix(secret.trim()).ok_or_else(refused)?;
        let marker = self.store.commit_marker().await?;
        let cached = match marker {
            Some(m) => self
                .indexes
                .keys
                .lock()
                .map_err(|_| Error::Internal("the key cache lock was poisoned".into()))?
                .get(prefix)
                .filter(|(at, _)| *at == m)
                .map(|(_, k)| k.clone()),
            None => None,
        };
        let key = match cached {
            Some(k) => k,
            None => {
                let k = self
                    .store
                    .key_by_prefix(prefix)
                    .await?
                    .ok_or_else(refused)?;
                if let Some(m) = marker
                    && let Ok(mut keys) = self.indexes.keys.lock()
                {
                    if keys.len() >= MAX_VERIFIED_KEYS {
                        keys.clear();
                    }
                    keys.insert(prefix.to_string(), (m, k.clone()));
                }
                k
            }
        };
        if !same_hash(&key.hash, &hash_key(secret.trim())) {
            return Err(refused());
        }
        let now = self.clock.now();
        if !key.is_active(now) {
            // The holder of an expired key is the likeliest to notice its expiry first.
            if key.revoked_at.is_none()
                && key.expires_at.is_some_and(|t| t <= now)
                && let Err(e) = self.note_expired_keys().await
            {
                tracing::warn!(error = %e, "could not record a key's expiry");
            }
            return Err(refused());
        }
        Ok(key)
    }

    /// Records, once each, the keys whose expiry has passed (a rotation's overlap ended, or
    /// their own validity ran out): a `key.expired` event for the key's tenant and a
    /// `key.expired` audit entry. Returns how many were recorded by this call. Run by the
    /// `key-expiry` job of `serve` and when an expired key is presented.
    pub async fn note_expired_keys(&self) -> Result<usize> {
        let keys = self.store.note_expired_keys(self.clock.now()).await?;
        let records = keys
            .iter()
            .map(|k| {
                self.audit_record(
                    "system",
                    &k.tenant,
                    "key.expired",
                    serde_json::json!({
                        "prefix": k.prefix,
                        "scope": k.scope.as_str(),
                        "expires_at": k.expires_at.map(|t| t.to_rfc3339()),
                    }),
                )
            })
            .collect();
        self.audit(records).await;
        Ok(keys.len())
    }

    /// A key for the caller's tenant (admin scope), of a scope no higher than the caller's.
    pub async fn create_key_as(
        &self,
        caller: &Caller,
        scope: Scope,
        valid_for_millis: Option<i64>,
        name: Option<String>,
        max_age_millis: Option<i64>,
    ) -> Result<(String, ApiKey)> {
        let tenant = caller.require(Scope::Admin)?.clone();
        if !caller.scope.allows(scope) {
            return Err(Error::Forbidden(format!(
                "a key with {} scope cannot create a key with {scope} scope",
                caller.scope
            )));
        }
        self.put_new_key(
            &tenant,
            scope,
            valid_for_millis,
            name,
            max_age_millis,
            Made::by(&crate::actor_of(caller)),
        )
        .await
    }

    /// The caller's tenant's keys (admin scope).
    pub async fn list_keys_as(&self, caller: &Caller) -> Result<Vec<ApiKey>> {
        let tenant = caller.require(Scope::Admin)?;
        self.store.list_keys(Some(tenant)).await
    }

    /// Revokes one of the caller's tenant's keys (admin scope). Another tenant's key is "not
    /// found"; a key of a higher scope than the caller's is refused (an admin key never
    /// revokes its tenant's operator key).
    pub async fn revoke_key_as(&self, caller: &Caller, prefix_or_key: &str) -> Result<()> {
        let tenant = caller.require(Scope::Admin)?;
        let prefix = key_prefix(prefix_or_key.trim()).unwrap_or(prefix_or_key.trim());
        let key = self
            .store
            .key_by_prefix(prefix)
            .await?
            .filter(|k| &k.tenant == tenant)
            .ok_or_else(|| Error::NotFound(format!("no API key with prefix {prefix}")))?;
        if !caller.scope.allows(key.scope) {
            return Err(Error::Forbidden(format!(
                "a key with {} scope cannot revoke a key with {} scope",
                caller.scope, key.scope
            )));
        }
        self.revoke_key_by(prefix, &crate::actor_of(caller)).await
    }

    /// Replaces a working key with a new one of the same tenant, scope and name (and, if the
    /// old one had a limited validity, the same length of it). The old key keeps working for
    /// `overlap_millis` (0 to 30 days), then is refused as expired, so clients can switch
    /// without an outage. Recorded as `key.created` and `key.rotated`.
    pub async fn rotate_key(&self, prefix_or_key: &str, overlap_millis: i64) -> Result<Rotation> {
        self.rotate(None, prefix_or_key, overlap_millis).await
    }

    /// [`Self::rotate_key`] for a caller (admin scope): one of its tenant's keys, of a scope
    /// no higher than its own.
    pub async fn rotate_key_as(
        &self,
        caller: &Caller,
        prefix_or_key: &str,
        overlap_millis: i64,
    ) -> Result<Rotation> {
        self.rotate(Some(caller), prefix_or_key, overlap_millis)
            .await
    }

    async fn rotate(
        &self,
        caller: Option<&Caller>,
        prefix_or_key: &str,
        overlap_millis: i64,
    ) -> Result<Rotation> {
        if !(0..=MAX_ROTATION_OVERLAP_DAYS * 86_400_000).contains(&overlap_millis) {
            return Err(Error::InvalidInput(format!(
                "the overlap must be between 0 and {MAX_ROTATION_OVERLAP_DAYS} days"
            )));
        }
        let prefix = key_prefix(prefix_or_key.trim()).unwrap_or(prefix_or_key.trim());
        let tenant = match caller {
            Some(c) => Some(c.require(Scope::Admin)?),
            None => None,
        };
        let now = self.clock.now();
        let not_found = || Error::NotFound(format!("no working API key with prefix {prefix}"));
        let old = self
            .store
            .key_by_prefix(prefix)
            .await?
            .filter(|k| tenant.is_none_or(|t| &k.tenant == t))
            .filter(|k| k.is_active(now))
            .ok_or_else(not_found)?;
        if let Some(c) = caller
            && !c.scope.allows(old.scope)
        {
            return Err(Error::Forbidden(format!(
                "a key with {} scope cannot rotate a key with {} scope",
                c.scope, old.scope
            )));
        }
        let validity = old
            .expires_at
            .map(|e| Timestamp(now.millis() + (e.millis() - old.created_at.millis()).max(1)));
        let (secret, mut key) = make_key(&old.tenant, old.scope, old.name.clone(), now, validity);
        key.max_age_ms = old.max_age_ms;
        let old_expires_at = Timestamp(now.millis() + overlap_millis);
        let old_expires_at = match old.expires_at {
            Some(e) if e < old_expires_at => e,
            _ => old_expires_at,
        };
        if !self.store.rotate_key(prefix, &key, old_expires_at).await? {
            return Err(not_found());
        }
        let actor = caller.map_or_else(|| "local".to_string(), crate::actor_of);
        self.audit_ok(
            &actor,
            Some(&old.tenant),
            "key.rotated",
            serde_json::json!({
                "prefix": prefix,
                "successor": key.prefix,
                "old_expires_at": old_expires_at.to_rfc3339(),
            }),
        )
        .await;
        Ok(Rotation {
            secret,
            key,
            old_prefix: prefix.to_string(),
            old_expires_at,
        })
    }

    /// Keys, newest first, of one tenant or all.
    pub async fn list_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>> {
        self.store.list_keys(tenant).await
    }

    /// Revokes a key by its prefix (or by the whole secret).
    pub async fn revoke_key(&self, prefix_or_key: &str) -> Result<()> {
        self.revoke_key_by(prefix_or_key, "local").await
    }

    async fn revoke_key_by(&self, prefix_or_key: &str, actor: &str) -> Result<()> {
        let prefix = key_prefix(prefix_or_key.trim()).unwrap_or(prefix_or_key.trim());
        let tenant = self.store.key_by_prefix(prefix).await?.map(|k| k.tenant);
        if self.store.revoke_key(prefix, self.clock.now()).await? {
            self.audit_ok(
                actor,
                tenant.as_ref(),
                "key.revoked",
                serde_json::json!({ "prefix": prefix }),
            )
            .await;
            Ok(())
        } else {
            Err(Error::NotFound(format!("no API key with prefix {prefix}")))
        }
    }
}
