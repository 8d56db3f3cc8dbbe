//! The OpenAI chat-completions wire format (requests in, responses and stream chunks out).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::pipeline::{AttemptKind, AttemptOutcome, BudgetLimits, RequestTrace};
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
    /// OpenAI's request metadata: passed to plugins as task metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Arbiter's extension: tags, metadata and budget for this request.
    #[serde(default)]
    pub arbiter: Option<ArbiterOptions>,
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

/// Arbiter's account of the request, added to every response.
pub fn arbiter_object(trace: &RequestTrace) -> Value {
    let models: Vec<_> = trace
        .attempts
        .iter()
        .filter(|a| a.kind == AttemptKind::Model)
        .collect();
    let chosen = trace
        .attempts
        .iter()
        .rfind(|a| a.kind == AttemptKind::Model && a.text.is_some() && a.text == trace.answer);
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
            "finish_reason": "stop",
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
