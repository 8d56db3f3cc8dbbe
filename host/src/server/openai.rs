//! The OpenAI chat-completions wire format (requests in, responses and stream chunks out).

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::ApiError;
use crate::pipeline::{AttemptKind, AttemptOutcome, AttemptRecord, BudgetLimits, RequestTrace};
use crate::providers::Sampling;
use crate::runtime::types::Message;

#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default, deserialize_with = "crate::providers::sampling::one_or_many")]
    pub stop: Vec<String>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    #[serde(default)]
    pub logit_bias: Option<BTreeMap<String, f32>>,
    #[serde(default)]
    pub response_format: Option<Value>,
    #[serde(default)]
    pub user: Option<String>,
    /// Tool calling, log-probabilities and audio are not offered: a request for them is
    /// refused, where ignoring it would return an answer the caller did not ask for.
    #[serde(default)]
    pub tools: Option<IgnoredAny>,
    #[serde(default)]
    pub functions: Option<IgnoredAny>,
    #[serde(default)]
    pub logprobs: Option<bool>,
    #[serde(default)]
    pub top_logprobs: Option<u32>,
    #[serde(default)]
    pub audio: Option<IgnoredAny>,
    #[serde(default)]
    pub modalities: Option<Vec<String>>,
    /// OpenAI's request metadata: passed to plugins as task metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Arbiter's extension: tags, metadata and budget for this request.
    #[serde(default)]
    pub arbiter: Option<ArbiterOptions>,
}

impl ChatCompletionRequest {
    /// The sampling parameters, checked; or the first parameter asked for that no
    /// pipeline can honour.
    pub fn take_sampling(&mut self) -> Result<Sampling, ApiError> {
        let refused = [
            ("tools", self.tools.is_some(), "tool calling"),
            ("functions", self.functions.is_some(), "function calling"),
            ("logprobs", self.logprobs == Some(true), "log-probabilities"),
            (
                "top_logprobs",
                self.top_logprobs.is_some_and(|n| n > 0),
                "log-probabilities",
            ),
            ("audio", self.audio.is_some(), "audio output"),
            (
                "modalities",
                self.modalities
                    .as_ref()
                    .is_some_and(|m| m.iter().any(|m| m != "text")),
                "output other than text",
            ),
        ];
        if let Some((param, _, what)) = refused.iter().find(|(_, asked, _)| *asked) {
            return Err(ApiError::bad_request(
                "unsupported_parameter",
                format!("`{param}`: {what} is not supported by this gateway (text answers only)"),
            )
            .with_param(param));
        }
        let sampling = Sampling {
            max_tokens: self.max_completion_tokens.or(self.max_tokens),
            temperature: self.temperature,
            top_p: self.top_p,
            stop: std::mem::take(&mut self.stop),
            seed: self.seed,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            logit_bias: self.logit_bias.take(),
            response_format: self.response_format.take(),
            user: self.user.take(),
        };
        sampling.check().map_err(|(param, message)| {
            ApiError::bad_request("invalid_value", message).with_param(param)
        })?;
        Ok(sampling)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArbiterOptions {
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub budget: BudgetLimits,
}

#[derive(Debug, Deserialize)]
pub struct WireMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<WireContent>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum WireContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl WireMessage {
    /// Text content (text parts joined); non-text parts are refused by the caller.
    pub fn into_message(self) -> Result<Message, String> {
        const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];
        if !ROLES.contains(&self.role.as_str()) {
            return Err(format!("unknown message role `{}`", self.role));
        }
        let content = match self.content {
            None => String::new(),
            Some(WireContent::Text(t)) => t,
            Some(WireContent::Parts(parts)) => {
                let mut out = String::new();
                for p in parts {
                    match (p.kind.as_str(), p.text) {
                        ("text", Some(t)) => out.push_str(&t),
                        (kind, _) => {
                            return Err(format!(
                                "content part `{kind}` is not supported (text only)"
                            ))
                        }
                    }
                }
                out
            }
        };
        let role = if self.role == "developer" {
            "system".into()
        } else {
            self.role
        };
        Ok(Message { role, content })
    }
}

/// The model call whose answer was returned (none for a composed answer).
fn chosen(trace: &RequestTrace) -> Option<&AttemptRecord> {
    trace
        .attempts
        .iter()
        .rfind(|a| a.kind == AttemptKind::Model && a.text.is_some() && a.text == trace.answer)
}

/// Why the chosen answer ended, as its provider said (`length` tells a caller the
/// answer was cut off); `stop` for composed answers.
pub fn finish_reason(trace: &RequestTrace) -> &str {
    chosen(trace)
        .and_then(|a| a.finish_reason.as_deref())
        .unwrap_or("stop")
}

/// Arbiter's account of the request, added to every response.
pub fn arbiter_object(trace: &RequestTrace) -> Value {
    let models: Vec<_> = trace
        .attempts
        .iter()
        .filter(|a| a.kind == AttemptKind::Model)
        .collect();
    let chosen = chosen(trace);
    json!({
        "trace_id": trace.id,
        "pipeline": trace.pipeline,
        "outcome": trace.outcome,
        "model": trace.model,
        "score": trace.score,
        "candidates_tried": models.iter().filter(|a| a.outcome != AttemptOutcome::OverBudget).count(),
        "cancelled": models.iter().filter(|a| a.outcome == AttemptOutcome::Cancelled).count(),
        "verdicts": chosen.map(|a| a.verdicts.clone()).unwrap_or_default(),
        "cost_usd": trace.cost_usd,
        "latency_ms": trace.latency_ms,
        "error": trace.error,
    })
}

pub fn usage_of(trace: &RequestTrace) -> Value {
    let (p, c) = trace.attempts.iter().fold((0u64, 0u64), |(p, c), a| {
        (p + a.input_tokens as u64, c + a.output_tokens as u64)
    });
    json!({ "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c })
}

pub fn completion(trace: &RequestTrace, requested_model: &str, created: i64) -> Value {
    json!({
        "id": format!("chatcmpl-{}", trace.id),
        "object": "chat.completion",
        "created": created,
        "model": requested_model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": trace.answer.clone().unwrap_or_default() },
            "finish_reason": finish_reason(trace),
        }],
        "usage": usage_of(trace),
        "arbiter": arbiter_object(trace),
    })
}

#[derive(Serialize)]
pub struct Chunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: i64,
    pub model: &'a str,
    pub choices: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arbiter: Option<Value>,
}

/// One SSE `data:` frame of a chunk.
pub fn sse(chunk: &Chunk<'_>) -> bytes::Bytes {
    let mut out = b"data: ".to_vec();
    serde_json::to_writer(&mut out, chunk).expect("chunks serialize");
    out.extend_from_slice(b"\n\n");
    out.into()
}

pub fn delta(content: Option<&str>, role: bool, finish: Option<&str>) -> Value {
    let mut d = serde_json::Map::new();
    if role {
        d.insert("role".into(), json!("assistant"));
    }
    if let Some(c) = content {
        d.insert("content".into(), json!(c));
    }
    json!({ "index": 0, "delta": d, "finish_reason": finish })
}

pub const DONE: &[u8] = b"data: [DONE]\n\n";
