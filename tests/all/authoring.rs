//! `arbiter plugin new | build | test` as a plugin author runs them: the built binary,
//! real projects in temporary folders, real builds, exit codes and reports.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn arbiter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args(args)
        .env(
            "ARBITER_CACHE_DIR",
            wasm_target_dir().join("authoring-test-cache"),
        )
        // Generated projects share the wasm build artifacts of the other tests.
        .env("CARGO_TARGET_DIR", wasm_target_dir())
        .output()
        .expect("running arbiter")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_ok(args: &[&str]) -> Value {
    let out = arbiter(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&out.stdout)))
}

/// Cases in a case file: its lines that are neither blank nor comments.
fn case_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .count()
}

/// `new` + `build` + `test` of the Rust template of `kind`; returns the project folder
/// (inside `parent`) and its component.
fn new_build_test(kind: &str, parent: &Path) -> (PathBuf, PathBuf) {
    let name = format!("tmpl-{kind}");
    let created = json_ok(&[
        "plugin",
        "new",
        "--lang",
        "rust",
        "--kind",
        kind,
        &name,
        "--dir",
        parent.to_str().unwrap(),
        "--json",
    ]);
    let project = parent.join(&name);
    assert_eq!(created["dir"], project.to_str().unwrap());
    assert_eq!(created["kind"], kind);
    // Self-contained: the SDK and the WIT are in the project, not referenced from here.
    assert!(project
        .join("vendor/arbiter-sdk/wit/v0.2.0/worlds.wit")
        .is_file());
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(!manifest.contains("../"), "{manifest}");
    // The project's cases are the shared vectors of its kind.
    let vectors = repo_root().join(format!("tests/vectors/template-{kind}.jsonl"));
    assert_eq!(
        case_count(&project.join("cases.jsonl")),
        case_count(&vectors)
    );

    let built = json_ok(&["plugin", "build", project.to_str().unwrap(), "--json"]);
    let component = PathBuf::from(built["components"][0].as_str().unwrap());
    assert!(
        component.ends_with(format!("tmpl_{kind}.wasm")),
        "{component:?}"
    );

    let report = json_ok(&["plugin", "test", project.to_str().unwrap(), "--json"]);
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_eq!(report["passed"], case_count(&vectors), "{report:#}");
    for case in report["cases"].as_array().unwrap() {
        assert_eq!(case["passed"], true, "{case:#}");
        assert!(case["wall_us"].as_f64().unwrap() > 0.0, "{case:#}");
        // Fuel is metered; a failed call reports none of its own.
        if case.get("error").is_none() {
            assert!(case["fuel"].as_u64().unwrap() > 0, "{case:#}");
        }
    }
    // The human report: one line per case and the summary.
    let out = arbiter(&["plugin", "test", project.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("PASS"))
            .count(),
        case_count(&vectors),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{} passed, 0 failed", case_count(&vectors))),
        "{stdout}"
    );
    (project, component)
}

#[test]
fn rust_verifier_template_builds_and_passes_and_failures_fail() {
    let parent = tempfile::tempdir().unwrap();
    let (project, component) = new_build_test("verifier", parent.path());

    // A deliberately wrong expectation and an unexpected error make the run fail.
    let cases = project.join("wrong.jsonl");
    std::fs::write(
        &cases,
        concat!(
            "{\"name\": \"right\", \"candidate\": \"yes\", \"expect\": {\"decision\": \"accept\"}}\n",
            "{\"name\": \"deliberately wrong\", \"candidate\": \"\", \"expect\": {\"decision\": \"accept\"}}\n",
            "{\"name\": \"starved\", \"candidate\": \"yes\", \"limits\": {\"fuel\": 1000}}\n",
        ),
    )
    .unwrap();
    let out = arbiter(&[
        "plugin",
        "test",
        project.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("PASS  right"), "{stdout}");
    assert!(stdout.contains("FAIL  deliberately wrong"), "{stdout}");
    assert!(
        stdout.contains("decision: expected accept, got reject"),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL  starved"), "{stdout}");
    assert!(
        stdout.contains("unexpected error in ") && stdout.contains("[fuel_exhausted]"),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed, 2 failed"), "{stdout}");

    // The same through a component file, with the JSON report.
    let out = arbiter(&[
        "plugin",
        "test",
        component.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
        "--json",
    ]);
    assert!(!out.status.success());
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], 1);
    assert_eq!(report["failed"], 2);
    let wrong = &report["cases"][1];
    assert_eq!(wrong["name"], "deliberately wrong");
    assert_eq!(wrong["passed"], false);
    assert_eq!(wrong["result"]["verdicts"][0]["decision"], "reject");
    assert!(wrong["failures"][0]
        .as_str()
        .unwrap()
        .starts_with("decision: expected accept, got reject"));
    assert_eq!(report["cases"][2]["error"]["code"], "fuel_exhausted");

    // A component needs --cases; a malformed case file names the line.
    let out = arbiter(&["plugin", "test", component.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("--cases"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(
        &cases,
        "{\"candidate\": \"x\"}\n{\"expect\": {\"decison\": \"accept\"}}\n",
    )
    .unwrap();
    let out = arbiter(&[
        "plugin",
        "test",
        component.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("wrong.jsonl:2:") && stderr.contains("decison"),
        "{stderr}"
    );

    // `new` never overwrites a project.
    let out = arbiter(&[
        "plugin",
        "new",
        "--lang",
        "rust",
        "--kind",
        "verifier",
        "tmpl-verifier",
        "--dir",
        parent.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("already exists"));
}

#[test]
fn rust_router_template_builds_and_passes() {
    let parent = tempfile::tempdir().unwrap();
    new_build_test("router", parent.path());
}

#[test]
fn rust_decomposer_template_builds_and_passes() {
    let parent = tempfile::tempdir().unwrap();
    new_build_test("decomposer", parent.path());
}

#[test]
fn reference_plugins_pass_their_cases() {
    for name in [
        "gsm8k-verifier",
        "json-schema-verifier",
        "tool-args-verifier",
        "prompt-router",
        "outcome-router",
        "numbered-decomposer",
    ] {
        let dir = repo_root().join("plugins").join(name);
        let report = json_ok(&["plugin", "test", dir.to_str().unwrap(), "--json"]);
        let cases = case_count(&dir.join("cases.jsonl"));
        assert!(cases >= 8, "{name} has only {cases} cases");
        assert_eq!(report["failed"], 0, "{name}: {report:#}");
        assert_eq!(report["passed"], cases, "{name}");
        // Every reference plugin's cases exercise errors too.
        assert!(
            report["cases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["error"]["code"] == "plugin_error"),
            "{name}"
        );
    }
}

/// The Rust reference plugins' own unit tests (they are separate cargo projects, so the
/// workspace's `cargo test` does not reach them). Among them: the GSM8K verifier's scans
/// checked against the regular expressions they replaced.
#[test]
fn rust_reference_plugins_pass_their_unit_tests() {
    for name in [
        "gsm8k-verifier",
        "json-schema-verifier",
        "tool-args-verifier",
        "prompt-router",
        "outcome-router",
        "numbered-decomposer",
    ] {
        let manifest = repo_root().join("plugins").join(name).join("Cargo.toml");
        // Release: the GSM8K scans are compared with regex-lite on ~100k texts.
        let out = Command::new(env!("CARGO"))
            .args(["test", "--release", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .env(
                "CARGO_TARGET_DIR",
                repo_root().join("target").join("plugin-native"),
            )
            .output()
            .expect("running cargo test");
        assert!(
            out.status.success(),
            "{name}'s unit tests failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("test result: ok"),
            "{name}: {}",
            text(&out.stdout)
        );
    }
}

/// A stand-in rustup in `dir` that has no wasm32-wasip2 until `target add` runs, which
/// succeeds or fails as asked.
fn fake_rustup(dir: &Path, add_succeeds: bool) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let add = if add_succeeds {
        "touch \"$here/added\""
    } else {
        "echo 'error: component download failed' >&2; exit 1"
    };
    let script = format!(
        "#!/bin/sh\nhere=$(dirname \"$0\")\n\
         case \"$*\" in\n\
         'target list --installed') [ -f \"$here/added\" ] && echo wasm32-wasip2; echo x86_64-unknown-linux-gnu ;;\n\
         'target add wasm32-wasip2') {add} ;;\n\
         *) exit 2 ;;\nesac\n"
    );
    let path = dir.join("rustup");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `arbiter plugin build` of a Rust project with `rustup` standing in for the real one.
fn build_with_rustup(rustup: &Path) -> Output {
    let dir = repo_root().join("plugins").join("prompt-router");
    Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args(["plugin", "build", dir.to_str().unwrap(), "--json"])
        .env("ARBITER_RUSTUP", rustup)
        .env("CARGO_TARGET_DIR", wasm_target_dir())
        .output()
        .expect("running arbiter")
}

/// A machine with Rust but without the wasm target (the README's first command on a
/// fresh install): the build adds the target through rustup, says so, and goes on.
#[test]
fn a_missing_wasm_target_is_added_through_rustup() {
    let tools = tempfile::tempdir().unwrap();
    let out = build_with_rustup(&fake_rustup(tools.path(), true));
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        tools.path().join("added").is_file(),
        "rustup target add ran"
    );
    let stderr = text(&out.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("arbiter: "))
        .collect();
    assert_eq!(said.len(), 2, "{stderr}");
    assert!(
        said[0].contains("adding it with `rustup target add wasm32-wasip2`"),
        "{stderr}"
    );
    assert!(
        said[1].contains("added the Rust target wasm32-wasip2"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["components"][0]
        .as_str()
        .unwrap()
        .ends_with("prompt_router.wasm"));

    // When adding fails, the error says what to run.
    let tools = tempfile::tempdir().unwrap();
    let out = build_with_rustup(&fake_rustup(tools.path(), false));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    // The announcement, then the error document.
    let err: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Install it with: rustup target add wasm32-wasip2"),
        "{message}"
    );
    assert!(message.contains("component download failed"), "{message}");
}

#[test]
fn other_languages_work_or_say_they_are_not_available() {
    let parent = tempfile::tempdir().unwrap();
    for lang in ["python", "js", "ts", "c"] {
        for kind in ["verifier", "router", "decomposer"] {
            let name = format!("{lang}-{kind}");
            let out = arbiter(&[
                "plugin",
                "new",
                "--lang",
                lang,
                "--kind",
                kind,
                &name,
                "--dir",
                parent.path().to_str().unwrap(),
            ]);
            let project = parent.path().join(&name);
            if out.status.success() {
                // Every language's project ships the shared vectors of its kind.
                let vectors = repo_root().join(format!("tests/vectors/template-{kind}.jsonl"));
                assert_eq!(
                    case_count(&project.join("cases.jsonl")),
                    case_count(&vectors),
                    "{lang} {kind}"
                );
                assert!(project.join("README.md").is_file(), "{lang} {kind}");
            } else {
                let stderr = text(&out.stderr);
                assert!(
                    stderr.contains("not available yet"),
                    "{lang} {kind}: {stderr}"
                );
                assert!(!project.exists(), "{lang} {kind}: nothing is created");
            }
        }
    }
    let out = arbiter(&[
        "plugin", "new", "--lang", "rust", "--kind", "verifier", "Bad Name",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("invalid plugin name"));
    let out = arbiter(&[
        "plugin", "new", "--lang", "cobol", "--kind", "verifier", "x",
    ]);
    assert!(!out.status.success());
}

/// The build's warm-up compiles with Winch; a component Winch refuses (here: a tail call)
/// is snapshotted with Cranelift instead, and the snapshot answers its cases as before.
#[tokio::test]
async fn the_warm_up_falls_back_to_cranelift_when_winch_refuses_a_component() {
    use arbiter::authoring::snapshot::{warm_up, WarmUp};
    let dir = tempfile::tempdir().unwrap();
    let hex: String = verdict_image().iter().map(|b| format!("{b:02x}")).collect();
    let case = serde_json::json!({
        "name": "a well-formed verdict",
        "prompt": "q",
        "candidate": hex,
        "expect": {"decision": "accept", "score": [0.75, 0.75], "checks_failed": 0},
    });
    let cases_file = dir.path().join("cases.jsonl");
    std::fs::write(&cases_file, format!("{case}\n")).unwrap();
    let cases = arbiter::authoring::cases::load(&cases_file).unwrap();
    type Edit = fn(String) -> String;
    let variants: [(&str, Edit); 2] = [
        ("plain", stateless_liar),
        ("tail-calling", |wat| tail_calling_liar(stateless_liar(wat))),
    ];
    for (name, edit) in variants {
        let built = abi_liar_with(edit);
        let file = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&file, &built).unwrap();
        assert_eq!(
            warm_up(dir.path(), &file),
            WarmUp::Applied { cases: 1 },
            "{name}"
        );
        assert_ne!(std::fs::read(&file).unwrap(), built, "{name}");
        run_metered(&file, &cases).await;
    }
}
