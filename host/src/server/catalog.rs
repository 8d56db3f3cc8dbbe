//! A tenant's own plugins and pipelines (`/v1/plugins`, `/v1/pipelines`, tenant keys).
//! Every change is checked whole (an upload is compiled and checked against the world
//! and the tenant's ceiling; a pipeline is validated as at start-up), committed to the
//! store, and only then swapped into the tenant's catalog and acknowledged. A tenant
//! sees, uses and can learn of its own names alone.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admitted, Tenant};
use super::errors::{ApiError, ErrorBody, RawBody};
use super::{store_failed, AppState};
use crate::pipeline::catalog::{
    check_plugins, check_references, parse_pipeline, valid_name, PluginLimits, PluginMeta,
    PluginOwnInfo, PluginVersion, StoredPipeline, TenantCatalog,
};
use crate::pipeline::PluginEntry;
use crate::runtime::{Grants, PluginOptions};
use crate::tenancy::registry::now_s;
use crate::tenancy::TenantState;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins, upload_plugin))
        .routes(routes!(show_plugin, delete_plugin))
        .routes(routes!(list_pipelines))
        .routes(routes!(show_pipeline, put_pipeline, delete_pipeline))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UploadParams {
    /// The plugin's name in the tenant's namespace (`[A-Za-z0-9][A-Za-z0-9._-]{0,63}`).
    name: String,
    /// Capabilities to grant, comma-separated (`model`, `stats`), within the policy.
    #[serde(default)]
    grants: Option<String>,
    /// Per-call deadline (default: the runtime's 1000 ms, capped by the policy).
    deadline_ms: Option<u64>,
    /// Memory of one instance (default: 256 MiB, capped by the policy).
    memory_mb: Option<u64>,
    /// Instructions per call (default: 10 billion, capped by the policy).
    fuel: Option<u64>,
    /// Reuse warm instances between this tenant's calls if the plugin is stateless.
    #[serde(default)]
    warm: bool,
}

/// One version of a plugin.
#[derive(Serialize, ToSchema)]
pub(super) struct PluginVersionView {
    name: String,
    #[serde(flatten)]
    meta: PluginMeta,
}

/// A plugin with its versions, oldest first.
#[derive(Serialize, ToSchema)]
pub(super) struct PluginView {
    name: String,
    /// What the bare name means in a pipeline.
    latest: String,
    versions: Vec<PluginMeta>,
    /// The tenant's pipelines that use it.
    used_by: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct PluginList {
    data: Vec<PluginView>,
}

fn plugin_view(catalog: &TenantCatalog, name: &str) -> Option<PluginView> {
    let versions = catalog.plugins.get(name)?;
    let used_by = catalog.users_of_plugin(name);
    Some(PluginView {
        name: name.to_string(),
        latest: versions.last()?.meta.version.clone(),
        versions: versions.iter().map(|v| v.meta.clone()).collect(),
        used_by,
    })
}

/// A tenant deleted while its change waited for the catalog is not written to.
fn still_there(state: &AppState, tenant: &str) -> Result<(), ApiError> {
    match state.tenants.tenant(tenant) {
        Some(_) => Ok(()),
        None => Err(ApiError::unauthorized()),
    }
}

fn catalog_of(state: &AppState, tenant: &str) -> Arc<TenantCatalog> {
    state.catalogs.get(tenant).unwrap_or_default()
}

/// The tenant's plugins.
#[utoipa::path(get, path = "/v1/plugins", tag = "tenant", security(("tenant" = [])),
    responses((status = 200, body = PluginList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_plugins(State(state): State<Arc<AppState>>, tenant: Tenant) -> Json<PluginList> {
    let catalog = catalog_of(&state, tenant.name());
    let data = catalog
        .plugins
        .keys()
        .filter_map(|n| plugin_view(&catalog, n))
        .collect();
    Json(PluginList { data })
}

/// One of the tenant's plugins: its versions (world, metadata, size, compile time).
#[utoipa::path(get, path = "/v1/plugins/{name}", tag = "tenant", security(("tenant" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = PluginView), (status = 404, description = "`plugin_not_found`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn show_plugin(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    Path(name): Path<String>,
) -> Result<Json<PluginView>, ApiError> {
    plugin_view(&catalog_of(&state, tenant.name()), &name)
        .map(Json)
        .ok_or_else(|| no_plugin(&name))
}

fn no_plugin(name: &str) -> ApiError {
    ApiError::not_found("plugin_not_found", format!("no plugin `{name}`"))
}

fn no_pipeline(name: &str) -> ApiError {
    ApiError::not_found(
        "pipeline_not_found",
        format!("no pipeline `{name}` of yours"),
    )
}

fn conflict(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "invalid_request_error", code, message)
}

/// Deletes every version of a plugin; refused while one of the tenant's pipelines uses it.
#[utoipa::path(delete, path = "/v1/plugins/{name}", tag = "tenant", security(("tenant" = [])),
    params(("name" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, description = "`plugin_not_found`", body = ErrorBody),
        (status = 409, description = "`plugin_in_use`: a pipeline uses it", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn delete_plugin(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let slot = state.catalogs.slot(tenant.name());
    let _writing = slot.writing.lock().await;
    still_there(&state, tenant.name())?;
    let current = slot.load();
    if !current.plugins.contains_key(&name) {
        return Err(no_plugin(&name));
    }
    if let Some(p) = current.users_of_plugin(&name).first() {
        return Err(conflict(
            "plugin_in_use",
            format!("pipeline `{p}` uses plugin `{name}`; change or delete it first"),
        ));
    }
    state
        .store
        .delete_plugin(tenant.name(), &name)
        .await
        .map_err(|e| store_failed("deleting a plugin", &e))?;
    let mut plugins = current.plugins.clone();
    plugins.remove(&name);
    slot.store(TenantCatalog::new(plugins, current.pipelines.clone()));
    Ok(StatusCode::NO_CONTENT)
}

/// A runtime refusal of a component, as the uploader should see it.
fn refused(e: crate::runtime::Error) -> ApiError {
    use crate::runtime::Error as E;
    let status = match &e {
        E::NotAComponent(_) | E::Malformed(_) => StatusCode::BAD_REQUEST,
        E::CapabilityNotGranted { .. } => StatusCode::FORBIDDEN,
        E::ResourceLimit(_) => StatusCode::PAYLOAD_TOO_LARGE,
        E::WrongWorld(_)
        | E::WrongKind { .. }
        | E::UnsupportedVersion { .. }
        | E::UnsupportedImport(_)
        | E::Compile(_)
        | E::CompileTimeout(_)
        | E::CompileMemory(_) => StatusCode::UNPROCESSABLE_ENTITY,
        // Its `check-config` or `metadata` call failed: the plugin's own fault.
        e if e.is_call_failure() => StatusCode::UNPROCESSABLE_ENTITY,
        _ => {
            tracing::error!(error = %e, "a plugin upload failed in the host");
            return ApiError::internal("the upload failed in the gateway; it was logged");
        }
    };
    let message = match &e {
        // The runtime's advice names the operator's configuration; a tenant grants with
        // `?grants=`.
        E::CapabilityNotGranted { capability, import } => format!(
            "the plugin imports `{import}`, so it needs capability `{capability}`: upload it with `grants={capability}` (if your policy allows it)"
        ),
        e => e.to_string(),
    };
    ApiError::new(status, "invalid_request_error", e.code(), message)
}

/// The limits an upload asks for, within the ceiling of the tenant's policy.
fn upload_limits(
    q: &UploadParams,
    who: &TenantState,
) -> Result<(Grants, Vec<String>, PluginLimits), ApiError> {
    let ceiling = &who.policy().plugins;
    let mut names: Vec<String> = q
        .grants
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .collect();
    names.sort();
    names.dedup();
    let grants = Grants::from_names(&names)
        .map_err(|e| ApiError::bad_request("invalid_value", e).with_param("grants"))?;
    if let Some(g) = names.iter().find(|g| !ceiling.grants.contains(g)) {
        return Err(ApiError::forbidden(
            "capability_not_allowed",
            format!("your policy does not allow granting `{g}` to your plugins"),
        ));
    }
    let defaults = crate::runtime::Limits::default();
    let limits = PluginLimits {
        deadline_ms: q
            .deadline_ms
            .unwrap_or((defaults.deadline.as_millis() as u64).min(ceiling.max_deadline_ms)),
        memory_mb: q
            .memory_mb
            .unwrap_or(((defaults.memory_bytes >> 20) as u64).min(ceiling.max_memory_mb)),
        fuel: q.fuel.unwrap_or(defaults.fuel.min(ceiling.max_fuel)),
    };
    for (key, asked, max) in [
        ("deadline_ms", limits.deadline_ms, ceiling.max_deadline_ms),
        ("memory_mb", limits.memory_mb, ceiling.max_memory_mb),
        ("fuel", limits.fuel, ceiling.max_fuel),
    ] {
        if asked == 0 {
            return Err(ApiError::bad_request(
                "invalid_value",
                format!("`{key}` must be above 0"),
            ));
        }
        if asked > max {
            return Err(ApiError::forbidden(
                "limit_above_ceiling",
                format!("`{key}` = {asked} is above your policy's ceiling of {max}"),
            ));
        }
    }
    Ok((grants, names, limits))
}

/// Uploads a plugin version: the component's bytes as the body. Checked (a component, a
/// plugin world, capabilities and limits within the policy, the quota), compiled in the
/// bounded compiler, stored under the SHA-256 of its bytes, and usable from the next
/// request. The same bytes again return the same version (200).
#[utoipa::path(post, path = "/v1/plugins", tag = "tenant", security(("tenant" = [])), params(UploadParams),
    request_body(content = Vec<u8>, description = "the component (`.wasm`)", content_type = "application/wasm"),
    responses(
        (status = 201, description = "a new version", body = PluginVersionView),
        (status = 200, description = "this version was stored already", body = PluginVersionView),
        (status = 400, description = "`not_a_component`, `malformed`, `invalid_name`, `invalid_value`", body = ErrorBody),
        (status = 403, description = "`capability_not_granted`, `capability_not_allowed`, `limit_above_ceiling`, `plugin_quota_exceeded`", body = ErrorBody),
        (status = 409, description = "`version_exists` (with other grants or limits), `plugin_conflict` (a pipeline could not use it)", body = ErrorBody),
        (status = 413, description = "`plugin_too_large`", body = ErrorBody),
        (status = 422, description = "`wrong_world`, `unsupported_version`, `unsupported_import`, `compile_failed`, `compile_timeout`, `compile_memory`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, description = "`uploads_busy`", body = ErrorBody)))]
async fn upload_plugin(
    State(state): State<Arc<AppState>>,
    admitted: Result<Admitted, ApiError>,
    query: Result<Query<UploadParams>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Admitted(Tenant(who), _slot) = admitted?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_value", e.body_text()))?;
    if !valid_name(&q.name) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "a plugin name is 1 to 64 letters, digits, `.`, `-` or `_`, starting with a letter or digit",
        )
        .with_param("name"));
    }
    let (grants, grant_names, limits) = upload_limits(&q, &who)?;
    let cap = state.runtime.config().max_component_bytes;
    let too_large = |size: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "plugin_too_large",
            format!("a plugin is at most {cap} bytes; this one is {size}"),
        )
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > cap as u64) {
        return Err(too_large(format!("{n} bytes")));
    }
    // Bodies in memory and compiles at once are bounded for the whole gateway.
    let _upload = state.uploads.try_acquire().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "uploads_busy",
            "other uploads are being compiled; retry shortly",
        )
        .with_retry_after(std::time::Duration::from_secs(1))
    })?;
    let bytes =
        axum::body::to_bytes(body, cap).await.map_err(|e| {
            match std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                true => too_large("more".into()),
                false => {
                    ApiError::bad_request("invalid_body", format!("the upload was cut off: {e}"))
                }
            }
        })?;
    let bytes = Arc::new(bytes.to_vec());
    let version = {
        let b = bytes.clone();
        let hex = tokio::task::spawn_blocking(move || hex::encode(sha2::Sha256::digest(&*b)))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        format!("sha256:{hex}")
    };
    let name = q.name.clone();
    let slot = state.catalogs.slot(who.name());
    let _writing = slot.writing.lock().await;
    still_there(&state, who.name())?;
    let current = slot.load();
    if let Some(v) = current.find(&format!("{name}@{version}")) {
        if v.meta.grants == grant_names && v.meta.limits == limits && v.meta.warm == q.warm {
            return Ok((
                StatusCode::OK,
                Json(PluginVersionView {
                    name,
                    meta: v.meta.clone(),
                }),
            )
                .into_response());
        }
        return Err(conflict(
            "version_exists",
            format!("version {version} of `{name}` is stored with other grants or limits; a version is immutable"),
        ));
    }
    let (used_bytes, versions) = current.usage();
    let ceiling = &who.policy().plugins;
    if versions >= ceiling.max_versions || used_bytes + bytes.len() as u64 > ceiling.max_total_bytes
    {
        return Err(ApiError::forbidden(
            "plugin_quota_exceeded",
            format!(
                "your plugins hold {versions} versions and {used_bytes} bytes; the quota is {} versions and {} bytes (delete plugins to make room)",
                ceiling.max_versions, ceiling.max_total_bytes
            ),
        ));
    }
    let started = Instant::now();
    let options = PluginOptions {
        grants,
        limits: limits.runtime(),
        warm: q.warm,
    };
    let plugin = state
        .runtime
        .load(bytes.to_vec(), options)
        .await
        .map_err(refused)?;
    let info = plugin.info();
    let meta = PluginMeta {
        version: version.clone(),
        world: plugin.kind().to_string(),
        contract_version: plugin.summary().contract_version.clone(),
        metadata: PluginOwnInfo {
            name: info.name.clone(),
            version: info.version.clone(),
            description: info.description.clone(),
        },
        size_bytes: bytes.len() as u64,
        compile_ms: started.elapsed().as_secs_f64() * 1e3,
        created_at: now_s(),
        grants: grant_names,
        limits,
        warm: q.warm,
    };
    let added = Arc::new(PluginVersion {
        name: name.clone(),
        meta: meta.clone(),
        entry: PluginEntry {
            plugin,
            config: Default::default(),
        },
    });
    let mut plugins = current.plugins.clone();
    plugins.entry(name.clone()).or_default().push(added);
    let next = TenantCatalog::new(plugins, current.pipelines.clone());
    // The pipelines that name the plugin without a version move to this one: each must
    // still hold (world and settings), or the upload is refused.
    for (p, stored) in &current.pipelines {
        let uses = stored.def.node.inventory().plugins;
        let moved: Vec<_> = uses.into_iter().filter(|u| u.name == name).collect();
        if moved.is_empty() {
            continue;
        }
        check_plugins(p, &moved, |r| next.find(r).map(|v| &v.entry))
            .await
            .map_err(|e| {
                conflict(
                    "plugin_conflict",
                    format!("pipeline `{p}` could not use this version: {e}"),
                )
            })?;
    }
    state
        .store
        .add_plugin_version(who.name(), &name, &meta, bytes)
        .await
        .map_err(|e| store_failed("storing a plugin", &e))?;
    slot.store(next);
    tracing::info!(tenant = who.name(), plugin = %name, %version, "plugin uploaded");
    Ok((StatusCode::CREATED, Json(PluginVersionView { name, meta })).into_response())
}

/// A tenant's pipeline, as it sent it.
#[derive(Serialize, ToSchema)]
pub(super) struct PipelineView {
    name: String,
    /// Unix seconds.
    updated_at: i64,
    /// The strategy tree with its pipeline-level keys, as sent.
    #[schema(value_type = Object)]
    definition: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub(super) struct PipelineList {
    data: Vec<PipelineView>,
}

fn pipeline_view(name: &str, p: &StoredPipeline) -> PipelineView {
    PipelineView {
        name: name.to_string(),
        updated_at: p.updated_at,
        definition: p.source.clone(),
    }
}

/// The tenant's own pipelines (`GET /v1/models` lists these and the shared ones it may
/// call).
#[utoipa::path(get, path = "/v1/pipelines", tag = "tenant", security(("tenant" = [])),
    responses((status = 200, body = PipelineList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_pipelines(State(state): State<Arc<AppState>>, tenant: Tenant) -> Json<PipelineList> {
    let catalog = catalog_of(&state, tenant.name());
    let data = catalog
        .pipelines
        .iter()
        .map(|(n, p)| pipeline_view(n, p))
        .collect();
    Json(PipelineList { data })
}

#[utoipa::path(get, path = "/v1/pipelines/{name}", tag = "tenant", security(("tenant" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = PipelineView), (status = 404, description = "`pipeline_not_found`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn show_pipeline(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    Path(name): Path<String>,
) -> Result<Json<PipelineView>, ApiError> {
    let catalog = catalog_of(&state, tenant.name());
    let p = catalog
        .pipelines
        .get(&name)
        .ok_or_else(|| no_pipeline(&name))?;
    Ok(Json(pipeline_view(&name, p)))
}

/// Creates or replaces one of the tenant's pipelines: the same strategy tree as a
/// `[pipelines.<name>]` table, as JSON, naming the tenant's plugins (`name` for the
/// latest version, `name@sha256:<hex>` pinned), its own pipelines, and the shared
/// pipelines and models its policy allows. Validated as at start-up; the next request
/// runs it, requests in flight finish on the tree they started with.
#[utoipa::path(put, path = "/v1/pipelines/{name}", tag = "tenant", security(("tenant" = [])),
    params(("name" = String, Path)),
    request_body(content = Object, description = "the pipeline: `type` and the strategy's keys, plus `budget`, `on_budget`, `description`, `judge_models`", content_type = "application/json"),
    responses((status = 201, description = "created", body = PipelineView), (status = 200, description = "replaced", body = PipelineView),
        (status = 400, description = "`invalid_json`, `invalid_name`, `invalid_pipeline`", body = ErrorBody),
        (status = 409, description = "`name_taken`: a shared pipeline or model you may call has this name", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn put_pipeline(
    State(state): State<Arc<AppState>>,
    admitted: Result<Admitted, ApiError>,
    Path(name): Path<String>,
    body: Result<RawBody, ApiError>,
) -> Result<Response, ApiError> {
    let Admitted(Tenant(who), _slot) = admitted?;
    let RawBody(body) = body?;
    if !valid_name(&name) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "a pipeline name is 1 to 64 letters, digits, `.`, `-` or `_`, starting with a letter or digit",
        ));
    }
    let source: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")))?;
    let invalid =
        |m: String| ApiError::bad_request("invalid_pipeline", format!("pipeline `{name}`: {m}"));
    let def = parse_pipeline(who.name(), &source).map_err(invalid)?;
    let engine = state.engine.load_full();
    if engine.may_call(who.name(), who.policy(), &name) {
        return Err(conflict(
            "name_taken",
            format!("`{name}` is a shared pipeline or model you may call; choose another name"),
        ));
    }
    let slot = state.catalogs.slot(who.name());
    let _writing = slot.writing.lock().await;
    still_there(&state, who.name())?;
    let current = slot.load();
    let existed = current.pipelines.contains_key(&name);
    let stored = StoredPipeline {
        def,
        source,
        updated_at: now_s(),
    };
    let mut pipelines = current.pipelines.clone();
    pipelines.insert(name.clone(), stored.clone());
    let next = TenantCatalog::new(current.plugins.clone(), pipelines);
    check_references(&engine, &next, who.name(), who.policy(), &name, &stored.def)
        .map_err(invalid)?;
    let uses = stored.def.node.inventory().plugins;
    check_plugins(&name, &uses, |r| next.find(r).map(|v| &v.entry))
        .await
        .map_err(invalid)?;
    state
        .store
        .put_pipeline(who.name(), &name, stored.updated_at, &stored.source)
        .await
        .map_err(|e| store_failed("storing a pipeline", &e))?;
    slot.store(next);
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(pipeline_view(&name, &stored))).into_response())
}

/// Deletes one of the tenant's pipelines; refused while another of its pipelines runs it.
#[utoipa::path(delete, path = "/v1/pipelines/{name}", tag = "tenant", security(("tenant" = [])),
    params(("name" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, description = "`pipeline_not_found`", body = ErrorBody),
        (status = 409, description = "`pipeline_in_use`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn delete_pipeline(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let slot = state.catalogs.slot(tenant.name());
    let _writing = slot.writing.lock().await;
    still_there(&state, tenant.name())?;
    let current = slot.load();
    if !current.pipelines.contains_key(&name) {
        return Err(no_pipeline(&name));
    }
    if let Some(p) = current.users_of_pipeline(&name) {
        return Err(conflict(
            "pipeline_in_use",
            format!("pipeline `{p}` runs `{name}`; change or delete it first"),
        ));
    }
    state
        .store
        .delete_pipeline(tenant.name(), &name)
        .await
        .map_err(|e| store_failed("deleting a pipeline", &e))?;
    let mut pipelines = current.pipelines.clone();
    pipelines.remove(&name);
    slot.store(TenantCatalog::new(current.plugins.clone(), pipelines));
    Ok(StatusCode::NO_CONTENT)
}
