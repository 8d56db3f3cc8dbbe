//! Model backends behind one trait: OpenAI-compatible chat completions (OpenAI, vLLM,
//! Ollama, Together, Groq, ...), Anthropic Messages, and a replay provider serving
//! recorded answers for offline runs and evaluation.

pub mod anthropic;
pub mod breaker;
pub mod embeddings;
pub(crate) mod http;
pub mod openai;
pub mod pricing;
pub mod replay;
pub mod retry;
pub mod sampling;

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use serde::{Deserialize, Serialize};

pub use embeddings::{EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EncodingFormat};
pub use pricing::Price;
pub use sampling::Sampling;

use crate::runtime::types::{Message, ToolCall};

/// A chat completion request as the pipeline issues it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChatRequest {
    /// The model's name at the provider.
    pub model: String,
    pub messages: Vec<Message>,
    pub sampling: Sampling,
    /// Samples in one call (providers without `n` are called `n` times).
    pub n: u32,
    /// Which samples of the request these are (0 for the first call of a request, then
    /// counting up): the replay provider returns distinct recorded samples per index.
    pub sample_index: u32,
    /// Upper bound for the whole call, retries included.
    #[serde(skip)]
    pub timeout: Option<Duration>,
}

/// One generated answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub text: String,
    /// Ground-truth label of a recorded answer (replay only): used by `arbiter eval`,
    /// never shown to plugins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct: Option<bool>,
    /// Position of a recorded answer among its model's samples (replay only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// The functions the model called (`finish_reason` then says `tool_calls`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The upstream's `logprobs` object, as sent (OpenAI's shape), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<serde_json::Value>,
}

impl Choice {
    /// A plain text answer.
    pub fn text(text: impl Into<String>, finish_reason: Option<String>) -> Choice {
        Choice {
            text: text.into(),
            correct: None,
            sample: None,
            finish_reason,
            tool_calls: Vec::new(),
            logprobs: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatResponse {
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
}

/// A piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Delta(String),
    /// A piece of the tool call at `index` (the OpenAI delta shape): its id and name in
    /// the first piece, its arguments' JSON text in pieces after.
    ToolCall(ToolCallDelta),
    /// The log-probabilities of the tokens of this piece (OpenAI's `logprobs` object).
    Logprobs(serde_json::Value),
    Usage(Usage),
    Finish(String),
}

/// Tool calls one answer may hold: a streamed call's `index` names its slot, so an
/// upstream could otherwise make the gateway allocate any number of them.
pub const MAX_TOOL_CALLS: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCallDelta {
    pub index: u32,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: String,
}

impl ToolCallDelta {
    /// Adds this piece to the calls assembled so far; an index past
    /// [`MAX_TOOL_CALLS`] is refused by the parsers, and ignored here.
    pub fn apply(&self, calls: &mut Vec<ToolCall>) {
        let i = self.index as usize;
        if i >= MAX_TOOL_CALLS {
            return;
        }
        if calls.len() <= i {
            calls.resize_with(i + 1, ToolCall::default);
        }
        let call = &mut calls[i];
        if let Some(id) = &self.id {
            call.id.clone_from(id);
        }
        if let Some(name) = &self.name {
            call.name.push_str(name);
        }
        call.arguments.push_str(&self.arguments);
    }

    /// A whole call as one piece (providers that cannot stream).
    pub fn whole(index: usize, call: &ToolCall) -> ToolCallDelta {
        ToolCallDelta {
            index: index as u32,
            id: Some(call.id.clone()),
            name: Some(call.name.clone()),
            arguments: call.arguments.clone(),
        }
    }
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// No connection: the request was never sent.
    #[error("cannot reach upstream: {0}")]
    Connect(String),
    /// The connection failed after the request went out: the upstream may have
    /// processed (and billed) it.
    #[error("upstream connection failed mid-request: {0}")]
    Interrupted(String),
    /// The provider has been failing and is not called for a while (`circuit_breaker`).
    #[error("upstream is failing; not called for another {0:?}")]
    CircuitOpen(Duration),
    #[error("upstream returned HTTP {status}: {body}")]
    Http {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    #[error("upstream sent a malformed response: {0}")]
    Malformed(String),
    #[error("upstream stream broke: {0}")]
    Stream(String),
    /// The upstream sent more than the gateway holds for one call (`http::limits`).
    #[error("upstream response too large: {0}")]
    TooLarge(String),
    #[error("unknown model `{0}` at this provider")]
    UnknownModel(String),
    #[error("provider is misconfigured: {0}")]
    Config(String),
    /// The request asks for something this provider's API cannot do.
    #[error("{0}")]
    Unsupported(String),
}

impl ProviderError {
    /// Errors worth retrying: rate limits, server errors, dropped connections.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Http { status, .. } => {
                *status == 429 || *status == 408 || *status >= 500
            }
            ProviderError::Connect(_) | ProviderError::Interrupted(_) => true,
            ProviderError::Timeout(_) => true,
            _ => false,
        }
    }

    /// True when the upstream certainly did not process the request: it was never sent,
    /// or the upstream refused it before doing the work (429, 408, 503). Anything else
    /// that failed may have been processed and billed.
    pub fn never_processed(&self) -> bool {
        match self {
            ProviderError::Connect(_) => true,
            ProviderError::Http { status, .. } => matches!(status, 408 | 429 | 503),
            _ => false,
        }
    }

    /// Errors that say the upstream itself is failing (not the request): what the
    /// circuit breaker counts.
    pub fn is_upstream_failure(&self) -> bool {
        match self {
            ProviderError::Connect(_)
            | ProviderError::Interrupted(_)
            | ProviderError::Timeout(_) => true,
            ProviderError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::Timeout(_) => "upstream_timeout",
            ProviderError::Connect(_) => "upstream_unreachable",
            ProviderError::Interrupted(_) => "upstream_interrupted",
            ProviderError::CircuitOpen(_) => "upstream_circuit_open",
            ProviderError::Http { .. } => "upstream_error",
            ProviderError::Malformed(_) => "upstream_malformed",
            ProviderError::Stream(_) => "upstream_stream_broken",
            ProviderError::TooLarge(_) => "upstream_response_too_large",
            ProviderError::UnknownModel(_) => "unknown_model",
            ProviderError::Config(_) => "provider_config",
            ProviderError::Unsupported(_) => "unsupported_parameter",
        }
    }
}

/// A provider as configured (`[providers.<name>]`, chosen by `kind`). Adding a provider
/// is its module plus a variant here and its arm in [`ProviderConfig::build`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProviderConfig {
    Openai(openai::OpenAiConfig),
    Anthropic(anthropic::AnthropicConfig),
    Replay(replay::ReplayConfig),
}

impl ProviderConfig {
    /// Builds the provider. `resolve` turns the configuration's relative paths into real
    /// ones; `replay_dataset` serves every replay provider from that file instead
    /// (evaluation).
    pub fn build(
        &self,
        resolve: impl Fn(&std::path::Path) -> std::path::PathBuf,
        replay_dataset: Option<&std::path::Path>,
    ) -> Result<std::sync::Arc<dyn Provider>, ProviderError> {
        Ok(match self {
            ProviderConfig::Openai(c) => {
                breaker::Breaker::wrap(openai::OpenAiProvider::new(c.clone())?, &c.circuit_breaker)
            }
            ProviderConfig::Anthropic(c) => breaker::Breaker::wrap(
                anthropic::AnthropicProvider::new(c.clone())?,
                &c.circuit_breaker,
            ),
            ProviderConfig::Replay(c) => {
                let dataset = replay_dataset
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_else(|| resolve(&c.dataset));
                std::sync::Arc::new(replay::ReplayProvider::new(replay::ReplayConfig {
                    dataset,
                    ..c.clone()
                })?)
            }
        })
    }
}

/// What a provider does with request fields the gateway does not know (`vllm`'s
/// `top_k`, a newer OpenAI parameter): pass them on as sent, in a raw-model call, or
/// have the request refused naming them. Never dropped without a word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFields {
    /// Refused (400 `unsupported_parameter`): the safe default for a shared gateway,
    /// where a field the gateway cannot price (`best_of`, a reasoning effort) could
    /// spend past a tenant's estimates.
    #[default]
    Refuse,
    Forward,
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// See [`UnknownFields`].
    fn unknown_fields(&self) -> UnknownFields {
        UnknownFields::Refuse
    }

    /// Whether [`Provider::embed`] reaches an embeddings API. The gateway asks before
    /// reserving or calling anything, so a model without one is refused up front.
    fn embeds(&self) -> bool {
        false
    }

    /// One embeddings call. Providers without an embeddings API keep this refusal.
    async fn embed(&self, request: &EmbeddingRequest) -> Result<EmbeddingResponse, ProviderError> {
        Err(ProviderError::Unsupported(format!(
            "model `{}`: this provider has no embeddings API",
            request.model
        )))
    }

    /// Streams one answer. Providers that cannot stream emit the whole answer at once.
    async fn chat_stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let response = self.chat(request).await?;
        let choice = response
            .choices
            .into_iter()
            .next()
            .unwrap_or_else(|| Choice::text("", None));
        let mut events = vec![Ok(StreamEvent::Delta(choice.text))];
        events.extend(
            choice
                .tool_calls
                .iter()
                .enumerate()
                .map(|(i, c)| Ok(StreamEvent::ToolCall(ToolCallDelta::whole(i, c)))),
        );
        events.extend(choice.logprobs.map(|l| Ok(StreamEvent::Logprobs(l))));
        events.push(Ok(StreamEvent::Usage(response.usage)));
        events.push(Ok(StreamEvent::Finish(
            choice.finish_reason.unwrap_or_else(|| "stop".into()),
        )));
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

/// Rough token count when a provider does not report usage: ~4 characters per token
/// (the convention the replay datasets' reference costs use).
pub fn estimate_tokens(text: &str) -> u32 {
    text.chars().count().div_ceil(4) as u32
}

/// Messages' text and tool calls (names and arguments are billed as input too).
pub fn estimate_prompt_tokens(messages: &[Message]) -> u32 {
    messages
        .iter()
        .map(|m| {
            estimate_tokens(&m.content)
                + m.tool_calls
                    .iter()
                    .map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments))
                    .sum::<u32>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_pieces_assemble_within_the_cap() {
        let mut calls = Vec::new();
        let piece = |index, id: Option<&str>, name: Option<&str>, arguments: &str| ToolCallDelta {
            index,
            id: id.map(Into::into),
            name: name.map(Into::into),
            arguments: arguments.into(),
        };
        piece(1, Some("b"), Some("g"), "").apply(&mut calls);
        piece(0, Some("a"), Some("f"), "{\"x\"").apply(&mut calls);
        piece(0, None, None, ": 1}").apply(&mut calls);
        // An index past the cap allocates nothing.
        piece(u32::MAX, Some("z"), None, "").apply(&mut calls);
        assert_eq!(
            calls,
            vec![
                ToolCall {
                    id: "a".into(),
                    name: "f".into(),
                    arguments: "{\"x\": 1}".into()
                },
                ToolCall {
                    id: "b".into(),
                    name: "g".into(),
                    arguments: String::new()
                },
            ]
        );
    }
}
