//! Prometheus metrics, updated from each finished request's trace (off the hot path of
//! the pipeline itself).

use prometheus::{
    CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::pipeline::{AttemptKind, AttemptOutcome, RequestTrace};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    model_calls: IntCounterVec,
    model_cost: CounterVec,
    model_seconds: HistogramVec,
    verdicts: IntCounterVec,
    cancellations: IntCounterVec,
    plugin_seconds: HistogramVec,
    http_errors: IntCounterVec,
    store_write_errors: IntCounterVec,
    replicas_live: prometheus::IntGauge,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const PLUGIN_BUCKETS: &[f64] = &[
    0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let requests = counter(
            "arbiter_requests_total",
            "Requests by pipeline and outcome",
            &["pipeline", "outcome"],
        );
        let request_seconds = histogram(
            "arbiter_request_duration_seconds",
            "Request latency",
            &["pipeline"],
            LATENCY_BUCKETS,
        );
        let model_calls = counter(
            "arbiter_model_calls_total",
            "Model calls by outcome",
            &["model", "outcome"],
        );
        let model_cost = CounterVec::new(
            Opts::new("arbiter_model_cost_usd_total", "Spend per model (USD)"),
            &["model"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(model_cost.clone()))
            .expect("unique metric");
        let model_seconds = histogram(
            "arbiter_model_latency_seconds",
            "Model call latency",
            &["model"],
            LATENCY_BUCKETS,
        );
        let verdicts = counter(
            "arbiter_verdicts_total",
            "Verifier verdicts",
            &["plugin", "decision"],
        );
        let cancellations = counter(
            "arbiter_cancellations_total",
            "Model calls cancelled: another answer won, the deadline passed or the client went away",
            &["model"],
        );
        let plugin_seconds = histogram(
            "arbiter_plugin_call_seconds",
            "Verifier call time",
            &["plugin"],
            PLUGIN_BUCKETS,
        );
        let http_errors = counter(
            "arbiter_http_errors_total",
            "Error responses by code",
            &["code"],
        );
        let store_write_errors = counter(
            "arbiter_store_write_errors_total",
            "Commits to the store that failed (traces, feedback, keys)",
            &[],
        );
        let replicas_live = prometheus::IntGauge::new(
            "arbiter_replicas_live",
            "Replicas sharing the store (and each tenant's rate and concurrency limits)",
        )
        .expect("valid metric");
        registry
            .register(Box::new(replicas_live.clone()))
            .expect("unique metric");
        Metrics {
            store_write_errors,
            replicas_live,
            registry,
            requests,
            request_seconds,
            model_calls,
            model_cost,
            model_seconds,
            verdicts,
            cancellations,
            plugin_seconds,
            http_errors,
        }
    }

    pub fn observe(&self, trace: &RequestTrace, pipeline_label: &str) {
        let outcome = serde_json::to_value(trace.outcome)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        self.requests
            .with_label_values(&[pipeline_label, &outcome])
            .inc();
        self.request_seconds
            .with_label_values(&[pipeline_label])
            .observe(trace.latency_ms / 1e3);
        for a in trace
            .attempts
            .iter()
            .filter(|a| a.kind == AttemptKind::Model)
        {
            self.model_calls
                .with_label_values(&[&a.model, a.outcome.as_str()])
                .inc();
            if a.cost_usd > 0.0 {
                self.model_cost
                    .with_label_values(&[&a.model])
                    .inc_by(a.cost_usd);
            }
            if a.outcome == AttemptOutcome::Cancelled {
                self.cancellations.with_label_values(&[&a.model]).inc();
            } else if a.outcome != AttemptOutcome::OverBudget {
                self.model_seconds
                    .with_label_values(&[&a.model])
                    .observe(a.latency_ms / 1e3);
            }
            for v in &a.verdicts {
                let decision = match (&v.decision, &v.error) {
                    (Some(d), _) => serde_json::to_value(d)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    (None, _) => "error".into(),
                };
                self.verdicts
                    .with_label_values(&[&v.plugin, &decision])
                    .inc();
                self.plugin_seconds
                    .with_label_values(&[&v.plugin])
                    .observe(v.wall_us / 1e6);
            }
        }
    }

    pub fn error(&self, code: &str) {
        self.http_errors.with_label_values(&[code]).inc();
    }

    /// The store counts its own failed commits; the metric follows that count.
    pub fn store_write_errors(&self, total: u64) {
        let c = self.store_write_errors.with_label_values(&[] as &[&str]);
        c.inc_by(total.saturating_sub(c.get()));
    }

    pub fn replicas_live(&self, n: u32) {
        self.replicas_live.set(i64::from(n));
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
