//! C plugins end to end: the C SDK and `c-numeric-verifier` built from source by the same
//! builder `arbiter plugin build` uses (clang + the embedded bindings generator and
//! adapter), then exercised through the real sandboxed runtime: case files, the shared
//! final-answer vectors (also against the Rust gsm8k-verifier), GSM8K agreement, typed
//! config errors, hostile inputs, the SDK example, the `new` templates, capabilities,
//! freshness and toolchain diagnostics.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arbiter::authoring::c::{self, Toolchain};
use arbiter::authoring::cases::{self, Runner};
use arbiter::authoring::new;
use arbiter::authoring::{self, BuildError, BuildOptions, Language};
use arbiter::runtime::types::*;
use arbiter::runtime::{
    CallContext, Error, Grants, ModelAccess, ModelContext, Plugin, PluginOptions,
};
use common::*;

fn numeric_verifier() -> PathBuf {
    build_project(&repo_root().join("plugins").join("c-numeric-verifier")).remove(0)
}

fn warm() -> PluginOptions {
    PluginOptions {
        warm: true,
        ..PluginOptions::default()
    }
}

async fn load(path: &Path, options: PluginOptions) -> Plugin {
    shared_runtime()
        .load_file(path, options)
        .await
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

fn cfg(pairs: &[(&str, &str)]) -> PluginConfig {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn task_with_reference(reference: Option<&str>) -> Task {
    let mut task = Task::from_prompt("t", "How many?");
    if let Some(r) = reference {
        task.metadata.insert("reference".into(), r.into());
    }
    task
}

fn cand(text: &str) -> Candidate {
    Candidate {
        index: 0,
        model: "m".into(),
        text: text.into(),
        ..Candidate::default()
    }
}

async fn verify(
    plugin: &Plugin,
    config: &PluginConfig,
    reference: Option<&str>,
    text: &str,
) -> Result<Verdict, Error> {
    plugin
        .verify(
            config,
            &task_with_reference(reference),
            &cand(text),
            CallContext::default(),
        )
        .await
        .map(|o| o.value)
}

/// Runs a case file against a component; returns the reports (all must pass).
async fn run_cases(component: &Path, case_file: &Path) -> Vec<cases::CaseReport> {
    let cases = cases::load(case_file).unwrap();
    let mut runner = Runner::new(
        shared_runtime(),
        std::fs::read(component).unwrap(),
        PluginOptions::default(),
    );
    let mut reports = Vec::new();
    for case in &cases {
        reports.push(runner.run(case).await);
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("line {} {}: {:?} {:?}", r.line, r.name, r.failures, r.error))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases of {} failed against {}:\n{}",
        failed.len(),
        reports.len(),
        case_file.display(),
        component.display(),
        failed.join("\n")
    );
    reports
}

/// `details.final_answer` of each verdict of each report (None: null or absent).
fn final_answers(reports: &[cases::CaseReport]) -> Vec<Option<f64>> {
    reports
        .iter()
        .flat_map(|r| r.result.as_ref().expect("a result").verdicts.iter())
        .map(|v| {
            v.as_ref()
                .and_then(|v| v.details.as_ref())
                .and_then(|d| d["final_answer"].as_f64())
        })
        .collect()
}

// ---------------------------------------------------------------- the numeric verifier

#[tokio::test]
async fn numeric_verifier_builds_and_declares_itself() {
    let path = numeric_verifier();
    assert_eq!(path.file_name().unwrap(), "c-numeric-verifier.wasm");
    let plugin = load(&path, PluginOptions::default()).await;
    assert_eq!(plugin.kind(), PluginKind::Verifier);
    let info = plugin.info();
    assert_eq!(info.name, "c-numeric-verifier");
    assert!(info.stateless);
    let keys: Vec<&str> = info.config_keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(keys, ["tolerance", "tolerance-mode"]);
    // World `verifier`: no capability, and logging or WASI imports only.
    assert!(plugin.summary().capabilities.is_empty());
    assert!(plugin
        .summary()
        .exports
        .iter()
        .any(|e| e == "arbiter:plugin/verification@0.2.0"));
}

#[tokio::test]
async fn numeric_verifier_passes_its_cases() {
    let dir = repo_root().join("plugins").join("c-numeric-verifier");
    let reports = run_cases(&numeric_verifier(), &dir.join("cases.jsonl")).await;
    assert!(reports.len() >= 15, "{} cases", reports.len());
}

#[tokio::test]
async fn final_answer_vectors_agree_with_the_rust_verifier() {
    let vectors = repo_root()
        .join("tests")
        .join("vectors")
        .join("final-answer.jsonl");
    // Decisions (the expectations in the file) against the C verifier.
    let c_reports = run_cases(&numeric_verifier(), &vectors).await;
    // The Rust gsm8k-verifier ignores the reference and may reject for its own reasons
    // (a wrong step), so only its extracted final answer is compared, vector by vector.
    let rust = reference_plugin("gsm8k-verifier");
    let cases = cases::load(&vectors).unwrap();
    let mut runner = Runner::new(
        shared_runtime(),
        std::fs::read(&rust).unwrap(),
        PluginOptions::default(),
    );
    let mut rust_reports = Vec::new();
    for case in &cases {
        let mut case = case.clone();
        case.expect = Default::default();
        rust_reports.push(runner.run(&case).await);
    }
    let c_answers = final_answers(&c_reports);
    let rust_answers = final_answers(&rust_reports);
    assert_eq!(c_answers.len(), cases.len());
    let mismatches: Vec<String> = cases
        .iter()
        .zip(c_answers.iter().zip(&rust_answers))
        .filter(|(_, (c, r))| match (c, r) {
            (Some(c), Some(r)) => (c - r).abs() > 1e-9 * c.abs().max(1.0),
            (None, None) => false,
            _ => true,
        })
        .map(|(case, (c, r))| format!("{}: C {c:?}, Rust {r:?}", case.display_name()))
        .collect();
    assert!(
        mismatches.is_empty(),
        "C and Rust extract different final answers:\n{}",
        mismatches.join("\n")
    );
    // The vectors exercise every rule, and a case without any number.
    let rules: Vec<String> = c_reports
        .iter()
        .flat_map(|r| r.result.as_ref().unwrap().verdicts.iter().flatten())
        .filter_map(|v| v.details.as_ref()?["rule"].as_str().map(String::from))
        .collect();
    for rule in ["marker", "answer-phrase", "last-number"] {
        assert!(rules.iter().any(|r| r == rule), "no vector uses {rule}");
    }
    assert!(c_answers.iter().any(Option::is_none));
}

/// p50 and mean of call times, in microseconds.
fn p50_mean_us(mut samples: Vec<std::time::Duration>) -> (f64, f64) {
    samples.sort();
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    let mean = samples.iter().map(|d| us(*d)).sum::<f64>() / samples.len() as f64;
    (us(samples[samples.len() / 2]), mean)
}

#[tokio::test]
async fn numeric_verifier_agrees_with_gsm8k_labels() {
    let plugin = load(&numeric_verifier(), warm()).await;
    let config = PluginConfig::new();
    let (mut total, mut agree) = (0usize, 0usize);
    let mut disagreements = Vec::new();
    let mut times = Vec::new();
    let rows = dataset("gsm8k-dev.jsonl");
    for row in &rows {
        let reference = row["reference"].as_str().unwrap();
        for candidate in row["candidates"].as_array().unwrap() {
            let text = candidate["text"].as_str().unwrap();
            let label = candidate["correct"].as_bool().unwrap();
            let started = std::time::Instant::now();
            let verdict = verify(&plugin, &config, Some(reference), text)
                .await
                .unwrap();
            times.push(started.elapsed());
            let accepted = verdict.decision == Decision::Accept;
            total += 1;
            if accepted == label {
                agree += 1;
            } else {
                disagreements.push(format!("{} ({}): {}", row["id"], reference, verdict.reason));
            }
        }
    }
    let rate = agree as f64 / total as f64;
    println!(
        "GSM8K dev: the C numeric verifier agrees with the `correct` labels on {agree} of {total} candidates ({:.1}%)",
        rate * 100.0
    );
    for d in disagreements.iter().take(10) {
        println!("  disagrees: {d}");
    }
    // The same rows through the Rust gsm8k-verifier (a heavier check: it re-evaluates
    // every calculation), warm instances both, for a relative speed figure.
    let rust = load(&reference_plugin("gsm8k-verifier"), warm()).await;
    let mut rust_times = Vec::new();
    for row in &rows {
        for candidate in row["candidates"].as_array().unwrap() {
            let started = std::time::Instant::now();
            verify(&rust, &config, None, candidate["text"].as_str().unwrap())
                .await
                .unwrap();
            rust_times.push(started.elapsed());
        }
    }
    let (c50, cmean) = p50_mean_us(times);
    let (r50, rmean) = p50_mean_us(rust_times);
    println!(
        "warm verify on GSM8K candidates: C numeric p50 {c50:.1} µs mean {cmean:.1} µs; \
         Rust gsm8k-verifier p50 {r50:.1} µs mean {rmean:.1} µs"
    );
    // The labels compare the last run of digits, so "$20.00" is labelled wrong for a
    // reference of 20 and "0.84" right for 84: a few disagreements are the labels'.
    assert!(total > 1000, "{total} candidates");
    assert!(rate >= 0.95, "agreement {rate:.3} is below 95%");
}

#[tokio::test]
async fn bad_config_is_a_typed_plugin_error() {
    let plugin = load(&numeric_verifier(), PluginOptions::default()).await;
    for (config, needle) in [
        (cfg(&[("tolerance", "-1")]), "tolerance"),
        (cfg(&[("tolerance", "abc")]), "tolerance"),
        (cfg(&[("tolerance", "inf")]), "tolerance"),
        (cfg(&[("tolerance-mode", "fuzzy")]), "tolerance-mode"),
        (
            cfg(&[("tolerance", "1"), ("tolerance-mode", "relative")]),
            "relative",
        ),
        (cfg(&[("tolerence", "0.1")]), "unknown setting `tolerence`"),
    ] {
        for result in [
            plugin.check_config(&config).await.map(|_| ()),
            verify(&plugin, &config, Some("1"), "1").await.map(|_| ()),
        ] {
            match result {
                Err(Error::Plugin(PluginFailure::InvalidConfig(m))) => {
                    assert!(m.contains(needle), "{config:?}: {m}")
                }
                other => panic!("{config:?}: {other:?}"),
            }
        }
    }
    plugin
        .check_config(&cfg(&[
            ("tolerance", "0.01"),
            ("tolerance-mode", "relative"),
        ]))
        .await
        .unwrap();
    // A task problem is an input error, not a config error.
    match verify(&plugin, &PluginConfig::new(), Some("n/a"), "#### 1").await {
        Err(Error::Plugin(PluginFailure::InvalidInput(m))) => {
            assert!(m.contains("reference"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn hostile_inputs_are_judged_not_crashed_on() {
    let plugin = load(&numeric_verifier(), PluginOptions::default()).await;
    let none = PluginConfig::new();
    let mb = 1 << 20;
    let cases: Vec<(String, Decision, &str)> = vec![
        ("x".repeat(mb), Decision::Reject, "no number"),
        (
            "no digits at all, only words ".repeat(mb / 29),
            Decision::Reject,
            "no number",
        ),
        (
            format!("{}\n#### 42", "filler 7 ".repeat(mb / 9)),
            Decision::Accept,
            "matches",
        ),
        (
            format!("{}#### 42", "#### ".repeat(mb / 5)),
            Decision::Accept,
            "matches",
        ),
        ("answer ".repeat(mb / 7), Decision::Reject, "no number"),
        (
            format!("the answer is {}", "9".repeat(mb)),
            Decision::Reject,
            "differs",
        ),
        (",".repeat(mb) + "42", Decision::Accept, "matches"),
        // Sign and currency noise: the last `-$42` is minus 42.
        ("-$".repeat(mb / 2) + "42", Decision::Reject, "differs"),
        (
            "été ✓ 四十二 🚀".repeat(mb / 30),
            Decision::Reject,
            "no number",
        ),
        (String::new(), Decision::Reject, "no number"),
    ];
    for (text, decision, reason) in &cases {
        let v = verify(&plugin, &none, Some("42"), text)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{} bytes starting {:?}: {e}",
                    text.len(),
                    &text[..text.len().min(20)]
                )
            });
        assert_eq!(
            v.decision,
            *decision,
            "{:?}: {}",
            &text[..text.len().min(20)],
            v.reason
        );
        assert!(v.reason.contains(reason), "{}", v.reason);
        assert!(v.reason.len() < 300, "reason of {} bytes", v.reason.len());
        // A thousand-digit "number" is not finite: its details say null, still valid JSON.
        let details = v.details.expect("details");
        assert!(details.is_object(), "{details}");
    }
    // A megabyte reference is an input error with a short message.
    match verify(&plugin, &none, Some(&"z".repeat(mb)), "#### 1").await {
        Err(Error::Plugin(PluginFailure::InvalidInput(m))) => assert!(m.len() < 300, "{}", m.len()),
        other => panic!("{other:?}"),
    }
    // No reference at all: abstain.
    let v = verify(&plugin, &none, None, "#### 1").await.unwrap();
    assert_eq!(v.decision, Decision::Abstain);
    assert_eq!(v.score, 0.5);
}

#[tokio::test]
async fn warm_instances_keep_state_per_config() {
    // The SDK caches the state `_new` built while the settings stay the same, and rebuilds
    // it when they change; a warm instance serves both settings correctly in turn.
    let plugin = load(&numeric_verifier(), warm()).await;
    assert!(plugin.is_warm());
    let loose = cfg(&[("tolerance", "0.5")]);
    let tight = PluginConfig::new();
    for _ in 0..3 {
        let v = verify(&plugin, &loose, Some("18"), "#### 18.4")
            .await
            .unwrap();
        assert_eq!(v.decision, Decision::Accept);
        let v = verify(&plugin, &tight, Some("18"), "#### 18.4")
            .await
            .unwrap();
        assert_eq!(v.decision, Decision::Reject);
    }
    // A refused config leaves the instance usable.
    assert!(
        verify(&plugin, &cfg(&[("tolerance", "-2")]), Some("1"), "1")
            .await
            .is_err()
    );
    let v = verify(&plugin, &loose, Some("18"), "#### 18.4")
        .await
        .unwrap();
    assert_eq!(v.decision, Decision::Accept);
}

// ---------------------------------------------------------------- the SDK

#[tokio::test]
async fn sdk_example_builds_and_runs() {
    let dir = repo_root().join("sdk").join("c").join("example");
    // The README shows the example verbatim.
    let readme = std::fs::read_to_string(repo_root().join("sdk/c/README.md")).unwrap();
    for file in ["keywords.c", "arbiter.toml"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            readme.contains(&text),
            "sdk/c/README.md does not show {file} as it is"
        );
    }
    let path = build_project(&dir).remove(0);
    let plugin = load(&path, PluginOptions::default()).await;
    assert_eq!(plugin.info().name, "keywords");
    let config = cfg(&[("required", "cat, hat ,bat")]);
    let v = verify(&plugin, &config, None, "a cat in a hat")
        .await
        .unwrap();
    assert_eq!(v.decision, Decision::Reject);
    assert!((v.score - 2.0 / 3.0).abs() < 1e-9, "{}", v.score);
    let failed: Vec<&str> = v
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failed, ["bat"]);
    assert_eq!(
        v.checks
            .iter()
            .find(|c| c.name == "bat")
            .unwrap()
            .message
            .as_deref(),
        Some("`bat` is missing")
    );
    let out = plugin
        .verify(
            &config,
            &task_with_reference(None),
            &cand("bat, cat and hat"),
            CallContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.value.decision, Decision::Accept);
    assert_eq!(out.value.score, 1.0);
    assert!(
        out.stats
            .logs
            .iter()
            .any(|l| l.message.contains("checked 3 words")),
        "{:?}",
        out.stats.logs
    );
    // Settings errors come from the SDK's helpers, typed.
    for (config, needle) in [
        (cfg(&[("required", " , ")]), "required"),
        (
            cfg(&[("require", "x")]),
            "unknown setting `require` (known: required)",
        ),
    ] {
        match plugin.check_config(&config).await {
            Err(Error::Plugin(PluginFailure::InvalidConfig(m))) => {
                assert!(m.contains(needle), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Writes a one-file C project into a fresh temporary folder.
/// Contract 0.2.0 through the C SDK: a verifier sees the task's tools, the tool calls of
/// its messages and of the candidate, and the candidate's logprobs; `arbiter plugin test`
/// runs the same vectors against the component.
#[tokio::test]
async fn a_c_verifier_sees_tools_tool_calls_and_logprobs() {
    let wasm = check_tool_call_vectors(shared_runtime(), "c-tool-check").await;
    let vectors = repo_root().join("tests/vectors/tool-calls.jsonl");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args(["plugin", "test", "--json", "--cases"])
        .arg(&vectors)
        .arg(&wasm)
        .output()
        .unwrap();
    assert_exit_ok(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_eq!(
        report["passed"].as_u64(),
        Some(cases::load(&vectors).unwrap().len() as u64),
        "{report:#}"
    );
}

fn c_project(name: &str, kind: &str, capabilities: &str, source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("arbiter.toml"),
        format!(
            "[plugin]\nname = \"{name}\"\nlanguage = \"c\"\nkind = \"{kind}\"\n\
             sources = [\"plugin.c\"]\ncapabilities = {capabilities}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("plugin.c"), source).unwrap();
    dir
}

fn build_in(dir: &Path) -> Result<authoring::BuildOutput, BuildError> {
    authoring::build(
        dir,
        &BuildOptions {
            target_dir: Some(dir.join("target")),
            ..BuildOptions::default()
        },
    )
}

const JUDGE: &str = r#"
#include "arbiter.h"

arbiter_plugin_info_t arbiter_verifier_info(void) {
    return arbiter_plugin_info_verifier("c-judge", "0.1.0", "asks a model");
}
bool arbiter_verifier_new(const arbiter_config_t *config, void **self, arbiter_plugin_error_t *err) {
    (void)config; (void)err; *self = NULL; return true;
}
bool arbiter_verifier_verify(const void *self, const arbiter_task_t *task, const arbiter_candidate_t *candidate, arbiter_verdict_t *verdict, arbiter_plugin_error_t *err) {
    (void)self; (void)task;
    arbiter_string_t question = arbiter_string_format("Is `%.*s` a good answer?", (int)candidate->text.len, (const char *)candidate->text.ptr);
    arbiter_message_t messages[] = {arbiter_message_user(question)};
    arbiter_completion_t completion;
    arbiter_model_error_t model_err;
    bool ok = arbiter_model_complete(messages, 1, NULL, 16, &completion, &model_err);
    arbiter_string_free(&question);
    if (!ok) {
        arbiter_model_error_free(&model_err);
        return arbiter_plugin_error_failed(err, "model error %d", model_err.tag);
    }
    bool yes = completion.text.len >= 3 && arbiter_string_eq((arbiter_string_t){completion.text.ptr, 3}, "yes");
    *verdict = arbiter_verdict_new(yes ? ARBITER_DECISION_ACCEPT : ARBITER_DECISION_REJECT, yes ? 0.9 : 0.1, "judged by %.*s", (int)completion.model.len, (const char *)completion.model.ptr);
    arbiter_completion_free(&completion);
    return true;
}
"#;

struct YesJudge;

#[async_trait::async_trait]
impl ModelAccess for YesJudge {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ModelError> {
        assert_eq!(request.messages[0].role, "user");
        assert_eq!(request.messages[0].content, "Is `42` a good answer?");
        assert_eq!(request.max_tokens, Some(16));
        Ok(Completion {
            text: "yes, it is".into(),
            model: "judge-1".into(),
            input_tokens: 10,
            output_tokens: 3,
        })
    }
}

#[tokio::test]
async fn model_capability_needs_the_manifest_and_the_grant() {
    // Without `capabilities = ["model"]` the call does not even compile, and says why.
    let dir = c_project("c-judge", "verifier", "[]", JUDGE);
    match build_in(dir.path()) {
        Err(BuildError::Failed { output, .. }) => {
            assert!(output.contains("capabilities = [\"model\"]"), "{output}")
        }
        other => panic!("{other:?}"),
    }
    // With it, the plugin targets `model-verifier`: it loads only where granted.
    let dir = c_project("c-judge", "verifier", "[\"model\"]", JUDGE);
    let path = build_in(dir.path()).unwrap().components.remove(0);
    match shared_runtime()
        .load_file(&path, PluginOptions::default())
        .await
    {
        Err(Error::CapabilityNotGranted { capability, .. }) => assert_eq!(capability, "model"),
        other => panic!("{:?}", other.map(|p| p.info().clone())),
    }
    let granted = PluginOptions {
        grants: Grants::from_names(&["model"]).unwrap(),
        ..PluginOptions::default()
    };
    let plugin = load(&path, granted).await;
    assert_eq!(plugin.summary().capabilities, ["model"]);
    let ctx = CallContext {
        model: Some(ModelContext::new(Arc::new(YesJudge))),
        ..CallContext::default()
    };
    let v = plugin
        .verify(
            &PluginConfig::new(),
            &task_with_reference(None),
            &cand("42"),
            ctx,
        )
        .await
        .unwrap()
        .value;
    assert_eq!(v.decision, Decision::Accept);
    assert_eq!(v.reason, "judged by judge-1");
    // Granted, but no model service for this call: the plugin's own error, not a crash.
    match verify(&plugin, &PluginConfig::new(), None, "42").await {
        Err(Error::Plugin(PluginFailure::Failed(m))) => assert!(m.contains("model error 0"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_hook_failing_without_a_message_is_named() {
    let source = r#"
#include "arbiter.h"
arbiter_plugin_info_t arbiter_verifier_info(void) {
    return arbiter_plugin_info_verifier("c-silent", "0.1.0", "fails quietly");
}
bool arbiter_verifier_new(const arbiter_config_t *config, void **self, arbiter_plugin_error_t *err) {
    (void)config; (void)err; *self = NULL; return true;
}
bool arbiter_verifier_verify(const void *self, const arbiter_task_t *task, const arbiter_candidate_t *candidate, arbiter_verdict_t *verdict, arbiter_plugin_error_t *err) {
    (void)self; (void)task; (void)candidate; (void)err;
    *verdict = arbiter_verdict_accept(5.0, "half-built");
    return false;
}
"#;
    let dir = c_project("c-silent", "verifier", "[]", source);
    let path = build_in(dir.path()).unwrap().components.remove(0);
    let plugin = load(&path, PluginOptions::default()).await;
    match verify(&plugin, &PluginConfig::new(), None, "x").await {
        Err(Error::Plugin(PluginFailure::Failed(m))) => {
            assert!(m.contains("arbiter_verifier_verify returned false"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- building

#[test]
fn builds_are_skipped_when_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let project = new::create(Language::C, PluginKind::Verifier, "fresh-check", dir.path())
        .unwrap()
        .dir;
    let first = build_in(&project).unwrap();
    assert_eq!(first.language, Language::C);
    assert!(first.rebuilt);
    assert_eq!(
        first.components,
        [project.join("target").join("fresh-check.wasm")]
    );
    let second = build_in(&project).unwrap();
    assert!(!second.rebuilt, "an unchanged project was rebuilt");
    // A changed source rebuilds; a compile error names the file and line.
    let source = project.join("src").join("plugin.c");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, text.replace("(at least %lld)", "(>= %lld)")).unwrap();
    assert!(build_in(&project).unwrap().rebuilt);
    std::fs::write(&source, format!("{text}\nint broken(void) {{ return }}\n")).unwrap();
    match build_in(&project) {
        Err(BuildError::Failed { output, .. }) => {
            assert!(
                output.contains("plugin.c:") && output.contains("error"),
                "{output}"
            )
        }
        other => panic!("{other:?}"),
    }
    // The failed build left the last good component in place.
    assert!(project.join("target").join("fresh-check.wasm").is_file());
}

#[test]
fn missing_toolchain_says_what_to_install() {
    let apt = "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32";
    match Toolchain::with("/nonexistent/bin/clang".into(), None) {
        Err(e @ BuildError::MissingToolchain { .. }) => {
            let m = e.to_string();
            assert!(m.contains("clang") && m.contains(apt), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // A clang without wasi-libc (here: an empty sysroot) is caught before the plugin's
    // own sources could produce confusing errors.
    let empty = tempfile::tempdir().unwrap();
    let toolchain = Toolchain::with("clang".into(), Some(empty.path().to_path_buf())).unwrap();
    match toolchain.check() {
        Err(e @ BuildError::MissingToolchain { .. }) => {
            let m = e.to_string();
            assert!(m.contains("wasi-libc") && m.contains(apt), "{m}");
        }
        other => panic!("{other:?}"),
    }
    Toolchain::find().unwrap().check().unwrap();
}

#[test]
fn bad_manifests_are_refused_clearly() {
    let dir = c_project("c-bad", "judge", "[]", "int x;\n");
    match build_in(dir.path()) {
        Err(BuildError::InvalidManifest { message, .. }) => {
            assert!(message.contains("judge"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let dir = c_project("c-bad", "router", "[\"model\"]", "int x;\n");
    match build_in(dir.path()) {
        Err(BuildError::InvalidManifest { message, .. }) => {
            assert!(message.contains("stats"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c::MANIFEST, "arbiter.toml");
}

// ---------------------------------------------------------------- templates

#[tokio::test]
async fn templates_pass_the_shared_vectors() {
    let dir = tempfile::tempdir().unwrap();
    for kind in PluginKind::ALL {
        let name = format!("c-tmpl-{kind}");
        let project = new::create(Language::C, kind, &name, dir.path()).unwrap();
        let files: Vec<String> = project
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        for f in [
            "arbiter.toml",
            "src/plugin.c",
            "README.md",
            "cases.jsonl",
            ".gitignore",
        ] {
            assert!(
                files.iter().any(|x| x == f),
                "{kind}: {f} missing from {files:?}"
            );
        }
        let readme = std::fs::read_to_string(project.dir.join("README.md")).unwrap();
        assert!(readme.contains(&format!("target/{name}.wasm")) && !readme.contains("{{"));
        let built = build_in(&project.dir).unwrap();
        assert_eq!(built.language, Language::C);
        let component = &built.components[0];
        let plugin = load(component, PluginOptions::default()).await;
        assert_eq!(plugin.kind(), kind);
        assert_eq!(plugin.info().name, name);
        // The project's cases.jsonl is the kind's shared vectors.
        let reports = run_cases(component, &project.dir.join("cases.jsonl")).await;
        assert!(reports.len() >= 5, "{kind}: {} cases", reports.len());
    }
}
