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
//! lets go of it), `tools` (calls the request's tools with arguments made from their
//! schemas; after a `tool` message, answers with what the tool said), `tools-bad`
//! (calls them with arguments of the wrong types).
//! With `logprobs: true` every answer carries OpenAI's `logprobs` object.
//! `/v1/messages` speaks Anthropic's Messages API: model `echo-request` answers with
//! the request body it got as JSON text; `tools` calls tools as above.
//! A suffix `@<ms>` delays the answer, e.g. `right@500`.
//! `/v1/embeddings`: `embed` answers each input with a vector of `dimensions` (default
//! 4) values made from the input's length and position ([`embedding_of`]), 3 prompt
//! tokens an input, as floats or base64 as asked; `embed-huge` sends a vector of a
//! million values; `down` fails with 500.
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
        .route("/v1/messages", post(anthropic))
        .route("/v1/embeddings", post(embeddings))
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
        "tools" | "tools-bad" => format!("the tool said: {prompt}"),
        "wrong" => "2 + 2 = 5\n#### 5".into(),
        // Right arithmetic, an answer no other sample gives: the math verifier accepts it.
        "lone" => "3 + 3 = 6\n#### 6".into(),
        // Nine right steps and a wrong one (rejected, score 0.45), with the answer the
        // other samples agree on.
        "slip" => {
            let steps: String = (1..=9).map(|i| format!("1 + {i} = {}\n", i + 1)).collect();
            format!("{steps}2 + 2 = 5\n#### 4")
        }
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
    let answered_tool = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool");
    let response = match model.as_str() {
        "tools" | "tools-bad" if !answered_tool => {
            let calls = tool_calls(&req, model == "tools-bad");
            if stream {
                // Each call in pieces: id and name first, then its arguments in two.
                let mut frames = Vec::new();
                let chunk = |delta: Value, finish: Value| {
                    Ok::<_, std::io::Error>(Bytes::from(format!(
                        "data: {}\n\n",
                        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                    )))
                };
                frames.push(chunk(json!({"role": "assistant", "content": null}), Value::Null));
                for (i, c) in calls.iter().enumerate() {
                    let args = c["function"]["arguments"].as_str().unwrap().to_string();
                    let (a, b) = args.split_at(args.len() / 2);
                    frames.push(chunk(
                        json!({"tool_calls": [{"index": i, "id": c["id"], "type": "function", "function": {"name": c["function"]["name"], "arguments": ""}}]}),
                        Value::Null,
                    ));
                    for piece in [a, b] {
                        frames.push(chunk(
                            json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                            Value::Null,
                        ));
                    }
                }
                frames.push(chunk(json!({}), json!("tool_calls")));
                frames.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
                sse(Body::from_stream(futures::stream::iter(frames)))
            } else {
                let choices: Vec<Value> = (0..req["n"].as_u64().unwrap_or(1))
                    .map(|i| json!({"index": i, "message": {"role": "assistant", "content": null, "tool_calls": calls}, "finish_reason": "tool_calls"}))
                    .collect();
                axum::Json(json!({
                    "id": "mock",
                    "object": "chat.completion",
                    "model": full,
                    "choices": choices,
                    "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
                }))
                .into_response()
            }
        }
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
            let logprobs = req["logprobs"] == true;
            if stream {
                let words: Vec<String> = text.split_inclusive(' ').map(String::from).collect();
                let mut frames: Vec<Result<Bytes, std::io::Error>> = words
                    .iter()
                    .map(|w| {
                        let mut choice = json!({"delta": {"content": w}, "finish_reason": null});
                        if logprobs {
                            choice["logprobs"] = logprobs_of(std::slice::from_ref(w), &req);
                        }
                        Ok(Bytes::from(format!(
                            "data: {}\n\n",
                            json!({"choices": [choice]})
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
                let words: Vec<String> = text.split_inclusive(' ').map(String::from).collect();
                let n = req["n"].as_u64().unwrap_or(1);
                let choices: Vec<Value> = (0..n)
                    .map(|i| {
                        json!({"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                            "logprobs": if logprobs { logprobs_of(&words, &req) } else { Value::Null }})
                    })
                    .collect();
                axum::Json(json!({
                    "id": "mock",
                    "object": "chat.completion",
                    "model": full,
                    "choices": choices,
                    "usage": {"prompt_tokens": 7, "completion_tokens": 5 * n, "total_tokens": 7 + 5 * n},
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

/// Calls of the request's tools: the one `tool_choice` names, else the first, else (with
/// `parallel_tool_calls` not false) the first two. Arguments are made from each tool's
/// schema: strings "Paris", numbers 3, booleans true; `bad` swaps strings and numbers.
fn tool_calls(req: &Value, bad: bool) -> Vec<Value> {
    let tools = req["tools"].as_array().cloned().unwrap_or_default();
    let named = req["tool_choice"]["function"]["name"].as_str();
    let chosen: Vec<&Value> = match named {
        Some(n) => tools
            .iter()
            .filter(|t| t["function"]["name"] == n)
            .collect(),
        None if req["parallel_tool_calls"] == false => tools.iter().take(1).collect(),
        None => tools.iter().take(2).collect(),
    };
    chosen
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let f = &t["function"];
            json!({"id": format!("call_{i}"), "type": "function",
                "function": {"name": f["name"], "arguments": arguments_for(&f["parameters"], bad).to_string()}})
        })
        .collect()
}

pub fn arguments_for(schema: &Value, bad: bool) -> Value {
    let mut args = serde_json::Map::new();
    for (k, p) in schema["properties"].as_object().into_iter().flatten() {
        let v = match (p["type"].as_str(), bad) {
            (Some("string"), false) | (Some("integer" | "number"), true) => json!("Paris"),
            (Some("integer" | "number"), false) | (Some("string"), true) => json!(3),
            (Some("boolean"), _) => json!(true),
            _ => Value::Null,
        };
        args.insert(k.clone(), v);
    }
    Value::Object(args)
}

/// OpenAI's `logprobs` object for `tokens`, with `top_logprobs` alternatives each.
fn logprobs_of(tokens: &[String], req: &Value) -> Value {
    let top = req["top_logprobs"].as_u64().unwrap_or(0) as usize;
    let content: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let alternatives: Vec<Value> = (0..top)
                .map(|i| json!({"token": format!("{t}{i}"), "logprob": -1.0 - i as f64, "bytes": null}))
                .collect();
            json!({"token": t, "logprob": -0.25, "bytes": null, "top_logprobs": alternatives})
        })
        .collect();
    json!({"content": content, "refusal": null})
}

/// Anthropic's Messages API: `echo-request` answers with the body it got; `tools` calls
/// the request's tools (Anthropic's shape: `input_schema`, `tool_use` blocks).
async fn anthropic(body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
    let stream = req["stream"] == true;
    let last_is_result = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_array())
        .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"));
    let content: Vec<Value> = match req["model"].as_str() {
        Some("tools") if !last_is_result => {
            let mut blocks = vec![json!({"type": "text", "text": "Let me look."})];
            for (i, t) in req["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .take(2)
                .enumerate()
            {
                blocks.push(
                    json!({"type": "tool_use", "id": format!("toolu_{i}"), "name": t["name"],
                    "input": arguments_for(&t["input_schema"], false)}),
                );
            }
            blocks
        }
        _ => vec![json!({"type": "text", "text": req.to_string()})],
    };
    let stop = if content.iter().any(|b| b["type"] == "tool_use") {
        "tool_use"
    } else {
        "end_turn"
    };
    if !stream {
        return axum::Json(json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": req["model"],
            "content": content, "stop_reason": stop,
            "usage": {"input_tokens": 11, "output_tokens": 6},
        }))
        .into_response();
    }
    let event = |v: Value| {
        Ok::<_, std::io::Error>(Bytes::from(format!(
            "event: {}\ndata: {v}\n\n",
            v["type"].as_str().unwrap()
        )))
    };
    let mut frames = vec![event(
        json!({"type": "message_start", "message": {"usage": {"input_tokens": 11, "output_tokens": 0}}}),
    )];
    for (i, b) in content.iter().enumerate() {
        if b["type"] == "tool_use" {
            frames.push(event(json!({"type": "content_block_start", "index": i,
                "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}})));
            let args = b["input"].to_string();
            let (x, y) = args.split_at(args.len() / 2);
            for piece in [x, y] {
                frames.push(event(json!({"type": "content_block_delta", "index": i,
                    "delta": {"type": "input_json_delta", "partial_json": piece}})));
            }
        } else {
            frames.push(event(json!({"type": "content_block_start", "index": i,
                "content_block": {"type": "text", "text": ""}})));
            frames.push(event(json!({"type": "content_block_delta", "index": i,
                "delta": {"type": "text_delta", "text": b["text"]}})));
        }
        frames.push(event(json!({"type": "content_block_stop", "index": i})));
    }
    frames.push(event(json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 6}})));
    frames.push(event(json!({"type": "message_stop"})));
    sse(Body::from_stream(futures::stream::iter(frames)))
}

/// The vector `embed` gives the input at `index` of `len` characters (or token ids):
/// multiples of 1/8, exact as `f32` in JSON and base64 alike.
pub fn embedding_of(len: usize, index: usize, dimensions: usize) -> Vec<f32> {
    (0..dimensions)
        .map(|j| ((len + index + j) % 8 + 1) as f32 / 8.0 - 0.5)
        .collect()
}

async fn embeddings(State(state): State<Arc<MockState>>, body: Bytes) -> Response {
    use base64::Engine as _;
    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = req["model"].as_str().unwrap_or("").to_string();
    let guard = InFlight::new(state.counters(&model));
    let lens: Vec<usize> = match &req["input"] {
        Value::String(s) => vec![s.chars().count()],
        Value::Array(items) if items.iter().all(Value::is_number) => vec![items.len()],
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.chars().count(),
                other => other.as_array().map_or(0, Vec::len),
            })
            .collect(),
        _ => vec![],
    };
    let dimensions = req["dimensions"].as_u64().unwrap_or(4) as usize;
    let base64 = req["encoding_format"] == "base64";
    let response = match model.as_str() {
        "down" => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
        "embed-huge" => {
            let zeros = vec!["0"; 1_000_000].join(",");
            let body = format!(
                r#"{{"object":"list","model":"embed-huge","data":[{{"object":"embedding","index":0,"embedding":[{zeros}]}}]}}"#
            );
            ([("content-type", "application/json")], body).into_response()
        }
        _ => {
            let data: Vec<Value> = lens
                .iter()
                .enumerate()
                .map(|(i, &len)| {
                    let v = embedding_of(len, i, dimensions);
                    let embedding = if base64 {
                        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                        json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                    } else {
                        json!(v)
                    };
                    json!({"object": "embedding", "index": i, "embedding": embedding})
                })
                .collect();
            let tokens = 3 * lens.len();
            axum::Json(json!({
                "object": "list",
                "model": model,
                "data": data,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }))
            .into_response()
        }
    };
    guard.finish();
    response
}
