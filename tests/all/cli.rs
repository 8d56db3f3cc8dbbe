//! The `arbiter plugin` command line, run as a user runs it: the built binary, stdout
//! and stderr, exit codes, `--json` documents.

use crate::common;

use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn arbiter(args: &[&str]) -> Output {
    let cache = wasm_target_dir().join("cli-test-cache");
    Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args(args)
        .env("ARBITER_CACHE_DIR", cache)
        .env("CARGO_TARGET_DIR", wasm_target_dir())
        .output()
        .expect("running arbiter")
}

/// A failing command's `--json` error document (from stderr).
fn json_err(args: &[&str]) -> Value {
    let out = arbiter(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    serde_json::from_slice(&out.stderr).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stderr is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn json_ok(args: &[&str]) -> Value {
    let out = arbiter(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn inspect_every_reference_plugin() {
    for (name, kind) in [
        ("gsm8k-verifier", "verifier"),
        ("json-schema-verifier", "verifier"),
        ("tool-args-verifier", "verifier"),
        ("prompt-router", "router"),
        ("outcome-router", "router"),
        ("numbered-decomposer", "decomposer"),
    ] {
        let path = reference_plugin(name);
        let doc = json_ok(&["plugin", "inspect", path.to_str().unwrap(), "--json"]);
        assert_eq!(doc["kind"], kind, "{name}");
        assert_eq!(doc["info"]["name"], name);
        assert_eq!(doc["contract"], "arbiter:plugin@0.2.0");
        assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);
        assert!(doc["size"].as_u64().unwrap() > 10_000);
        assert!(doc["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("arbiter:plugin/")));
        assert!(doc["load_ms"].as_f64().is_some());
        // Human output too.
        let out = arbiter(&["plugin", "inspect", path.to_str().unwrap()]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("({kind})")));
    }
}

#[test]
fn call_each_kind() {
    let math = reference_plugin("gsm8k-verifier");
    let doc = json_ok(&[
        "plugin",
        "call",
        math.to_str().unwrap(),
        "--prompt",
        "2+2?",
        "--candidate",
        "2 + 2 = 4\n#### 4",
        "--candidate",
        "2 + 2 = 5\n#### 5",
        "--json",
    ]);
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "two verifies and a select");
    assert_eq!(steps[0]["result"]["decision"], "accept");
    assert_eq!(steps[1]["result"]["decision"], "reject");
    assert_eq!(steps[2]["call"], "select");
    assert!(steps[0]["wall_us"].as_f64().unwrap() > 0.0);
    assert!(
        steps[0]["fuel"].as_u64().unwrap() > 0,
        "author tools meter fuel"
    );

    let router = reference_plugin("prompt-router");
    let doc = json_ok(&[
        "plugin",
        "call",
        router.to_str().unwrap(),
        "--prompt",
        "hi",
        "--option",
        "a:1:1",
        "--option",
        "b:5:5",
        "--json",
    ]);
    assert_eq!(doc["steps"][0]["result"]["steps"][0]["target"], "a");

    let dec = reference_plugin("numbered-decomposer");
    let doc = json_ok(&[
        "plugin",
        "call",
        dec.to_str().unwrap(),
        "--prompt",
        "1. one?\n2. two?",
        "--answer",
        "1",
        "--answer",
        "2",
        "--json",
    ]);
    assert_eq!(
        doc["steps"][0]["result"]["subtasks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(doc["steps"][1]["result"], "1. 1\n\n2. 2");

    let schema = reference_plugin("json-schema-verifier");
    let doc = json_ok(&[
        "plugin",
        "call",
        schema.to_str().unwrap(),
        "--prompt",
        "json",
        "--candidate",
        "{\"a\": 1}",
        "--config",
        "schema={\"required\": [\"b\"]}",
        "--json",
    ]);
    assert_eq!(doc["steps"][0]["result"]["decision"], "reject");
}

#[test]
fn errors_go_to_stderr_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").unwrap();
    let out = arbiter(&["plugin", "inspect", junk.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "not_a_component");
    let out = arbiter(&[
        "plugin",
        "call",
        guest("spin").to_str().unwrap(),
        "--prompt",
        "p",
        "--candidate",
        "c",
        "--deadline-ms",
        "100",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("deadline"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wants_model = guest("wants-model");
    let call = |file: &str, candidate: &str| {
        json_err(&[
            "plugin",
            "call",
            file,
            "--prompt",
            "p",
            "--candidate",
            candidate,
            "--json",
        ])
    };
    let err = call(wants_model.to_str().unwrap(), "c");
    assert_eq!(err["error"]["code"], "capability_not_granted");
    // A missing file is named once, with the reason.
    let missing = dir.path().join("missing.wasm");
    let err = json_err(&["plugin", "inspect", missing.to_str().unwrap(), "--json"]);
    assert_eq!(err["error"]["code"], "io");
    let message = err["error"]["message"].as_str().unwrap();
    assert_eq!(message.matches("missing.wasm").count(), 1, "{message}");
    // So is a plugin's own error.
    let schema = reference_plugin("json-schema-verifier");
    let err = call(schema.to_str().unwrap(), "{}");
    assert_eq!(err["error"]["code"], "plugin_error");
    let message = err["error"]["message"].as_str().unwrap();
    assert_eq!(message.matches("`schema`").count(), 1, "{message}");
}

#[test]
fn bench_reports_percentiles() {
    let doc = json_ok(&[
        "plugin",
        "bench",
        guest("trivial").to_str().unwrap(),
        "--iterations",
        "50",
        "--warmup",
        "5",
        "--pause-us",
        "100",
        "--json",
    ]);
    for mode in ["instantiate_call", "prepared_call", "warm_call"] {
        let p = &doc[mode];
        assert_eq!(p["iterations"], 50, "{mode}");
        assert!(p["p50_us"].as_f64().unwrap() > 0.0);
        assert!(p["p99_us"].as_f64().unwrap() >= p["p50_us"].as_f64().unwrap());
    }
    // A plugin that is not stateless has no warm mode, and says so.
    let doc = json_ok(&[
        "plugin",
        "bench",
        guest("panic").to_str().unwrap(),
        "--iterations",
        "1",
        "--warmup",
        "0",
        "--candidate",
        "calm",
        "--json",
    ]);
    assert!(doc["warm_call"].is_null());
    assert_eq!(doc["prepared_call"]["iterations"], 1);
}

#[test]
fn build_reports_the_component_and_skips_unchanged_projects() {
    let dir = repo_root().join("plugins").join("prompt-router");
    let first = json_ok(&["plugin", "build", dir.to_str().unwrap(), "--json"]);
    let component = first["components"][0].as_str().unwrap().to_string();
    assert!(component.ends_with("prompt_router.wasm"));
    assert!(std::path::Path::new(&component).exists());
    let second = json_ok(&["plugin", "build", dir.to_str().unwrap(), "--json"]);
    assert_eq!(second["rebuilt"], false, "nothing changed");
    let out = arbiter(&["plugin", "build", "/nonexistent/dir"]);
    assert!(!out.status.success());
}

#[test]
fn project_folders_are_built_then_used() {
    let dir = repo_root().join("plugins").join("gsm8k-verifier");
    let dir = dir.to_str().unwrap();
    let doc = json_ok(&["plugin", "inspect", dir, "--json"]);
    assert_eq!(doc["info"]["name"], "gsm8k-verifier");
    assert!(doc["path"].as_str().unwrap().ends_with(".wasm"));
    let doc = json_ok(&[
        "plugin",
        "call",
        dir,
        "--prompt",
        "2+2?",
        "--candidate",
        "2 + 2 = 5\n#### 5",
        "--json",
    ]);
    assert_eq!(doc["steps"][0]["result"]["decision"], "reject");
    let doc = json_ok(&[
        "plugin",
        "bench",
        dir,
        "--iterations",
        "5",
        "--warmup",
        "1",
        "--json",
    ]);
    assert_eq!(doc["instantiate_call"]["iterations"], 5);
    // A folder that is not a plugin project is refused with the reason.
    let empty = tempfile::tempdir().unwrap();
    let err = json_err(&["plugin", "call", empty.path().to_str().unwrap(), "--json"]);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("building"),
        "{err}"
    );
}

/// `arbiter serve --paths` as run from `dir`: each resolved path by its key.
fn serve_paths(
    dir: &std::path::Path,
    extra: &[&str],
) -> std::collections::BTreeMap<String, std::path::PathBuf> {
    let out = Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args(["serve", "--paths"])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("running arbiter");
    assert_exit_ok(&out);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (key, path) = l.split_once(' ').unwrap_or_else(|| panic!("line {l:?}"));
            (key.to_string(), path.into())
        })
        .collect()
}

/// The embedded configuration keeps its data in the working directory, not in the
/// checkout the binary was built in, and still finds the plugin projects and datasets
/// it names there.
#[test]
fn embedded_configuration_keeps_its_data_where_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().canonicalize().unwrap();
    let paths = serve_paths(&here, &[]);
    assert_eq!(paths["server.data_dir"], here.join(".arbiter"), "{paths:?}");
    for key in ["plugins.math.build", "providers.replay-gsm8k.dataset"] {
        let path = &paths[key];
        assert!(
            path.starts_with(repo_root()) && path.exists(),
            "{key}: {}",
            path.display()
        );
    }
    assert!(!here.join(".arbiter").exists(), "--paths creates nothing");
    // Run in the checkout, it is the checkout's `.arbiter`, as before.
    let paths = serve_paths(&repo_root(), &[]);
    assert_eq!(paths["server.data_dir"], repo_root().join(".arbiter"));
    // `--data-dir` is relative to where it was typed.
    let paths = serve_paths(&here, &["--data-dir", "elsewhere"]);
    assert_eq!(paths["server.data_dir"], here.join("elsewhere"));
}
