//! Tool-call verifier (contract 0.2.0): every tool a candidate calls must be one the
//! request offered, and its arguments must be a JSON object valid against that tool's
//! JSON Schema (`parameters`). Models get argument types wrong often enough that sampling
//! a few candidates and keeping one whose calls check out (`best_of`) pays for itself.
//!
//! A candidate that calls no tool is judged by `no-call`: `abstain` (the default: a text
//! answer is not this verifier's business), `accept` or `reject` (when the application
//! always wants a call).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use arbiter_sdk::prelude::*;
use serde_json::Value;

/// Compiled schemas kept by a warm instance: compiling one costs far more than checking
/// arguments against it, and a best-of's candidates share the request's tools.
const CACHED_SCHEMAS: usize = 64;

struct ToolArgs {
    no_call: Decision,
    max_errors: usize,
    validators: RefCell<HashMap<String, Rc<jsonschema::Validator>>>,
}

impl Verifier for ToolArgs {
    fn info() -> PluginInfo {
        PluginInfo::verifier(
            "tool-args-verifier",
            env!("CARGO_PKG_VERSION"),
            "Accepts tool calls that name offered tools with arguments valid against their schemas",
        )
        .stateless()
        .config_key(
            "no-call",
            "Decision for a candidate without tool calls: `abstain`, `accept` or `reject`",
            Some("abstain"),
        )
        .config_key(
            "max-errors",
            "Schema violations reported per tool call",
            Some("5"),
        )
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        config.deny_unknown(&["no-call", "max-errors"])?;
        let no_call = match config.get("no-call").unwrap_or("abstain") {
            "abstain" => Decision::Abstain,
            "accept" => Decision::Accept,
            "reject" => Decision::Reject,
            other => {
                return Err(PluginError::InvalidConfig(format!(
                    "`no-call` must be `abstain`, `accept` or `reject`, not `{other}`"
                )))
            }
        };
        Ok(ToolArgs {
            no_call,
            max_errors: config.parse_or("max-errors", 5)?,
            validators: RefCell::default(),
        })
    }

    fn verify(&self, task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
        if candidate.tool_calls.is_empty() {
            return Ok(match self.no_call {
                Decision::Accept => Verdict::accept(1.0, "no tool call to check"),
                Decision::Reject => Verdict::reject(0.0, "the candidate calls no tool"),
                Decision::Abstain => Verdict::abstain("no tool call to check"),
            });
        }
        let checks: Vec<Check> = candidate
            .tool_calls
            .iter()
            .map(|call| self.check_call(task, call))
            .collect();
        let passed = checks.iter().filter(|c| c.passed).count();
        let total = checks.len();
        let verdict = if passed == total {
            Verdict::accept(1.0, format!("{total} tool call(s) valid"))
        } else {
            let first = checks.iter().find(|c| !c.passed).expect("one failed");
            Verdict::reject(
                0.5 * passed as f64 / total as f64,
                format!(
                    "{} of {total} tool call(s) invalid; {}: {}",
                    total - passed,
                    first.name,
                    first.message.as_deref().unwrap_or("")
                ),
            )
        };
        Ok(verdict.with_checks(checks))
    }
}

impl ToolArgs {
    /// One check per call, named after the tool and the call's id.
    fn check_call(&self, task: &Task, call: &ToolCall) -> Check {
        let name = format!("{} ({})", call.name, call.id);
        let fail = |message: String| Check {
            name: name.clone(),
            passed: false,
            message: Some(message),
        };
        let Some(tool) = task.tool(&call.name) else {
            return fail(format!("`{}` is not a tool the request offers", call.name));
        };
        let arguments: Value = match serde_json::from_str(&call.arguments) {
            Ok(v) => v,
            Err(e) => return fail(format!("the arguments are not JSON: {e}")),
        };
        if !arguments.is_object() {
            return fail("the arguments are not a JSON object".into());
        }
        let validator = match self.validator(&tool.parameters) {
            Ok(v) => v,
            Err(message) => return fail(message),
        };
        let errors: Vec<String> = validator
            .iter_errors(&arguments)
            .take(self.max_errors.max(1))
            .map(|e| format!("at `{}`: {e}", e.instance_path))
            .collect();
        if errors.is_empty() {
            Check {
                name,
                passed: true,
                message: None,
            }
        } else {
            fail(errors.join("; "))
        }
    }

    /// The compiled schema of a tool's `parameters` (JSON text; empty allows anything).
    fn validator(&self, parameters: &str) -> Result<Rc<jsonschema::Validator>, String> {
        if let Some(v) = self.validators.borrow().get(parameters) {
            return Ok(v.clone());
        }
        let schema: Value = match parameters.trim() {
            "" => Value::Object(Default::default()),
            text => serde_json::from_str(text)
                .map_err(|e| format!("the tool's schema is not JSON: {e}"))?,
        };
        let validator = Rc::new(
            jsonschema::validator_for(&schema)
                .map_err(|e| format!("the tool's schema is not a valid JSON Schema: {e}"))?,
        );
        let mut cache = self.validators.borrow_mut();
        if cache.len() >= CACHED_SCHEMAS {
            cache.clear();
        }
        cache.insert(parameters.to_string(), validator.clone());
        Ok(validator)
    }
}

arbiter_sdk::export_verifier!(ToolArgs);

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> ToolArgs {
        ToolArgs {
            no_call: Decision::Abstain,
            max_errors: 5,
            validators: RefCell::default(),
        }
    }

    fn task() -> Task {
        Task {
            id: "t".into(),
            messages: vec![Message::user("Weather in Paris?")],
            tags: vec![],
            metadata: vec![],
            tools: vec![Tool {
                name: "get_weather".into(),
                description: String::new(),
                parameters: r#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#.into(),
            }],
        }
    }

    fn call(arguments: &str) -> ToolCall {
        ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn checks_arguments_against_the_schema() {
        let v = verifier();
        assert!(v.check_call(&task(), &call(r#"{"city":"Paris"}"#)).passed);
        let wrong = v.check_call(&task(), &call(r#"{"city":1}"#));
        assert!(!wrong.passed);
        assert!(wrong.message.unwrap().contains("/city"));
        let missing = v.check_call(&task(), &call("{}"));
        assert!(missing.message.unwrap().contains("city"));
        assert!(!v.check_call(&task(), &call("[1]")).passed);
        assert!(!v.check_call(&task(), &call("not json")).passed);
    }

    #[test]
    fn schemas_are_compiled_once_and_the_cache_is_bounded() {
        let v = verifier();
        for _ in 0..3 {
            v.check_call(&task(), &call(r#"{"city":"Paris"}"#));
        }
        assert_eq!(v.validators.borrow().len(), 1);
        for i in 0..(CACHED_SCHEMAS + 5) {
            v.validator(&format!(r#"{{"type":"object","maxProperties":{i}}}"#))
                .unwrap();
        }
        assert!(v.validators.borrow().len() <= CACHED_SCHEMAS);
        assert!(v.validator("{not json").is_err());
        assert!(v.validator(r#"{"type": 5}"#).is_err());
    }
}
