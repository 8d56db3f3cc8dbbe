//! Fault-injection soak (issue: hold under hostile tenants, plugins and upstreams).
//!
//! `soak upstream --listen ADDR`: an OpenAI-compatible upstream that fails on purpose:
//! 5xx bursts (every 30 s, for 3 s, everything is a 500), and per request at random:
//! 503s, 429s with absurd `Retry-After` values, malformed JSON, oversized bodies and
//! stream events, connections reset mid-body, stalls, slow answers; the rest answer.
//!
//! `soak load --url URL --key KEY --pid PID --seconds N --concurrency C`: C clients send
//! a mix of JSON and streamed requests (pass-through, verified, raced, hostile-plugin
//! pipelines; some streams abandoned after their first chunk) with a deadline each, for
//! N seconds; then every answer's trace is looked up, and a JSON report is printed:
//! outcomes by status and error code, requests late by more than 1 s past their deadline,
//! missing traces, and the gateway's peak RSS (`VmHWM` of PID).
//!
//! Run by `bench/soak/run.sh`; results in BENCHMARKS.md.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::{Parser, Subcommand};
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Upstream {
        #[arg(long)]
        listen: String,
    },
    Load {
        #[arg(long)]
        url: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Deadline each request asks for (`x-arbiter-deadline-ms`).
        #[arg(long, default_value_t = 3000)]
        deadline_ms: u64,
    },
}

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Command::Upstream { listen } => upstream(&listen).await,
        Command::Load {
            url,
            key,
            pid,
            seconds,
            concurrency,
            deadline_ms,
        } => load(url, key, pid, seconds, concurrency, deadline_ms).await,
    }
}

// ------------------------------------------------------------------ the upstream

struct Upstream {
    started: Instant,
    /// 17 MiB: past the gateway's 16 MiB cap on a response body.
    oversized: Bytes,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

async fn upstream(listen: &str) {
    let state = Arc::new(Upstream {
        started: Instant::now(),
        oversized: Bytes::from(vec![b' '; 17 << 20]),
        counts: Mutex::new(BTreeMap::new()),
    });
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(answer))
        .route(
            "/counts",
            axum::routing::get(|State(s): State<Arc<Upstream>>| async move {
                axum::Json(json!(*s.counts.lock().unwrap()))
            }),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}

const RETRY_AFTER: &[&str] = &[
    "99999999999999999999999",
    "-5",
    "1.5",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "soon",
    "",
    "0",
    "3600",
];

async fn answer(State(s): State<Arc<Upstream>>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
    let stream = req["stream"].as_bool().unwrap_or(false);
    let model = req["model"].as_str().unwrap_or("").to_string();
    let mut rng = rand::rngs::StdRng::from_os_rng();
    // `steady` always answers: what its pipelines test is the plugin, not the upstream.
    let burst = s.started.elapsed().as_secs() % 30 < 3;
    let fault = if model == "steady" {
        "ok"
    } else if burst {
        "burst500"
    } else {
        match rng.random_range(0..100) {
            0..8 => "503",
            8..13 => "429",
            13..18 => "malformed",
            18..21 => "oversized",
            21..26 => "reset",
            26..30 => "stall",
            30..36 => "slow",
            _ => "ok",
        }
    };
    *s.counts.lock().unwrap().entry(fault).or_default() += 1;
    let text = "2 + 2 = 4\n#### 4";
    match fault {
        "burst500" => (StatusCode::INTERNAL_SERVER_ERROR, "burst").into_response(),
        "503" => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
        "429" => {
            let value = RETRY_AFTER[rng.random_range(0..RETRY_AFTER.len())];
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", value)],
                "slow down",
            )
                .into_response()
        }
        "malformed" if stream => sse(Body::from(
            "data: {\"choices\":[{\"delta\":{\"content\":\"2 +\"}}]}\n\ndata: {not json\n\n",
        )),
        "malformed" => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"choices\": [{\"message\": ",
        )
            .into_response(),
        // One endless event for a stream (no blank line: the SSE parser would buffer it).
        "oversized" if stream => {
            let mut event = b"data: ".to_vec();
            event.extend(s.oversized.iter().take(2 << 20));
            sse(Body::from(event))
        }
        "oversized" => (
            StatusCode::OK,
            [("content-type", "application/json")],
            s.oversized.clone(),
        )
            .into_response(),
        "reset" => {
            // Part of the body, then the connection is torn down.
            let first = if stream {
                Bytes::from("data: {\"choices\":[{\"delta\":{\"content\":\"2 + \"}}]}\n\n")
            } else {
                Bytes::from("{\"choices\": [")
            };
            let body = futures::stream::iter([
                Ok(first),
                Err(std::io::Error::other("reset by the soak upstream")),
            ]);
            let mut r = Response::new(Body::from_stream(body));
            if stream {
                r.headers_mut()
                    .insert("content-type", "text/event-stream".parse().unwrap());
            }
            r
        }
        "stall" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        _ => {
            if fault == "slow" {
                tokio::time::sleep(Duration::from_millis(rng.random_range(500..2500))).await;
            } else {
                tokio::time::sleep(Duration::from_millis(rng.random_range(2..40))).await;
            }
            if stream {
                let mut frames = String::new();
                for w in text.split_inclusive(' ') {
                    frames.push_str(&format!(
                        "data: {}\n\n",
                        json!({"choices": [{"delta": {"content": w}, "finish_reason": null}]})
                    ));
                }
                frames.push_str(&format!(
                    "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
                    json!({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
                    json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 7}})
                ));
                sse(Body::from(frames))
            } else {
                axum::Json(json!({
                    "id": "soak", "object": "chat.completion", "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
                }))
                .into_response()
            }
        }
    }
}

fn sse(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    r
}

// ------------------------------------------------------------------ the load

/// Targets and their weights: pass-through and verified pipelines over the failing
/// upstream, and pipelines whose verifier is a hostile guest (over `steady`).
const MIX: &[(&str, u32)] = &[
    ("chaos", 20),
    ("verified", 20),
    ("raced", 10),
    ("cascade", 10),
    ("hostile-spin", 5),
    ("hostile-membomb", 5),
    ("hostile-log-flood", 5),
    ("hostile-huge-output", 5),
    ("hostile-panic", 5),
    ("hostile-wasi-flood", 5),
    ("hostile-recurse", 5),
    ("steady", 5),
];

#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<String, u64>,
    late: Vec<String>,
    traces: Vec<String>,
    max_ms: u64,
}

async fn load(
    url: String,
    key: String,
    pid: u32,
    seconds: u64,
    concurrency: usize,
    deadline_ms: u64,
) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_millis(deadline_ms + 30_000))
        .build()
        .unwrap();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let sent = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(seconds);
    let rss_peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let rss_peak = rss_peak.clone();
        async move {
            loop {
                if let Some(kib) = status_kib(pid, "VmRSS:") {
                    rss_peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (http, url, key, tally, sent) = (
                http.clone(),
                url.clone(),
                key.clone(),
                tally.clone(),
                sent.clone(),
            );
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
                let total: u32 = MIX.iter().map(|(_, w)| w).sum();
                while Instant::now() < end {
                    let mut pick = rng.random_range(0..total);
                    let target = MIX
                        .iter()
                        .find(|(_, w)| {
                            let hit = pick < *w;
                            pick = pick.saturating_sub(*w);
                            hit
                        })
                        .unwrap()
                        .0;
                    let stream = rng.random_bool(0.4);
                    let abandon = stream && rng.random_bool(0.1);
                    sent.fetch_add(1, Ordering::Relaxed);
                    let t0 = Instant::now();
                    let (outcome, trace) =
                        one(&http, &url, &key, target, stream, abandon, deadline_ms).await;
                    let ms = t0.elapsed().as_millis() as u64;
                    let mut t = tally.lock().unwrap();
                    t.max_ms = t.max_ms.max(ms);
                    if ms > deadline_ms + 1000 {
                        t.late
                            .push(format!("{target} stream={stream}: {ms} ms, {outcome}"));
                    }
                    *t.outcomes
                        .entry(format!(
                            "{}{}",
                            if stream { "stream " } else { "json " },
                            outcome
                        ))
                        .or_default() += 1;
                    t.traces.extend(trace);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    sampler.abort();
    // Traces are committed in batches (`trace_batch_ms`): give the last ones time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let traces = std::mem::take(&mut tally.lock().unwrap().traces);
    let checked = traces.len();
    let missing: Vec<String> = futures::stream::iter(traces)
        .map(|id| {
            let (http, url, key) = (http.clone(), url.clone(), key.clone());
            async move {
                let r = http
                    .get(format!("{url}/v1/traces/{id}"))
                    .bearer_auth(&key)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => None,
                    _ => Some(id),
                }
            }
        })
        .buffer_unordered(16)
        .filter_map(|m| async move { m })
        .collect()
        .await;
    let t = tally.lock().unwrap();
    let requests = sent.load(Ordering::Relaxed);
    let report = json!({
        "seconds": elapsed.as_secs_f64(),
        "concurrency": concurrency,
        "deadline_ms": deadline_ms,
        "requests": requests,
        "requests_per_second": requests as f64 / elapsed.as_secs_f64(),
        "outcomes": t.outcomes,
        "late_by_more_than_1s": t.late.len(),
        "late_examples": t.late.iter().take(10).collect::<Vec<_>>(),
        "slowest_ms": t.max_ms,
        "traces_checked": checked,
        "traces_missing": missing.len(),
        "traces_missing_examples": missing.iter().take(10).collect::<Vec<_>>(),
        "gateway_peak_rss_mib": status_kib(pid, "VmHWM:").unwrap_or(0) / 1024,
        "gateway_sampled_peak_rss_mib": rss_peak.load(Ordering::Relaxed) / 1024,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

/// One request; its outcome (`200`, or `<status> <error code>`, or how the transport
/// failed) and the trace id the answer names, if any.
async fn one(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    target: &str,
    stream: bool,
    abandon: bool,
    deadline_ms: u64,
) -> (String, Option<String>) {
    let body = json!({
        "model": target,
        "stream": stream,
        "messages": [{"role": "user", "content": "What is 2 + 2?"}],
    });
    let response = http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-arbiter-deadline-ms", deadline_ms.to_string())
        .json(&body)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => return (format!("transport error: {}", kind(&e)), None),
    };
    let status = response.status().as_u16();
    if abandon && status == 200 {
        let mut chunks = response.bytes_stream();
        let _ = chunks.next().await;
        return ("200 abandoned after the first chunk".into(), None);
    }
    let text = match response.text().await {
        Ok(t) => t,
        Err(e) => return (format!("{status} body error: {}", kind(&e)), None),
    };
    let trace = trace_id(&text);
    // A stream that started (200) may still end with an error event.
    let code = error_code(&text);
    let outcome = match code {
        Some(code) => format!("{status} {code}"),
        None => status.to_string(),
    };
    (outcome, trace)
}

fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "other"
    }
}

fn error_code(text: &str) -> Option<String> {
    let at = text.find("\"error\"")?;
    let rest = &text[at..];
    let code = rest.find("\"code\":\"").map(|i| &rest[i + 8..])?;
    Some(code[..code.find('"')?].to_string())
}

fn trace_id(text: &str) -> Option<String> {
    if let Some(i) = text.find("\"trace_id\":\"") {
        let rest = &text[i + 12..];
        return Some(rest[..rest.find('"')?].to_string());
    }
    let i = text.rfind("(trace ")?;
    let rest = &text[i + 7..];
    Some(rest[..rest.find(')')?].to_string())
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
