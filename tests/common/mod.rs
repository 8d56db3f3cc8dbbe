//! Shared helpers for the integration tests: building guest programs and reference
//! plugins with the same builder `arbiter plugin build` uses, and runtimes to load them.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use arbiter::authoring::{self, BuildOptions};
use arbiter::runtime::{CompileIsolation, Runtime, RuntimeConfig};

/// Fails the test with the command's stderr when it did not exit 0.
pub fn assert_exit_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// One target directory for every wasm build in the tests, so the SDK compiles once.
pub fn wasm_target_dir() -> PathBuf {
    repo_root().join("target").join("wasm-plugins")
}

fn built() -> &'static Mutex<HashMap<PathBuf, Vec<PathBuf>>> {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, Vec<PathBuf>>>> = OnceLock::new();
    BUILT.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Builds the project in `dir` once per test process and returns its components.
pub fn build_project(dir: &Path) -> Vec<PathBuf> {
    let mut map = built().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = map.get(dir) {
        return c.clone();
    }
    let options = BuildOptions {
        target_dir: Some(wasm_target_dir()),
        ..BuildOptions::default()
    };
    let out = authoring::build(dir, &options)
        .unwrap_or_else(|e| panic!("building {}: {e}", dir.display()));
    map.insert(dir.to_path_buf(), out.components.clone());
    out.components
}

/// A guest program from `tests/guests/<name>`.
pub fn guest(name: &str) -> PathBuf {
    let file = format!("{}.wasm", name.replace('-', "_"));
    build_project(&repo_root().join("tests").join("guests"))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|f| f == file.as_str()))
        .unwrap_or_else(|| panic!("guest {name} was not built"))
}

/// A reference plugin from `plugins/<name>`.
pub fn reference_plugin(name: &str) -> PathBuf {
    build_project(&repo_root().join("plugins").join(name)).remove(0)
}

/// Compilation runs in the real compile worker (this package's `arbiter` binary).
pub fn test_config() -> RuntimeConfig {
    RuntimeConfig {
        compile: CompileIsolation::Subprocess {
            program: env!("CARGO_BIN_EXE_arbiter").into(),
        },
        ..RuntimeConfig::default()
    }
}

/// A runtime shared by the tests of one process (compiled components are reused).
pub fn shared_runtime() -> Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(test_config()).expect("runtime"))
        .clone()
}

/// Builds `dir` into `target` with the warm-up snapshot on or off.
pub fn build_with_warm_up(dir: &Path, target: &Path, warm_up: bool) -> authoring::BuildOutput {
    let options = BuildOptions {
        target_dir: Some(target.to_path_buf()),
        no_warm_up: !warm_up,
        ..BuildOptions::default()
    };
    authoring::build(dir, &options).unwrap_or_else(|e| panic!("building {}: {e}", dir.display()))
}

/// Builds the project in `dir` with and without the warm-up snapshot and checks that the
/// snapshot gives every case the same result for under 60% of the guest instructions
/// (fuel counts them, so this is deterministic).
pub async fn check_warm_up_snapshot(dir: &Path) {
    use arbiter::authoring::snapshot::WarmUp;
    let warm = build_with_warm_up(dir, &wasm_target_dir().join("warm-up-on"), true);
    let plain = build_with_warm_up(dir, &wasm_target_dir().join("warm-up-off"), false);
    assert!(
        matches!(warm.warm_up, Some(WarmUp::Applied { .. })),
        "{:?}",
        warm.warm_up
    );
    assert_eq!(plain.warm_up, Some(WarmUp::Off));
    let cases = authoring::cases::load(&dir.join("cases.jsonl")).expect("cases");
    let (warm_fuel, warm_results) = run_metered(&warm.components[0], &cases).await;
    let (plain_fuel, plain_results) = run_metered(&plain.components[0], &cases).await;
    assert_eq!(warm_results, plain_results);
    assert!(
        warm_fuel * 10 < plain_fuel * 6,
        "snapshot {warm_fuel} vs plain {plain_fuel} instructions"
    );
}

/// Runs `cases` against `component` with fuel metering, a fresh instance per call: the
/// total fuel (the guest's instructions, so deterministic) and each case's result as JSON.
/// Every case must pass.
pub async fn run_metered(component: &Path, cases: &[authoring::cases::Case]) -> (u64, Vec<String>) {
    let runtime = Runtime::new(RuntimeConfig {
        profile: arbiter::runtime::EngineProfile {
            fuel: true,
            ..Default::default()
        },
        ..test_config()
    })
    .expect("runtime");
    let bytes = std::fs::read(component).expect("component");
    let mut runner =
        authoring::cases::Runner::new(runtime, bytes, arbiter::runtime::PluginOptions::default());
    let (mut fuel, mut results) = (0, Vec::new());
    for case in cases {
        let report = runner.run(case).await;
        assert!(
            report.passed,
            "{}: line {} {}: {:?} {:?}",
            component.display(),
            report.line,
            report.name,
            report.failures,
            report.error
        );
        fuel += report.fuel.unwrap_or(0);
        results.push(serde_json::to_string(&report.result).expect("json"));
    }
    (fuel, results)
}

/// Reads a JSONL dataset shipped in `data/`.
pub fn dataset(name: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(repo_root().join("data").join(name)).expect("dataset");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}
