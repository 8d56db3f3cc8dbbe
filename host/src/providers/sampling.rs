//! How a model should sample: the OpenAI request parameters a caller sets for its answer.
//! They travel with the request through every model call of its pipeline, so `stop` or
//! `response_format` shape each candidate, not only a plain model call's. A judge plugin's
//! own model calls set their own parameters and inherit none of these.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// OpenAI accepts at most this many stop sequences.
pub const MAX_STOP: usize = 4;

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
        Ok(())
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
        let bad = [
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
