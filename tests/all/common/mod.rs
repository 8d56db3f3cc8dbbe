//! Shared helpers for the integration tests: building guest programs and reference
//! plugins with the same builder `arbiter plugin build` uses, and runtimes to load them.
#![allow(dead_code)]

pub mod gateway;
pub mod mock_upstream;

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

/// An empty database on the tests' private PostgreSQL server, or `None` (said loudly)
/// where there are no PostgreSQL programs to start one.
pub async fn postgres_database() -> Option<String> {
    let url = tokio::task::spawn_blocking(arbiter::store::test_cluster::fresh_database)
        .await
        .unwrap();
    if url.is_none() {
        eprintln!("SKIPPED: no PostgreSQL to test against");
    }
    url
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

// ---------------------------------------------------------------- the ABI-level liar

/// Where `tests/guests/abi-liar.wat` puts the bytes it returns.
pub const LIAR_BUF: u32 = 8192;

/// The ABI-level liar as a component: its WAT, the contract's `verifier` world embedded,
/// encoded by the same `wit-component` the C builds use.
pub fn abi_liar() -> Vec<u8> {
    abi_liar_with(|wat| wat)
}

/// The liar with its WAT edited first.
pub fn abi_liar_with(edit: impl FnOnce(String) -> String) -> Vec<u8> {
    use wit_bindgen_core::wit_parser::Resolve;
    let root = repo_root();
    let wat = std::fs::read_to_string(root.join("tests/guests/abi-liar.wat")).unwrap();
    let mut module = wat::parse_str(edit(wat)).unwrap();
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(root.join("wit/v0.1.0")).unwrap();
    let world = resolve.select_world(&[package], Some("verifier")).unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false, // the legacy `interface#function` export names the WAT uses
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

pub fn put_u32(image: &mut [u8], at: usize, value: u32) {
    image[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// A well-formed `result<verdict, plugin-error>` as the canonical ABI lays it out:
/// `ok` at 0; the verdict at 8 (score f64, decision u8 at 16, reason at 20, checks at 28,
/// details option at 36); one check at 72 (name, passed at 80, message option at 84);
/// string bytes from 100.
pub fn verdict_image() -> Vec<u8> {
    let mut b = vec![0u8; 128];
    b[8..16].copy_from_slice(&0.75f64.to_le_bytes());
    b[16] = 0; // accept
    put_u32(&mut b, 20, LIAR_BUF + 100); // reason "fine"
    put_u32(&mut b, 24, 4);
    put_u32(&mut b, 28, LIAR_BUF + 72); // one check
    put_u32(&mut b, 32, 1);
    b[36] = 1; // details: some("{}")
    put_u32(&mut b, 40, LIAR_BUF + 110);
    put_u32(&mut b, 44, 2);
    put_u32(&mut b, 72, LIAR_BUF + 104); // check name "sum=3"
    put_u32(&mut b, 76, 5);
    b[80] = 1; // passed
    b[84] = 0; // message: none
    b[100..104].copy_from_slice(b"fine");
    b[104..109].copy_from_slice(b"sum=3");
    b[110..112].copy_from_slice(b"{}");
    b
}

/// The liar with a `stateless` info, so the build's warm-up snapshots it.
pub fn stateless_liar(wat: String) -> String {
    let stateful = r#""\00\00\00\00"                  ;; stateless false"#;
    assert!(
        wat.contains(stateful),
        "abi-liar.wat changed: update stateless_liar"
    );
    wat.replace(
        stateful,
        r#""\01\00\00\00"                  ;; stateless true"#,
    )
}

/// The liar with its `info` export reached by a tail call (`return_call`), a proposal
/// Cranelift implements and Winch, the baseline compiler, does not.
pub fn tail_calling_liar(wat: String) -> String {
    let info = "(func (export \"arbiter:plugin/verification@0.1.0#info\") (result i32)\n    (i32.const 64))";
    assert!(
        wat.contains(info),
        "abi-liar.wat changed: update tail_calling_liar"
    );
    wat.replace(
        info,
        "(func $info (result i32) (i32.const 64))\n  (func (export \"arbiter:plugin/verification@0.1.0#info\") (result i32)\n    (return_call $info))",
    )
}

/// A port nothing listens on now (for a child gateway's `--listen`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until a gateway at `url` answers `/readyz` with 200 (30 s at most).
pub async fn wait_ready(http: &reqwest::Client, url: &str) {
    for _ in 0..600 {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the gateway did not become ready");
}

/// The SDK test plugin `tests/sdk-plugins/<name>` (one per SDK, one rule) against the
/// shared tool-call vectors: the plugin reads the task's tools, its messages' tool calls
/// and the candidate's tool calls and logprobs through its SDK, and targets the latest
/// contract. Returns the component.
pub async fn check_tool_call_vectors(runtime: Runtime, name: &str) -> PathBuf {
    use arbiter::authoring::cases::{self, Runner};
    let wasm = build_project(&repo_root().join("tests").join("sdk-plugins").join(name)).remove(0);
    let plugin = runtime
        .load_file(&wasm, arbiter::runtime::PluginOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading {}: {e}", wasm.display()));
    let export = format!("arbiter:plugin/verification@{}", authoring::wit::latest());
    assert!(
        plugin.summary().exports.contains(&export),
        "{name}: {:?}",
        plugin.summary().exports
    );
    let file = repo_root().join("tests/vectors/tool-calls.jsonl");
    let cases = cases::load(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(cases.len() >= 6, "{} cases", cases.len());
    let bytes = std::fs::read(&wasm).unwrap();
    let mut runner = Runner::new(runtime, bytes, arbiter::runtime::PluginOptions::default());
    let mut failed = Vec::new();
    for case in &cases {
        let report = runner.run(case).await;
        if !report.passed {
            failed.push(format!(
                "line {} {}: {:?} {:?} {:?}",
                report.line, report.name, report.failures, report.result, report.error
            ));
        }
    }
    assert!(failed.is_empty(), "{name}:\n{}", failed.join("\n"));
    wasm
}
