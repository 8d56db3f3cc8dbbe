//! Anthropic Messages API, mapped to the same request and response types.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use hyper::header::{HeaderName, HeaderValue};
use hyper::Uri;

use super::http::{endpoint, HttpClient, Response};
use super::openai::{api_key, secret_header, sse_events};
use super::retry::RetryPolicy;
use super::{
    ChatRequest, ChatResponse, Choice, EventStream, Provider, ProviderError, StreamEvent,
    ToolCallDelta, UnknownFields, Usage, MAX_TOOL_CALLS,
};
use crate::runtime::types::{Message, ToolCall};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicConfig {
    #[serde(default = "default_base")]
    pub base_url: String,
    #[serde(default = "default_key_env")]
    pub api_key_env: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    /// Anthropic requires `max_tokens`; used when the request sets none.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u32,
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_idle_ms")]
    pub stream_idle_timeout_ms: u64,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Stops calling an upstream that keeps failing, for a while (`breaker.rs`).
    #[serde(default)]
    pub circuit_breaker: super::breaker::BreakerPolicy,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request fields the gateway does not know: `refuse` (default) or `forward` (added
    /// to the Messages API body as sent, e.g. `top_k`; never over a field set here).
    #[serde(default)]
    pub unknown_fields: UnknownFields,
}

fn default_base() -> String {
    "https://api.anthropic.com".into()
}
fn default_key_env() -> Option<String> {
    Some("ANTHROPIC_API_KEY".into())
}
fn default_version() -> String {
    "2023-06-01".into()
}
fn default_max_tokens() -> u32 {
    1024
}
fn default_connect_ms() -> u64 {
    5_000
}
fn default_timeout_ms() -> u64 {
    120_000
}
fn default_idle_ms() -> u64 {
    30_000
}

pub struct AnthropicProvider {
    http: HttpClient,
    /// Parsed once: a bad `base_url` is a load-time error.
    url: Uri,
    /// `anthropic-version` and, when configured, `x-api-key` (marked sensitive).
    headers: Vec<(HeaderName, HeaderValue)>,
    config: AnthropicConfig,
}

impl AnthropicProvider {
    pub fn new(config: AnthropicConfig) -> Result<Self, ProviderError> {
        let http = HttpClient::new(
            Duration::from_millis(config.connect_timeout_ms),
            &config.headers,
        )?;
        let url = endpoint(&config.base_url, "/v1/messages")?;
        let version = HeaderValue::from_str(&config.version).map_err(|_| {
            ProviderError::Config(format!("version `{}`: not a header value", config.version))
        })?;
        let mut headers = vec![(HeaderName::from_static("anthropic-version"), version)];
        if let Some(key) = api_key(&config.api_key_env)? {
            headers.push((HeaderName::from_static("x-api-key"), secret_header(&key)?));
        }
        Ok(AnthropicProvider {
            http,
            url,
            headers,
            config,
        })
    }

    /// System messages become the top-level `system` field; the rest keep their roles.
    /// OpenAI's sampling parameters map to Anthropic's where it has them (`top_p`,
    /// `stop` as `stop_sequences`, `user` as `metadata.user_id`); `seed` is dropped, as
    /// OpenAI itself treats it as best effort. Penalties, `logit_bias`, structured
    /// output and log-probabilities have no counterpart, so a request for them is
    /// refused rather than answered as if they had been applied. Tools map to Anthropic's
    /// tool use (`tools`, `tool_choice`, assistant `tool_use` blocks, `tool` messages as
    /// `tool_result` blocks).
    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Value, ProviderError> {
        let sampling = &request.sampling;
        let unsupported = [
            ("presence_penalty", sampling.presence_penalty.is_some()),
            ("frequency_penalty", sampling.frequency_penalty.is_some()),
            ("logit_bias", sampling.logit_bias.is_some()),
            ("response_format", sampling.wants_structured_output()),
            ("logprobs", sampling.logprobs == Some(true)),
            ("top_logprobs", sampling.top_logprobs.is_some_and(|n| n > 0)),
        ];
        if let Some((name, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(ProviderError::Unsupported(format!(
                "`{name}` is not supported by the Anthropic Messages API (model `{}`)",
                request.model
            )));
        }
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == "system")
            .map(|m| m.content.as_str())
            .collect();
        let messages = request
            .messages
            .iter()
            .filter(|m| m.role != "system")
            .map(message)
            .collect::<Result<Vec<Value>, _>>()?;
        let mut body = json!({
            "model": request.model,
            "max_tokens": sampling.max_tokens.unwrap_or(self.config.default_max_tokens),
            "messages": messages,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if let Some(t) = sampling.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = sampling.top_p {
            body["top_p"] = json!(p);
        }
        if !sampling.stop.is_empty() {
            body["stop_sequences"] = json!(sampling.stop);
        }
        if let Some(user) = &sampling.user {
            body["metadata"] = json!({ "user_id": user });
        }
        if let Some(tools) = sampling.tools.as_deref().filter(|t| !t.is_empty()) {
            body["tools"] = tools
                .iter()
                .filter_map(|t| {
                    let f = t.get("function")?;
                    let mut tool = json!({
                        "name": f.get("name")?,
                        "input_schema": f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"})),
                    });
                    if let Some(d) = f.get("description") {
                        tool["description"] = d.clone();
                    }
                    Some(tool)
                })
                .collect();
        }
        if let Some(choice) = tool_choice(sampling) {
            body["tool_choice"] = choice;
        }
        if stream {
            body["stream"] = json!(true);
        }
        if self.config.unknown_fields == UnknownFields::Forward {
            if let Some(fields) = body.as_object_mut() {
                for (k, v) in &sampling.extra {
                    fields.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        Ok(body)
    }

    fn timeout(&self, request: &ChatRequest) -> Duration {
        let own = Duration::from_millis(self.config.timeout_ms);
        request.timeout.map_or(own, |t| t.min(own))
    }

    async fn send(&self, body: &Value, timeout: Duration) -> Result<Response, ProviderError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ProviderError::Config(format!("request body: {e}")))?;
        self.http
            .post_json(&self.url, &self.headers, body, timeout)
            .await
    }

    async fn one(&self, request: &ChatRequest) -> Result<(Choice, Usage, String), ProviderError> {
        let body = self.body(request, false)?;
        let timeout = self.timeout(request);
        let body = &body;
        self.config
            .retry
            .run(timeout, |left| async move {
                let bytes = self.send(body, left).await?.bytes().await?;
                parse_message(&bytes)
            })
            .await
    }
}

/// One message in the Messages API's shape: plain text as a string; an assistant's tool
/// calls as `tool_use` blocks after its text; a `tool` message as a user turn holding a
/// `tool_result` block (Anthropic combines consecutive user turns).
fn message(m: &Message) -> Result<Value, ProviderError> {
    if m.role == "tool" {
        let id = m.tool_call_id.as_deref().ok_or_else(|| {
            ProviderError::Unsupported("a `tool` message needs `tool_call_id`".into())
        })?;
        return Ok(json!({
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": id, "content": m.content}],
        }));
    }
    let role = if m.role == "assistant" {
        "assistant"
    } else {
        "user"
    };
    if m.tool_calls.is_empty() {
        return Ok(json!({ "role": role, "content": m.content }));
    }
    let mut blocks = Vec::with_capacity(m.tool_calls.len() + 1);
    if !m.content.is_empty() {
        blocks.push(json!({"type": "text", "text": m.content}));
    }
    for call in &m.tool_calls {
        // Anthropic takes the arguments as a JSON object, not as text.
        let input: Value = match call.arguments.trim() {
            "" => json!({}),
            args => serde_json::from_str(args).map_err(|_| {
                ProviderError::Unsupported(format!(
                    "the arguments of tool call `{}` are not JSON, which the Anthropic Messages API needs",
                    call.id
                ))
            })?,
        };
        blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
    }
    Ok(json!({ "role": role, "content": blocks }))
}

/// OpenAI's `tool_choice` and `parallel_tool_calls` as Anthropic's `tool_choice`.
fn tool_choice(sampling: &super::Sampling) -> Option<Value> {
    let mut choice = match &sampling.tool_choice {
        None => json!({"type": "auto"}),
        Some(Value::String(c)) => match c.as_str() {
            "none" => json!({"type": "none"}),
            "required" => json!({"type": "any"}),
            _ => json!({"type": "auto"}),
        },
        Some(c) => json!({"type": "tool", "name": c.pointer("/function/name")?}),
    };
    match sampling.parallel_tool_calls {
        Some(false) if choice["type"] != "none" => {
            choice["disable_parallel_tool_use"] = json!(true);
        }
        _ if sampling.tool_choice.is_none() => return None,
        _ => {}
    }
    Some(choice)
}

/// Anthropic's stop reasons in OpenAI's words, which is what clients of this API check.
fn finish_reason(stop_reason: &str) -> String {
    match stop_reason {
        "end_turn" | "stop_sequence" | "pause_turn" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        other => other,
    }
    .to_string()
}

#[derive(Deserialize)]
struct MessageBody {
    #[serde(default)]
    model: String,
    content: Vec<ContentBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    usage: UsageBody,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    /// `tool_use` blocks.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize)]
struct UsageBody {
    #[serde(default)]
    input_tokens: u32,
    #[serde(default)]
    output_tokens: u32,
}

fn parse_message(bytes: &[u8]) -> Result<(Choice, Usage, String), ProviderError> {
    let body: MessageBody = serde_json::from_slice(bytes)
        .map_err(|e| ProviderError::Malformed(format!("message JSON: {e}")))?;
    let text: String = body
        .content
        .iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text.as_deref())
        .collect();
    let usage = Usage {
        input_tokens: body.usage.input_tokens,
        output_tokens: body.usage.output_tokens,
    };
    let tool_calls = body
        .content
        .into_iter()
        .filter(|b| b.kind == "tool_use")
        .map(|b| ToolCall {
            id: b.id.unwrap_or_default(),
            name: b.name.unwrap_or_default(),
            arguments: b.input.unwrap_or_else(|| json!({})).to_string(),
        })
        .collect();
    Ok((
        Choice {
            tool_calls,
            ..Choice::text(text, body.stop_reason.as_deref().map(finish_reason))
        },
        usage,
        body.model,
    ))
}

/// Reads the Messages API's stream events. Content blocks are numbered across text and
/// tool use, OpenAI's tool calls among tool calls only: the blocks seen to be tool calls
/// are remembered to number their pieces.
#[derive(Default)]
pub(crate) struct AnthropicEvents {
    /// The content block index of each tool call so far, in order.
    tool_blocks: Vec<u64>,
}

impl AnthropicEvents {
    pub(crate) fn parse(&mut self, data: &str) -> Result<Vec<StreamEvent>, ProviderError> {
        let v: Value = serde_json::from_str(data)
            .map_err(|e| ProviderError::Malformed(format!("stream event: {e}")))?;
        let block = v["index"].as_u64();
        Ok(match v["type"].as_str() {
            Some("message_start") => vec![StreamEvent::Usage(Usage {
                input_tokens: v["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0) as u32,
                output_tokens: 0,
            })],
            Some("content_block_start") if v["content_block"]["type"] == "tool_use" => {
                if self.tool_blocks.len() >= MAX_TOOL_CALLS {
                    return Err(ProviderError::Malformed(format!(
                        "more than {MAX_TOOL_CALLS} tool calls in one answer"
                    )));
                }
                self.tool_blocks.push(block.unwrap_or(u64::MAX));
                let text = |k: &str| v["content_block"][k].as_str().map(str::to_string);
                vec![StreamEvent::ToolCall(ToolCallDelta {
                    index: self.tool_blocks.len() as u32 - 1,
                    id: text("id"),
                    name: text("name"),
                    arguments: String::new(),
                })]
            }
            Some("content_block_delta") => match v["delta"]["type"].as_str() {
                Some("input_json_delta") => {
                    let Some(index) = self.tool_blocks.iter().position(|b| Some(*b) == block)
                    else {
                        return Err(ProviderError::Malformed(
                            "tool input for a block that is not a tool call".into(),
                        ));
                    };
                    vec![StreamEvent::ToolCall(ToolCallDelta {
                        index: index as u32,
                        arguments: v["delta"]["partial_json"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        ..ToolCallDelta::default()
                    })]
                }
                _ => v["delta"]["text"]
                    .as_str()
                    .map(|t| vec![StreamEvent::Delta(t.into())])
                    .unwrap_or_default(),
            },
            Some("message_delta") => {
                let mut out = vec![StreamEvent::Usage(Usage {
                    input_tokens: 0,
                    output_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0) as u32,
                })];
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    out.push(StreamEvent::Finish(finish_reason(r)));
                }
                out
            }
            Some("error") => {
                return Err(ProviderError::Stream(
                    v["error"]["message"]
                        .as_str()
                        .unwrap_or("error event")
                        .into(),
                ))
            }
            _ => vec![],
        })
    }
}

#[async_trait::async_trait]
impl Provider for AnthropicProvider {
    fn unknown_fields(&self) -> UnknownFields {
        self.config.unknown_fields
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        // The Messages API has no `n`: one call per sample, concurrently.
        let calls = (0..request.n.max(1)).map(|_| self.one(request));
        let results = futures::future::try_join_all(calls).await?;
        let mut usage = Usage::default();
        let mut choices = Vec::new();
        let mut model = request.model.clone();
        for (choice, u, m) in results {
            usage.input_tokens += u.input_tokens;
            usage.output_tokens += u.output_tokens;
            choices.push(choice);
            if !m.is_empty() {
                model = m;
            }
        }
        Ok(ChatResponse {
            model,
            choices,
            usage,
        })
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let body = self.body(request, true)?;
        let timeout = self.timeout(request);
        let response = self
            .config
            .retry
            .run(timeout, |left| self.send(&body, left))
            .await?;
        let mut events = AnthropicEvents::default();
        Ok(sse_events(
            response.into_stream(),
            Duration::from_millis(self.config.stream_idle_timeout_ms),
            move |data| events.parse(data),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults, with no API key to look up.
    fn provider() -> AnthropicProvider {
        AnthropicProvider::new(AnthropicConfig {
            api_key_env: None,
            ..serde_json::from_str("{}").unwrap()
        })
        .unwrap()
    }

    #[test]
    fn maps_system_messages_and_parses_replies() {
        let p = provider();
        let req = ChatRequest {
            model: "claude".into(),
            messages: vec![Message::text("system", "be brief"), Message::user("hi")],
            ..Default::default()
        };
        let body = p.body(&req, false).unwrap();
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["messages"].as_array().unwrap().len(), 1);
        assert_eq!(body["max_tokens"], 1024);
        let (c, u, _) = parse_message(
            br#"{"model":"claude","content":[{"type":"text","text":"yo"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":2}}"#,
        )
        .unwrap();
        assert_eq!(c.text, "yo");
        assert_eq!(
            u,
            Usage {
                input_tokens: 5,
                output_tokens: 2
            }
        );
        let ev = AnthropicEvents::default()
            .parse(r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"a"}}"#)
            .unwrap();
        assert_eq!(ev, vec![StreamEvent::Delta("a".into())]);
    }

    #[test]
    fn sampling_maps_to_anthropic_names_or_is_refused() {
        let p = provider();
        let with = |sampling: Value| ChatRequest {
            model: "claude".into(),
            messages: vec![Message::user("hi")],
            sampling: serde_json::from_value(sampling).unwrap(),
            ..Default::default()
        };
        let body = p
            .body(
                &with(
                    json!({"max_tokens": 9, "temperature": 0.5, "top_p": 0.25, "stop": "END",
                    "seed": 3, "user": "u-1", "response_format": {"type": "text"}}),
                ),
                false,
            )
            .unwrap();
        assert_eq!(body["max_tokens"], 9);
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["top_p"], 0.25);
        assert_eq!(body["stop_sequences"], json!(["END"]));
        assert_eq!(body["metadata"], json!({"user_id": "u-1"}));
        assert!(body.get("seed").is_none() && body.get("response_format").is_none());
        let plain = p.body(&with(json!({})), false).unwrap();
        for absent in [
            "top_p",
            "stop_sequences",
            "metadata",
            "temperature",
            "stream",
        ] {
            assert!(plain.get(absent).is_none(), "{absent}: {plain}");
        }
        // Fields the gateway does not know: added when the provider forwards them, never
        // over a field the mapping set.
        let mut request = with(json!({"max_tokens": 9}));
        request.sampling.extra = [
            ("top_k".to_string(), json!(5)),
            ("max_tokens".to_string(), json!(99_999)),
        ]
        .into();
        assert!(p.body(&request, false).unwrap().get("top_k").is_none());
        let forwarding = AnthropicProvider::new(AnthropicConfig {
            api_key_env: None,
            unknown_fields: UnknownFields::Forward,
            ..serde_json::from_str("{}").unwrap()
        })
        .unwrap();
        let body = forwarding.body(&request, false).unwrap();
        assert_eq!(
            (&body["top_k"], &body["max_tokens"]),
            (&json!(5), &json!(9))
        );
        for (sampling, name) in [
            (json!({"presence_penalty": 0.1}), "presence_penalty"),
            (json!({"frequency_penalty": 0.1}), "frequency_penalty"),
            (json!({"logit_bias": {"1": 5}}), "logit_bias"),
            (
                json!({"response_format": {"type": "json_object"}}),
                "response_format",
            ),
        ] {
            let err = p.body(&with(sampling), true).unwrap_err();
            assert!(
                matches!(&err, ProviderError::Unsupported(m) if m.contains(name)),
                "{err:?}"
            );
            assert!(!err.is_retryable());
            assert_eq!(err.code(), "unsupported_parameter");
        }
    }
}
