//! The host's own view of the plugin contract's records.
//!
//! Orchestration, traces, the CLI and the capabilities use these types; each frozen WIT
//! version converts to and from them in its own `contract` module, so a new contract
//! version never ripples through the rest of the host (the Zed extension-host pattern).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Plugin settings for one pipeline (string keys and values; structure as JSON text).
pub type PluginConfig = BTreeMap<String, String>;

/// One chat message. Assistant messages may carry the tool calls the model made, and a
/// `tool` message answers one of them by id, as in the OpenAI chat API (whose JSON shape
/// these serialize to).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Message {
    pub role: String,
    /// Empty for an assistant message that only calls tools (`null` on the wire).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub content: String,
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// The tool call a `tool` message answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

impl Serialize for Message {
    /// OpenAI's shape: an assistant message that only calls tools has `content: null`
    /// (some upstreams refuse an empty string there); the tool fields only when set.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let tools = !self.tool_calls.is_empty();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("role", &self.role)?;
        match tools && self.content.is_empty() {
            true => m.serialize_entry("content", &None::<&str>)?,
            false => m.serialize_entry("content", &self.content)?,
        }
        if tools {
            m.serialize_entry("tool_calls", &self.tool_calls)?;
        }
        if let Some(id) = &self.tool_call_id {
            m.serialize_entry("tool_call_id", id)?;
        }
        m.end()
    }
}

impl Message {
    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
            ..Message::default()
        }
    }

    /// A message of `role` with text only.
    pub fn text(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            ..Message::default()
        }
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A function call a model asked for: which function and its arguments, as the JSON text
/// the model wrote (not necessarily valid JSON: checking it is a verifier's job).
/// Serialized in the OpenAI shape, `{"id", "type": "function", "function": {"name",
/// "arguments"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "WireToolCall", into = "WireToolCall")]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: String,
    #[serde(rename = "type", default = "function_type")]
    kind: String,
    function: WireFunction,
}

#[derive(Clone, Serialize, Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

fn function_type() -> String {
    "function".into()
}

impl From<WireToolCall> for ToolCall {
    fn from(w: WireToolCall) -> ToolCall {
        ToolCall {
            id: w.id,
            name: w.function.name,
            arguments: w.function.arguments,
        }
    }
}

impl From<ToolCall> for WireToolCall {
    fn from(c: ToolCall) -> WireToolCall {
        WireToolCall {
            id: c.id,
            kind: function_type(),
            function: WireFunction {
                name: c.name,
                arguments: c.arguments,
            },
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    #[serde(default)]
    pub id: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The functions the request lets the model call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
}

impl Task {
    /// A single-turn task asking `prompt`.
    pub fn from_prompt(id: impl Into<String>, prompt: impl Into<String>) -> Task {
        Task {
            id: id.into(),
            messages: vec![Message::user(prompt)],
            ..Task::default()
        }
    }

    /// The last user message: the question of a single-turn task.
    pub fn prompt(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .or(self.messages.last())
            .map(|m| m.content.as_str())
            .unwrap_or("")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub index: u32,
    pub model: String,
    pub text: String,
    /// The functions the model called instead of (or besides) answering in text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Per-token log-probabilities, when the request asked for them (`logprobs`) and the
    /// upstream sent them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<TokenLogprob>,
}

/// One generated token and how likely the model found it, with the likeliest
/// alternatives when `top_logprobs` asked for them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<(String, f64)>,
}

impl TokenLogprob {
    /// Reads OpenAI's `choice.logprobs` object (`{"content": [{"token", "logprob",
    /// "top_logprobs": [...]}]}`); anything else yields nothing.
    pub fn from_openai(logprobs: &serde_json::Value) -> Vec<TokenLogprob> {
        let Some(content) = logprobs.get("content").and_then(|c| c.as_array()) else {
            return Vec::new();
        };
        let pair = |t: &serde_json::Value| {
            Some((
                t.get("token")?.as_str()?.to_string(),
                t.get("logprob")?.as_f64()?,
            ))
        };
        content
            .iter()
            .filter_map(|t| {
                let (token, logprob) = pair(t)?;
                let top = t
                    .get("top_logprobs")
                    .and_then(|a| a.as_array())
                    .map(|a| a.iter().filter_map(pair).collect())
                    .unwrap_or_default();
                Some(TokenLogprob {
                    token,
                    logprob,
                    top,
                })
            })
            .collect()
    }
}

/// A function the request offers the model (`tools` in the OpenAI API).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The JSON Schema of the arguments, as JSON text (`{}` when the tool gave none).
    #[serde(default)]
    pub parameters: String,
}

impl ToolSpec {
    /// The function tools of an OpenAI `tools` list (`{"type": "function", "function":
    /// {"name", "description", "parameters"}}`); other kinds are skipped.
    pub fn from_openai(tools: &[serde_json::Value]) -> Vec<ToolSpec> {
        tools
            .iter()
            .filter_map(|t| {
                let f = t.get("function")?;
                Some(ToolSpec {
                    name: f.get("name")?.as_str()?.to_string(),
                    description: f
                        .get("description")
                        .and_then(|d| d.as_str())
                        .unwrap_or_default()
                        .to_string(),
                    parameters: f
                        .get("parameters")
                        .map_or_else(|| "{}".to_string(), |p| p.to_string()),
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Accept,
    Reject,
    Abstain,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub score: f64,
    pub decision: Decision,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// The plugin's JSON details (kept as a string value if the plugin sent invalid JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub candidate: Candidate,
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub scores: Vec<f64>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    pub attempts: u64,
    pub success_rate: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Verifier,
    Router,
    Decomposer,
}

impl PluginKind {
    pub const ALL: [PluginKind; 3] = [
        PluginKind::Verifier,
        PluginKind::Router,
        PluginKind::Decomposer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Verifier => "verifier",
            PluginKind::Router => "router",
            PluginKind::Decomposer => "decomposer",
        }
    }

    /// The contract interface a plugin of this kind exports.
    pub fn export_interface(self) -> &'static str {
        match self {
            PluginKind::Verifier => "verification",
            PluginKind::Router => "routing",
            PluginKind::Decomposer => "decomposition",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PluginKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PluginKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown plugin kind `{s}` (verifier, router, decomposer)"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigKey {
    pub name: String,
    pub description: String,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub description: String,
    pub stateless: bool,
    pub config_keys: Vec<ConfigKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelOption {
    pub name: String,
    pub input_price: f64,
    pub output_price: f64,
    pub stats: Option<ModelStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteStep {
    pub target: String,
    pub samples: u32,
    pub min_score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteDecision {
    pub steps: Vec<RouteStep>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subtask {
    pub id: String,
    pub prompt: String,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub verify: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub subtasks: Vec<Subtask>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subresult {
    pub id: String,
    pub answer: String,
    pub model: String,
    pub score: Option<f64>,
}

/// An error the plugin itself reported through the contract's `plugin-error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum PluginFailure {
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One log line a plugin emitted during a call (through `log`, stdout or stderr).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub level: LogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
}

/// A completion asked for by a plugin holding the `model` capability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    pub messages: Vec<Message>,
    pub model: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub model: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ModelError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("over budget: {0}")]
    OverBudget(String),
    #[error("failed: {0}")]
    Failed(String),
}
