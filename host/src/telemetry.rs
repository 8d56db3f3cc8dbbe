//! Log lines and OpenTelemetry trace export. Everything that touches OpenTelemetry is
//! here: the OTLP exporter (gRPC or http/protobuf), its batch processor, the
//! `tracing-opentelemetry` layer, and reading an incoming `traceparent`.
//!
//! Export is off unless an endpoint is configured; then the subscriber has no
//! OpenTelemetry layer at all and the spans the pipeline opens at `info` are disabled
//! (log lines are `warn` by default), so they cost one callsite check each.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{
    WithExportConfig, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Whether spans are exported: an incoming `traceparent` is read only then.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// `[telemetry]`: where spans go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's base URL (`http://localhost:4317` for gRPC, `http://localhost:4318`
    /// for http/protobuf, whose path `/v1/traces` is added). Unset: the
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` environment variable, else no export.
    pub otlp_endpoint: Option<String>,
    /// `grpc` or `http` (http/protobuf). Unset: `OTEL_EXPORTER_OTLP_PROTOCOL`
    /// (`grpc`, `http/protobuf`), else `grpc`.
    pub otlp_protocol: Option<OtlpProtocol>,
    /// The `service.name` of the exported spans (default `arbiter`).
    pub service_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    Grpc,
    Http,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry: {0}")]
    Invalid(String),
    #[error("telemetry: OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

impl TelemetryConfig {
    /// The endpoint in effect: the file's, else the standard environment variable.
    pub fn endpoint(&self) -> Option<String> {
        self.otlp_endpoint
            .clone()
            .or_else(|| std::env::var(OTEL_EXPORTER_OTLP_ENDPOINT).ok())
            .filter(|e| !e.trim().is_empty())
    }

    pub fn protocol(&self) -> Result<OtlpProtocol, TelemetryError> {
        if let Some(p) = self.otlp_protocol {
            return Ok(p);
        }
        match std::env::var(OTEL_EXPORTER_OTLP_PROTOCOL).ok().as_deref() {
            None | Some("") | Some("grpc") => Ok(OtlpProtocol::Grpc),
            Some("http/protobuf") | Some("http") => Ok(OtlpProtocol::Http),
            Some(other) => Err(TelemetryError::Invalid(format!(
                "{OTEL_EXPORTER_OTLP_PROTOCOL}={other}: only `grpc` and `http/protobuf` are supported"
            ))),
        }
    }

    /// Checks what can be checked without connecting (at load, so a typo fails the start
    /// rather than silently exporting nothing).
    pub fn validate(&self) -> Result<(), TelemetryError> {
        self.protocol()?;
        if let Some(e) = self.endpoint() {
            let uri: Result<axum::http::Uri, _> = e.parse();
            if !uri.is_ok_and(|u| u.scheme().is_some() && u.authority().is_some()) {
                return Err(TelemetryError::Invalid(format!(
                    "otlp_endpoint `{e}` is not an absolute URL (such as http://localhost:4317)"
                )));
            }
        }
        Ok(())
    }
}

/// A running exporter. Dropping it without [`Telemetry::shutdown`] loses the spans
/// still queued.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Builds the exporter and its batch processor, or nothing when no endpoint is set.
    /// Must run inside the Tokio runtime: the gRPC channel's connection task lives there.
    ///
    /// The batch processor exports from a thread of its own, so a slow or absent
    /// collector never holds up a request. Its queue is bounded
    /// (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048 spans by default): spans that find it full are
    /// dropped. Failed exports are logged by the SDK and otherwise ignored.
    pub fn start(config: &TelemetryConfig) -> Result<Option<Telemetry>, TelemetryError> {
        let Some(endpoint) = config.endpoint() else {
            return Ok(None);
        };
        let exporter = match config.protocol()? {
            OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?,
            OtlpProtocol::Http => {
                // An endpoint given in code is used as is; the standard variable names
                // the collector, to which the signal's path is added.
                let endpoint = match endpoint.trim_end_matches('/') {
                    e if e.ends_with("/v1/traces") => e.to_string(),
                    e => format!("{e}/v1/traces"),
                };
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(endpoint)
                    .build()?
            }
        };
        let resource = Resource::builder()
            .with_service_name(
                config
                    .service_name
                    .clone()
                    .unwrap_or_else(|| "arbiter".into()),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Some(Telemetry { provider }))
    }

    /// Exports what is queued and stops the exporter (on graceful shutdown).
    pub fn shutdown(self) {
        EXPORTING.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!("telemetry: flushing spans at shutdown: {e}");
        }
    }
}

/// Installs the process's subscriber: log lines to stderr as `ARBITER_LOG` says, and
/// with `telemetry`, the `arbiter` spans at `info` and above to its exporter.
pub fn init_subscriber(telemetry: Option<&Telemetry>) {
    subscriber(telemetry).init();
}

fn subscriber(telemetry: Option<&Telemetry>) -> impl tracing::Subscriber + Send + Sync {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in log files and collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_env("ARBITER_LOG")
                // Plugins' own log lines are opt-in (`plugin=info`): a plugin decides
                // how much it logs.
                .unwrap_or_else(|_| "warn,plugin=off".into()),
        );
    let spans = telemetry.map(|t| {
        EXPORTING.store(true, Ordering::Relaxed);
        tracing_opentelemetry::layer()
            .with_tracer(t.provider.tracer("arbiter"))
            // Only the gateway's own spans: the exporter's HTTP and gRPC clients trace
            // too, and exporting their spans would feed itself. Of events, only warnings
            // and errors ride along (as span events): the per-request `info` lines would
            // otherwise be built and exported with every request.
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("arbiter", tracing::Level::INFO)
                    .and(tracing_subscriber::filter::filter_fn(|meta| {
                        meta.is_span() || *meta.level() <= tracing::Level::WARN
                    })),
            )
    });
    tracing_subscriber::registry().with(spans).with(logs)
}

/// Makes `span` a child of the caller's span when the request carries a valid W3C
/// `traceparent` (and `tracestate`), so the gateway's spans join the application's
/// trace. Without export, or with a malformed header, nothing happens.
pub fn set_remote_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !EXPORTING.load(Ordering::Relaxed) {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    if cx.span().span_context().is_valid() {
        // Fails only when the span is already started or disabled: then it has no
        // parent to take.
        let _ = span.set_parent(cx);
    }
}

struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_must_be_an_absolute_url() {
        let c = |e: &str| TelemetryConfig {
            otlp_endpoint: Some(e.into()),
            otlp_protocol: Some(OtlpProtocol::Grpc),
            service_name: None,
        };
        assert!(c("http://localhost:4317").validate().is_ok());
        assert!(c("localhost:4317").validate().is_err());
        assert!(c("not a url").validate().is_err());
    }

    #[test]
    fn without_export_the_pipeline_spans_are_disabled() {
        // Zero cost when off: an `info` span is not even created, as when there was no
        // OpenTelemetry layer at all (unless `ARBITER_LOG` asks for `info`).
        if std::env::var_os("ARBITER_LOG").is_some() {
            return;
        }
        tracing::subscriber::with_default(subscriber(None), || {
            assert!(tracing::info_span!("request").is_disabled());
            assert!(tracing::debug_span!("request").is_disabled());
        });
    }

    #[test]
    fn a_malformed_traceparent_is_no_parent() {
        let mut h = axum::http::HeaderMap::new();
        h.insert("traceparent", "00-zz-not-hex-01".parse().unwrap());
        let cx = TraceContextPropagator::new().extract(&Headers(&h));
        assert!(!cx.span().span_context().is_valid());
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = TraceContextPropagator::new().extract(&Headers(&h));
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }
}
