//! Entry points of the fuzz targets in `fuzz/` and of the test that replays their corpus
//! on every `cargo test` (`tests/all/fuzz_corpus.rs`). Each takes arbitrary bytes, drives
//! one parser or boundary the way the gateway does, and panics only on a bug: a typed
//! error is the expected answer to a bad input.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::GatewayConfig;
use crate::providers::anthropic::AnthropicEvents;
use crate::providers::openai::{parse_openai_chunk, sse_events};
use crate::providers::replay::{parse_dataset, ReplayConfig, ReplayProvider};
use crate::providers::{ChatRequest, Provider, ProviderError, Sampling, StreamEvent};
use crate::runtime::capability::CallContext;
use crate::runtime::types::{Candidate, Message, PluginConfig, PluginKind, Task};
use crate::runtime::{
    CompileIsolation, Error as RuntimeError, Limits, Plugin, PluginOptions, Runtime, RuntimeConfig,
};

/// One current-thread runtime per fuzzing thread: building one per input costs more than
/// most inputs.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
    }
    RT.with(|rt| rt.block_on(f))
}

/// A chat-completions request: header lines (`name: value`), a blank line, then the body;
/// input without a blank line is all body. Refusals must be typed 4xx errors.
pub fn openai_request(data: &[u8]) {
    let (head, body) = match find(data, b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (&[][..], data),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    match crate::server::prepare("fuzz".into(), &headers, body) {
        Ok(p) => {
            assert!(!p.exec.task.messages.is_empty());
            assert!(p
                .exec
                .budget
                .max_cost_usd
                .is_none_or(crate::pipeline::budget::valid_cost));
        }
        Err(e) => {
            assert!(e.status.is_client_error(), "{} for {e:?}", e.status);
            assert!(!e.code.is_empty());
        }
    }
}

/// An embeddings request body through `server::embeddings::prepare`: refusals must be
/// typed 4xx errors; an accepted request is within the input and dimension caps.
pub fn embeddings_request(data: &[u8]) {
    use crate::providers::embeddings::{MAX_DIMENSIONS, MAX_INPUTS};
    match crate::server::embeddings::prepare(data) {
        Ok(p) => {
            assert!((1..=MAX_INPUTS).contains(&p.call.input.len()));
            assert!(!p.model.is_empty());
            assert!(p
                .call
                .dimensions
                .is_none_or(|d| (1..=MAX_DIMENSIONS as u32).contains(&d)));
        }
        Err(e) => {
            assert!(e.status.is_client_error(), "{} for {e:?}", e.status);
            assert!(!e.code.is_empty());
        }
    }
}

/// An upstream's embeddings reply (the first byte: how many inputs were sent, 1-4),
/// read as the OpenAI provider reads it: one finite vector per input within the caps,
/// or a malformed / too-large error.
pub fn embeddings_reply(data: &[u8]) {
    use crate::providers::embeddings::{parse_embeddings, MAX_DIMENSIONS};
    use crate::providers::{EmbeddingInput, EmbeddingRequest};
    let Some((&n, body)) = data.split_first() else {
        return;
    };
    let inputs = usize::from(n % 4) + 1;
    let request = EmbeddingRequest {
        model: "m".into(),
        input: EmbeddingInput::Texts(vec!["x".into(); inputs]),
        encoding_format: None,
        dimensions: None,
        user: None,
        extra: Default::default(),
        timeout: None,
    };
    match parse_embeddings(body, &request) {
        Ok(r) => {
            assert_eq!(r.vectors.len(), inputs);
            assert!(r.vectors.iter().all(|v| !v.is_empty()
                && v.len() <= MAX_DIMENSIONS
                && v.iter().all(|x| x.is_finite())));
        }
        Err(e) => assert!(
            matches!(
                e.code(),
                "upstream_malformed" | "upstream_response_too_large"
            ),
            "{e}"
        ),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The gateway's TOML configuration, pipelines included, parsed and validated.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = GatewayConfig::parse(text, "fuzz.toml", Path::new("/nonexistent")) {
        assert!(!e.to_string().is_empty());
    }
}

/// A replay dataset read, indexed and asked for every recorded prompt.
pub fn replay_dataset(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(records) = parse_dataset(text, "fuzz.jsonl") else {
        return;
    };
    let asks: Vec<(String, String)> = records
        .iter()
        .take(8)
        .flat_map(|r| {
            r.candidates
                .iter()
                .take(4)
                .map(|c| (c.model.clone(), r.prompt.clone()))
        })
        .collect();
    let config = ReplayConfig {
        dataset: "fuzz.jsonl".into(),
        seed: 0,
        latency: Default::default(),
        default_latency: None,
    };
    let provider = ReplayProvider::from_records(records, config);
    block_on(async {
        for (model, prompt) in asks {
            for sample_index in 0..3 {
                let request = ChatRequest {
                    model: model.clone(),
                    messages: vec![Message::user(&prompt)],
                    sampling: Sampling::default(),
                    n: 1,
                    sample_index,
                    timeout: None,
                };
                let _ = provider.chat(&request).await;
            }
        }
    });
}

/// An upstream's server-sent events, delivered in chunks whose sizes the first byte picks,
/// read as an OpenAI and as an Anthropic stream. Every stream must end, with events or a
/// typed error, and never yield more text than the cap allows.
pub fn sse(data: &[u8]) {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let size = usize::from(size).max(1);
    let chunks: Vec<_> = rest
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    type Parse = Box<dyn FnMut(&str) -> Result<Vec<StreamEvent>, ProviderError> + Send>;
    let mut anthropic = AnthropicEvents::default();
    let parsers: [Parse; 2] = [
        Box::new(parse_openai_chunk),
        Box::new(move |d: &str| anthropic.parse(d)),
    ];
    for parse in parsers {
        let body = futures::stream::iter(chunks.clone()).boxed();
        block_on(async {
            let mut events = sse_events(body, Duration::from_secs(5), parse);
            let mut text = 0usize;
            while let Some(event) = events.next().await {
                match event {
                    Ok(StreamEvent::Delta(d)) => text += d.len(),
                    Ok(_) => {}
                    Err(e) => {
                        assert!(!e.code().is_empty());
                        break;
                    }
                }
            }
            assert!(text <= crate::providers::http::limits::STREAM_TEXT_BYTES);
        });
    }
}

/// A sandbox for loading and calling untrusted components in-process (fuzzing wants no
/// child processes), with the gateway's default limits but a short deadline.
pub struct Sandbox {
    runtime: Runtime,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let config = RuntimeConfig {
            compile: CompileIsolation::InProcess,
            cache_dir: None,
            ..RuntimeConfig::default()
        };
        let runtime = block_on(async { Runtime::new(config) }).expect("a plugin runtime");
        Sandbox { runtime }
    }

    fn options() -> PluginOptions {
        PluginOptions {
            limits: Limits {
                deadline: Duration::from_millis(200),
                memory_bytes: 64 << 20,
                fuel: 100_000_000,
                ..Limits::default()
            },
            ..PluginOptions::default()
        }
    }

    /// Loads any bytes as a component; one that loads as a verifier is called once.
    /// Whatever happens must be a typed error.
    pub fn component(&self, bytes: &[u8]) {
        block_on(async {
            match self.runtime.load(bytes.to_vec(), Self::options()).await {
                Ok(plugin) if plugin.kind() == PluginKind::Verifier => {
                    let _ = call(&plugin, "x", 0).await;
                }
                Ok(_) => {}
                Err(e) => assert!(!e.code().is_empty()),
            }
        });
    }

    /// Loads a verifier whose `verify` returns a memory image of the caller's choice (the
    /// ABI-level liar in `tests/guests/abi-liar.wat`, encoded by the caller).
    pub fn liar(&self, component: Vec<u8>) -> Plugin {
        block_on(self.runtime.load(component, Self::options())).expect("the liar loads")
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

/// The liar returns `data` (after its first byte, which misaligns the return area by
/// 0..8) as the bytes of its `result<verdict, plugin-error>`: the host lifts them with
/// every pointer and discriminant the input holds. An answer or a typed error are both
/// fine; the next call must work.
pub fn plugin_output(liar: &Plugin, data: &[u8]) {
    let Some((&misalign, image)) = data.split_first() else {
        return;
    };
    let image = &image[..image.len().min(8192)];
    let text: String = image.iter().map(|b| format!("{b:02x}")).collect();
    block_on(async {
        match call(liar, &text, u32::from(misalign % 8)).await {
            Ok(_) => {}
            Err(e) => assert!(e.is_call_failure(), "{e:?}"),
        }
    });
}

async fn call(plugin: &Plugin, text: &str, index: u32) -> Result<(), RuntimeError> {
    let candidate = Candidate {
        index,
        model: "m".into(),
        text: text.into(),
        ..Candidate::default()
    };
    plugin
        .verify(
            &PluginConfig::new(),
            &Task::from_prompt("t", "q"),
            &candidate,
            CallContext::default(),
        )
        .await
        .map(|_| ())
}
