//! The gateway against clients and upstreams that misbehave on purpose: connections that
//! stall mid-request or hold a slot, requests that never finish, a bug that panics
//! inside a request, and an unauthenticated scrape of `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use arbiter::providers::{ChatRequest, ChatResponse, Provider, ProviderError};
use arbiter::server::auth::hash_key;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::gateway::{Gateway, Options, KEY_A};

/// Reads until the server closes the connection (`true`), or gives up after `wait`.
async fn closed_within(tcp: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(wait, read_all).await.is_ok()
}

/// The trace of an answer, or the one an error's message names.
fn trace_id(body: &serde_json::Value) -> Option<String> {
    if let Some(id) = body["arbiter"]["trace_id"].as_str() {
        return Some(id.to_string());
    }
    let message = body["error"]["message"].as_str()?;
    let (_, rest) = message.rsplit_once("(trace ")?;
    Some(rest.strip_suffix(')')?.to_string())
}

fn host(g: &Gateway) -> String {
    g.url.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn stalled_and_idle_connections_are_closed() {
    let g = Gateway::start_changed(Options {
        config: |c| c.server.header_read_timeout_ms = 300,
        ..Options::default()
    })
    .await;
    // Half a request line, then nothing.
    let mut stalled = TcpStream::connect(host(&g)).await.unwrap();
    stalled.write_all(b"POST /v1/chat/comp").await.unwrap();
    assert!(
        closed_within(&mut stalled, Duration::from_secs(10)).await,
        "a stalled request holds its connection"
    );
    // A kept-alive connection that goes quiet after its answer.
    let mut idle = TcpStream::connect(host(&g)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut idle, Duration::from_secs(10)).await,
        "an idle kept-alive connection is held"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn connections_are_capped_and_slots_come_back() {
    let g = Gateway::start_changed(Options {
        config: |c| c.server.max_connections = 2,
        ..Options::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(host(&g)).await.unwrap();
        // A started request: the connection is accepted and counted.
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head).await.unwrap();
        held.push(tcp);
    }
    // A third client waits in the backlog while both slots are held...
    let third = tokio::spawn({
        let http = g.http.clone();
        let url = format!("{}/healthz", g.url);
        async move { http.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "served beyond max_connections");
    // ...and is served once one is given back.
    drop(held.pop());
    let status = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("served once a slot is free")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    drop(held);
    g.shutdown().await;
}

#[tokio::test]
async fn a_request_that_never_finishes_is_answered_at_the_request_timeout() {
    let g = Gateway::start_changed(Options {
        config: |c| c.server.request_timeout_ms = 300,
        ..Options::default()
    })
    .await;
    // `hang` never answers; the provider's own timeout is 10 s.
    let (status, body) = g.chat("hang", "hi").await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "request_timeout");
    g.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_a_stream_is_cut_off_with_its_upstream_call() {
    let g = Gateway::start_changed(Options {
        config: |c| c.server.write_timeout_ms = 300,
        ..Options::default()
    })
    .await;
    // A small receive window, so what the kernel buffers stays far below the cap on a
    // stream's text: only the write timeout can end this.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(host(&g).parse().unwrap()).await.unwrap();
    let body = json!({"model": "firehose", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY_A}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // ...and then nothing is read.
    let waited = std::time::Instant::now();
    while g.mock.state.cancelled("firehose") == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the upstream stream is still held for a client that stopped reading"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        closed_within(&mut tcp, Duration::from_secs(10)).await,
        "the stalled connection is still open"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn metrics_can_require_a_key() {
    let g = Gateway::start_changed(Options {
        config: |c| c.server.metrics_key = Some(hash_key("sk-scraper")),
        ..Options::default()
    })
    .await;
    let url = format!("{}/metrics", g.url);
    let open = g.http.get(&url).send().await.unwrap();
    assert_eq!(open.status(), 401);
    let tenant = g.http.get(&url).bearer_auth(KEY_A).send().await.unwrap();
    assert_eq!(tenant.status(), 401, "a tenant key is not the metrics key");
    let scraper = g
        .http
        .get(&url)
        .bearer_auth("sk-scraper")
        .send()
        .await
        .unwrap();
    assert_eq!(scraper.status(), 200);
    assert!(scraper
        .text()
        .await
        .unwrap()
        .contains("arbiter_store_write_errors_total"));
    g.shutdown().await;
}

/// An upstream client with a bug: it panics on every call.
struct Panics;

#[async_trait::async_trait]
impl Provider for Panics {
    async fn chat(&self, _: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        panic!("a bug in a provider");
    }
}

#[tokio::test]
async fn a_panic_in_a_request_is_a_typed_500_with_a_trace() {
    let g = Gateway::start_changed(Options {
        providers: [("mock".to_string(), Arc::new(Panics) as Arc<dyn Provider>)].into(),
        ..Options::default()
    })
    .await;
    for (target, stream) in [("right", false), ("right", true), ("best-of", false)] {
        let (status, body) = g
            .chat_with(
                KEY_A,
                json!({"model": target, "stream": stream, "messages": [{"role": "user", "content": "2+2?"}]}),
                &[],
            )
            .await;
        assert_eq!(status, 500, "{target} stream={stream}: {body}");
        assert_eq!(body["error"]["code"], "internal_error", "{body}");
        // The message names the trace, which holds the error.
        let id = trace_id(&body).unwrap_or_else(|| panic!("no trace id in {body}"));
        let (status, trace) = g.get(KEY_A, &format!("/v1/traces/{id}")).await;
        assert_eq!(status, 200, "{trace}");
        assert_eq!(trace["outcome"], "failed");
        let error = trace["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("internal_error"), "{trace}");
    }
    // The gateway still serves.
    let (status, _) = g.get(KEY_A, "/v1/models").await;
    assert_eq!(status, 200);
    g.shutdown().await;
}

#[tokio::test]
async fn raw_models_and_pipelines_without_limits_get_the_default_budget() {
    let g = Gateway::start_changed(Options {
        config: |c| {
            c.default_budget.deadline_ms = Some(300);
            c.default_budget.max_calls = Some(1);
        },
        ..Options::default()
    })
    .await;
    // A raw model that never answers is stopped at the default deadline, not at the
    // provider's 10 s timeout.
    let (status, body) = g.chat("hang", "hi").await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "deadline_exceeded");
    // A pipeline that sets no limits gets the default call cap: best-of-3 makes one call.
    let (status, body) = g.chat("best-of", "2+2?").await;
    let id = trace_id(&body).unwrap_or_else(|| panic!("{status}: {body}"));
    let (_, trace) = g.get(KEY_A, &format!("/v1/traces/{id}")).await;
    let calls = trace["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "model" && a["outcome"] != "over_budget")
        .count();
    assert_eq!(calls, 1, "{trace}");
    g.shutdown().await;
}

#[tokio::test]
async fn a_decomposer_plan_runs_with_bounded_concurrency_and_size() {
    let g = Gateway::start().await;
    let prompt = |n: usize| -> String {
        (1..=n)
            .map(|i| format!("{i}. question {i}?"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Six independent sub-tasks, at most two at a time.
    let (status, body) = g.chat("split-narrow", &prompt(6)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(g.mock.state.calls("right@150"), 6);
    assert_eq!(g.mock.state.max_in_flight("right@150"), 2);
    // Seven are more than the pipeline takes: refused before any runs.
    let (status, body) = g.chat("split-narrow", &prompt(7)).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("plan_too_large"),
        "{body}"
    );
    assert_eq!(g.mock.state.calls("right@150"), 6);
    g.shutdown().await;
}

#[tokio::test]
async fn upstream_errors_reach_tenants_without_credentials_or_paths() {
    let g = Gateway::start().await;
    let (status, body) = g.chat("leak", "hi").await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Incorrect API key provided"), "{message}");
    let id = trace_id(&body).unwrap();
    let (_, trace) = g.get(KEY_A, &format!("/v1/traces/{id}")).await;
    for text in [message.to_string(), trace.to_string()] {
        for secret in ["abcdefgh1234", "zyxwvu98765", "/srv/upstream"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    g.shutdown().await;
}

#[tokio::test]
async fn a_failing_upstream_is_not_resent_what_it_may_have_billed_and_is_then_left_alone() {
    let g = Gateway::start().await;
    let ask = || g.chat("down", "hi");
    // A 500 may have been processed: each request calls once, no retries.
    for i in 1..=5 {
        let (status, body) = ask().await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(g.mock.state.calls("down"), i);
    }
    // Five upstream failures in a row: the provider is left alone for a while.
    let (status, body) = ask().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "upstream_circuit_open");
    assert_eq!(g.mock.state.calls("down"), 5);
    g.shutdown().await;
}
