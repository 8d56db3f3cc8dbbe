//! `arbiter plugin test`: case files run through the real runtime.
//!
//! A case file is JSON Lines, one case per line (input, settings, expected result); the
//! format is specified in `docs/plugin-test-cases.md`. Cases run with the same sandbox and
//! limits as the gateway, so a passing case means the plugin behaves that way in serving.
//! Parsing is strict (unknown fields are errors) because a misspelt expectation would
//! otherwise pass silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::runtime::types::*;
use crate::runtime::{CallContext, CallStats, Grants, Plugin, PluginOptions, Runtime, StatsSource};

#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{0} has no cases")]
    Empty(PathBuf),
}

/// One test case: one line of a case file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// 1-based line in the case file.
    #[serde(skip)]
    pub line: usize,
    pub name: Option<String>,
    /// Plugin settings; non-string values are passed as their JSON text.
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
    pub prompt: Option<String>,
    pub task: Option<Task>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Tools the task offers, in OpenAI's `tools` shape (`{"type": "function",
    /// "function": {...}}`).
    #[serde(default)]
    pub tools: Vec<serde_json::Value>,
    pub candidate: Option<CaseCandidate>,
    pub candidates: Option<Vec<CaseCandidate>>,
    pub model: Option<String>,
    pub options: Option<Vec<ModelOption>>,
    pub answers: Option<Vec<String>>,
    pub limits: Option<CaseLimits>,
    #[serde(default)]
    pub grants: Vec<String>,
    /// What the `stats` capability answers in this case (it needs the `stats` grant).
    #[serde(default)]
    pub stats: Vec<CaseStats>,
    #[serde(default)]
    pub expect: Expect,
}

/// One model's recorded outcomes, overall or for one tag, as the host would report them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseStats {
    pub model: String,
    #[serde(default)]
    pub tag: Option<String>,
    pub attempts: u64,
    pub success_rate: f64,
    #[serde(default)]
    pub latency_p50_ms: f64,
    #[serde(default)]
    pub latency_p95_ms: f64,
}

/// Serves a case's `stats` through the capability.
struct CaseStatsSource(Vec<CaseStats>);

impl StatsSource for CaseStatsSource {
    fn query(&self, model: &str, tag: Option<&str>) -> Option<ModelStats> {
        self.0
            .iter()
            .find(|s| s.model == model && s.tag.as_deref() == tag)
            .map(|s| ModelStats {
                attempts: s.attempts,
                success_rate: s.success_rate,
                latency_p50_ms: s.latency_p50_ms,
                latency_p95_ms: s.latency_p95_ms,
            })
    }
}

/// Per-case overrides of the plugin's limits.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseLimits {
    pub deadline_ms: Option<u64>,
    pub memory_mib: Option<usize>,
    pub fuel: Option<u64>,
    pub output_bytes: Option<usize>,
    pub log_bytes: Option<usize>,
}

/// What a case expects; every field given must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub error: Option<String>,
    pub error_contains: Option<String>,
    pub decision: Option<PerCandidate<Decision>>,
    pub score: Option<ScoreExpect>,
    pub reason_contains: Option<String>,
    pub checks_failed: Option<PerCandidate<usize>>,
    pub selected: Option<usize>,
    pub targets: Option<Vec<String>>,
    pub samples: Option<Vec<u32>>,
    pub subtasks: Option<usize>,
    pub subtask_ids: Option<Vec<String>>,
    pub subtask_prompts: Option<Vec<String>>,
    pub answer: Option<String>,
    pub answer_contains: Option<String>,
}

/// One value for every candidate, or a list with one value per candidate.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PerCandidate<T> {
    All(T),
    Each(Vec<T>),
}

impl<T: Clone> PerCandidate<T> {
    fn expand(&self, n: usize) -> Result<Vec<T>, String> {
        match self {
            PerCandidate::All(v) => Ok(vec![v.clone(); n]),
            PerCandidate::Each(v) if v.len() == n => Ok(v.clone()),
            PerCandidate::Each(v) => Err(format!(
                "{} values given for {n} candidate(s); give one per candidate",
                v.len()
            )),
        }
    }
}

/// A verifier case's candidate: its text, or the whole candidate with the tools it called
/// (OpenAI's `tool_calls` shape) and its per-token `logprobs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CaseCandidate {
    Text(String),
    Full {
        #[serde(default)]
        text: String,
        #[serde(default)]
        tool_calls: Vec<ToolCall>,
        #[serde(default)]
        logprobs: Vec<TokenLogprob>,
    },
}

impl CaseCandidate {
    fn build(&self, index: u32, model: &str) -> Candidate {
        let (text, tool_calls, logprobs) = match self {
            CaseCandidate::Text(text) => (text.clone(), Vec::new(), Vec::new()),
            CaseCandidate::Full {
                text,
                tool_calls,
                logprobs,
            } => (text.clone(), tool_calls.clone(), logprobs.clone()),
        };
        Candidate {
            index,
            model: model.to_string(),
            text,
            tool_calls,
            logprobs,
        }
    }
}

/// An exact score or an inclusive `[low, high]` range.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ScoreRange {
    Exact(f64),
    Range([f64; 2]),
}

impl ScoreRange {
    fn bounds(self) -> (f64, f64) {
        match self {
            ScoreRange::Exact(s) => (s, s),
            ScoreRange::Range([low, high]) => (low, high),
        }
    }

    fn contains(self, score: f64) -> bool {
        // Scores cross a float boundary and may come from other languages' arithmetic.
        const EPS: f64 = 1e-9;
        let (low, high) = self.bounds();
        score >= low - EPS && score <= high + EPS
    }
}

impl std::fmt::Display for ScoreRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScoreRange::Exact(s) => write!(f, "{s}"),
            ScoreRange::Range([low, high]) => write!(f, "[{low}, {high}]"),
        }
    }
}

/// `score`: one range for every candidate, or a list of ranges, one per candidate.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ScoreExpect {
    One(ScoreRange),
    Each(Vec<ScoreRange>),
}

impl Case {
    /// The name shown in reports.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("case {}", self.line))
    }

    /// The plugin settings as the runtime takes them.
    pub fn plugin_config(&self) -> PluginConfig {
        self.config
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect()
    }

    /// The task: `task` when given, else `prompt` as one user message.
    pub fn build_task(&self) -> Task {
        let id = format!("case-{}", self.line);
        let mut task = match &self.task {
            Some(t) => t.clone(),
            None => Task::from_prompt(id.clone(), self.prompt.clone().unwrap_or_default()),
        };
        if task.id.is_empty() {
            task.id = id;
        }
        task.tags.extend(self.tags.iter().cloned());
        task.metadata
            .extend(self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        task.tools.extend(ToolSpec::from_openai(&self.tools));
        task
    }

    /// The options the plugin is loaded with for this case: `base` plus the case's
    /// `limits` and `grants`.
    pub fn plugin_options(&self, base: &PluginOptions) -> Result<PluginOptions, String> {
        let mut options = base.clone();
        if !self.grants.is_empty() {
            let grants = Grants::from_names(&self.grants)?;
            options.grants = options.grants.union(grants);
        }
        if let Some(l) = &self.limits {
            let limits = &mut options.limits;
            if let Some(ms) = l.deadline_ms {
                limits.deadline = Duration::from_millis(ms);
            }
            if let Some(mib) = l.memory_mib {
                limits.memory_bytes = mib << 20;
            }
            if let Some(fuel) = l.fuel {
                limits.fuel = fuel;
            }
            if let Some(b) = l.output_bytes {
                limits.output_bytes = b;
            }
            if let Some(b) = l.log_bytes {
                limits.log_bytes = b;
            }
        }
        Ok(options)
    }

    /// The candidates a verifier case judges (`candidate` or `candidates`).
    fn case_candidates(&self) -> Vec<CaseCandidate> {
        match (&self.candidate, &self.candidates) {
            (Some(c), _) => vec![c.clone()],
            (None, Some(cs)) => cs.clone(),
            (None, None) => Vec::new(),
        }
    }

    /// Problems that make this case meaningless for a plugin of `kind`: inputs and
    /// expectations of another kind, missing or conflicting inputs.
    pub fn problems(&self, kind: PluginKind) -> Vec<String> {
        let mut p = Vec::new();
        let e = &self.expect;
        let only = |p: &mut Vec<String>, given: bool, field: &str, for_kind: PluginKind| {
            if given && kind != for_kind {
                p.push(format!(
                    "`{field}` is for {for_kind}s; this plugin is a {kind}"
                ));
            }
        };
        use PluginKind::*;
        only(&mut p, self.candidate.is_some(), "candidate", Verifier);
        only(&mut p, self.candidates.is_some(), "candidates", Verifier);
        only(&mut p, self.model.is_some(), "model", Verifier);
        only(&mut p, e.decision.is_some(), "decision", Verifier);
        only(&mut p, e.score.is_some(), "score", Verifier);
        only(&mut p, e.checks_failed.is_some(), "checks_failed", Verifier);
        only(&mut p, e.selected.is_some(), "selected", Verifier);
        only(&mut p, self.options.is_some(), "options", Router);
        only(&mut p, e.targets.is_some(), "targets", Router);
        only(&mut p, e.samples.is_some(), "samples", Router);
        only(&mut p, self.answers.is_some(), "answers", Decomposer);
        only(&mut p, e.subtasks.is_some(), "subtasks", Decomposer);
        only(&mut p, e.subtask_ids.is_some(), "subtask_ids", Decomposer);
        only(
            &mut p,
            e.subtask_prompts.is_some(),
            "subtask_prompts",
            Decomposer,
        );
        only(&mut p, e.answer.is_some(), "answer", Decomposer);
        only(
            &mut p,
            e.answer_contains.is_some(),
            "answer_contains",
            Decomposer,
        );
        if self.prompt.is_some() && self.task.is_some() {
            p.push("give `prompt` or `task`, not both".into());
        }
        if kind == Verifier {
            match (&self.candidate, &self.candidates) {
                (Some(_), Some(_)) => p.push("give `candidate` or `candidates`, not both".into()),
                (None, None) => p.push("a verifier case needs `candidate` or `candidates`".into()),
                (None, Some(c)) if c.is_empty() => p.push("`candidates` is empty".into()),
                _ => {}
            }
            if e.selected.is_some() && self.candidates.is_none() {
                p.push("`selected` needs `candidates`".into());
            }
        }
        if kind == Decomposer
            && self.answers.is_none()
            && (e.answer.is_some() || e.answer_contains.is_some())
        {
            p.push("`answer` and `answer_contains` need `answers` to compose".into());
        }
        p
    }
}

/// Parses a case file's text; `path` only labels errors.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Case>, CasesError> {
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("//") {
            continue;
        }
        let parse_error = |message: String| CasesError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let mut case: Case =
            serde_json::from_str(trimmed).map_err(|e| parse_error(e.to_string()))?;
        case.line = i + 1;
        check_ranges(&case.expect).map_err(parse_error)?;
        cases.push(case);
    }
    if cases.is_empty() {
        return Err(CasesError::Empty(path.to_path_buf()));
    }
    Ok(cases)
}

/// Reads and parses a case file.
pub fn load(path: &Path) -> Result<Vec<Case>, CasesError> {
    let text = std::fs::read_to_string(path).map_err(|source| CasesError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

fn check_ranges(expect: &Expect) -> Result<(), String> {
    let ranges: Vec<ScoreRange> = match &expect.score {
        None => return Ok(()),
        Some(ScoreExpect::One(r)) => vec![*r],
        Some(ScoreExpect::Each(rs)) => rs.clone(),
    };
    for r in ranges {
        let (low, high) = r.bounds();
        if low.is_nan() || high.is_nan() || low > high {
            return Err(format!(
                "score range {r} is empty: give [low, high] (with `candidates`, a list of ranges)"
            ));
        }
    }
    Ok(())
}

/// A call that failed, as reported: which call, the runtime's error code and message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallFailure {
    pub call: String,
    pub code: String,
    pub message: String,
}

impl CallFailure {
    fn new(call: impl Into<String>, e: &crate::runtime::Error) -> CallFailure {
        CallFailure {
            call: call.into(),
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

/// What the calls of a case returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaseResult {
    /// Verifier: one entry per candidate; `None` where its `verify` failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Option<Verdict>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteDecision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

impl CaseResult {
    fn is_empty(&self) -> bool {
        *self == CaseResult::default()
    }
}

/// The outcome of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub name: String,
    pub line: usize,
    pub passed: bool,
    /// Wall time of the case's calls together, instantiation included.
    pub wall_us: f64,
    /// Instructions the case's calls executed (`None` without fuel metering).
    pub fuel: Option<u64>,
    /// Why the case failed, one entry per unmet expectation.
    pub failures: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<CaseResult>,
    /// The first call that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<CallFailure>,
}

/// Checks a case's outcome against its expectations; returns the unmet ones (empty
/// when the case passes). `candidates` is how many candidates a verifier case judged.
pub fn check(
    expect: &Expect,
    candidates: usize,
    result: &CaseResult,
    error: Option<&CallFailure>,
) -> Vec<String> {
    let mut f = Vec::new();
    let wants_error = expect.error.is_some() || expect.error_contains.is_some();
    match (error, wants_error) {
        (Some(e), false) => {
            // Everything else would only repeat that the call failed.
            f.push(format!(
                "unexpected error in {}: [{}] {}",
                e.call, e.code, e.message
            ));
            return f;
        }
        (None, true) => f.push(format!(
            "expected an error{}, but every call succeeded",
            expect
                .error
                .as_deref()
                .map(|c| format!(" `{c}`"))
                .unwrap_or_default()
        )),
        (Some(e), true) => {
            if let Some(code) = expect.error.as_deref().filter(|c| *c != e.code) {
                f.push(format!(
                    "error: expected `{code}`, got `{}` in {}: {}",
                    e.code, e.call, e.message
                ));
            }
            if let Some(text) = expect
                .error_contains
                .as_deref()
                .filter(|t| !e.message.contains(t))
            {
                f.push(format!(
                    "error message does not contain {text:?}: {}",
                    e.message
                ));
            }
        }
        (None, false) => {}
    }
    check_verdicts(expect, candidates, result, &mut f);
    if let Some(want) = &expect.reason_contains {
        let mut reasons: Vec<&str> = result
            .verdicts
            .iter()
            .flatten()
            .map(|v| v.reason.as_str())
            .collect();
        reasons.extend(result.route.iter().map(|r| r.reason.as_str()));
        reasons.extend(result.plan.iter().map(|p| p.reason.as_str()));
        if reasons.is_empty() {
            f.push("reason_contains: no reason was returned".into());
        }
        for r in reasons.into_iter().filter(|r| !r.contains(want.as_str())) {
            f.push(format!("reason does not contain {want:?}: {r:?}"));
        }
    }
    if let Some(want) = expect.selected {
        match &result.selection {
            None => f.push("selected: `select` returned nothing".into()),
            Some(s) => {
                let best = s
                    .scores
                    .iter()
                    .enumerate()
                    .fold(None::<(usize, f64)>, |best, (i, &x)| match best {
                        Some((_, b)) if b >= x => best,
                        _ => Some((i, x)),
                    })
                    .map(|(i, _)| i);
                if best != Some(want) {
                    f.push(format!(
                        "selected: expected candidate {want}, got {} (scores {:?})",
                        best.map_or("none".to_string(), |b| b.to_string()),
                        s.scores
                    ));
                }
            }
        }
    }
    let route = result.route.as_ref();
    if let Some(want) = &expect.targets {
        let got: Option<Vec<&str>> =
            route.map(|r| r.steps.iter().map(|s| s.target.as_str()).collect());
        if got.as_deref() != Some(&want.iter().map(String::as_str).collect::<Vec<_>>()[..]) {
            f.push(format!("targets: expected {want:?}, got {}", show(&got)));
        }
    }
    if let Some(want) = &expect.samples {
        let got: Option<Vec<u32>> = route.map(|r| r.steps.iter().map(|s| s.samples).collect());
        if got.as_ref() != Some(want) {
            f.push(format!("samples: expected {want:?}, got {}", show(&got)));
        }
    }
    let plan = result.plan.as_ref();
    if let Some(want) = expect.subtasks {
        let got = plan.map(|p| p.subtasks.len());
        if got != Some(want) {
            f.push(format!("subtasks: expected {want}, got {}", show(&got)));
        }
    }
    if let Some(want) = &expect.subtask_ids {
        let got: Option<Vec<&str>> =
            plan.map(|p| p.subtasks.iter().map(|s| s.id.as_str()).collect());
        if got.as_deref() != Some(&want.iter().map(String::as_str).collect::<Vec<_>>()[..]) {
            f.push(format!(
                "subtask_ids: expected {want:?}, got {}",
                show(&got)
            ));
        }
    }
    if let Some(want) = &expect.subtask_prompts {
        let got: Option<Vec<&str>> =
            plan.map(|p| p.subtasks.iter().map(|s| s.prompt.as_str()).collect());
        if got.as_deref() != Some(&want.iter().map(String::as_str).collect::<Vec<_>>()[..]) {
            f.push(format!(
                "subtask_prompts: expected {want:?}, got {}",
                show(&got)
            ));
        }
    }
    if let Some(want) = &expect.answer {
        if result.answer.as_ref() != Some(want) {
            f.push(format!(
                "answer: expected {want:?}, got {}",
                show(&result.answer)
            ));
        }
    }
    if let Some(want) = &expect.answer_contains {
        if !result.answer.as_ref().is_some_and(|a| a.contains(want)) {
            f.push(format!(
                "answer does not contain {want:?}: {}",
                show(&result.answer)
            ));
        }
    }
    f
}

/// `{:?}` of a value, or "nothing" when the call that makes it did not return.
fn show<T: std::fmt::Debug>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or("nothing".to_string(), |v| format!("{v:?}"))
}

fn decision_str(d: Decision) -> &'static str {
    match d {
        Decision::Accept => "accept",
        Decision::Reject => "reject",
        Decision::Abstain => "abstain",
    }
}

fn check_verdicts(expect: &Expect, n: usize, result: &CaseResult, f: &mut Vec<String>) {
    let label = |i: usize, what: &str| {
        if n == 1 {
            what.to_string()
        } else {
            format!("candidate {i}: {what}")
        }
    };
    let verdict = |i: usize| result.verdicts.get(i).and_then(Option::as_ref);
    if let Some(d) = &expect.decision {
        match d.expand(n) {
            Err(e) => f.push(format!("decision: {e}")),
            Ok(want) => {
                for (i, want) in want.into_iter().enumerate() {
                    match verdict(i) {
                        None => f.push(format!("{}: no verdict", label(i, "decision"))),
                        Some(v) if v.decision != want => f.push(format!(
                            "{}: expected {}, got {} ({})",
                            label(i, "decision"),
                            decision_str(want),
                            decision_str(v.decision),
                            v.reason
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    if let Some(s) = &expect.score {
        let want = match s {
            ScoreExpect::One(r) => Ok(vec![*r; n]),
            ScoreExpect::Each(rs) => PerCandidate::Each(rs.clone()).expand(n),
        };
        match want {
            Err(e) => f.push(format!("score: {e}")),
            Ok(want) => {
                for (i, want) in want.into_iter().enumerate() {
                    match verdict(i) {
                        None => f.push(format!("{}: no verdict", label(i, "score"))),
                        Some(v) if !want.contains(v.score) => f.push(format!(
                            "{}: expected {want}, got {} ({})",
                            label(i, "score"),
                            v.score,
                            v.reason
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    if let Some(c) = &expect.checks_failed {
        match c.expand(n) {
            Err(e) => f.push(format!("checks_failed: {e}")),
            Ok(want) => {
                for (i, want) in want.into_iter().enumerate() {
                    let Some(v) = verdict(i) else {
                        f.push(format!("{}: no verdict", label(i, "checks_failed")));
                        continue;
                    };
                    let failed: Vec<&str> = v
                        .checks
                        .iter()
                        .filter(|c| !c.passed)
                        .map(|c| c.name.as_str())
                        .collect();
                    if failed.len() != want {
                        f.push(format!(
                            "{}: expected {want}, got {} {failed:?}",
                            label(i, "checks_failed"),
                            failed.len()
                        ));
                    }
                }
            }
        }
    }
}

/// The router options used when a case gives none (as `arbiter plugin call`).
pub fn default_options() -> Vec<ModelOption> {
    let option = |name: &str, input_price: f64, output_price: f64| ModelOption {
        name: name.into(),
        input_price,
        output_price,
        stats: None,
    };
    vec![option("small", 0.6, 0.6), option("large", 10.0, 30.0)]
}

/// Runs cases against one component, loading it once per distinct set of options.
pub struct Runner {
    runtime: Runtime,
    component: Vec<u8>,
    base: PluginOptions,
    loaded: Vec<(PluginOptions, Result<Plugin, CallFailure>)>,
}

/// One plugin call a case made, for reports that show each call (`arbiter plugin call`).
#[derive(Debug)]
pub struct CallRecord {
    /// `check-config`, `verify`, `select`, `route`, `decompose` or `compose`.
    pub call: &'static str,
    /// The call's result as JSON (when [`RunOptions::values`] asks for it) and its
    /// stats; or the runtime's error.
    pub outcome: Result<(Option<serde_json::Value>, CallStats), crate::runtime::Error>,
}

/// What one run of a case's calls did.
#[derive(Debug, Default)]
pub struct Execution {
    /// What the calls returned, as they came: a later failure keeps earlier results.
    pub result: CaseResult,
    /// The first call that failed.
    pub error: Option<CallFailure>,
    /// Wall time of the calls together, instantiation included.
    pub wall: Duration,
    /// Instructions the calls executed (`None` without fuel metering).
    pub fuel: Option<u64>,
    /// Every call made, in order.
    pub calls: Vec<CallRecord>,
}

/// How [`CaseCalls::run`] runs and records.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Skip `check-config`: a benchmark times the kind's own calls.
    pub skip_check_config: bool,
    /// Keep each call's result as JSON in its [`CallRecord`].
    pub values: bool,
}

impl Execution {
    /// Runs one call, counting its cost and recording it; a failed call counts its wall
    /// time only (the runtime reports no stats for it).
    async fn call<T: Serialize>(
        &mut self,
        call: &'static str,
        label: impl Into<String>,
        values: bool,
        fut: impl std::future::Future<Output = crate::runtime::Result<crate::runtime::Outcome<T>>>,
    ) -> Result<T, CallFailure> {
        let started = Instant::now();
        match fut.await {
            Ok(o) => {
                self.wall += o.stats.wall;
                if let Some(f) = o.stats.fuel {
                    self.fuel = Some(self.fuel.unwrap_or(0) + f);
                }
                let value = values
                    .then(|| serde_json::to_value(&o.value).ok())
                    .flatten();
                self.calls.push(CallRecord {
                    call,
                    outcome: Ok((value, o.stats)),
                });
                Ok(o.value)
            }
            Err(e) => {
                self.wall += started.elapsed();
                let failure = CallFailure::new(label, &e);
                self.calls.push(CallRecord {
                    call,
                    outcome: Err(e),
                });
                Err(failure)
            }
        }
    }
}

impl Runner {
    /// `component` is the plugin's bytes; `base` the options every case starts from.
    pub fn new(runtime: Runtime, component: Vec<u8>, base: PluginOptions) -> Runner {
        Runner {
            runtime,
            component,
            base,
            loaded: Vec::new(),
        }
    }

    /// The plugin loaded with `options` (loads are cached, failures too).
    pub async fn plugin(&mut self, options: &PluginOptions) -> Result<Plugin, CallFailure> {
        if let Some((_, p)) = self.loaded.iter().find(|(o, _)| o == options) {
            return p.clone();
        }
        let p = self
            .runtime
            .load(self.component.clone(), options.clone())
            .await
            .map_err(|e| CallFailure::new("load", &e));
        self.loaded.push((options.clone(), p.clone()));
        p
    }

    /// Loads the plugin with the base options, returning the runtime's own error so a
    /// caller can tell an unusable component from one needing a grant the cases give.
    pub async fn load_base(&mut self) -> crate::runtime::Result<Plugin> {
        let loaded = self
            .runtime
            .load(self.component.clone(), self.base.clone())
            .await;
        let cached = match &loaded {
            Ok(p) => Ok(p.clone()),
            Err(e) => Err(CallFailure::new("load", e)),
        };
        self.loaded.retain(|(o, _)| *o != self.base);
        self.loaded.push((self.base.clone(), cached));
        loaded
    }

    /// Runs one case; never fails: every problem is reported in the case's report.
    pub async fn run(&mut self, case: &Case) -> CaseReport {
        let mut report = CaseReport {
            name: case.display_name(),
            line: case.line,
            passed: false,
            wall_us: 0.0,
            fuel: None,
            failures: Vec::new(),
            result: None,
            error: None,
        };
        let options = match case.plugin_options(&self.base) {
            Ok(o) => o,
            Err(e) => {
                report.failures.push(format!("invalid case: {e}"));
                return report;
            }
        };
        let execution = match self.plugin(&options).await {
            Err(e) => Execution {
                error: Some(e),
                ..Execution::default()
            },
            Ok(plugin) => {
                let problems = case.problems(plugin.kind());
                if !problems.is_empty() {
                    report.failures = problems
                        .into_iter()
                        .map(|p| format!("invalid case: {p}"))
                        .collect();
                    return report;
                }
                CaseCalls::new(case)
                    .run(&plugin, RunOptions::default())
                    .await
            }
        };
        let candidates = case.case_candidates().len();
        let Execution {
            result,
            error,
            wall,
            fuel,
            ..
        } = execution;
        report.failures = check(&case.expect, candidates, &result, error.as_ref());
        report.passed = report.failures.is_empty();
        report.wall_us = (wall.as_secs_f64() * 1e7).round() / 10.0;
        report.fuel = fuel;
        report.result = (!result.is_empty()).then_some(result);
        report.error = error;
        report
    }
}

/// Makes the calls of `case` for their effect on the plugin's instance only (the
/// build-time warm-up, `authoring::snapshot`); results and failures are not kept.
/// False when the case does not fit the plugin's kind and nothing ran.
pub(crate) async fn warm_up_with(plugin: &Plugin, case: &Case) -> bool {
    if !case.problems(plugin.kind()).is_empty() {
        return false;
    }
    CaseCalls::new(case)
        .run(plugin, RunOptions::default())
        .await;
    true
}

/// A case's inputs as the plugin is called with them, converted once, so that repeated
/// runs (`arbiter plugin bench`) time the calls alone.
pub struct CaseCalls {
    config: PluginConfig,
    task: Task,
    candidates: Vec<Candidate>,
    options: Vec<ModelOption>,
    answers: Option<Vec<String>>,
    model: String,
    stats: Option<Arc<dyn StatsSource>>,
}

impl CaseCalls {
    pub fn new(case: &Case) -> CaseCalls {
        let model = case.model.clone().unwrap_or_else(|| "unknown".into());
        CaseCalls {
            config: case.plugin_config(),
            task: case.build_task(),
            candidates: case
                .case_candidates()
                .iter()
                .enumerate()
                .map(|(i, c)| c.build(i as u32, &model))
                .collect(),
            options: case.options.clone().unwrap_or_else(default_options),
            answers: case.answers.clone(),
            model,
            stats: (!case.stats.is_empty())
                .then(|| Arc::new(CaseStatsSource(case.stats.clone())) as Arc<dyn StatsSource>),
        }
    }

    /// The case's calls, in the order the gateway makes them: `check-config`, then the
    /// kind's calls. Never fails: the first failure is in [`Execution::error`], and
    /// every call in [`Execution::calls`].
    pub async fn run(&self, plugin: &Plugin, options: RunOptions) -> Execution {
        let mut execution = Execution::default();
        if let Err(e) = self.execute(plugin, options, &mut execution).await {
            execution.error.get_or_insert(e);
        }
        execution
    }

    async fn execute(
        &self,
        plugin: &Plugin,
        options: RunOptions,
        x: &mut Execution,
    ) -> Result<(), CallFailure> {
        let config = &self.config;
        let task = &self.task;
        let values = options.values;
        let ctx = || CallContext {
            stats: self.stats.clone(),
            ..CallContext::default()
        };
        if !options.skip_check_config {
            x.call(
                "check-config",
                "check-config",
                values,
                plugin.check_config(config),
            )
            .await?;
        }
        match plugin.kind() {
            PluginKind::Verifier => {
                let candidates = &self.candidates;
                let mut first_error = None;
                let mut judged = Vec::new();
                for c in candidates {
                    let label = if candidates.len() == 1 {
                        "verify".to_string()
                    } else {
                        format!("verify (candidate {})", c.index)
                    };
                    // As in the gateway, one failing candidate loses only its own verdict.
                    let verdict = match x
                        .call(
                            "verify",
                            label,
                            values,
                            plugin.verify(config, task, c, ctx()),
                        )
                        .await
                    {
                        Ok(v) => Some(v),
                        Err(e) => {
                            first_error.get_or_insert(e);
                            None
                        }
                    };
                    x.result.verdicts.push(verdict.clone());
                    judged.push(Judged {
                        candidate: c.clone(),
                        verdict,
                    });
                }
                if candidates.len() > 1 {
                    let selected = x
                        .call(
                            "select",
                            "select",
                            values,
                            plugin.select(config, task, &judged, ctx()),
                        )
                        .await;
                    match selected {
                        Ok(s) => x.result.selection = Some(s),
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                first_error.map_or(Ok(()), Err)
            }
            PluginKind::Router => {
                let route = x
                    .call(
                        "route",
                        "route",
                        values,
                        plugin.route(config, task, &self.options, ctx()),
                    )
                    .await?;
                x.result.route = Some(route);
                Ok(())
            }
            PluginKind::Decomposer => {
                let plan = x
                    .call(
                        "decompose",
                        "decompose",
                        values,
                        plugin.decompose(config, task, ctx()),
                    )
                    .await?;
                x.result.plan = Some(plan.clone());
                let Some(answers) = &self.answers else {
                    return Ok(());
                };
                if answers.len() != plan.subtasks.len() {
                    return Err(CallFailure {
                        call: "compose".into(),
                        code: "invalid_case".into(),
                        message: format!(
                            "{} answers given for {} sub-tasks",
                            answers.len(),
                            plan.subtasks.len()
                        ),
                    });
                }
                let results: Vec<Subresult> = plan
                    .subtasks
                    .iter()
                    .zip(answers)
                    .map(|(s, a)| Subresult {
                        id: s.id.clone(),
                        answer: a.clone(),
                        model: self.model.clone(),
                        score: None,
                    })
                    .collect();
                let answer = x
                    .call(
                        "compose",
                        "compose",
                        values,
                        plugin.compose(config, task, &results, ctx()),
                    )
                    .await?;
                x.result.answer = Some(answer);
                Ok(())
            }
        }
    }
}

/// Passed and failed counts of a run.
pub fn summary<'a>(reports: impl IntoIterator<Item = &'a CaseReport>) -> (usize, usize) {
    reports.into_iter().fold((0, 0), |(passed, failed), r| {
        if r.passed {
            (passed + 1, failed)
        } else {
            (passed, failed + 1)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(line: &str) -> Case {
        parse(line, Path::new("t.jsonl")).unwrap().remove(0)
    }

    fn verdict(decision: Decision, score: f64, failed_checks: usize) -> Verdict {
        Verdict {
            score,
            decision,
            reason: "because".into(),
            checks: (0..failed_checks)
                .map(|i| Check {
                    name: format!("c{i}"),
                    passed: false,
                    message: None,
                })
                .collect(),
            details: None,
        }
    }

    fn verdicts(v: Vec<Verdict>) -> CaseResult {
        CaseResult {
            verdicts: v.into_iter().map(Some).collect(),
            ..CaseResult::default()
        }
    }

    fn failure(code: &str, message: &str) -> CallFailure {
        CallFailure {
            call: "verify".into(),
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn parses_lines_comments_and_defaults() {
        let text = "// a comment\n\n{\"candidate\": \"x\"}\n  // indented comment\n{\"name\": \"n\", \"prompt\": \"p\", \"config\": {\"a\": \"1\", \"b\": 2, \"c\": true, \"d\": {\"k\": [1]}}}\n";
        let cases = parse(text, Path::new("t.jsonl")).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].line, 3);
        assert_eq!(cases[0].display_name(), "case 3");
        assert_eq!(cases[1].display_name(), "n");
        let config = cases[1].plugin_config();
        assert_eq!(config["a"], "1");
        assert_eq!(config["b"], "2");
        assert_eq!(config["c"], "true");
        assert_eq!(config["d"], "{\"k\":[1]}");
        let task = cases[1].build_task();
        assert_eq!(task.prompt(), "p");
        assert_eq!(task.id, "case-5");
    }

    #[test]
    fn parse_errors_name_the_line() {
        let err = parse(
            "{\"candidate\": \"x\"}\n{\"expect\": {\"decison\": \"accept\"}}",
            Path::new("c.jsonl"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("c.jsonl:2: "), "{text}");
        assert!(text.contains("decison"), "{text}");
        let err = parse(
            "{\"candidate\": \"x\", \"expect\": {\"score\": [1, 0]}}",
            Path::new("c.jsonl"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        assert!(matches!(
            parse("// only a comment\n", Path::new("c.jsonl")),
            Err(CasesError::Empty(_))
        ));
        assert!(parse("not json", Path::new("c.jsonl")).is_err());
    }

    #[test]
    fn task_from_task_field_with_extra_tags_and_metadata() {
        let c = case(
            r#"{"task": {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}], "tags": ["a"]}, "tags": ["b"], "metadata": {"reference": "42"}}"#,
        );
        let t = c.build_task();
        assert_eq!(t.prompt(), "q");
        assert_eq!(t.tags, ["a", "b"]);
        assert_eq!(t.metadata["reference"], "42");
    }

    #[test]
    fn options_merge_limits_and_grants() {
        let c = case(
            r#"{"limits": {"deadline_ms": 200, "memory_mib": 64, "fuel": 1000}, "grants": ["model"]}"#,
        );
        let o = c.plugin_options(&PluginOptions::default()).unwrap();
        assert_eq!(o.limits.deadline, Duration::from_millis(200));
        assert_eq!(o.limits.memory_bytes, 64 << 20);
        assert_eq!(o.limits.fuel, 1000);
        assert!(o.grants.contains("model") && !o.grants.contains("stats"));
        let bad = case(r#"{"grants": ["network"]}"#);
        assert!(bad.plugin_options(&PluginOptions::default()).is_err());
        assert!(parse(r#"{"limits": {"deadline": 1}}"#, Path::new("c")).is_err());
    }

    #[test]
    fn decision_score_and_checks() {
        let c = case(
            r#"{"candidate": "x", "expect": {"decision": "reject", "score": [0, 0.5], "checks_failed": 1}}"#,
        );
        let ok = verdicts(vec![verdict(Decision::Reject, 0.25, 1)]);
        assert!(check(&c.expect, 1, &ok, None).is_empty());
        let wrong = verdicts(vec![verdict(Decision::Accept, 0.9, 0)]);
        let f = check(&c.expect, 1, &wrong, None);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(
            f[0].starts_with("decision: expected reject, got accept"),
            "{f:?}"
        );
        assert!(
            f[1].starts_with("score: expected [0, 0.5], got 0.9"),
            "{f:?}"
        );
        assert!(
            f[2].starts_with("checks_failed: expected 1, got 0"),
            "{f:?}"
        );
        // An exact score tolerates float noise only.
        let exact = case(r#"{"candidate": "x", "expect": {"score": 1.0}}"#);
        assert!(check(
            &exact.expect,
            1,
            &verdicts(vec![verdict(Decision::Accept, 1.0 - 1e-12, 0)]),
            None
        )
        .is_empty());
        assert!(!check(
            &exact.expect,
            1,
            &verdicts(vec![verdict(Decision::Accept, 0.99, 0)]),
            None
        )
        .is_empty());
    }

    #[test]
    fn per_candidate_expectations() {
        let c = case(
            r#"{"candidates": ["a", "b"], "expect": {"decision": ["accept", "reject"], "score": [[1, 1], [0, 0.2]], "selected": 0}}"#,
        );
        let mut r = verdicts(vec![
            verdict(Decision::Accept, 1.0, 0),
            verdict(Decision::Reject, 0.1, 0),
        ]);
        r.selection = Some(Selection {
            scores: vec![0.9, 0.1],
            reason: String::new(),
        });
        assert!(check(&c.expect, 2, &r, None).is_empty());
        r.selection = Some(Selection {
            scores: vec![0.1, 0.9],
            reason: String::new(),
        });
        r.verdicts[1] = None;
        let f = check(&c.expect, 2, &r, None);
        assert!(
            f.iter().any(|m| m == "candidate 1: decision: no verdict"),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|m| m.starts_with("selected: expected candidate 0, got 1")),
            "{f:?}"
        );
        // One value applies to every candidate; a list must have one per candidate.
        let all = case(r#"{"candidates": ["a", "b"], "expect": {"decision": "accept"}}"#);
        let both = verdicts(vec![
            verdict(Decision::Accept, 1.0, 0),
            verdict(Decision::Accept, 1.0, 0),
        ]);
        assert!(check(&all.expect, 2, &both, None).is_empty());
        let short = case(r#"{"candidates": ["a", "b"], "expect": {"decision": ["accept"]}}"#);
        assert!(check(&short.expect, 2, &both, None)[0].contains("1 values given for 2"));
        // Ties go to the first candidate.
        let tie = case(r#"{"candidates": ["a", "b"], "expect": {"selected": 0}}"#);
        let mut r = both.clone();
        r.selection = Some(Selection {
            scores: vec![1.0, 1.0],
            reason: String::new(),
        });
        assert!(check(&tie.expect, 2, &r, None).is_empty());
    }

    #[test]
    fn errors_expected_and_unexpected() {
        let wants = case(
            r#"{"candidate": "x", "expect": {"error": "plugin_error", "error_contains": "tolerance"}}"#,
        );
        let none = CaseResult::default();
        assert!(check(
            &wants.expect,
            1,
            &none,
            Some(&failure("plugin_error", "bad tolerance"))
        )
        .is_empty());
        let f = check(
            &wants.expect,
            1,
            &none,
            Some(&failure("trap", "unreachable")),
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].contains("expected `plugin_error`, got `trap`"));
        let f = check(
            &wants.expect,
            1,
            &verdicts(vec![verdict(Decision::Accept, 1.0, 0)]),
            None,
        );
        assert_eq!(
            f,
            ["expected an error `plugin_error`, but every call succeeded"]
        );
        // An unexpected error is the one failure reported.
        let plain = case(r#"{"candidate": "x", "expect": {"decision": "accept"}}"#);
        let f = check(
            &plain.expect,
            1,
            &none,
            Some(&failure("deadline_exceeded", "too slow")),
        );
        assert_eq!(
            f,
            ["unexpected error in verify: [deadline_exceeded] too slow"]
        );
        // An empty expectation only requires success.
        let empty = case(r#"{"candidate": "x"}"#);
        assert!(check(&empty.expect, 1, &none, None).is_empty());
    }

    #[test]
    fn router_and_decomposer_expectations() {
        let c = case(
            r#"{"expect": {"targets": ["a", "b"], "samples": [2, 1], "reason_contains": "cheap"}}"#,
        );
        let step = |t: &str, s: u32| RouteStep {
            target: t.into(),
            samples: s,
            min_score: None,
        };
        let mut r = CaseResult {
            route: Some(RouteDecision {
                steps: vec![step("a", 2), step("b", 1)],
                reason: "cheap first".into(),
            }),
            ..CaseResult::default()
        };
        assert!(check(&c.expect, 0, &r, None).is_empty());
        r.route = Some(RouteDecision {
            steps: vec![step("b", 1)],
            reason: "pricey".into(),
        });
        let f = check(&c.expect, 0, &r, None);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(
            f[1].starts_with("targets: expected [\"a\", \"b\"], got [\"b\"]"),
            "{f:?}"
        );

        let d = case(
            r#"{"answers": ["x", "y"], "expect": {"subtasks": 2, "subtask_ids": ["s1", "s2"], "subtask_prompts": ["p1", "p2"], "answer": "x\ny", "answer_contains": "y"}}"#,
        );
        let sub = |id: &str, p: &str| Subtask {
            id: id.into(),
            prompt: p.into(),
            depends_on: vec![],
            route: None,
            verify: None,
        };
        let mut r = CaseResult {
            plan: Some(Plan {
                subtasks: vec![sub("s1", "p1"), sub("s2", "p2")],
                reason: String::new(),
            }),
            answer: Some("x\ny".into()),
            ..CaseResult::default()
        };
        assert!(check(&d.expect, 0, &r, None).is_empty());
        r.answer = None;
        r.plan.as_mut().unwrap().subtasks.pop();
        let f = check(&d.expect, 0, &r, None);
        assert_eq!(f.len(), 5, "{f:?}");
        assert!(
            f.iter()
                .any(|m| m == "answer: expected \"x\\ny\", got nothing"),
            "{f:?}"
        );
    }

    #[test]
    fn inputs_and_expectations_must_fit_the_kind() {
        let c = case(
            r#"{"candidate": "x", "options": [], "expect": {"targets": ["a"], "decision": "accept"}}"#,
        );
        let p = c.problems(PluginKind::Router);
        assert_eq!(
            p,
            [
                "`candidate` is for verifiers; this plugin is a router",
                "`decision` is for verifiers; this plugin is a router"
            ]
        );
        let p = c.problems(PluginKind::Verifier);
        assert_eq!(
            p,
            [
                "`options` is for routers; this plugin is a verifier",
                "`targets` is for routers; this plugin is a verifier"
            ]
        );
        assert_eq!(
            case(r#"{"prompt": "p"}"#).problems(PluginKind::Verifier),
            ["a verifier case needs `candidate` or `candidates`"]
        );
        assert_eq!(
            case(r#"{"candidate": "a", "candidates": ["b"]}"#).problems(PluginKind::Verifier),
            ["give `candidate` or `candidates`, not both"]
        );
        assert_eq!(
            case(r#"{"expect": {"answer": "x"}}"#).problems(PluginKind::Decomposer),
            ["`answer` and `answer_contains` need `answers` to compose"]
        );
        assert!(case(r#"{"prompt": "p", "answers": []}"#)
            .problems(PluginKind::Decomposer)
            .is_empty());
    }
}
