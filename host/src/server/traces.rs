//! `GET /v1/traces`: the calling tenant's traces, newest first, filtered and paged on the
//! server (keyset cursors over indexed columns), so a listing stays one index range
//! however many traces the store holds; and the same for an operator, any tenant's
//! (`/admin/v1/tenants/{name}/traces`). The console reads these too.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Operator, Tenant};
use super::errors::{ApiError, ErrorBody};
use super::AppState;
use crate::pipeline::RequestOutcome;
use crate::store::{TraceFilter, TraceSummary};

/// Rows per page unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct TraceListQuery {
    /// Only this pipeline's (or raw model's) requests.
    pipeline: Option<String>,
    /// Only requests with this outcome: `accepted`, `unverified`, `rejected`,
    /// `budget_best`, `failed` or `cancelled`.
    outcome: Option<String>,
    /// Only requests whose chosen answer came from this model.
    model: Option<String>,
    /// Only requests carrying this tag.
    tag: Option<String>,
    /// Created at or after this time (Unix ms).
    since: Option<i64>,
    /// Created before this time (Unix ms).
    until: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Rows per page, 1 to 200 (default 50).
    limit: Option<usize>,
}

/// One page of traces.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TracePage {
    /// Newest first.
    data: Vec<TraceSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// A cursor names the last row of a page: `<created_at>.<id>`.
fn cursor_of(t: &TraceSummary) -> String {
    format!("{}.{}", t.created_at, t.id)
}

fn parse_cursor(cursor: &str) -> Option<(i64, String)> {
    let (at, id) = cursor.split_once('.')?;
    let at = at.parse().ok()?;
    (!id.is_empty() && id.len() <= 128).then(|| (at, id.to_string()))
}

fn invalid(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_value", message).with_param(param)
}

impl TraceListQuery {
    fn filter(self) -> Result<TraceFilter, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid(
                "limit",
                format!("`limit` must be between 1 and {MAX_LIMIT}"),
            ));
        }
        if let Some(o) = &self.outcome {
            serde_json::from_value::<RequestOutcome>(serde_json::Value::String(o.clone()))
                .map_err(|_| invalid("outcome", format!("no outcome `{o}`")))?;
        }
        let after = match &self.cursor {
            None => None,
            Some(c) => Some(parse_cursor(c).ok_or_else(|| {
                invalid(
                    "cursor",
                    "`cursor` is not one this API returned (`next_cursor`)",
                )
            })?),
        };
        // An empty filter value (a cleared form field) filters nothing.
        let given = |v: Option<String>| v.filter(|s| !s.is_empty());
        Ok(TraceFilter {
            pipeline: given(self.pipeline),
            outcome: given(self.outcome),
            model: given(self.model),
            tag: given(self.tag),
            since: self.since,
            until: self.until,
            after,
            // One row more than the page tells whether another page follows.
            limit: limit + 1,
        })
    }
}

/// The calling tenant's traces, newest first, with server-side filters and keyset
/// paging: pass a page's `next_cursor` as `cursor` for the next one.
#[utoipa::path(get, path = "/v1/traces", tag = "tenant", security(("tenant" = [])), params(TraceListQuery),
    responses((status = 200, body = TracePage),
        (status = 400, description = "`invalid_value`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn list_traces(
    State(state): State<Arc<AppState>>,
    tenant: Tenant,
    query: Result<Query<TraceListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    page(&state, tenant.name(), query).await
}

/// The operator's routes, nested under `/admin/v1`.
pub(super) fn admin_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(tenant_traces))
        .routes(routes!(tenant_trace))
}

/// A tenant's traces, as `GET /v1/traces` lists them for the tenant itself.
#[utoipa::path(get, path = "/tenants/{name}/traces", tag = "admin", security(("operator" = [])),
    params(("name" = String, Path, description = "the tenant"), TraceListQuery),
    responses((status = 200, body = TracePage),
        (status = 400, description = "`invalid_value`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn tenant_traces(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Path(name): Path<String>,
    query: Result<Query<TraceListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    page(&state, &name, query).await
}

/// One of a tenant's traces, as `GET /v1/traces/{id}` returns it to the tenant itself.
#[utoipa::path(get, path = "/tenants/{name}/traces/{id}", tag = "admin", security(("operator" = [])),
    params(("name" = String, Path, description = "the tenant"), ("id" = String, Path, description = "the trace id")),
    responses((status = 200, description = "the trace (`RequestTrace`, docs/architecture.md)", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "`trace_not_found`", body = ErrorBody)))]
async fn tenant_trace(
    State(state): State<Arc<AppState>>,
    _: Operator,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    super::read_trace(&state, &name, &id).await
}

async fn page(
    state: &AppState,
    tenant: &str,
    query: Result<Query<TraceListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_value", e.body_text()))?;
    let filter = q.filter()?;
    let limit = filter.limit - 1;
    let mut data = state
        .store
        .traces(tenant, filter)
        .await
        .map_err(|e| super::store_failed("listing traces", &e))?;
    let next_cursor = if data.len() > limit {
        data.truncate(limit);
        data.last().map(cursor_of)
    } else {
        None
    };
    Ok(axum::Json(TracePage { data, next_cursor }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let t = TraceSummary {
            id: "0193abc".into(),
            created_at: 1_700_000_000_123,
            pipeline: "p".into(),
            outcome: "accepted".into(),
            model: None,
            cost_usd: 0.0,
            latency_ms: 1.0,
            tags: vec![],
        };
        assert_eq!(
            parse_cursor(&cursor_of(&t)),
            Some((t.created_at, t.id.clone()))
        );
        for bad in ["", "x.y", "12", "12.", ".ab"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
        let q = TraceListQuery {
            limit: Some(0),
            ..Default::default()
        };
        assert!(q.filter().is_err());
        let q = TraceListQuery {
            outcome: Some("great".into()),
            ..Default::default()
        };
        assert!(q.filter().is_err());
    }
}
