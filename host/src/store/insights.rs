//! Statistics over a window of a tenant's recent requests: per pipeline (outcome mix,
//! cost and latency percentiles) and per plugin (calls, call time, errors by code). Both
//! read one range of the `(tenant, created_at, id)` index, newest first, and at most a
//! fixed number of requests however many the window holds, so what a caller can make
//! the store read is bounded; a window with more says so (`complete: false`) and its
//! figures are those of its newest requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::database::{PluginCallRow, WindowRow};
use super::{StoreError, TraceStore};

/// Requests read at most for pipeline statistics (four columns each).
pub const MAX_PIPELINE_REQUESTS: usize = 20_000;
/// Requests read at most for plugin statistics (their attempts' verdicts).
pub const MAX_PLUGIN_REQUESTS: usize = 5_000;

/// The requests a statistic was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Window {
    /// Unix ms, inclusive.
    pub since: i64,
    /// Unix ms, exclusive.
    pub until: i64,
    /// Requests read.
    pub requests: usize,
    /// False when the window held more requests than are read at most: the figures are
    /// those of the newest `requests`.
    pub complete: bool,
}

/// Nearest-rank percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, ToSchema)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// The `q` quantile of sorted `v` (nearest rank); 0 when empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

impl Percentiles {
    fn of(mut v: Vec<f64>) -> Percentiles {
        v.sort_by(f64::total_cmp);
        Percentiles {
            p50: quantile(&v, 0.5),
            p95: quantile(&v, 0.95),
            p99: quantile(&v, 0.99),
        }
    }
}

/// One pipeline's (or raw model's) requests in the window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PipelineStats {
    /// The name the requests called.
    pub pipeline: String,
    pub requests: u64,
    /// Requests per outcome (`accepted`, `unverified`, `rejected`, `budget_best`,
    /// `failed`, `cancelled`); outcomes no request had are absent.
    pub outcomes: BTreeMap<String, u64>,
    /// Spent in total.
    pub cost_usd: f64,
    /// Per request.
    pub cost_usd_percentiles: Percentiles,
    pub latency_ms: Percentiles,
}

/// Statistics of a plugin's calls: verifier verdicts, router and decomposer calls.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PluginStats {
    /// As the pipeline names it (`name@sha256:...` when pinned).
    pub plugin: String,
    /// `verifier`, `router` or `decomposer`.
    pub kind: String,
    pub calls: u64,
    /// Calls that failed (trap, deadline, bad output, ...).
    pub errors: u64,
    pub error_rate: f64,
    /// Failed calls per error code (`plugin_timeout`, `plugin_trap`, ...).
    pub errors_by_code: BTreeMap<String, u64>,
    /// Call time in ms.
    pub call_ms: Percentiles,
}

/// What a verdict's record holds that plugin statistics need.
#[derive(Deserialize)]
struct VerdictCall {
    plugin: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    wall_us: f64,
}

/// `code: message` to its code; anything else is `error`.
fn error_code(error: &str) -> String {
    match error.split_once(':') {
        Some((code, _))
            if !code.is_empty()
                && code.len() <= 64
                && code
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') =>
        {
            code.to_string()
        }
        _ => "error".to_string(),
    }
}

/// Groups a window's requests by pipeline, busiest first.
pub(super) fn pipelines(rows: Vec<WindowRow>) -> Vec<PipelineStats> {
    /// Requests per outcome, costs, latencies.
    type Acc = (BTreeMap<String, u64>, Vec<f64>, Vec<f64>);
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    for r in rows {
        let e = by.entry(r.pipeline).or_default();
        *e.0.entry(r.outcome).or_default() += 1;
        e.1.push(r.cost_usd);
        e.2.push(r.latency_ms);
    }
    let mut out: Vec<PipelineStats> = by
        .into_iter()
        .map(|(pipeline, (outcomes, cost, latency))| PipelineStats {
            pipeline,
            requests: cost.len() as u64,
            outcomes,
            cost_usd: cost.iter().sum(),
            cost_usd_percentiles: Percentiles::of(cost),
            latency_ms: Percentiles::of(latency),
        })
        .collect();
    out.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then(a.pipeline.cmp(&b.pipeline))
    });
    out
}

/// Groups a window's plugin calls by plugin and kind, busiest first. Rows whose JSON
/// does not parse are skipped (a record from an older build, say).
pub(super) fn plugins(rows: Vec<PluginCallRow>) -> Vec<PluginStats> {
    type Acc = (Vec<f64>, BTreeMap<String, u64>);
    let mut by: BTreeMap<(String, String), Acc> = BTreeMap::new();
    let mut add = |plugin: String, kind: &str, ms: f64, error: Option<&str>| {
        let e = by.entry((plugin, kind.to_string())).or_default();
        e.0.push(ms);
        if let Some(err) = error {
            *e.1.entry(error_code(err)).or_default() += 1;
        }
    };
    for r in rows {
        match r.kind.as_str() {
            "router" | "decomposer" => add(r.model, &r.kind, r.latency_ms, r.error.as_deref()),
            _ => {
                let Some(verdicts) = r.verdicts else { continue };
                let Ok(verdicts) = serde_json::from_str::<Vec<VerdictCall>>(&verdicts) else {
                    continue;
                };
                for v in verdicts {
                    add(v.plugin, "verifier", v.wall_us / 1e3, v.error.as_deref());
                }
            }
        }
    }
    let mut out: Vec<PluginStats> = by
        .into_iter()
        .map(|((plugin, kind), (times, errors_by_code))| {
            let calls = times.len() as u64;
            let errors = errors_by_code.values().sum();
            PluginStats {
                plugin,
                kind,
                calls,
                errors,
                error_rate: if calls == 0 {
                    0.0
                } else {
                    errors as f64 / calls as f64
                },
                errors_by_code,
                call_ms: Percentiles::of(times),
            }
        })
        .collect();
    out.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.plugin.cmp(&b.plugin)));
    out
}

impl TraceStore {
    /// `tenant`'s requests from `since` to `until` (Unix ms) by pipeline, from at most
    /// [`MAX_PIPELINE_REQUESTS`] of the newest; traces still queued are written first.
    pub async fn pipeline_stats(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
    ) -> Result<(Window, Vec<PipelineStats>), StoreError> {
        self.pipeline_stats_within(tenant, since, until, MAX_PIPELINE_REQUESTS)
            .await
    }

    /// As [`TraceStore::pipeline_stats`], reading at most `limit` requests.
    pub(super) async fn pipeline_stats_within(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
        limit: usize,
    ) -> Result<(Window, Vec<PipelineStats>), StoreError> {
        self.flush().await?;
        let tenant = tenant.to_string();
        let rows = self
            .blocking(move |db| db.window_requests(&tenant, since, until, limit + 1))
            .await?;
        let complete = rows.len() <= limit;
        let rows: Vec<WindowRow> = rows.into_iter().take(limit).collect();
        let window = Window {
            since,
            until,
            requests: rows.len(),
            complete,
        };
        Ok((window, pipelines(rows)))
    }

    /// The plugin calls of `tenant`'s requests from `since` to `until` (Unix ms), from
    /// the attempts of at most [`MAX_PLUGIN_REQUESTS`] of the newest.
    pub async fn plugin_stats(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
    ) -> Result<(Window, Vec<PluginStats>), StoreError> {
        self.plugin_stats_within(tenant, since, until, MAX_PLUGIN_REQUESTS)
            .await
    }

    /// As [`TraceStore::plugin_stats`], reading the attempts of at most `limit` requests.
    pub(super) async fn plugin_stats_within(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
        limit: usize,
    ) -> Result<(Window, Vec<PluginStats>), StoreError> {
        self.flush().await?;
        let tenant = tenant.to_string();
        let (requests, rows) = self
            .blocking(move |db| {
                // How many requests the window holds, up to one more than are read: one
                // index range, no row read.
                let requests = db.window_count(&tenant, since, until, limit + 1)?;
                let rows = db.window_plugin_calls(&tenant, since, until, limit)?;
                Ok((requests, rows))
            })
            .await?;
        let window = Window {
            since,
            until,
            requests: requests.min(limit),
            complete: requests <= limit,
        };
        Ok((window, plugins(rows)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pipeline: &str, outcome: &str, cost: f64, latency: f64) -> WindowRow {
        WindowRow {
            pipeline: pipeline.into(),
            outcome: outcome.into(),
            cost_usd: cost,
            latency_ms: latency,
        }
    }

    #[test]
    fn pipelines_count_outcomes_and_take_percentiles() {
        let mut rows: Vec<WindowRow> = (1..=100)
            .map(|i| {
                row(
                    "race",
                    if i % 10 == 0 { "failed" } else { "accepted" },
                    0.01,
                    i as f64,
                )
            })
            .collect();
        rows.push(row("plain", "unverified", 0.5, 7.0));
        let out = pipelines(rows);
        assert_eq!(out[0].pipeline, "race", "busiest first");
        assert_eq!(out[0].requests, 100);
        assert_eq!(out[0].outcomes["accepted"], 90);
        assert_eq!(out[0].outcomes["failed"], 10);
        assert!((out[0].cost_usd - 1.0).abs() < 1e-9);
        assert_eq!(
            out[0].latency_ms,
            Percentiles {
                p50: 51.0,
                p95: 95.0,
                p99: 99.0
            }
        );
        assert_eq!(out[1].latency_ms.p99, 7.0);
        assert_eq!(out[1].cost_usd_percentiles.p50, 0.5);
    }

    #[test]
    fn plugins_count_verdicts_routers_and_errors_by_code() {
        let verdicts = |v: &str| PluginCallRow {
            kind: "model".into(),
            model: "m".into(),
            latency_ms: 100.0,
            error: None,
            verdicts: Some(v.into()),
        };
        let rows = vec![
            verdicts(r#"[{"plugin":"math","wall_us":1000,"reason":"ok"}]"#),
            verdicts(
                r#"[{"plugin":"math","wall_us":3000,"error":"plugin_timeout: over 1000 ms"}]"#,
            ),
            verdicts(r#"[{"plugin":"math","wall_us":2000}, {"plugin":"judge","wall_us":500}]"#),
            verdicts("not json"),
            PluginCallRow {
                kind: "router".into(),
                model: "pick".into(),
                latency_ms: 4.0,
                error: Some("plugin_trap: unreachable".into()),
                verdicts: None,
            },
        ];
        let out = plugins(rows);
        let math = out.iter().find(|p| p.plugin == "math").unwrap();
        assert_eq!(
            (math.calls, math.errors, math.kind.as_str()),
            (3, 1, "verifier")
        );
        assert_eq!(math.errors_by_code["plugin_timeout"], 1);
        assert_eq!((math.call_ms.p50, math.call_ms.p99), (2.0, 3.0));
        assert!((math.error_rate - 1.0 / 3.0).abs() < 1e-9);
        let pick = out.iter().find(|p| p.plugin == "pick").unwrap();
        assert_eq!(
            (pick.kind.as_str(), pick.errors_by_code["plugin_trap"]),
            ("router", 1)
        );
        assert_eq!(out.len(), 3);
        assert_eq!(error_code("no code here"), "error");
        assert_eq!(error_code("a b: c"), "error");
    }
}
