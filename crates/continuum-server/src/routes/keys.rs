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
        .create_key_as(&auth.caller, scope, valid, b.name)
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
