//! Statistics of the calling tenant's traffic, as the console's Pipelines and Models
//! pages show them, for any client: per pipeline (`GET /v1/stats/pipelines`), per
//! model (`GET /v1/stats/models`, the figures routers read) and per plugin
//! (`GET /v1/stats/plugins`); an operator reads any tenant's under
//! `/admin/v1/tenants/{name}/stats/...`. Windows are bounded (at most 31 days) and so
//! are the requests read for them (`store::insights`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Operator, Tenant};
use super::errors::{ApiError, ErrorBody};
use super::{store_failed, AppState};
use crate::store::insights::{PipelineStats, PluginStats, Window};

/// The window unless `since` says otherwise: the last day.
const DEFAULT_WINDOW_MS: i64 = 24 * 3600 * 1000;
/// The longest window.
const MAX_WINDOW_MS: i64 = 31 * 24 * 3600 * 1000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct WindowQuery {
    /// Start of the window, Unix ms, inclusive (default: 24 hours before `until`; at
    /// most 31 days before it).
    since: Option<i64>,
    /// End of the window, Unix ms, exclusive (default: now).
    until: Option<i64>,
}

fn invalid(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_value", message).with_param(param)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl WindowQuery {
    /// `(since, until)`, checked.
    fn window(&self, now: i64) -> Result<(i64, i64), ApiError> {
        let until = self.until.unwrap_or(now);
        let since = self
            .since
            .unwrap_or_else(|| until.saturating_sub(DEFAULT_WINDOW_MS));
        if since < 0 {
            return Err(invalid("since", "`since` is a Unix time in ms, >= 0"));
        }
        if since >= until {
            return Err(invalid("since", "`since` must be before `until`"));
        }
        if until - since > MAX_WINDOW_MS {
            return Err(invalid(
                "since",
                "a window is at most 31 days (`until` - `since` <= 2678400000 ms)",
            ));
        }
        Ok((since, until))
    }
}

fn window_of(query: Result<Query<WindowQuery>, QueryRejection>) -> Result<(i64, i64), ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_value", e.body_text()))?;
    q.window(now_ms())
}

/// A tenant's pipelines over a window.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PipelineStatsList {
    window: Window,
    /// Busiest first; only pipelines (and raw models) that had requests.
    data: Vec<PipelineStats>,
}

/// A tenant's plugin calls over a window.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PluginStatsList {
    window: Window,
    /// Busiest first.
    data: Vec<PluginStats>,
}

/// One model as the tenant's routers see it, with what it cost.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ModelStatsRow {
    model: String,
    /// Attempts whose outcome is known (verified, failed, or judged by feedback): what
    /// `success_rate` is computed from. Kept since the gateway started (rebuilt from
    /// the newest 20,000 requests then).
    judged: u64,
    /// Absent while no attempt was judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    success_rate: Option<f64>,
    /// Over the model's last `latency_samples` answers (at most 512).
    latency_p50_ms: f64,
    latency_p95_ms: f64,
    latency_samples: usize,
    /// Model calls in the window's UTC days (usage).
    calls: i64,
    /// Failed calls in those days.
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
}

/// A tenant's models.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ModelStatsList {
    /// First and last UTC day whose usage `calls`, `errors`, tokens and `cost_usd` sum
    /// (the days of the window).
    from: String,
    to: String,
    /// By name.
    data: Vec<ModelStatsRow>,
}

async fn pipelines(
    state: &AppState,
    tenant: &str,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<PipelineStatsList>, ApiError> {
    let (since, until) = window_of(query)?;
    let (window, data) = state
        .store
        .pipeline_stats(tenant, since, until)
        .await
        .map_err(|e| store_failed("reading pipeline statistics", &e))?;
    Ok(Json(PipelineStatsList { window, data }))
}

async fn plugins(
    state: &AppState,
    tenant: &str,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<PluginStatsList>, ApiError> {
    let (since, until) = window_of(query)?;
    let (window, data) = state
        .store
        .plugin_stats(tenant, since, until)
        .await
        .map_err(|e| store_failed("reading plugin statistics", &e))?;
    Ok(Json(PluginStatsList { window, data }))
}

fn utc_day(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| "1970-01-01".into())
}

async fn models(
    state: &AppState,
    tenant: &str,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<ModelStatsList>, ApiError> {
    let (since, until) = window_of(query)?;
    let (from, to) = (utc_day(since), utc_day(until - 1));
    let usage = state
        .store
        .usage(Some(tenant), &from, &to)
        .await
        .map_err(|e| store_failed("reading usage", &e))?;
    let mut rows: BTreeMap<String, ModelStatsRow> = BTreeMap::new();
    let row = |model: &str| ModelStatsRow {
        model: model.to_string(),
        judged: 0,
        success_rate: None,
        latency_p50_ms: 0.0,
        latency_p95_ms: 0.0,
        latency_samples: 0,
        calls: 0,
        errors: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
    };
    for (model, s, samples) in state.store.stats.models(tenant) {
        let r = rows.entry(model.clone()).or_insert_with(|| row(&model));
        r.judged = s.attempts;
        r.success_rate = (s.attempts > 0).then_some(s.success_rate);
        r.latency_p50_ms = s.latency_p50_ms;
        r.latency_p95_ms = s.latency_p95_ms;
        r.latency_samples = samples;
    }
    // A usage row with no model is the requests no model answered: not a model's.
    for u in usage.iter().filter(|u| !u.model.is_empty() && u.calls > 0) {
        let r = rows.entry(u.model.clone()).or_insert_with(|| row(&u.model));
        r.calls += u.calls;
        r.errors += u.errors;
        r.input_tokens += u.input_tokens;
        r.output_tokens += u.output_tokens;
        r.cost_usd += u.cost_usd;
    }
    Ok(Json(ModelStatsList {
        from,
        to,
        data: rows.into_values().collect(),
    }))
}

/// The calling tenant's requests per pipeline over a window: how many, their outcome
/// mix, total cost, and cost and latency percentiles (p50/p95/p99). Read from at most
/// the newest 20,000 requests of the window (`window.complete` says whether that was
/// all of them).
#[utoipa::path(get, path = "/v1/stats/pipelines", tag = "tenant", security(("tenant" = [])), params(WindowQuery),
    responses((status = 200, body = PipelineStatsList),
        (status = 400, description = "`invalid_value`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn pipeline_stats(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<PipelineStatsList>, ApiError> {
    pipelines(&state, tenant.name(), query).await
}

/// The calling tenant's models as its routers see them (success rate over judged
/// attempts, latency p50/p95 of recent answers), with their calls, errors, tokens and
/// cost in the window's UTC days.
#[utoipa::path(get, path = "/v1/stats/models", tag = "tenant", security(("tenant" = [])), params(WindowQuery),
    responses((status = 200, body = ModelStatsList),
        (status = 400, description = "`invalid_value`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn model_stats(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<ModelStatsList>, ApiError> {
    models(&state, tenant.name(), query).await
}

/// The calling tenant's plugin calls over a window, per plugin: calls, call time
/// (p50/p95/p99 ms), errors by code. Verifier calls come from the verdicts stored with
/// traces, router and decomposer calls from their attempts; read from the attempts of
/// at most the newest 5,000 requests of the window.
#[utoipa::path(get, path = "/v1/stats/plugins", tag = "tenant", security(("tenant" = [])), params(WindowQuery),
    responses((status = 200, body = PluginStatsList),
        (status = 400, description = "`invalid_value`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn plugin_stats(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<PluginStatsList>, ApiError> {
    plugins(&state, tenant.name(), query).await
}

/// The operator's routes, nested under `/admin/v1`.
pub(super) fn admin_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(tenant_pipeline_stats))
        .routes(routes!(tenant_model_stats))
        .routes(routes!(tenant_plugin_stats))
}

/// A tenant's pipeline statistics, as `GET /v1/stats/pipelines` returns them to it.
#[utoipa::path(get, path = "/tenants/{name}/stats/pipelines", tag = "admin", security(("operator" = [])),
    params(("name" = String, Path, description = "the tenant"), WindowQuery),
    responses((status = 200, body = PipelineStatsList),
        (status = 400, description = "`invalid_value`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn tenant_pipeline_stats(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Path(name): Path<String>,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<PipelineStatsList>, ApiError> {
    pipelines(&state, &name, query).await
}

/// A tenant's model statistics, as `GET /v1/stats/models` returns them to it.
#[utoipa::path(get, path = "/tenants/{name}/stats/models", tag = "admin", security(("operator" = [])),
    params(("name" = String, Path, description = "the tenant"), WindowQuery),
    responses((status = 200, body = ModelStatsList),
        (status = 400, description = "`invalid_value`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn tenant_model_stats(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Path(name): Path<String>,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<ModelStatsList>, ApiError> {
    models(&state, &name, query).await
}

/// A tenant's plugin statistics, as `GET /v1/stats/plugins` returns them to it.
#[utoipa::path(get, path = "/tenants/{name}/stats/plugins", tag = "admin", security(("operator" = [])),
    params(("name" = String, Path, description = "the tenant"), WindowQuery),
    responses((status = 200, body = PluginStatsList),
        (status = 400, description = "`invalid_value`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn tenant_plugin_stats(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Path(name): Path<String>,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<PluginStatsList>, ApiError> {
    plugins(&state, &name, query).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_default_to_a_day_and_are_bounded() {
        let q = |since, until| WindowQuery { since, until };
        let now = 100 * DEFAULT_WINDOW_MS;
        assert_eq!(
            q(None, None).window(now).unwrap(),
            (now - DEFAULT_WINDOW_MS, now)
        );
        assert_eq!(q(Some(5), Some(9)).window(now).unwrap(), (5, 9));
        for (since, until) in [
            (Some(9), Some(9)),
            (Some(-1), None),
            (Some(0), None),
            (None, Some(-5)),
        ] {
            let e = q(since, until).window(now).unwrap_err();
            assert_eq!(e.code, "invalid_value", "{since:?} {until:?}");
        }
        assert!(q(Some(now - MAX_WINDOW_MS), None).window(now).is_ok());
        assert_eq!(utc_day(0), "1970-01-01");
    }
}
