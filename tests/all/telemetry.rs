//! Span export over OTLP: a gateway child process exports to an in-process collector,
//! over gRPC and over http/protobuf, and its spans join the caller's trace.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

use crate::common::gateway::start;
use crate::common::{free_port, mock_upstream, reference_plugin, wait_ready};
use arbiter::server::auth::hash_key;

const KEY: &str = "sk-telemetry-test";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const ROUTED_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const EMBED_TRACE_ID: &str = "5c2a1e07a93b4f6e8d1c0b9a87654321";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// Every span the collector was sent.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Span>>>);

impl Received {
    fn take(&self, request: ExportTraceServiceRequest) {
        let spans = request
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.0.lock().unwrap().extend(spans);
    }

    fn spans(&self) -> Vec<Span> {
        self.0.lock().unwrap().clone()
    }
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.take(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC collector; its endpoint.
async fn grpc_collector(received: Received) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received))
            .serve_with_incoming(incoming),
    );
    format!("http://{addr}")
}

/// An OTLP/HTTP collector taking protobuf at `/v1/traces`; its base URL.
async fn http_collector(received: Received) -> String {
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| async move {
            match ExportTraceServiceRequest::decode(body) {
                Ok(request) => {
                    received.take(request);
                    (
                        axum::http::StatusCode::OK,
                        [("content-type", "application/x-protobuf")],
                        ExportTraceServiceResponse::default().encode_to_vec(),
                    )
                }
                Err(_) => (
                    axum::http::StatusCode::BAD_REQUEST,
                    [("content-type", "text/plain")],
                    b"not an ExportTraceServiceRequest".to_vec(),
                ),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn str_attr<'a>(span: &'a Span, key: &str) -> &'a str {
    match attr(span, key) {
        Some(AnyValue::StringValue(s)) => s,
        other => panic!("span `{}`: {key} is {other:?}", span.name),
    }
}

fn int_attr(span: &Span, key: &str) -> i64 {
    match attr(span, key) {
        Some(AnyValue::IntValue(i)) => *i,
        other => panic!("span `{}`: {key} is {other:?}", span.name),
    }
}

fn float_attr(span: &Span, key: &str) -> f64 {
    match attr(span, key) {
        Some(AnyValue::DoubleValue(f)) => *f,
        other => panic!("span `{}`: {key} is {other:?}", span.name),
    }
}

/// Runs one verified request with a `traceparent` through a gateway exporting over
/// `protocol`, stops the gateway (which flushes), and checks what the collector got.
async fn exports_over(protocol: &str) {
    let mock = mock_upstream::start().await;
    let received = Received::default();
    let endpoint = match protocol {
        "grpc" => grpc_collector(received.clone()).await,
        _ => http_collector(received.clone()).await,
    };
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("arbiter.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
data_dir = "{data}"

[telemetry]
otlp_endpoint = "{endpoint}"
otlp_protocol = "{protocol}"
service_name = "arbiter-test"

[providers.mock]
kind = "openai"
base_url = "{mock}"

[models.right]
provider = "mock"
input_price = 1.0
output_price = 2.0

[models.embed]
provider = "mock"
input_price = 1.0
output_price = 0.0

[plugins.math]
path = "{math}"

[plugins.router]
path = "{router}"
config = {{ cheap = "right", expensive = "right", threshold = 0.9 }}

[tenants.a]
api_keys = ["{key}"]
policy = {{ models = ["embed"] }}

[pipelines.verified]
tenants = ["a"]
type = "single"
model = "right"
verify = [{{ plugin = "math" }}]

[pipelines.routed]
tenants = ["a"]
type = "route"
router = {{ plugin = "router" }}
models = ["right"]
"#,
            data = data.path().display(),
            mock = mock.base_url,
            math = reference_plugin("gsm8k-verifier").display(),
            router = reference_plugin("prompt-router").display(),
            key = hash_key(KEY),
        ),
    )
    .unwrap();

    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}");
    let mut child = start(&config, &listen);
    let http = reqwest::Client::new();
    wait_ready(&http, &url).await;
    let reply = http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .json(&json!({"model": "verified", "messages": [{"role": "user", "content": "2+2?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{:?}", reply.text().await);
    let reply = http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .header(
            "traceparent",
            format!("00-{ROUTED_TRACE_ID}-{PARENT_ID}-01"),
        )
        .json(&json!({"model": "routed", "messages": [{"role": "user", "content": "2+2?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{:?}", reply.text().await);
    let reply = http
        .post(format!("{url}/v1/embeddings"))
        .bearer_auth(KEY)
        .header("traceparent", format!("00-{EMBED_TRACE_ID}-{PARENT_ID}-01"))
        .json(&json!({"model": "embed", "input": ["a", "b"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{:?}", reply.text().await);
    // A malformed traceparent is ignored, not an error.
    let reply = http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("traceparent", "00-not-a-trace-01")
        .json(&json!({"model": "verified", "messages": [{"role": "user", "content": "2+2?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);

    // SIGTERM: the gateway stops gracefully and flushes its spans before exiting.
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");

    // The flush is done when the process exits; the collector's handler may still be
    // storing it, so wait a bounded while.
    let ours = |s: &Span| hex::encode(&s.trace_id) == TRACE_ID;
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = received.spans();
        let routed = spans
            .iter()
            .filter(|s| hex::encode(&s.trace_id) == ROUTED_TRACE_ID)
            .count();
        let embedded = spans
            .iter()
            .filter(|s| hex::encode(&s.trace_id) == EMBED_TRACE_ID)
            .count();
        if spans.iter().filter(|s| ours(s)).count() >= 3 && routed >= 3 && embedded >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| ours(s) && s.name == name)
            .unwrap_or_else(|| panic!("no `{name}` span in our trace: {names:?}"))
    };

    let request = find("request");
    assert_eq!(hex::encode(&request.parent_span_id), PARENT_ID);

    let chat = find("chat right");
    assert_eq!(
        chat.parent_span_id, request.span_id,
        "model call under the request"
    );
    assert_eq!(str_attr(chat, "gen_ai.operation.name"), "chat");
    assert_eq!(str_attr(chat, "gen_ai.provider.name"), "mock");
    assert_eq!(str_attr(chat, "gen_ai.request.model"), "right");
    assert!(int_attr(chat, "gen_ai.usage.input_tokens") > 0);
    assert!(int_attr(chat, "gen_ai.usage.output_tokens") > 0);
    assert!(float_attr(chat, "arbiter.cost_usd") > 0.0);
    assert_eq!(
        chat.kind,
        opentelemetry_proto::tonic::trace::v1::span::SpanKind::Client as i32
    );

    let verify = find("verify math");
    assert_eq!(
        verify.parent_span_id, request.span_id,
        "verdict under the request"
    );
    assert_eq!(str_attr(verify, "arbiter.verdict.decision"), "accept");
    assert!(float_attr(verify, "arbiter.verdict.score") > 0.0);
    assert!(str_attr(verify, "arbiter.plugin.digest").len() >= 64);

    // The routed request: the router's call is a child of its request.
    let in_routed = |name: &str| {
        spans
            .iter()
            .find(|s| hex::encode(&s.trace_id) == ROUTED_TRACE_ID && s.name == name)
            .unwrap_or_else(|| panic!("no `{name}` span in the routed trace: {names:?}"))
    };
    let routed_request = in_routed("request");
    let route = in_routed("route router");
    assert_eq!(route.parent_span_id, routed_request.span_id);
    assert_eq!(str_attr(route, "arbiter.plugin.name"), "router");
    assert_eq!(
        in_routed("chat right").parent_span_id,
        routed_request.span_id
    );

    // The embeddings request: one `embeddings {model}` call under it.
    let in_embedded = |name: &str| {
        spans
            .iter()
            .find(|s| hex::encode(&s.trace_id) == EMBED_TRACE_ID && s.name == name)
            .unwrap_or_else(|| panic!("no `{name}` span in the embeddings trace: {names:?}"))
    };
    let embed = in_embedded("embeddings embed");
    assert_eq!(embed.parent_span_id, in_embedded("request").span_id);
    assert_eq!(str_attr(embed, "gen_ai.operation.name"), "embeddings");
    assert_eq!(str_attr(embed, "arbiter.attempt.outcome"), "completed");
    assert_eq!(int_attr(embed, "gen_ai.usage.input_tokens"), 6);
    assert!(float_attr(embed, "arbiter.cost_usd") > 0.0);

    // The request with a malformed traceparent got a trace of its own.
    assert!(
        spans
            .iter()
            .any(|s| s.name == "request" && !ours(s) && s.parent_span_id.is_empty()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_exports_spans_over_grpc() {
    exports_over("grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_exports_spans_over_http() {
    exports_over("http").await;
}
