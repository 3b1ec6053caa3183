//! Tenants (operator scope): listed, created and erased, never read.

use super::*;

#[derive(Serialize, JsonSchema)]
pub(super) struct TenantsOut {
    tenants: Vec<TenantInfo>,
}

pub(super) async fn tenants_list(State(s): St, auth: Auth) -> AppResult<Json<TenantsOut>> {
    Ok(Json(TenantsOut {
        tenants: s.engine.tenants_as(&auth.caller).await?,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantCreate {
    /// The new tenant's id: 1 to 64 characters of `A-Z a-z 0-9 _ . -`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]{1,64}$"))]
    tenant: String,
    /// A name for its first admin key.
    #[serde(default)]
    #[schemars(length(max = 200))]
    name: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct TenantCreated {
    tenant: TenantId,
    /// The first admin key's record.
    admin_key: ApiKey,
    /// Its secret: shown here once, stored only as a hash.
    key: String,
}

pub(super) async fn tenants_create(
    State(s): St,
    auth: Auth,
    Body(b): Body<TenantCreate>,
) -> AppResult<(StatusCode, Json<TenantCreated>)> {
    let tenant = TenantId::new(b.tenant)?;
    let (key, admin_key) = s
        .engine
        .create_tenant_as(&auth.caller, &tenant, b.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TenantCreated {
            tenant,
            admin_key,
            key,
        }),
    ))
}

pub(super) async fn tenants_erase(
    State(s): St,
    auth: Auth,
    P(id): P<String>,
) -> AppResult<Json<TenantErased>> {
    let tenant = TenantId::new(id)?;
    Ok(Json(s.engine.erase_tenant_as(&auth.caller, &tenant).await?))
}
