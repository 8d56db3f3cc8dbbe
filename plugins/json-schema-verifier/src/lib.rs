//! Structured-output verifier: the answer must contain a JSON value that validates
//! against the JSON Schema given in the `schema` setting.
//!
//! Models often wrap JSON in prose or a fenced ```json block; with `extract = "lenient"`
//! (the default) the verifier looks inside those, with `"strict"` the whole answer must
//! be the JSON value.

use arbiter_sdk::prelude::*;
use serde_json::Value;

struct SchemaVerifier {
    validator: jsonschema::Validator,
    lenient: bool,
    max_errors: usize,
}

impl Verifier for SchemaVerifier {
    fn info() -> PluginInfo {
        PluginInfo::verifier(
            "json-schema-verifier",
            env!("CARGO_PKG_VERSION"),
            "Accepts answers containing JSON that validates against a JSON Schema",
        )
        .stateless()
        .config_key("schema", "The JSON Schema (JSON text); required", None)
        .config_key(
            "extract",
            "`lenient` (find JSON in prose/code fences) or `strict`",
            Some("lenient"),
        )
        .config_key(
            "max-errors",
            "Validation errors reported per candidate",
            Some("10"),
        )
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        config.deny_unknown(&["schema", "extract", "max-errors"])?;
        let schema: Value = serde_json::from_str(config.require("schema")?)
            .map_err(|e| PluginError::InvalidConfig(format!("`schema` is not JSON: {e}")))?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            PluginError::InvalidConfig(format!("`schema` is not a valid JSON Schema: {e}"))
        })?;
        let lenient = match config.get("extract").unwrap_or("lenient") {
            "lenient" => true,
            "strict" => false,
            other => {
                return Err(PluginError::InvalidConfig(format!(
                    "`extract` must be `lenient` or `strict`, not `{other}`"
                )))
            }
        };
        Ok(SchemaVerifier {
            validator,
            lenient,
            max_errors: config.parse_or("max-errors", 10)?,
        })
    }

    fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        let Some(value) = extract_json(&candidate.text, self.lenient) else {
            return Ok(Verdict::reject(0.0, "no JSON value found in the answer"));
        };
        let errors: Vec<Check> = self
            .validator
            .iter_errors(&value)
            .take(self.max_errors)
            .map(|e| Check {
                name: format!("at `{}`", e.instance_path),
                passed: false,
                message: Some(e.to_string()),
            })
            .collect();
        if errors.is_empty() {
            Ok(Verdict::accept(1.0, "valid against the schema").with_check("schema", true, None))
        } else {
            let n = errors.len();
            Ok(Verdict::reject(
                0.3 / n as f64,
                format!(
                    "{n} schema violation(s): {}",
                    errors[0].message.as_deref().unwrap_or("")
                ),
            )
            .with_checks(errors))
        }
    }
}

/// The JSON value in `text`: the whole text, else (lenient) the first fenced code block
/// or the first balanced `{...}` / `[...]` region that parses.
pub fn extract_json(text: &str, lenient: bool) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str(trimmed) {
        return Some(v);
    }
    if !lenient {
        return None;
    }
    let mut rest = trimmed;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(0, |i| i + 1);
        let Some(end) = after[body_start..].find("```") else {
            break;
        };
        if let Ok(v) = serde_json::from_str(after[body_start..body_start + end].trim()) {
            return Some(v);
        }
        rest = &after[body_start + end + 3..];
    }
    for (i, c) in trimmed.char_indices() {
        if c == '{' || c == '[' {
            let mut stream = serde_json::Deserializer::from_str(&trimmed[i..]).into_iter::<Value>();
            if let Some(Ok(v)) = stream.next() {
                return Some(v);
            }
        }
    }
    None
}

arbiter_sdk::export_verifier!(SchemaVerifier);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_from_prose_and_fences() {
        assert_eq!(
            extract_json("{\"a\":1}", false),
            Some(serde_json::json!({"a":1}))
        );
        assert_eq!(
            extract_json("Here: {\"a\":1} done", true),
            Some(serde_json::json!({"a":1}))
        );
        assert_eq!(extract_json("Here: {\"a\":1} done", false), None);
        assert_eq!(
            extract_json("```json\n[1, 2]\n```", true),
            Some(serde_json::json!([1, 2]))
        );
        assert_eq!(extract_json("no json { here", true), None);
    }
}
