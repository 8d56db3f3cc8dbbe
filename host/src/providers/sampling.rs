//! How a model should sample: the OpenAI request parameters a caller sets for its answer.
//! They travel with the request through every model call of its pipeline, so `stop` or
//! `response_format` shape each candidate, not only a plain model call's. A judge plugin's
//! own model calls set their own parameters and inherit none of these.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// OpenAI accepts at most this many stop sequences.
pub const MAX_STOP: usize = 4;
/// OpenAI's limits on tools and alternatives per token.
pub const MAX_TOOLS: usize = 128;
pub const MAX_TOP_LOGPROBS: u32 = 20;

fn valid_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// The wire takes one string or a list; both arrive here as a list.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Token id → bias, passed on as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<BTreeMap<String, f32>>,
    /// `{"type": "text" | "json_object" | "json_schema", ...}`, passed on as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// The end user, for the provider's abuse monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Functions the model may call, in OpenAI's shape, passed on as given (the
    /// Anthropic provider maps them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// `"none" | "auto" | "required"` or `{"type": "function", "function": {"name"}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Per-token log-probabilities of the answer, and how many alternatives each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    /// Top-level request fields the gateway does not know, as sent: only a raw-model
    /// call to a provider set to forward them gets any (`UnknownFields`).
    #[serde(skip)]
    pub extra: BTreeMap<String, Value>,
}

pub(crate) fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

impl Sampling {
    /// OpenAI's limits, checked before any model is called: a pipeline may send the
    /// request to providers that would not check them, or fail only at a later step.
    /// The error names the parameter.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let range = |name: &'static str, v: Option<f32>, lo: f32, hi: f32| match v {
            Some(x) if !(lo..=hi).contains(&x) => Err((
                name,
                format!("`{name}` must be between {lo} and {hi}, not {x}"),
            )),
            _ => Ok(()),
        };
        range("temperature", self.temperature, 0.0, 2.0)?;
        range("top_p", self.top_p, 0.0, 1.0)?;
        range("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        if self.max_tokens == Some(0) {
            return Err(("max_tokens", "`max_tokens` must be at least 1".into()));
        }
        if self.stop.len() > MAX_STOP {
            return Err((
                "stop",
                format!(
                    "`stop` takes at most {MAX_STOP} sequences, not {}",
                    self.stop.len()
                ),
            ));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(("stop", "`stop` sequences must not be empty".into()));
        }
        if let Some(bias) = &self.logit_bias {
            if let Some((token, b)) = bias.iter().find(|(_, b)| !(-100.0..=100.0).contains(*b)) {
                return Err((
                    "logit_bias",
                    format!("`logit_bias` of token {token} must be between -100 and 100, not {b}"),
                ));
            }
        }
        if let Some(format) = &self.response_format {
            match format.get("type").and_then(Value::as_str) {
                Some("text" | "json_object") => {}
                Some("json_schema") if format.get("json_schema").is_some_and(Value::is_object) => {}
                Some("json_schema") => {
                    return Err((
                        "response_format",
                        "`response_format` of type `json_schema` needs a `json_schema` object"
                            .into(),
                    ))
                }
                _ => {
                    return Err((
                        "response_format",
                        "`response_format.type` must be `text`, `json_object` or `json_schema`"
                            .into(),
                    ))
                }
            }
        }
        self.check_tools()?;
        match (self.top_logprobs, self.logprobs) {
            (Some(n), _) if n > MAX_TOP_LOGPROBS => Err((
                "top_logprobs",
                format!("`top_logprobs` must be between 0 and {MAX_TOP_LOGPROBS}, not {n}"),
            )),
            (Some(n), None | Some(false)) if n > 0 => Err((
                "top_logprobs",
                "`top_logprobs` needs `logprobs: true`".into(),
            )),
            _ => Ok(()),
        }
    }

    /// OpenAI's rules for `tools` and `tool_choice`: function tools with valid names, at
    /// most [`MAX_TOOLS`], and a `tool_choice` naming one of them.
    fn check_tools(&self) -> Result<(), (&'static str, String)> {
        let tools = self.tools.as_deref().unwrap_or_default();
        if tools.len() > MAX_TOOLS {
            return Err((
                "tools",
                format!("at most {MAX_TOOLS} tools, not {}", tools.len()),
            ));
        }
        let mut names = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            let name = match (t.get("type").and_then(Value::as_str), t.get("function")) {
                (Some("function"), Some(f)) => f.get("name").and_then(Value::as_str),
                _ => None,
            };
            let name = name.filter(|n| valid_function_name(n)).ok_or_else(|| {
                (
                    "tools",
                    format!(
                        "`tools[{i}]` must be `{{\"type\": \"function\", \"function\": {{\"name\": ...}}}}` with a name of 1 to 64 letters, digits, `_` or `-`"
                    ),
                )
            })?;
            if let Some(p) = t["function"].get("parameters") {
                if !p.is_object() {
                    return Err((
                        "tools",
                        format!("`tools[{i}].function.parameters` must be a JSON Schema object"),
                    ));
                }
            }
            names.push(name);
        }
        match &self.tool_choice {
            None => Ok(()),
            Some(Value::String(c)) if matches!(c.as_str(), "none" | "auto" | "required") => {
                if c == "required" && tools.is_empty() {
                    return Err((
                        "tool_choice",
                        "`tool_choice: required` needs `tools`".into(),
                    ));
                }
                Ok(())
            }
            Some(c) => match c.pointer("/function/name").and_then(Value::as_str) {
                Some(n) if names.contains(&n) => Ok(()),
                _ => Err((
                    "tool_choice",
                    "`tool_choice` must be `none`, `auto`, `required` or `{\"type\": \"function\", \"function\": {\"name\"}}` naming one of `tools`".into(),
                )),
            },
        }
    }

    /// Whether the caller asked for anything other than plain text.
    pub fn wants_structured_output(&self) -> bool {
        self.response_format
            .as_ref()
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t != "text")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Sampling {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn stop_is_one_string_or_a_list() {
        assert_eq!(parse(json!({"stop": "\n"})).stop, vec!["\n"]);
        assert_eq!(parse(json!({"stop": ["a", "b"]})).stop, vec!["a", "b"]);
        assert!(parse(json!({"stop": null})).stop.is_empty());
        assert!(parse(json!({})).stop.is_empty());
        assert!(serde_json::from_value::<Sampling>(json!({"stop": 3})).is_err());
    }

    #[test]
    fn only_what_was_set_is_written() {
        assert_eq!(serde_json::to_string(&Sampling::default()).unwrap(), "{}");
        let s = parse(json!({"top_p": 0.5, "stop": "x", "seed": -3}));
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"top_p":0.5,"stop":["x"],"seed":-3}"#
        );
    }

    #[test]
    fn limits_name_the_parameter() {
        let f = |name: &str| json!({"type": "function", "function": {"name": name}});
        let many: Vec<Value> = (0..=MAX_TOOLS).map(|i| f(&format!("f{i}"))).collect();
        let bad = [
            (json!({"tools": [f("no spaces")]}), "tools"),
            (json!({"tools": [f(&"x".repeat(65))]}), "tools"),
            (json!({"tools": [{"type": "retrieval"}]}), "tools"),
            (json!({"tools": many}), "tools"),
            (
                json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]}),
                "tools",
            ),
            (
                json!({"tools": [f("f")], "tool_choice": "sometimes"}),
                "tool_choice",
            ),
            (
                json!({"tools": [f("f")], "tool_choice": {"type": "function", "function": {"name": "g"}}}),
                "tool_choice",
            ),
            (json!({"tool_choice": "required"}), "tool_choice"),
            (json!({"top_logprobs": 2}), "top_logprobs"),
            (
                json!({"logprobs": true, "top_logprobs": 21}),
                "top_logprobs",
            ),
            (json!({"temperature": 2.5}), "temperature"),
            (json!({"top_p": -0.1}), "top_p"),
            (json!({"presence_penalty": 3}), "presence_penalty"),
            (json!({"frequency_penalty": -2.5}), "frequency_penalty"),
            (json!({"max_tokens": 0}), "max_tokens"),
            (json!({"stop": ["a", "b", "c", "d", "e"]}), "stop"),
            (json!({"stop": [""]}), "stop"),
            (json!({"logit_bias": {"50256": -101}}), "logit_bias"),
            (
                json!({"response_format": {"type": "xml"}}),
                "response_format",
            ),
            (
                json!({"response_format": {"type": "json_schema"}}),
                "response_format",
            ),
            (json!({"response_format": "json"}), "response_format"),
        ];
        for (v, name) in bad {
            let err = parse(v.clone()).check().unwrap_err();
            assert_eq!(err.0, name, "{v}");
            assert!(err.1.contains(name), "{v}: {}", err.1);
        }
        let good = json!({
            "temperature": 0, "top_p": 1, "presence_penalty": -2, "frequency_penalty": 2,
            "max_tokens": 1, "stop": ["a", "b", "c", "d"], "logit_bias": {"1": 100},
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        });
        assert_eq!(parse(good).check(), Ok(()));
        assert!(!parse(json!({"response_format": {"type": "text"}})).wants_structured_output());
        assert!(
            parse(json!({"response_format": {"type": "json_object"}})).wants_structured_output()
        );
    }
}
