//! OpenAI-compatible chat completions over HTTP: OpenAI, vLLM, Ollama, Together, Groq and
//! anything else speaking `/v1/chat/completions`, JSON or SSE; and their `/v1/embeddings`.

use std::collections::BTreeMap;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION};
use hyper::Uri;

use super::embeddings::{parse_embeddings, EmbeddingRequest, EmbeddingResponse};
use super::http::{endpoint, limits, HttpClient, Response};
use super::retry::RetryPolicy;
use super::{
    estimate_prompt_tokens, estimate_tokens, ChatRequest, ChatResponse, Choice, EventStream,
    Message, Provider, ProviderError, Sampling, StreamEvent, ToolCallDelta, UnknownFields, Usage,
    MAX_TOOL_CALLS,
};
use crate::runtime::types::ToolCall;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Base URL including `/v1`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Environment variable holding the API key (never the key itself in config).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Whole-call timeout when the request's budget does not set a tighter one.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Longest silence allowed between streamed chunks.
    #[serde(default = "default_idle_ms")]
    pub stream_idle_timeout_ms: u64,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Stops calling an upstream that keeps failing, for a while (`breaker.rs`).
    #[serde(default)]
    pub circuit_breaker: super::breaker::BreakerPolicy,
    /// Extra headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request fields the gateway does not know: `refuse` (default) or `forward`.
    #[serde(default)]
    pub unknown_fields: UnknownFields,
    /// The name the upstream takes the answer's token limit by: `max_tokens` (default;
    /// most OpenAI-compatible servers) or `max_completion_tokens` (OpenAI's newer
    /// models refuse `max_tokens`).
    #[serde(default)]
    pub token_limit_param: TokenLimitParam,
}

/// See [`OpenAiConfig::token_limit_param`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenLimitParam {
    #[default]
    MaxTokens,
    MaxCompletionTokens,
}

/// Sent in place of the extra fields when the provider does not forward them.
static NO_FIELDS: BTreeMap<String, serde_json::Value> = BTreeMap::new();

fn default_connect_ms() -> u64 {
    5_000
}

fn default_timeout_ms() -> u64 {
    120_000
}

fn default_idle_ms() -> u64 {
    30_000
}

pub struct OpenAiProvider {
    http: HttpClient,
    /// Parsed once: parsing (with IDNA host checks) on every request cost ~2% of a
    /// pass-through request's CPU, and a bad `base_url` is now a load-time error.
    url: Uri,
    /// `/embeddings` under the same base.
    embeddings_url: Uri,
    /// `Authorization: Bearer …`, built once and marked sensitive (kept out of logs).
    auth: Option<HeaderValue>,
    config: OpenAiConfig,
}

/// The API key from the environment variable `env` names; none when no variable is
/// named (or the name is empty: how a TOML file says "no key", e.g. for a local proxy
/// that takes none, where a provider's default names one).
pub(crate) fn api_key(env: &Option<String>) -> Result<Option<String>, ProviderError> {
    match env {
        None => Ok(None),
        Some(name) if name.is_empty() => Ok(None),
        Some(name) => std::env::var(name).map(Some).map_err(|_| {
            ProviderError::Config(format!(
                "environment variable `{name}` (the API key) is not set"
            ))
        }),
    }
}

/// A header value from a secret, marked sensitive.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| ProviderError::Config("the API key is not a valid header value".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

impl OpenAiProvider {
    pub fn new(config: OpenAiConfig) -> Result<Self, ProviderError> {
        let http = HttpClient::new(
            Duration::from_millis(config.connect_timeout_ms),
            &config.headers,
        )?;
        let url = endpoint(&config.base_url, "/chat/completions")?;
        let embeddings_url = endpoint(&config.base_url, "/embeddings")?;
        let auth = api_key(&config.api_key_env)?
            .map(|k| secret_header(&format!("Bearer {k}")))
            .transpose()?;
        Ok(OpenAiProvider {
            http,
            url,
            embeddings_url,
            auth,
            config,
        })
    }

    fn body<'a>(&self, request: &'a ChatRequest, stream: bool) -> RequestBody<'a> {
        let mut sampling = std::borrow::Cow::Borrowed(&request.sampling);
        let mut max_completion_tokens = None;
        if self.config.token_limit_param == TokenLimitParam::MaxCompletionTokens {
            if let Some(n) = sampling.max_tokens {
                sampling.to_mut().max_tokens = None;
                max_completion_tokens = Some(n);
            }
        }
        RequestBody {
            model: &request.model,
            messages: &request.messages,
            sampling,
            max_completion_tokens,
            extra: match self.config.unknown_fields {
                UnknownFields::Forward => &request.sampling.extra,
                UnknownFields::Refuse => &NO_FIELDS,
            },
            n: (request.n > 1).then_some(request.n),
            stream: stream.then_some(true),
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }

    /// An embeddings request as the API takes it: fields the gateway does not know go
    /// out only when this provider forwards them (the gateway refuses them by name
    /// otherwise, before calling).
    fn embeddings_body<'a>(&self, request: &'a EmbeddingRequest) -> EmbeddingsBody<'a> {
        EmbeddingsBody {
            request,
            extra: match self.config.unknown_fields {
                UnknownFields::Forward => &request.extra,
                UnknownFields::Refuse => &NO_FIELDS,
            },
        }
    }

    /// The caller's time left, within this provider's own timeout.
    fn timeout(&self, caller: Option<Duration>) -> Duration {
        let own = Duration::from_millis(self.config.timeout_ms);
        caller.map_or(own, |t| t.min(own))
    }

    async fn send(
        &self,
        url: &Uri,
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<Response, ProviderError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ProviderError::Config(format!("request body: {e}")))?;
        let headers: &[(HeaderName, HeaderValue)] = match &self.auth {
            Some(a) => &[(AUTHORIZATION, a.clone())],
            None => &[],
        };
        self.http.post_json(url, headers, body, timeout).await
    }
}

/// The request as the API takes it, serialized straight from the borrowed request:
/// no intermediate JSON tree per call, and `f32` temperatures written as typed (a
/// `serde_json::Value` widened 0.7 to 0.699999988079071).
#[derive(Serialize)]
struct RequestBody<'a> {
    model: &'a str,
    messages: &'a [Message],
    /// Every parameter the caller set, as OpenAI names them.
    #[serde(flatten)]
    sampling: std::borrow::Cow<'a, Sampling>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    /// Fields the gateway does not know, passed on as the caller sent them.
    #[serde(flatten)]
    extra: &'a BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize)]
struct EmbeddingsBody<'a> {
    #[serde(flatten)]
    request: &'a EmbeddingRequest,
    #[serde(flatten)]
    extra: &'a BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct CompletionBody {
    #[serde(default)]
    model: Option<String>,
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Option<UsageBody>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    message: ChoiceMessage,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<Value>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Deserialize)]
struct UsageBody {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

/// Parses an OpenAI-shaped completion body (also used for the gateway's own tests).
pub(crate) fn parse_completion(
    bytes: &[u8],
    request: &ChatRequest,
) -> Result<ChatResponse, ProviderError> {
    let body: CompletionBody = serde_json::from_slice(bytes)
        .map_err(|e| ProviderError::Malformed(format!("completion JSON: {e}")))?;
    if body.choices.is_empty() {
        return Err(ProviderError::Malformed("completion has no choices".into()));
    }
    let choices: Vec<Choice> = body
        .choices
        .into_iter()
        .map(|c| Choice {
            tool_calls: c.message.tool_calls.unwrap_or_default(),
            logprobs: c.logprobs.filter(|l| !l.is_null()),
            ..Choice::text(c.message.content.unwrap_or_default(), c.finish_reason)
        })
        .collect();
    let usage = match body.usage {
        Some(u) => Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        },
        None => Usage {
            input_tokens: estimate_prompt_tokens(&request.messages),
            output_tokens: choices
                .iter()
                .map(|c| {
                    estimate_tokens(&c.text)
                        + c.tool_calls
                            .iter()
                            .map(|t| estimate_tokens(&t.arguments))
                            .sum::<u32>()
                })
                .sum(),
        },
    };
    Ok(ChatResponse {
        model: body.model.unwrap_or_else(|| request.model.clone()),
        choices,
        usage,
    })
}

#[async_trait::async_trait]
impl Provider for OpenAiProvider {
    fn unknown_fields(&self) -> UnknownFields {
        self.config.unknown_fields
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let body = self.body(request, false);
        let timeout = self.timeout(request.timeout);
        let body = &body;
        self.config
            .retry
            .run(timeout, |left| async move {
                let bytes = self.send(&self.url, body, left).await?.bytes().await?;
                parse_completion(&bytes, request)
            })
            .await
    }

    fn embeds(&self) -> bool {
        true
    }

    async fn embed(&self, request: &EmbeddingRequest) -> Result<EmbeddingResponse, ProviderError> {
        let timeout = self.timeout(request.timeout);
        let body = &self.embeddings_body(request);
        self.config
            .retry
            .run(timeout, |left| async move {
                let bytes = self
                    .send(&self.embeddings_url, body, left)
                    .await?
                    .bytes_limited(limits::EMBEDDINGS_BODY_BYTES)
                    .await?;
                parse_embeddings(&bytes, request)
            })
            .await
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let body = self.body(request, true);
        let timeout = self.timeout(request.timeout);
        // Only establishing the stream is retried: a half-delivered answer is not.
        let response = self
            .config
            .retry
            .run(timeout, |left| self.send(&self.url, &body, left))
            .await?;
        let idle = Duration::from_millis(self.config.stream_idle_timeout_ms);
        Ok(sse_events(response.into_stream(), idle, parse_openai_chunk))
    }
}

/// Parses one OpenAI stream chunk into events.
pub(crate) fn parse_openai_chunk(data: &str) -> Result<Vec<StreamEvent>, ProviderError> {
    let v: Value = serde_json::from_str(data)
        .map_err(|e| ProviderError::Malformed(format!("stream chunk: {e}")))?;
    let mut events = Vec::new();
    if let Some(choice) = v["choices"].get(0) {
        if let Some(text) = choice["delta"]["content"].as_str() {
            if !text.is_empty() {
                events.push(StreamEvent::Delta(text.to_string()));
            }
        }
        for (i, call) in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let text = |v: &Value| v.as_str().map(str::to_string);
            let index = call["index"].as_u64().unwrap_or(i as u64);
            if index >= MAX_TOOL_CALLS as u64 {
                return Err(ProviderError::Malformed(format!(
                    "tool call index {index}: at most {MAX_TOOL_CALLS} calls in one answer"
                )));
            }
            events.push(StreamEvent::ToolCall(ToolCallDelta {
                index: index as u32,
                id: text(&call["id"]),
                name: text(&call["function"]["name"]),
                arguments: text(&call["function"]["arguments"]).unwrap_or_default(),
            }));
        }
        if let Some(l) = choice.get("logprobs").filter(|l| l.is_object()) {
            events.push(StreamEvent::Logprobs(l.clone()));
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            events.push(StreamEvent::Finish(reason.to_string()));
        }
    } else if !v["choices"].is_array() && v.get("usage").is_none() {
        return Err(ProviderError::Malformed(format!(
            "stream chunk without choices: {}",
            truncate(data)
        )));
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        events.push(StreamEvent::Usage(Usage {
            input_tokens: u["prompt_tokens"].as_u64().unwrap_or(0) as u32,
            output_tokens: u["completion_tokens"].as_u64().unwrap_or(0) as u32,
        }));
    }
    Ok(events)
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Turns an SSE response body into events: every chunk must arrive within `idle`, the stream
/// must end with `[DONE]` (or the provider's own end event, signalled by `parse`
/// returning a `Finish` followed by the connection closing), and malformed chunks are
/// errors, never a hang.
pub(crate) fn sse_events(
    body: BoxStream<'static, Result<bytes::Bytes, ProviderError>>,
    idle: Duration,
    mut parse: impl FnMut(&str) -> Result<Vec<StreamEvent>, ProviderError> + Send + 'static,
) -> EventStream {
    let mut source = bounded_events(body).eventsource();
    let stream = async_stream_events(move |tx| async move {
        let mut finished = false;
        let mut text_bytes = 0usize;
        loop {
            let next = match tokio::time::timeout(idle, source.next()).await {
                Err(_) => {
                    let _ = tx
                        .send(Err(ProviderError::Stream(format!("no data for {idle:?}"))))
                        .await;
                    return;
                }
                Ok(n) => n,
            };
            match next {
                None => {
                    if !finished {
                        let _ = tx
                            .send(Err(ProviderError::Stream(
                                "stream ended before it finished".into(),
                            )))
                            .await;
                    }
                    return;
                }
                Some(Err(eventsource_stream::EventStreamError::Transport(
                    e @ ProviderError::TooLarge(_),
                ))) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                Some(Err(e)) => {
                    let _ = tx.send(Err(ProviderError::Stream(e.to_string()))).await;
                    return;
                }
                Some(Ok(event)) => {
                    if event.data.trim() == "[DONE]" {
                        return;
                    }
                    if event.event == "message_stop" {
                        return;
                    }
                    match parse(&event.data) {
                        Ok(events) => {
                            for e in events {
                                finished |= matches!(e, StreamEvent::Finish(_));
                                // Text and tool calls are what the gateway keeps of a
                                // streamed answer (log-probabilities are passed on only).
                                let kept = match &e {
                                    StreamEvent::Delta(d) => d.len(),
                                    StreamEvent::ToolCall(t) => {
                                        t.arguments.len()
                                            + t.name.as_ref().map_or(0, String::len)
                                            + t.id.as_ref().map_or(0, String::len)
                                    }
                                    _ => 0,
                                };
                                if kept > 0 {
                                    text_bytes += kept;
                                    if text_bytes > limits::STREAM_TEXT_BYTES {
                                        let e = ProviderError::TooLarge(format!(
                                            "the streamed answer exceeds {} bytes",
                                            limits::STREAM_TEXT_BYTES
                                        ));
                                        let _ = tx.send(Err(e)).await;
                                        return;
                                    }
                                }
                                if tx.send(Ok(e)).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
            }
        }
    });
    Box::pin(stream)
}

/// Refuses a server-sent event longer than [`limits::SSE_EVENT_BYTES`] while its bytes
/// arrive: the SSE parser would otherwise buffer it whole, waiting for its blank line.
fn bounded_events(
    bytes: futures::stream::BoxStream<'static, Result<bytes::Bytes, ProviderError>>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, ProviderError>> + Send {
    let (mut since_blank, mut after_newline) = (0usize, false);
    bytes.map(move |chunk| {
        let chunk = chunk?;
        for &b in chunk.iter() {
            match b {
                b'\n' if after_newline => since_blank = 0,
                b'\n' => after_newline = true,
                b'\r' => {}
                _ => after_newline = false,
            }
            since_blank += 1;
        }
        if since_blank > limits::SSE_EVENT_BYTES {
            return Err(ProviderError::TooLarge(format!(
                "a stream event exceeds {} bytes",
                limits::SSE_EVENT_BYTES
            )));
        }
        Ok(chunk)
    })
}

/// A stream fed by a producer task through a small channel; dropping the stream stops
/// the producer (and with it the upstream connection).
pub(crate) fn async_stream_events<F, Fut>(
    producer: F,
) -> impl futures::Stream<Item = Result<StreamEvent, ProviderError>> + Send
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<StreamEvent, ProviderError>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let task = tokio::spawn(producer(tx));
    let abort = AbortOnDrop(task);
    tokio_stream::wrappers::ReceiverStream::new(rx).map(move |item| {
        let _keep = &abort;
        item
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream over a local server that sends `body` as one SSE response.
    async fn stream_of(body: Vec<u8>) -> Vec<Result<StreamEvent, ProviderError>> {
        let mut reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        reply.extend(body);
        let uri = super::super::http::tests::serve_bytes(reply).await;
        let client = HttpClient::new(Duration::from_secs(2), &BTreeMap::new()).unwrap();
        let response = client
            .post_json(&uri, &[], b"{}".to_vec(), Duration::from_secs(20))
            .await
            .unwrap();
        sse_events(
            response.into_stream(),
            Duration::from_secs(10),
            parse_openai_chunk,
        )
        .collect()
        .await
    }

    fn chunk(text: &str) -> String {
        let v = serde_json::json!({"choices": [{"delta": {"content": text}}]});
        format!("data: {v}\n\n")
    }

    #[tokio::test]
    async fn an_oversized_stream_event_is_refused_while_it_arrives() {
        let mut body = b"data: ".to_vec();
        body.resize(limits::SSE_EVENT_BYTES + 100, b'x');
        let items = stream_of(body).await;
        let last = items.last().unwrap();
        assert!(matches!(last, Err(ProviderError::TooLarge(_))), "{last:?}");
    }

    #[tokio::test]
    async fn a_streamed_answer_is_capped_in_total() {
        // Each event is small; together they exceed what one answer may hold.
        let piece = "y".repeat(64 << 10);
        let n = limits::STREAM_TEXT_BYTES / piece.len() + 2;
        let mut body = String::new();
        for _ in 0..n {
            body.push_str(&chunk(&piece));
        }
        let items = stream_of(body.into_bytes()).await;
        let deltas = items
            .iter()
            .filter(|i| matches!(i, Ok(StreamEvent::Delta(_))))
            .count();
        assert_eq!(deltas, limits::STREAM_TEXT_BYTES / piece.len());
        let last = items.last().unwrap();
        assert!(matches!(last, Err(ProviderError::TooLarge(_))), "{last:?}");
        // Many small events in one read are counted one by one, not as one event.
        let mut ok = chunk("a").repeat(3);
        ok.push_str("data: [DONE]\n\n");
        let items = stream_of(ok.into_bytes()).await;
        assert_eq!(items.len(), 3, "{items:?}");
    }

    #[test]
    fn parses_completions_and_chunks() {
        let req = ChatRequest {
            model: "m".into(),
            ..Default::default()
        };
        let body = br#"{"model":"m-1","choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        let r = parse_completion(body, &req).unwrap();
        assert_eq!(r.choices[0].text, "hi");
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 3,
                output_tokens: 1
            }
        );
        assert!(matches!(
            parse_completion(b"{not json", &req),
            Err(ProviderError::Malformed(_))
        ));
        assert!(matches!(
            parse_completion(br#"{"choices":[]}"#, &req),
            Err(ProviderError::Malformed(_))
        ));
        let ev =
            parse_openai_chunk(r#"{"choices":[{"delta":{"content":"a"},"finish_reason":null}]}"#)
                .unwrap();
        assert_eq!(ev, vec![StreamEvent::Delta("a".into())]);
        let ev = parse_openai_chunk(
            r#"{"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":5}}"#,
        )
        .unwrap();
        assert_eq!(
            ev,
            vec![StreamEvent::Usage(Usage {
                input_tokens: 2,
                output_tokens: 5
            })]
        );
        assert!(parse_openai_chunk("garbage").is_err());
    }

    #[test]
    fn request_bodies_carry_only_what_is_set() {
        let config = serde_json::json!({"base_url": "http://127.0.0.1:9/v1"});
        let provider = OpenAiProvider::new(serde_json::from_value(config).unwrap()).unwrap();
        let mut request = ChatRequest {
            model: "m".into(),
            messages: vec![Message::user("hi")],
            ..Default::default()
        };
        let json =
            |r: &ChatRequest, stream| serde_json::to_string(&provider.body(r, stream)).unwrap();
        assert_eq!(
            json(&request, false),
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
        );
        request.sampling.max_tokens = Some(16);
        request.sampling.temperature = Some(0.7);
        request.n = 3;
        assert_eq!(
            json(&request, true),
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":16,"temperature":0.7,"n":3,"stream":true,"stream_options":{"include_usage":true}}"#
        );
        request.n = 1;
        request.sampling = serde_json::from_value(serde_json::json!({
            "top_p": 0.9, "stop": "END", "seed": 7, "presence_penalty": 0.5,
            "frequency_penalty": -0.5, "logit_bias": {"42": -100}, "user": "u-1",
            "response_format": {"type": "json_object"},
        }))
        .unwrap();
        assert_eq!(
            json(&request, false),
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"top_p":0.9,"stop":["END"],"seed":7,"presence_penalty":0.5,"frequency_penalty":-0.5,"logit_bias":{"42":-100.0},"response_format":{"type":"json_object"},"user":"u-1"}"#
        );

        // Fields the gateway does not know go only to a provider set to forward them;
        // the token limit goes by the name the provider takes.
        request.sampling = Sampling {
            max_tokens: Some(9),
            extra: [("top_k".to_string(), serde_json::json!(3))].into(),
            ..Default::default()
        };
        assert_eq!(
            json(&request, false),
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":9}"#
        );
        let config = serde_json::json!({
            "base_url": "http://127.0.0.1:9/v1",
            "unknown_fields": "forward",
            "token_limit_param": "max_completion_tokens",
        });
        let forwarding = OpenAiProvider::new(serde_json::from_value(config).unwrap()).unwrap();
        assert_eq!(
            serde_json::to_string(&forwarding.body(&request, false)).unwrap(),
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":9,"top_k":3}"#
        );

        // Embeddings: what the caller set, unknown fields only where forwarded.
        let embed = EmbeddingRequest {
            model: "e".into(),
            input: crate::providers::EmbeddingInput::Texts(vec!["a".into()]),
            encoding_format: Some(crate::providers::EncodingFormat::Base64),
            dimensions: Some(8),
            user: None,
            extra: [("top_k".to_string(), serde_json::json!(3))].into(),
            timeout: None,
        };
        let json = |p: &OpenAiProvider| serde_json::to_string(&p.embeddings_body(&embed)).unwrap();
        assert_eq!(
            json(&provider),
            r#"{"model":"e","input":["a"],"encoding_format":"base64","dimensions":8}"#
        );
        assert_eq!(
            json(&forwarding),
            r#"{"model":"e","input":["a"],"encoding_format":"base64","dimensions":8,"top_k":3}"#
        );
    }
}
