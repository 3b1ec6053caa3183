//! API keys (admin scope, the key's own tenant).

use super::*;

#[derive(Serialize, JsonSchema)]
pub(super) struct KeysOut {
    keys: Vec<ApiKey>,
}

pub(super) async fn keys_list(State(s): St, auth: Auth) -> AppResult<Json<KeysOut>> {
    Ok(Json(KeysOut {
        keys: s.engine.list_keys_as(&auth.caller).await?,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyCreate {
    #[schemars(extend("enum" = ["read", "write", "admin", "operator"]))]
    scope: String,
    #[serde(default, deserialize_with = "whole")]
    #[schemars(range(min = 1, max = continuum_engine::MAX_KEY_DAYS))]
    expires_in_days: Option<i64>,
    #[serde(default)]
    #[schemars(length(max = 200))]
    name: Option<String>,
    /// Days after which the key is due for rotation (it keeps working; listings point it out).
    #[serde(default, deserialize_with = "whole")]
    #[schemars(range(min = 1, max = continuum_engine::MAX_KEY_DAYS))]
    max_age_days: Option<i64>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct KeyCreated {
    #[serde(flatten)]
    key: ApiKey,
    /// The secret: shown here once, stored only as a hash.
    #[serde(rename = "key")]
    secret: String,
}

pub(super) async fn keys_create(
    State(s): St,
    auth: Auth,
    Body(b): Body<KeyCreate>,
) -> AppResult<(StatusCode, Json<KeyCreated>)> {
    let scope: Scope = b.scope.parse()?;
    let valid = b.expires_in_days.map(|d| d.saturating_mul(86_400_000));
    let (secret, key) = s
        .engine
        .create_key_as(
            &auth.caller,
            scope,
            valid,
            b.name,
            b.max_age_days.map(|d| d.saturating_mul(86_400_000)),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(KeyCreated { key, secret })))
}

#[derive(Serialize, JsonSchema)]
pub(super) struct Revoked {
    /// The revoked key's prefix.
    revoked: String,
}

pub(super) async fn keys_revoke(
    State(s): St,
    auth: Auth,
    P(prefix): P<String>,
) -> AppResult<Json<Revoked>> {
    s.engine.revoke_key_as(&auth.caller, &prefix).await?;
    Ok(Json(Revoked { revoked: prefix }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyRotate {
    /// Seconds the old key keeps working beside the new one (default 86400; 0: it stops now).
    #[serde(default, deserialize_with = "count")]
    #[schemars(range(max = 2_592_000))]
    overlap_secs: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct KeyRotated {
    #[serde(flatten)]
    key: ApiKey,
    /// The new secret: shown here once, stored only as a hash.
    #[serde(rename = "key")]
    secret: String,
    /// The key it replaces, and when that one stops working.
    replaces: String,
    replaced_key_expires_at: Timestamp,
}

pub(super) async fn keys_rotate(
    State(s): St,
    auth: Auth,
    P(prefix): P<String>,
    Body(b): Body<KeyRotate>,
) -> AppResult<(StatusCode, Json<KeyRotated>)> {
    let overlap = b.overlap_secs.unwrap_or(86_400) as i64 * 1000;
    let r = s
        .engine
        .rotate_key_as(&auth.caller, &prefix, overlap)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyRotated {
            key: r.key,
            secret: r.secret,
            replaces: r.old_prefix,
            replaced_key_expires_at: r.old_expires_at,
        }),
    ))
}
