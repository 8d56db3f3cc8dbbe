//! The operator's API (`/admin/v1`, operator keys only): tenants, their keys and
//! policies, and usage; plus `GET /v1/usage`, a tenant's own. Every change is committed
//! to the store before it is applied to the in-memory registry and acknowledged, so a
//! 2xx survives a crash and a revocation holds from the next request.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Operator, Tenant};
use super::errors::{ApiError, ErrorBody, RawBody};
use super::{store_failed, AppState};
use crate::app::key_prefix;
use crate::store::UsageRow;
use crate::tenancy::registry::now_s;
use crate::tenancy::{
    generate_key, hash_key, KeyRecord, Policy, Role, Source, TenantRecord, TenantState,
};

/// The admin routes, to be nested under `/admin/v1`, and `GET /v1/usage`.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(show_tenant, update_tenant, delete_tenant))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(all_usage))
        .routes(routes!(reload))
}

#[derive(Serialize, ToSchema)]
pub(super) struct Reloaded {
    reloaded: bool,
    /// The shared pipelines now served.
    pipelines: Vec<String>,
}

/// Reloads the operator's configuration file (as SIGHUP does): providers, models,
/// shared plugins and pipelines. A file that fails to load or validate is refused with
/// its error and the running configuration stays.
#[utoipa::path(post, path = "/reload", tag = "admin", security(("operator" = [])),
    responses(
        (status = 200, body = Reloaded),
        (status = 400, description = "`invalid_config`: the file was refused; the message says why", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn reload(
    State(state): State<Arc<AppState>>,
    _: Operator,
) -> Result<Json<Reloaded>, ApiError> {
    let pipelines = super::reload(&state).await?;
    Ok(Json(Reloaded {
        reloaded: true,
        pipelines,
    }))
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("{what}: {e}")))
}

/// Tenant names go into URLs, logs and metrics: short, plain, unambiguous.
fn valid_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_name",
            format!("tenant name `{}` must be 1-64 of a-z, 0-9, `-`, `_`, starting with a letter or digit", name.chars().take(80).collect::<String>()),
        ))
    }
}

fn valid_policy(p: &Policy) -> Result<(), ApiError> {
    p.validate()
        .map_err(|e| ApiError::bad_request("invalid_policy", e).with_param("policy"))
}

/// A tenant as the admin API shows it.
#[derive(Serialize, ToSchema)]
pub(super) struct TenantView {
    name: String,
    /// Unix seconds (0 for tenants of the configuration file).
    created_at: i64,
    disabled: bool,
    source: Source,
    policy: Policy,
    spend: SpendView,
}

/// Spent and reserved so far (USD, UTC periods).
#[derive(Serialize, ToSchema)]
pub(super) struct SpendView {
    today_usd: f64,
    this_month_usd: f64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct TenantList {
    /// Always `list`.
    object: &'static str,
    data: Vec<TenantView>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct KeyList {
    object: &'static str,
    data: Vec<KeyRecord>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct UsageList {
    object: &'static str,
    /// First UTC day included.
    from: String,
    /// Last UTC day included.
    to: String,
    data: Vec<UsageRow>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Deleted {
    deleted: String,
}

fn tenant_json(t: &TenantState) -> TenantView {
    let (day, month) = t.spend.spent();
    TenantView {
        name: t.record.name.clone(),
        created_at: t.record.created_at,
        disabled: t.record.disabled,
        source: t.source,
        policy: t.record.policy.clone(),
        spend: SpendView {
            today_usd: day,
            this_month_usd: month,
        },
    }
}

fn no_tenant(name: &str) -> ApiError {
    ApiError::not_found("tenant_not_found", format!("no tenant `{name}`"))
}

/// A tenant of the configuration file changes by editing that file.
fn from_config(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "invalid_request_error",
        "tenant_from_config",
        format!("tenant `{name}` is defined in the configuration file; change it there"),
    )
}

/// Every tenant, with its policy and what it has spent today and this month.
#[utoipa::path(get, path = "/tenants", tag = "admin", security(("operator" = [])),
    responses((status = 200, body = TenantList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_tenants(State(state): State<Arc<AppState>>, _: Operator) -> Json<TenantList> {
    let tenants = state.tenants.tenants();
    for t in &tenants {
        t.spend.refresh().await;
    }
    let data = tenants.iter().map(|t| tenant_json(t)).collect();
    Json(TenantList {
        object: "list",
        data,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTenant {
    name: String,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    disabled: bool,
}

/// Creates a tenant (committed before the answer). Its default policy: every shared
/// pipeline that admits it, no raw models, no limits.
#[utoipa::path(post, path = "/tenants", tag = "admin", security(("operator" = [])), request_body = NewTenant,
    responses((status = 201, body = TenantView),
        (status = 400, description = "`invalid_json`, `invalid_name`, `invalid_policy`", body = ErrorBody),
        (status = 409, description = "`tenant_exists`", body = ErrorBody)))]
async fn create_tenant(
    State(state): State<Arc<AppState>>,
    _: Operator,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let new: NewTenant = json_body(&body, "tenant")?;
    valid_name(&new.name)?;
    valid_policy(&new.policy)?;
    if state.tenants.tenant(&new.name).is_some() {
        return Err(exists(&new.name));
    }
    let record = TenantRecord {
        name: new.name,
        created_at: now_s(),
        disabled: new.disabled,
        policy: new.policy,
    };
    if !state
        .store
        .create_tenant(record.clone())
        .await
        .map_err(|e| store_failed("creating a tenant", &e))?
    {
        return Err(exists(&record.name));
    }
    let name = record.name.clone();
    state.tenants.put_tenant(record, Source::Store, (0.0, 0.0));
    let t = state
        .tenants
        .tenant(&name)
        .ok_or_else(|| no_tenant(&name))?;
    Ok((StatusCode::CREATED, Json(tenant_json(&t))).into_response())
}

fn exists(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "invalid_request_error",
        "tenant_exists",
        format!("tenant `{name}` exists"),
    )
}

#[utoipa::path(get, path = "/tenants/{name}", tag = "admin", security(("operator" = [])),
    params(("name" = String, Path, description = "the tenant")),
    responses((status = 200, body = TenantView), (status = 404, description = "`tenant_not_found`", body = ErrorBody)))]
async fn show_tenant(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let t = state
        .tenants
        .tenant(&name)
        .ok_or_else(|| no_tenant(&name))?;
    t.spend.refresh().await;
    Ok(Json(tenant_json(&t)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantChange {
    /// Replaces the whole policy.
    #[serde(default)]
    policy: Option<Policy>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// Replaces a tenant's policy and/or disables or enables it (a disabled tenant's keys
/// are refused from the next request on; its data stays).
#[utoipa::path(patch, path = "/tenants/{name}", tag = "admin", security(("operator" = [])), request_body = TenantChange,
    params(("name" = String, Path, description = "the tenant")),
    responses((status = 200, body = TenantView),
        (status = 400, description = "`invalid_json`, `invalid_policy`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`tenant_from_config`", body = ErrorBody)))]
async fn update_tenant(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let change: TenantChange = json_body(&body, "tenant change")?;
    let t = state
        .tenants
        .tenant(&name)
        .ok_or_else(|| no_tenant(&name))?;
    if t.source == Source::Config {
        return Err(from_config(&name));
    }
    let mut record = t.record.clone();
    if let Some(p) = change.policy {
        valid_policy(&p)?;
        record.policy = p;
    }
    if let Some(d) = change.disabled {
        record.disabled = d;
    }
    if !state
        .store
        .update_tenant(record.clone())
        .await
        .map_err(|e| store_failed("updating a tenant", &e))?
    {
        return Err(no_tenant(&name));
    }
    state.tenants.put_tenant(record, Source::Store, (0.0, 0.0));
    let t = state
        .tenants
        .tenant(&name)
        .ok_or_else(|| no_tenant(&name))?;
    t.spend.refresh().await;
    Ok(Json(tenant_json(&t)).into_response())
}

/// Deletes a tenant and its keys; its traces and usage stay.
#[utoipa::path(delete, path = "/tenants/{name}", tag = "admin", security(("operator" = [])),
    params(("name" = String, Path, description = "the tenant")),
    responses((status = 200, body = Deleted),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`tenant_from_config`", body = ErrorBody)))]
async fn delete_tenant(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let t = state
        .tenants
        .tenant(&name)
        .ok_or_else(|| no_tenant(&name))?;
    if t.source == Source::Config {
        return Err(from_config(&name));
    }
    // After any upload or pipeline change of the tenant in progress, none during.
    let slot = state.catalogs.slot(&name);
    let _writing = slot.writing.lock().await;
    state
        .store
        .delete_tenant(&name)
        .await
        .map_err(|e| store_failed("deleting a tenant", &e))?;
    state.tenants.remove_tenant(&name);
    state.catalogs.remove(&name);
    Ok(Json(Deleted { deleted: name }).into_response())
}

/// A tenant's keys (never the keys themselves).
#[utoipa::path(get, path = "/tenants/{name}/keys", tag = "admin", security(("operator" = [])),
    params(("name" = String, Path, description = "the tenant")),
    responses((status = 200, body = KeyList), (status = 404, description = "`tenant_not_found`", body = ErrorBody)))]
async fn list_keys(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .tenants
        .tenant(&name)
        .ok_or_else(|| no_tenant(&name))?;
    let data = state.tenants.keys(Some(&name));
    Ok(Json(KeyList {
        object: "list",
        data,
    })
    .into_response())
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    #[serde(default)]
    name: String,
    /// Unix seconds.
    #[serde(default)]
    expires_at: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct CreatedKey {
    /// The key itself: shown this once, stored only as its hash.
    key: String,
    #[serde(flatten)]
    record: KeyRecord,
}

/// Makes a key for a tenant. The key is in this answer only; the store keeps its hash.
#[utoipa::path(post, path = "/tenants/{name}/keys", tag = "admin", security(("operator" = [])), request_body = NewKey,
    params(("name" = String, Path, description = "the tenant")),
    responses((status = 201, body = CreatedKey),
        (status = 400, description = "`invalid_json`, `invalid_name`, `invalid_expiry`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody)))]
async fn create_key(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let new: NewKey = if body.is_empty() {
        NewKey::default()
    } else {
        json_body(&body, "key")?
    };
    if new.name.len() > 128 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "a key's name is at most 128 bytes",
        ));
    }
    if new.expires_at.is_some_and(|at| at <= now_s()) {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            "`expires_at` (unix seconds) must be in the future",
        )
        .with_param("expires_at"));
    }
    state
        .tenants
        .tenant(&name)
        .ok_or_else(|| no_tenant(&name))?;
    let key = generate_key();
    let mut record = KeyRecord::new(
        hash_key(&key),
        key_prefix(&key),
        Some(name),
        Role::Tenant,
        new.name,
    );
    record.expires_at = new.expires_at;
    state
        .store
        .add_key(record.clone())
        .await
        .map_err(|e| store_failed("storing a key", &e))?;
    state.tenants.put_key(record.clone());
    Ok((StatusCode::CREATED, Json(CreatedKey { key, record })).into_response())
}

/// Revokes a stored tenant key, from the next request on.
#[utoipa::path(delete, path = "/keys/{id}", tag = "admin", security(("operator" = [])),
    params(("id" = String, Path, description = "the key's id (`key_...`)")),
    responses((status = 200, body = KeyRecord),
        (status = 404, description = "`key_not_found`", body = ErrorBody),
        (status = 409, description = "`key_not_revocable`: a configured or operator key", body = ErrorBody)))]
async fn revoke_key(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(key) = state.tenants.key(&id) else {
        return Err(ApiError::not_found(
            "key_not_found",
            format!("no key `{id}`"),
        ));
    };
    if key.role == Role::Operator || key.created_at == 0 {
        // Configured keys (created_at 0) live in the file; operator keys are not
        // revoked through a key they might be.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "key_not_revocable",
            "configured and operator keys are removed from the configuration file, not revoked here",
        ));
    }
    let at = now_s();
    state
        .store
        .revoke_key(&id, at)
        .await
        .map_err(|e| store_failed("revoking a key", &e))?;
    state.tenants.revoke(&id, at);
    Ok(Json(state.tenants.key(&id)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct UsageQuery {
    #[serde(default)]
    tenant: Option<String>,
    /// First UTC day (`YYYY-MM-DD`; default: the first of this month).
    #[serde(default)]
    from: Option<String>,
    /// Last UTC day (default: today).
    #[serde(default)]
    to: Option<String>,
}

fn day(value: Option<String>, default: String, param: &'static str) -> Result<String, ApiError> {
    let d = value.unwrap_or(default);
    let b = d.as_bytes();
    let ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if ok {
        Ok(d)
    } else {
        Err(ApiError::bad_request(
            "invalid_value",
            format!("`{param}` must be a day as YYYY-MM-DD"),
        )
        .with_param(param))
    }
}

async fn usage(
    state: &AppState,
    tenant: Option<&str>,
    q: UsageQuery,
) -> Result<Response, ApiError> {
    let today = crate::tenancy::spend::today().to_string();
    let from = day(q.from, format!("{}-01", &today[..7]), "from")?;
    let to = day(q.to, today, "to")?;
    let rows = state
        .store
        .usage(tenant, &from, &to)
        .await
        .map_err(|e| store_failed("reading usage", &e))?;
    Ok(Json(UsageList {
        object: "list",
        from,
        to,
        data: rows,
    })
    .into_response())
}

/// Usage by tenant, UTC day, pipeline and model.
#[utoipa::path(get, path = "/usage", tag = "admin", security(("operator" = [])), params(UsageQuery),
    responses((status = 200, body = UsageList), (status = 400, description = "`invalid_value`", body = ErrorBody)))]
async fn all_usage(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Query(q): Query<UsageQuery>,
) -> Result<Response, ApiError> {
    let tenant = q.tenant.clone();
    usage(&state, tenant.as_deref(), q).await
}

/// The calling tenant: its policy (limits included) and what it has spent so far today
/// and this month, as the operator's `GET /admin/v1/tenants/{name}` shows it.
#[utoipa::path(get, path = "/v1/tenant", tag = "tenant", security(("tenant" = [])),
    responses((status = 200, body = TenantView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn own_tenant(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
) -> Result<Response, ApiError> {
    let t = state
        .tenants
        .tenant(tenant.name())
        .ok_or_else(|| no_tenant(tenant.name()))?;
    t.spend.refresh().await;
    Ok(Json(tenant_json(&t)).into_response())
}

/// The calling tenant's own usage, by UTC day, pipeline and model.
#[utoipa::path(get, path = "/v1/usage", tag = "tenant", security(("tenant" = [])), params(UsageQuery),
    responses((status = 200, body = UsageList), (status = 400, description = "`invalid_value`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn tenant_usage(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    Query(q): Query<UsageQuery>,
) -> Result<Response, ApiError> {
    if q.tenant.as_deref().is_some_and(|t| t != tenant.name()) {
        return Err(
            ApiError::bad_request("invalid_value", "`tenant` can only be your own")
                .with_param("tenant"),
        );
    }
    usage(&state, Some(tenant.name()), q).await
}
