//! JavaScript and TypeScript plugins end to end: the reference TypeScript verifier built
//! from source with the builder `arbiter plugin build` runs (`authoring::build`) and
//! called through the real sandbox; the shared JSON-schema vectors run against the Rust
//! and the TypeScript verifier, which must decide alike; the `new` templates of both
//! languages built and held to their kind's shared vectors; the SDK's committed
//! generated files and its unit tests.
//!
//! Needs Node.js and the pinned tools in `sdk/js/node_modules` (`npm ci` in `sdk/js`,
//! which `.ci/run` does).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arbiter::authoring::snapshot::WarmUp;
use arbiter::authoring::{self, cases, js, new, BuildOptions, Language};
use arbiter::runtime::types::*;
use arbiter::runtime::{CallContext, Error, Limits, Plugin, PluginOptions};
use common::*;

fn js_verifier() -> PathBuf {
    build_project(&repo_root().join("plugins").join("js-structured-verifier")).remove(0)
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

fn cand(text: &str) -> Candidate {
    Candidate {
        index: 0,
        model: "m".into(),
        text: text.into(),
        ..Candidate::default()
    }
}

async fn verify(plugin: &Plugin, config: &PluginConfig, text: &str) -> Result<Verdict, Error> {
    plugin
        .verify(
            config,
            &Task::from_prompt("t", "Reply with JSON."),
            &cand(text),
            CallContext::default(),
        )
        .await
        .map(|o| o.value)
}

const PERSON: &str = r#"{"type":"object","required":["name","age"],"properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}}}"#;

#[tokio::test]
async fn the_component_imports_no_wasi_http() {
    let path = js_verifier();
    assert!(
        path.ends_with("js-structured-verifier.wasm"),
        "{}",
        path.display()
    );
    let imports = js::component_imports(&std::fs::read(&path).unwrap()).unwrap();
    assert!(
        imports.iter().all(|i| !i.starts_with("wasi:http")),
        "{imports:?}"
    );
    assert!(
        imports.iter().any(|i| i == "arbiter:plugin/log@0.2.0"),
        "{imports:?}"
    );
    // The runtime agrees: it loads with no grant, as a verifier needing no capability.
    let plugin = load(&path, PluginOptions::default()).await;
    assert_eq!(plugin.kind(), PluginKind::Verifier);
    assert_eq!(plugin.info().name, "js-structured-verifier");
    assert!(plugin.info().stateless);
    assert!(plugin.summary().capabilities.is_empty());
    let keys: Vec<&str> = plugin
        .info()
        .config_keys
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(keys, ["schema", "pattern", "extract", "max-errors"]);
}

#[tokio::test]
async fn an_unchanged_project_is_not_rebuilt() {
    let dir = repo_root().join("plugins").join("js-structured-verifier");
    let first = js_verifier();
    let options = BuildOptions {
        target_dir: Some(wasm_target_dir()),
        ..BuildOptions::default()
    };
    let started = Instant::now();
    let again = authoring::build(&dir, &options).unwrap();
    assert_eq!(again.language, Language::TypeScript);
    assert!(!again.rebuilt);
    assert_eq!(again.components, vec![first]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn verifies_schema_and_pattern_from_the_settings() {
    let plugin = load(&js_verifier(), PluginOptions::default()).await;
    let schema = cfg(&[("schema", PERSON)]);
    plugin.check_config(&schema).await.unwrap();

    let ok = verify(&plugin, &schema, r#"{"name":"Ada","age":36}"#)
        .await
        .unwrap();
    assert_eq!(ok.decision, Decision::Accept, "{ok:?}");
    assert_eq!(ok.score, 1.0);
    let fenced = verify(
        &plugin,
        &schema,
        "Sure!\n```json\n{\"name\":\"Ada\",\"age\":36}\n```",
    )
    .await
    .unwrap();
    assert_eq!(fenced.decision, Decision::Accept, "{fenced:?}");

    let bad = verify(&plugin, &schema, r#"{"name":"Ada","age":-1}"#)
        .await
        .unwrap();
    assert_eq!(bad.decision, Decision::Reject);
    assert!(bad.score > 0.0 && bad.score <= 0.3, "{bad:?}");
    assert!(
        bad.checks
            .iter()
            .any(|c| !c.passed && c.name == "at `/age`"),
        "{bad:?}"
    );

    let none = verify(&plugin, &schema, "I would rather not.")
        .await
        .unwrap();
    assert_eq!(none.decision, Decision::Reject);
    assert_eq!(none.score, 0.0);
    assert!(none.reason.contains("no JSON"), "{none:?}");

    // `pattern` alone: the trimmed answer must match.
    let pattern = cfg(&[("pattern", r"^\d{4}-\d{2}-\d{2}$")]);
    plugin.check_config(&pattern).await.unwrap();
    let date = verify(&plugin, &pattern, " 2024-02-29\n").await.unwrap();
    assert_eq!(date.decision, Decision::Accept, "{date:?}");
    let prose = verify(&plugin, &pattern, "It was 2024-02-29.")
        .await
        .unwrap();
    assert_eq!(prose.decision, Decision::Reject);
    assert_eq!(prose.score, 0.0);
    assert!(prose
        .checks
        .iter()
        .any(|c| c.name == "pattern" && !c.passed));

    // Both: each failure is a check, and a schema-valid answer in the wrong form fails.
    let both = cfg(&[
        ("schema", PERSON),
        ("pattern", r"^\{"),
        ("extract", "strict"),
    ]);
    let v = verify(&plugin, &both, r#"{"name":"Ada","age":36}"#)
        .await
        .unwrap();
    assert_eq!(v.decision, Decision::Accept, "{v:?}");
    assert_eq!(v.checks.len(), 2);
    let v = verify(&plugin, &both, r#" {"name":"Ada","age":-1}"#)
        .await
        .unwrap();
    assert_eq!(v.decision, Decision::Reject);
}

#[tokio::test]
async fn bad_settings_are_typed_plugin_errors() {
    let plugin = load(&js_verifier(), PluginOptions::default()).await;
    for (config, needle) in [
        (cfg(&[]), "schema"),
        (cfg(&[("schema", "{not json")]), "not JSON"),
        (
            cfg(&[("schema", r#"{"type":"strng"}"#)]),
            "not a valid JSON Schema",
        ),
        (cfg(&[("schema", PERSON), ("extract", "fuzzy")]), "extract"),
        (
            cfg(&[("schema", PERSON), ("max-errors", "many")]),
            "max-errors",
        ),
        (cfg(&[("schema", PERSON), ("typo", "1")]), "typo"),
        (cfg(&[("pattern", "(unclosed")]), "regular expression"),
    ] {
        let err = plugin.check_config(&config).await.unwrap_err();
        match &err {
            Error::Plugin(PluginFailure::InvalidConfig(m)) => {
                assert!(m.contains(needle), "{config:?}: {m}")
            }
            other => panic!("{config:?}: expected invalid-config, got {other:?}"),
        }
    }
}

/// Answers are untrusted model output: none may crash the verifier, leak into a later
/// call, or run past its deadline unbounded.
#[tokio::test]
async fn hostile_candidates_cannot_break_the_verifier() {
    // Warm instances: a leak between calls would show in the second call. The deadline
    // is generous because the machine running the tests may be busy: what is tested is
    // that every answer gets a verdict, with work bounded by the answer's size.
    let options = PluginOptions {
        warm: true,
        limits: Limits {
            deadline: Duration::from_secs(10),
            ..Limits::default()
        },
        ..PluginOptions::default()
    };
    let plugin = load(&js_verifier(), options).await;
    assert!(plugin.is_warm());
    let required = cfg(&[("schema", r#"{"type":"object","required":["polluted"]}"#)]);
    for attack in [
        r#"{"__proto__": {"polluted": true}}"#,
        r#"{"constructor": {"prototype": {"polluted": true}}}"#,
        r#"[{"__proto__": {"polluted": true}}]"#,
    ] {
        let v = verify(&plugin, &required, attack).await.unwrap();
        assert_eq!(v.decision, Decision::Reject, "{attack}: {v:?}");
        // A clean object in the next call (same warm instance) has no such property.
        let clean = verify(&plugin, &required, "{}").await.unwrap();
        assert_eq!(
            clean.decision,
            Decision::Reject,
            "after {attack}: {clean:?}"
        );
    }

    let any = cfg(&[("schema", "true")]);
    let started = Instant::now();
    // Hundreds of thousands of unclosed brackets: bounded work, no stack overflow.
    let brackets = "[".repeat(300_000);
    let v = verify(&plugin, &any, &brackets).await.unwrap();
    assert_eq!(v.decision, Decision::Reject, "{v:?}");
    let braces = format!("{}{}", "{\"a\":".repeat(50_000), "1");
    assert_eq!(
        verify(&plugin, &any, &braces).await.unwrap().decision,
        Decision::Reject
    );
    // Nesting far past the limit, closed: the whole is not JSON (serde_json's limit), but
    // as in the Rust verifier the innermost 127 levels are a value of their own.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let v = verify(&plugin, &any, &deep).await.unwrap();
    assert_eq!(v.decision, Decision::Accept, "{v:?}");
    let strict = cfg(&[("schema", "true"), ("extract", "strict")]);
    let v = verify(&plugin, &strict, &deep).await.unwrap();
    assert_eq!(v.decision, Decision::Reject, "{v:?}");
    // A large answer with a value at the end.
    let big = format!(
        "{} {{\"a\": \"{}\"}}",
        "word ".repeat(100_000),
        "x".repeat(200_000)
    );
    assert_eq!(
        verify(&plugin, &any, &big).await.unwrap().decision,
        Decision::Accept
    );
    // Lone surrogate escapes, control characters, unterminated strings.
    for text in [
        "[\"\\udfff\"]",
        "{\"a\": \"\u{1}\"}",
        "{\"a\": \"unterminated",
        "\u{0}{}",
    ] {
        verify(&plugin, &any, text).await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );

    // A catastrophic regular expression (operator-chosen) against a hostile answer runs
    // into the deadline; the host stops it and the next call is unaffected.
    let redos = cfg(&[("pattern", "^(a+)+$")]);
    let limited = PluginOptions {
        limits: Limits {
            deadline: Duration::from_millis(300),
            ..Limits::default()
        },
        ..PluginOptions::default()
    };
    let strict = load(&js_verifier(), limited).await;
    let err = verify(&strict, &redos, &format!("{}!", "a".repeat(40)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeadlineExceeded(_)), "{err:?}");
    let fine = verify(&strict, &redos, "aaaa").await.unwrap();
    assert_eq!(fine.decision, Decision::Accept);
}

/// The decision of each call of a case: per candidate, or the error code.
fn decisions(report: &cases::CaseReport) -> Vec<String> {
    if let Some(e) = &report.error {
        return vec![format!("error {}", e.code)];
    }
    report
        .result
        .as_ref()
        .map(|r| {
            r.verdicts
                .iter()
                .map(|v| match v {
                    Some(v) => format!("{:?}", v.decision),
                    None => "failed".into(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn shared_vectors_decide_alike_in_rust_and_typescript() {
    let vectors = cases::load(&repo_root().join("tests/vectors/json-schema.jsonl")).unwrap();
    assert!(vectors.len() >= 50, "{}", vectors.len());
    let mut outcomes = Vec::new();
    for component in [reference_plugin("json-schema-verifier"), js_verifier()] {
        let bytes = std::fs::read(&component).unwrap();
        let mut runner = cases::Runner::new(shared_runtime(), bytes, PluginOptions::default());
        let mut reports = Vec::new();
        for case in &vectors {
            reports.push(runner.run(case).await);
        }
        let failures: Vec<String> = reports
            .iter()
            .filter(|r| !r.passed)
            .map(|r| {
                format!(
                    "line {} {}: {:?} {:?}",
                    r.line, r.name, r.failures, r.result
                )
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{}: {} case(s) failed:\n{}",
            component.display(),
            failures.len(),
            failures.join("\n")
        );
        outcomes.push(reports);
    }
    for (rust, ts) in outcomes[0].iter().zip(&outcomes[1]) {
        assert_eq!(
            decisions(rust),
            decisions(ts),
            "line {} {}",
            rust.line,
            rust.name
        );
    }
}

/// `new` + build + the kind's shared vectors, for a template of `language`.
async fn template_passes_its_vectors(language: Language, kind: PluginKind) {
    let parent = tempfile::tempdir().unwrap();
    let name = format!("tmpl-{}-{kind}", language.short());
    let project = new::create(language, kind, &name, parent.path()).unwrap();
    let manifest = std::fs::read_to_string(project.dir.join("arbiter.toml")).unwrap();
    assert!(
        manifest.contains(&format!("name = \"{name}\"")),
        "{manifest}"
    );
    let options = BuildOptions {
        target_dir: Some(wasm_target_dir().join("js-templates")),
        ..BuildOptions::default()
    };
    let built = authoring::build(&project.dir, &options)
        .unwrap_or_else(|e| panic!("building the {language} {kind} template: {e}"));
    assert!(built.rebuilt);
    // Every template is stateless and has cases: its fresh instances start warm.
    assert!(
        matches!(built.warm_up, Some(WarmUp::Applied { cases }) if cases >= 4),
        "{language} {kind}: {:?}",
        built.warm_up
    );
    let component = built.components[0].clone();
    let cases = cases::load(&project.dir.join("cases.jsonl")).unwrap();
    assert!(cases.len() >= 5, "{language} {kind}");
    let bytes = std::fs::read(&component).unwrap();
    let mut runner = cases::Runner::new(shared_runtime(), bytes, PluginOptions::default());
    for case in &cases {
        let report = runner.run(case).await;
        assert!(
            report.passed,
            "{language} {kind} template, line {} {}: {:?} {:?} {:?}",
            report.line, report.name, report.failures, report.result, report.error
        );
    }
    // Nothing changed: no rebuild. An edit: rebuilt.
    let again = authoring::build(&project.dir, &options).unwrap();
    assert!(!again.rebuilt, "{language} {kind}");
    if language == Language::TypeScript && kind == PluginKind::Verifier {
        let src = project.dir.join("src/index.ts");
        let text = std::fs::read_to_string(&src).unwrap();
        std::fs::write(&src, format!("{text}\n// edited\n")).unwrap();
        assert!(authoring::build(&project.dir, &options).unwrap().rebuilt);
        // A type error fails the build with tsc's message, naming the file.
        std::fs::write(&src, format!("{text}\nconst oops: number = 'text';\n")).unwrap();
        let err = authoring::build(&project.dir, &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("index.ts") && err.contains("TS2322"), "{err}");
    }
}

/// The warm-up snapshot (`authoring::snapshot`) gives the same results for the same
/// cases, and a fresh instance's call does far less work: fuel counts the guest's
/// instructions, so the comparison is deterministic. (Measured 2026-11-29: 2.05 M to
/// 0.82 M instructions for the template's first case.)
#[tokio::test]
async fn the_warm_up_snapshot_keeps_results_and_cuts_a_fresh_calls_work() {
    let parent = tempfile::tempdir().unwrap();
    let project = new::create(
        Language::JavaScript,
        PluginKind::Verifier,
        "warm-js",
        parent.path(),
    )
    .unwrap();
    check_warm_up_snapshot(&project.dir).await;
}

#[tokio::test]
async fn typescript_templates_pass_their_vectors() {
    for kind in PluginKind::ALL {
        template_passes_its_vectors(Language::TypeScript, kind).await;
    }
}

#[tokio::test]
async fn javascript_templates_pass_their_vectors() {
    for kind in PluginKind::ALL {
        template_passes_its_vectors(Language::JavaScript, kind).await;
    }
}

/// Contract 0.2.0 through the JS/TS SDK: a verifier sees the task's tools, the tool
/// calls of its messages and of the candidate, and the candidate's logprobs.
#[tokio::test]
async fn a_typescript_verifier_sees_tools_tool_calls_and_logprobs() {
    check_tool_call_vectors(shared_runtime(), "ts-tool-check").await;
}

fn node(args: &[&str]) {
    let dir = repo_root().join("sdk").join("js");
    let out = Command::new("node")
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("running node (install Node.js 18+)");
    assert!(
        out.status.success(),
        "node {args:?} in sdk/js failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `wit-types/` (generated from the WIT) and `dist/` (compiled from `src/`) are
/// committed and embedded in the binary: they must match their sources.
#[test]
fn the_sdks_generated_files_are_up_to_date() {
    node(&["scripts/gen-types.mjs", "--check"]);
    node(&["scripts/build-sdk.mjs", "--check"]);
}

#[test]
fn the_sdks_unit_tests_pass() {
    node(&["--test", "test/"]);
}
