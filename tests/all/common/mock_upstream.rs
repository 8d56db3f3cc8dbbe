//! An in-process OpenAI-compatible upstream whose behaviour is chosen by the model
//! name, and which counts calls, concurrency and cancellations (a request whose client
//! hung up before the answer was ready).
//!
//! Models: `right` ("2 + 2 = 4 / #### 4"), `wrong` ("2 + 2 = 5 / #### 5"), `echo`
//! (repeats the prompt), `flaky429` / `flaky503` (fail twice, then answer like `right`),
//! `bad400`, `down` (always 500), `leak` (a 400 quoting a key and a path), `malformed` (invalid JSON), `hang` (never answers), `broken-stream` (one
//! chunk, then the connection closes), `stall-stream` (one chunk, then silence),
//! `params` (answers with the request's other parameters as JSON: what reached the
//! upstream), `cut` (like `right`, but stopped by `length`), `firehose` (streams 8 KiB
//! deltas as fast as they are read, forever; counted as cancelled when the gateway
//! lets go of it).
//! A suffix `@<ms>` delays the answer, e.g. `right@500`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{json, Value};

#[derive(Default)]
pub struct Counters {
    pub calls: AtomicUsize,
    pub completed: AtomicUsize,
    pub cancelled: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

#[derive(Default)]
pub struct MockState {
    by_model: Mutex<HashMap<String, Arc<Counters>>>,
}

impl MockState {
    pub fn counters(&self, model: &str) -> Arc<Counters> {
        self.by_model
            .lock()
            .unwrap()
            .entry(model.to_string())
            .or_default()
            .clone()
    }

    pub fn calls(&self, model: &str) -> usize {
        self.counters(model).calls.load(Ordering::SeqCst)
    }

    pub fn cancelled(&self, model: &str) -> usize {
        self.counters(model).cancelled.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self, model: &str) -> usize {
        self.counters(model).max_in_flight.load(Ordering::SeqCst)
    }
}

/// Counts a request as cancelled if its handler is dropped before it finishes.
struct InFlight {
    c: Arc<Counters>,
    done: bool,
}

impl InFlight {
    fn new(c: Arc<Counters>) -> InFlight {
        c.calls.fetch_add(1, Ordering::SeqCst);
        let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight { c, done: false }
    }

    fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.c.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.done {
            self.c.completed.fetch_add(1, Ordering::SeqCst);
        } else {
            self.c.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

pub struct MockUpstream {
    pub base_url: String,
    pub state: Arc<MockState>,
}

pub async fn start() -> MockUpstream {
    let state = Arc::new(MockState::default());
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(handle))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    MockUpstream {
        base_url: format!("http://{addr}/v1"),
        state,
    }
}

fn text_for(model: &str, prompt: &str, req: &Value) -> String {
    match model {
        "params" => {
            let mut rest = req.as_object().cloned().unwrap_or_default();
            for k in ["model", "messages", "stream", "stream_options"] {
                rest.remove(k);
            }
            Value::Object(rest).to_string()
        }
        "wrong" => "2 + 2 = 5\n#### 5".into(),
        "echo" => format!("echo: {prompt}"),
        _ => "2 + 2 = 4\n#### 4".into(),
    }
}

async fn handle(State(state): State<Arc<MockState>>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
    let full = req["model"].as_str().unwrap_or("").to_string();
    let (model, delay) = match full.split_once('@') {
        Some((m, d)) => (m.to_string(), d.parse().unwrap_or(0)),
        None => (full.clone(), 0u64),
    };
    let counters = state.counters(&full);
    let guard = InFlight::new(counters.clone());
    let calls = counters.calls.load(Ordering::SeqCst);
    let prompt = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let stream = req["stream"].as_bool().unwrap_or(false);
    let response = match model.as_str() {
        "firehose" => {
            let delta = Bytes::from(format!(
                "data: {}\n\n",
                json!({"choices": [{"delta": {"content": "x".repeat(8 << 10)}, "finish_reason": null}]})
            ));
            // The guard lives in the body, which hyper drops when the gateway hangs up.
            let body = futures::stream::unfold(guard, move |guard| {
                let delta = delta.clone();
                async move { Some((Ok::<_, std::io::Error>(delta), guard)) }
            });
            return sse(Body::from_stream(body));
        }
        "hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        "flaky429" if calls <= 2 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response(),
        "flaky503" if calls <= 2 => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
        "bad400" => (StatusCode::BAD_REQUEST, "bad request").into_response(),
        "down" => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
        // Quotes a credential and a path of its own back, as careless upstreams do.
        "leak" => (
            StatusCode::BAD_REQUEST,
            r#"{"error": {"message": "Incorrect API key provided: sk-live-abcdefgh1234 (Authorization: Bearer tok_zyxwvu98765); see /srv/upstream/keys.txt"}}"#,
        )
            .into_response(),
        "malformed" => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{not json",
        )
            .into_response(),
        "broken-stream" | "stall-stream" => {
            let first = Bytes::from("data: {\"choices\":[{\"delta\":{\"content\":\"par\"},\"finish_reason\":null}]}\n\n");
            let stall = model == "stall-stream";
            let body = futures::stream::unfold(0, move |step| {
                let first = first.clone();
                async move {
                    match step {
                        0 => Some((Ok::<_, std::io::Error>(first), 1)),
                        _ if stall => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            None
                        }
                        _ => None,
                    }
                }
            });
            sse(Body::from_stream(body))
        }
        _ => {
            let text = text_for(&model, &prompt, &req);
            let finish = if model == "cut" { "length" } else { "stop" };
            if stream {
                let words: Vec<String> = text.split_inclusive(' ').map(String::from).collect();
                let mut frames: Vec<Result<Bytes, std::io::Error>> = words
                    .iter()
                    .map(|w| {
                        Ok(Bytes::from(format!(
                            "data: {}\n\n",
                            json!({"choices": [{"delta": {"content": w}, "finish_reason": null}]})
                        )))
                    })
                    .collect();
                frames.push(Ok(Bytes::from(format!(
                    "data: {}\n\n",
                    json!({"choices": [{"delta": {}, "finish_reason": finish}]})
                ))));
                frames.push(Ok(Bytes::from(format!(
                    "data: {}\n\n",
                    json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5}})
                ))));
                frames.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
                sse(Body::from_stream(futures::stream::iter(frames)))
            } else {
                axum::Json(json!({
                    "id": "mock",
                    "object": "chat.completion",
                    "model": full,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
                }))
                .into_response()
            }
        }
    };
    guard.finish();
    response
}

fn sse(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    r
}
