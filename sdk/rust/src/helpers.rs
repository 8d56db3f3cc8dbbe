//! Constructors that keep plugin code short and values inside the contract's ranges.

use crate::types::*;

impl Verdict {
    /// An accepting verdict; `score` is clamped into [0, 1].
    pub fn accept(score: f64, reason: impl Into<String>) -> Verdict {
        Verdict::new(Decision::Accept, score, reason)
    }

    /// A rejecting verdict; `score` is clamped into [0, 1].
    pub fn reject(score: f64, reason: impl Into<String>) -> Verdict {
        Verdict::new(Decision::Reject, score, reason)
    }

    /// The verifier cannot judge this candidate (score 0.5: no information).
    pub fn abstain(reason: impl Into<String>) -> Verdict {
        Verdict::new(Decision::Abstain, 0.5, reason)
    }

    pub fn new(decision: Decision, score: f64, reason: impl Into<String>) -> Verdict {
        let score = if score.is_nan() {
            0.0
        } else {
            score.clamp(0.0, 1.0)
        };
        Verdict {
            score,
            decision,
            reason: reason.into(),
            checks: Vec::new(),
            details: None,
        }
    }

    /// Adds a named check (a test, a rule) to the verdict.
    pub fn with_check(
        mut self,
        name: impl Into<String>,
        passed: bool,
        message: Option<String>,
    ) -> Self {
        self.checks.push(Check {
            name: name.into(),
            passed,
            message,
        });
        self
    }

    pub fn with_checks(mut self, checks: Vec<Check>) -> Self {
        self.checks.extend(checks);
        self
    }

    /// Attaches a JSON value (as text) that the host stores with the trace.
    pub fn with_details(mut self, json: impl Into<String>) -> Self {
        self.details = Some(json.into());
        self
    }
}

impl PluginInfo {
    fn of(kind: PluginKind, name: &str, version: &str, description: &str) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            kind,
            description: description.into(),
            stateless: false,
            config_keys: Vec::new(),
        }
    }

    pub fn verifier(name: &str, version: &str, description: &str) -> PluginInfo {
        PluginInfo::of(PluginKind::Verifier, name, version, description)
    }

    pub fn router(name: &str, version: &str, description: &str) -> PluginInfo {
        PluginInfo::of(PluginKind::Router, name, version, description)
    }

    pub fn decomposer(name: &str, version: &str, description: &str) -> PluginInfo {
        PluginInfo::of(PluginKind::Decomposer, name, version, description)
    }

    /// Declares that calls keep no state, so the host may reuse warm instances.
    pub fn stateless(mut self) -> Self {
        self.stateless = true;
        self
    }

    /// Documents a configuration key (shown by `arbiter plugin inspect`).
    pub fn config_key(mut self, name: &str, description: &str, default: Option<&str>) -> Self {
        self.config_keys.push(ConfigKey {
            name: name.into(),
            description: description.into(),
            default: default.map(String::from),
        });
        self
    }
}

impl Task {
    /// The content of the last user message: the question in single-turn tasks.
    pub fn prompt(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .or(self.messages.last())
            .map(|m| m.content.as_str())
            .unwrap_or("")
    }

    /// A metadata value by key.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// A tool the request offers, by name.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }
}

impl Message {
    /// A text message (no tool calls).
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Message {
        Message::new("user", content)
    }
}

impl Candidate {
    /// Log-probability of the whole text (the sum over its tokens), when the request asked
    /// for `logprobs`; `None` otherwise.
    pub fn total_logprob(&self) -> Option<f64> {
        (!self.logprobs.is_empty()).then(|| self.logprobs.iter().map(|t| t.logprob).sum())
    }
}

impl Judged {
    /// The verdict's score, or 0 when verification of this candidate failed.
    pub fn score(&self) -> f64 {
        self.verdict.as_ref().map(|v| v.score).unwrap_or(0.0)
    }
}
