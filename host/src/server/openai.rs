//! The OpenAI chat-completions wire format (requests in, responses and stream chunks out).

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::ApiError;
use crate::pipeline::Answer;
use crate::pipeline::{
    AttemptKind, AttemptOutcome, AttemptRecord, BudgetLimits, RequestOutcome, RequestTrace,
    VerdictRecord,
};
use crate::providers::{Sampling, MAX_TOOL_CALLS};
use crate::runtime::types::{Message, ToolCall};

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
    /// Tool calling: passed to every model call of the pipeline; verifiers see the
    /// calls a candidate makes.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// The deprecated `functions` and audio are not offered: a request for them is
    /// refused, where ignoring it would return an answer the caller did not ask for.
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
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Arbiter's extension: tags, metadata and budget for this request.
    #[serde(default)]
    pub arbiter: Option<ArbiterOptions>,
}

impl ChatCompletionRequest {
    /// The sampling parameters, checked; or the first parameter asked for that no
    /// pipeline can honour.
    pub fn take_sampling(&mut self) -> Result<Sampling, ApiError> {
        let refused = [
            (
                "functions",
                self.functions.is_some(),
                "the deprecated `functions` (use `tools`)",
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
                format!("`{param}`: {what} is not supported by this gateway"),
            )
            .with_param(*param));
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
            tools: self.tools.take(),
            tool_choice: self.tool_choice.take(),
            parallel_tool_calls: self.parallel_tool_calls,
            logprobs: self.logprobs,
            top_logprobs: self.top_logprobs,
            extra: BTreeMap::new(),
        };
        sampling.check().map_err(|(param, message)| {
            ApiError::bad_request("invalid_value", message).with_param(param)
        })?;
        Ok(sampling)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// A last chunk with no choices and the request's usage, as OpenAI sends it.
    #[serde(default)]
    pub include_usage: bool,
}

/// Every top-level field of [`ChatCompletionRequest`]: what is not among them is a field
/// this gateway does not know (`providers::UnknownFields`).
pub const KNOWN_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "n",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "response_format",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "logprobs",
    "top_logprobs",
    "audio",
    "modalities",
    "metadata",
    "stream_options",
    "arbiter",
];

/// The body's top-level fields that are not [`KNOWN_FIELDS`], with their values. The
/// common case (none) reads the keys without allocating and skips the values; only a
/// body with unknown fields is parsed a second time, for them.
pub fn unknown_fields(body: &[u8]) -> Result<BTreeMap<String, Value>, serde_json::Error> {
    struct AnyUnknown(bool);
    struct Key(bool);
    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Key;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a field name")
                }
                fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Key, E> {
                    Ok(Key(!KNOWN_FIELDS.contains(&k)))
                }
            }
            d.deserialize_str(V)
        }
    }
    impl<'de> Deserialize<'de> for AnyUnknown {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AnyUnknown, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = AnyUnknown;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<AnyUnknown, A::Error> {
                    let mut any = false;
                    while let Some(Key(unknown)) = map.next_key()? {
                        any |= unknown;
                        map.next_value::<IgnoredAny>()?;
                    }
                    Ok(AnyUnknown(any))
                }
            }
            d.deserialize_map(V)
        }
    }
    if !serde_json::from_slice::<AnyUnknown>(body)?.0 {
        return Ok(BTreeMap::new());
    }
    let mut all: serde_json::Map<String, Value> = serde_json::from_slice(body)?;
    all.retain(|k, _| !KNOWN_FIELDS.contains(&k.as_str()));
    Ok(all.into_iter().collect())
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
    /// An assistant message's calls of the request's tools.
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The call a `tool` message answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
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
        let tool_calls = self.tool_calls.unwrap_or_default();
        if !tool_calls.is_empty() && self.role != "assistant" {
            return Err(format!(
                "only assistant messages carry `tool_calls`, not `{}`",
                self.role
            ));
        }
        if tool_calls.len() > MAX_TOOL_CALLS {
            return Err(format!(
                "at most {MAX_TOOL_CALLS} tool calls in one message"
            ));
        }
        if let Some(c) = tool_calls.iter().find(|c| c.id.is_empty()) {
            return Err(format!("tool call `{}` has no `id`", c.name));
        }
        match (self.role.as_str(), &self.tool_call_id) {
            ("tool", None) => return Err("a `tool` message needs `tool_call_id`".into()),
            ("tool", Some(_)) | (_, None) => {}
            (role, Some(_)) => {
                return Err(format!(
                    "only `tool` messages carry `tool_call_id`, not `{role}`"
                ))
            }
        }
        let role = if self.role == "developer" {
            "system".into()
        } else {
            self.role
        };
        Ok(Message {
            role,
            content,
            tool_calls,
            tool_call_id: self.tool_call_id,
        })
    }
}

/// The model call whose answer was returned (none for a composed answer).
fn chosen(trace: &RequestTrace) -> Option<&AttemptRecord> {
    match trace.answer_attempt {
        Some(seq) => trace.attempts.iter().find(|a| a.seq == seq),
        None => None,
    }
}

/// Why the chosen answer ended, as its provider said (`length` tells a caller the
/// answer was cut off); `stop` for composed answers.
pub fn finish_reason(trace: &RequestTrace) -> &str {
    chosen(trace)
        .and_then(|a| a.finish_reason.as_deref())
        .unwrap_or("stop")
}

/// Arbiter's account of the request, added to every response. Responses are written
/// from borrowed, typed structs: building a `serde_json::Value` tree first was ~4% of a
/// pass-through request's CPU.
#[derive(Serialize)]
pub struct ArbiterObject<'a> {
    trace_id: &'a str,
    pipeline: &'a str,
    outcome: RequestOutcome,
    model: Option<&'a str>,
    score: Option<f64>,
    candidates_tried: usize,
    cancelled: usize,
    /// The chosen answer's verdicts.
    verdicts: &'a [VerdictRecord],
    cost_usd: f64,
    latency_ms: f64,
    error: Option<&'a str>,
    /// Every model call the request made (not only the chosen one's): what `usage` sums.
    calls: Vec<CallUsage<'a>>,
}

#[derive(Serialize)]
struct CallUsage<'a> {
    model: &'a str,
    outcome: &'static str,
    prompt_tokens: u32,
    completion_tokens: u32,
    cost_usd: f64,
}

pub fn arbiter_object(trace: &RequestTrace) -> ArbiterObject<'_> {
    let models = || {
        trace
            .attempts
            .iter()
            .filter(|a| a.kind == AttemptKind::Model)
    };
    ArbiterObject {
        trace_id: &trace.id,
        pipeline: &trace.pipeline,
        outcome: trace.outcome,
        model: trace.model.as_deref(),
        score: trace.score,
        candidates_tried: models()
            .filter(|a| a.outcome != AttemptOutcome::OverBudget)
            .count(),
        cancelled: models()
            .filter(|a| a.outcome == AttemptOutcome::Cancelled)
            .count(),
        verdicts: chosen(trace).map_or(&[], |a| &a.verdicts),
        cost_usd: trace.cost_usd,
        latency_ms: trace.latency_ms,
        error: trace.error.as_deref(),
        calls: models()
            .filter(|a| a.outcome != AttemptOutcome::OverBudget)
            .map(|a| CallUsage {
                model: &a.model,
                outcome: a.outcome.as_str(),
                prompt_tokens: a.input_tokens,
                completion_tokens: a.output_tokens,
                cost_usd: a.cost_usd,
            })
            .collect(),
    }
}

#[derive(Serialize)]
pub struct UsageObject {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

pub fn usage_of(trace: &RequestTrace) -> UsageObject {
    let (p, c) = trace.attempts.iter().fold((0u64, 0u64), |(p, c), a| {
        (p + a.input_tokens as u64, c + a.output_tokens as u64)
    });
    UsageObject {
        prompt_tokens: p,
        completion_tokens: c,
        total_tokens: p + c,
    }
}

#[derive(Serialize)]
pub struct Completion<'a> {
    id: String,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: Vec<CompletionChoice<'a>>,
    usage: UsageObject,
    arbiter: ArbiterObject<'a>,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    /// Always present, `null` unless asked for, as OpenAI writes it.
    logprobs: Option<&'a Value>,
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    /// `null` when the model only called tools, as OpenAI writes it.
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "<[ToolCall]>::is_empty")]
    tool_calls: &'a [ToolCall],
}

pub fn completion<'a>(
    trace: &'a RequestTrace,
    answer: &'a Answer,
    requested_model: &'a str,
    created: i64,
) -> Completion<'a> {
    Completion {
        id: format!("chatcmpl-{}", trace.id),
        object: "chat.completion",
        created,
        model: requested_model,
        choices: std::iter::once(answer)
            .chain(&answer.alternatives)
            .enumerate()
            .map(|(index, a)| CompletionChoice {
                index: index as u32,
                message: AssistantMessage {
                    role: "assistant",
                    content: (!a.text.is_empty() || a.tool_calls.is_empty())
                        .then_some(a.text.as_str()),
                    tool_calls: &a.tool_calls,
                },
                logprobs: a.logprobs.as_ref(),
                finish_reason: a
                    .finish_reason
                    .as_deref()
                    .unwrap_or_else(|| finish_reason(trace)),
            })
            .collect(),
        usage: usage_of(trace),
        arbiter: arbiter_object(trace),
    }
}

#[derive(Serialize)]
pub struct Chunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: i64,
    pub model: &'a str,
    pub choices: [ChunkChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arbiter: Option<ArbiterObject<'a>>,
}

#[derive(Serialize)]
pub struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<&'a Value>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "<[ToolCallPiece]>::is_empty")]
    tool_calls: Vec<ToolCallPiece<'a>>,
}

/// A piece of a streamed tool call in OpenAI's delta shape: id, type and name in its
/// first piece, arguments text in every piece.
#[derive(Serialize)]
pub struct ToolCallPiece<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionPiece<'a>,
}

#[derive(Serialize)]
struct FunctionPiece<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

impl<'a> ToolCallPiece<'a> {
    pub fn of(d: &'a crate::providers::ToolCallDelta) -> ToolCallPiece<'a> {
        ToolCallPiece {
            index: d.index,
            id: d.id.as_deref(),
            kind: d.id.is_some().then_some("function"),
            function: FunctionPiece {
                name: d.name.as_deref(),
                arguments: &d.arguments,
            },
        }
    }

    /// A whole call as one piece, for an answer streamed once it is chosen.
    pub fn whole(index: usize, c: &'a ToolCall) -> ToolCallPiece<'a> {
        ToolCallPiece {
            index: index as u32,
            id: Some(&c.id),
            kind: Some("function"),
            function: FunctionPiece {
                name: Some(&c.name),
                arguments: &c.arguments,
            },
        }
    }
}

/// What every chunk of one stream repeats.
pub struct StreamHead<'a> {
    pub id: &'a str,
    pub created: i64,
    pub model: &'a str,
}

impl<'a> StreamHead<'a> {
    pub fn chunk<'b>(
        &self,
        choice: ChunkChoice<'b>,
        usage: Option<UsageObject>,
        arbiter: Option<ArbiterObject<'b>>,
    ) -> Chunk<'b>
    where
        'a: 'b,
    {
        Chunk {
            id: self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model,
            choices: [choice],
            usage,
            arbiter,
        }
    }
}

/// The last chunk of a stream that asked for `stream_options.include_usage`: no
/// choices, the request's usage (every call of its pipeline) and the `arbiter` object.
#[derive(Serialize)]
pub struct UsageChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: i64,
    pub model: &'a str,
    pub choices: [(); 0],
    pub usage: UsageObject,
    pub arbiter: ArbiterObject<'a>,
}

impl<'a> StreamHead<'a> {
    pub fn usage_chunk<'b>(&self, trace: &'b RequestTrace) -> UsageChunk<'b>
    where
        'a: 'b,
    {
        UsageChunk {
            id: self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model,
            choices: [],
            usage: usage_of(trace),
            arbiter: arbiter_object(trace),
        }
    }
}

/// One SSE `data:` frame of a chunk.
pub fn sse(chunk: &impl Serialize) -> bytes::Bytes {
    let mut out = b"data: ".to_vec();
    serde_json::to_writer(&mut out, chunk).expect("chunks serialize");
    out.extend_from_slice(b"\n\n");
    out.into()
}

pub fn delta<'a>(content: Option<&'a str>, role: bool, finish: Option<&'a str>) -> ChunkChoice<'a> {
    ChunkChoice {
        index: 0,
        delta: Delta {
            role: role.then_some("assistant"),
            content,
            tool_calls: Vec::new(),
        },
        logprobs: None,
        finish_reason: finish,
    }
}

impl<'a> ChunkChoice<'a> {
    /// Adds tool-call pieces to this chunk's delta.
    pub fn with_tool_calls(mut self, pieces: Vec<ToolCallPiece<'a>>) -> ChunkChoice<'a> {
        self.delta.tool_calls = pieces;
        self
    }

    /// The choice this chunk belongs to (`n` > 1).
    pub fn with_index(mut self, index: u32) -> ChunkChoice<'a> {
        self.index = index;
        self
    }

    pub fn with_role(mut self, first: bool) -> ChunkChoice<'a> {
        self.delta.role = first.then_some("assistant");
        self
    }

    pub fn with_logprobs(mut self, logprobs: Option<&'a Value>) -> ChunkChoice<'a> {
        self.logprobs = logprobs;
        self
    }
}

pub const DONE: &[u8] = b"data: [DONE]\n\n";
