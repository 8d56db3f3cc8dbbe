//! Build-time pre-initialisation after warm-up calls, for the interpreted languages
//! (Python, JavaScript, TypeScript).
//!
//! componentize-py and componentize-js already snapshot the interpreter once the plugin's
//! module is loaded, but a fresh instance's first call still pays for everything an
//! interpreter does lazily on first use. In a JS component the export bindings run in a
//! realm of their own whose `Promise` and async-function classes SpiderMonkey creates on
//! the first call (about a quarter of a fresh call in `perf`); Python specialises its
//! bytecode and fills caches. A warm instance has all of that done.
//!
//! A plugin that declares itself `stateless` promises that calls leave nothing behind
//! that matters, which is what lets the host reuse warm instances at all. For such a
//! plugin the build runs the project's example cases (`cases.jsonl`, the same file
//! `arbiter plugin test` runs) on one warm instance and writes that instance's memory and
//! globals back into the component with `component-init-transform` (the transform
//! componentize-py uses for its own snapshot). Every fresh instance then starts where a
//! warm one would be, and still serves exactly one call. Stateful plugins, projects
//! without usable cases, and any failure leave the component exactly as built.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::cases::{self, Case};
use crate::runtime::{
    CompileIsolation, Compiler, EngineProfile, KeptInstance, Limits, Plugin, PluginOptions,
    Runtime, RuntimeConfig,
};

/// The cases file the warm-up reads, next to the plugin's manifest.
pub const CASES_FILE: &str = "cases.jsonl";

/// At most this many cases are run: enough to reach every common path, few enough that
/// the build stays quick.
const MAX_CASES: usize = 32;

/// What the warm-up step did to a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum WarmUp {
    /// The component now starts from the state after `cases` example cases.
    Applied { cases: usize },
    /// The component is unchanged, for this reason.
    Skipped { reason: String },
    /// Turned off (`--no-warm-up`).
    Off,
}

impl std::fmt::Display for WarmUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WarmUp::Applied { cases } => {
                write!(f, "snapshot taken after {cases} example case(s)")
            }
            WarmUp::Skipped { reason } => write!(f, "skipped: {reason}"),
            WarmUp::Off => f.write_str("off"),
        }
    }
}

/// Cases the warm-up can run on one instance: no expected error (a case that traps on
/// purpose would discard the instance), and the plugin's own limits and grants.
fn usable(case: &Case) -> bool {
    case.expect.error.is_none()
        && case.expect.error_contains.is_none()
        && case.limits.is_none()
        && case.grants.is_empty()
}

/// Adds what the warm-up reads to a build's fingerprint sources (the cases it runs: a
/// change to them changes the component) and returns the fingerprint's marker for the
/// switch.
pub fn fingerprint_inputs(
    project: &Path,
    enabled: bool,
    sources: &mut Vec<PathBuf>,
) -> &'static str {
    let cases = project.join(CASES_FILE);
    if enabled && cases.is_file() {
        sources.push(cases);
    }
    if enabled {
        "warm-up"
    } else {
        "no-warm-up"
    }
}

/// A build's last step before the component is renamed into place.
pub fn apply(project: &Path, component: &Path, enabled: bool) -> WarmUp {
    if enabled {
        warm_up(project, component)
    } else {
        WarmUp::Off
    }
}

/// Replaces `component` (a file) by its snapshot after running the usable cases of
/// `project/cases.jsonl` on one warm instance, when the plugin is stateless.
pub fn warm_up(project: &Path, component: &Path) -> WarmUp {
    let skipped = |reason: String| WarmUp::Skipped { reason };
    let cases_path = project.join(CASES_FILE);
    if !cases_path.is_file() {
        return skipped(format!("no {CASES_FILE} with example calls"));
    }
    let cases: Vec<Case> = match cases::load(&cases_path) {
        Ok(c) => c.into_iter().filter(usable).take(MAX_CASES).collect(),
        Err(e) => return skipped(format!("{e}")),
    };
    if cases.is_empty() {
        return skipped(format!(
            "{CASES_FILE} has no case without an expected error, limits or grants"
        ));
    }
    let bytes = match std::fs::read(component) {
        Ok(b) => b,
        Err(e) => return skipped(format!("{}: {e}", component.display())),
    };
    // `build` is synchronous and may be called from async code: a thread of its own.
    let ran = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(snapshot(bytes, cases))
    })
    .join();
    let (snapshot, count) = match ran {
        Ok(Ok(done)) => done,
        Ok(Err(reason)) => return skipped(reason),
        Err(_) => return skipped("the warm-up panicked".into()),
    };
    let tmp = component.with_extension(format!("warm-{}", std::process::id()));
    match std::fs::write(&tmp, &snapshot).and_then(|()| std::fs::rename(&tmp, component)) {
        Ok(()) => WarmUp::Applied { cases: count },
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            skipped(format!("writing {}: {e}", component.display()))
        }
    }
}

/// A runtime for the warm-up run alone: no cache, nothing prepared, one warm instance.
fn warm_up_runtime(compiler: Compiler) -> Result<Runtime, String> {
    Runtime::new(RuntimeConfig {
        profile: EngineProfile {
            compiler,
            ..EngineProfile::default()
        },
        cache_dir: None,
        compile: CompileIsolation::InProcess,
        warm_instances_per_plugin: 1,
        prepared_instances_per_plugin: 0,
        ..RuntimeConfig::default()
    })
    .map_err(|e| format!("starting a runtime: {e}"))
}

/// The snapshot of `component` after `cases`, and how many cases ran.
///
/// The instrumented component runs a handful of calls and is thrown away, so it is
/// compiled with Winch, the baseline compiler: ~3 s for an interpreter where Cranelift
/// takes 12–17 s (BENCHMARKS.md). Only memory and globals go into the snapshot, and
/// those do not depend on the code generator. Should Winch refuse the component (a
/// proposal it does not implement), Cranelift compiles it instead.
async fn snapshot(component: Vec<u8>, cases: Vec<Case>) -> Result<(Vec<u8>, usize), String> {
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let options = PluginOptions {
        warm: true,
        limits: Limits {
            deadline: Duration::from_secs(30),
            ..Limits::default()
        },
        ..PluginOptions::default()
    };
    let snapshot = component_init_transform::initialize(&component, move |instrumented| {
        Box::pin(async move {
            let plugin = load(instrumented, options).await?;
            let kept = run_cases(plugin, &cases, &counter).await?;
            Ok(Box::new(kept) as Box<dyn component_init_transform::Invoker>)
        })
    })
    .await
    .map_err(|e| format!("{e:#}"))?;
    // What the runtime checks before compiling, so a bad transform fails the warm-up
    // (keeping the component as built) instead of the next load.
    crate::runtime::precheck(&snapshot)
        .map_err(|e| format!("the snapshot does not validate: {e}"))?;
    Ok((snapshot, ran.load(Ordering::Relaxed)))
}

/// Loads the instrumented component with Winch, or with Cranelift if Winch refuses it.
async fn load(instrumented: Vec<u8>, options: PluginOptions) -> anyhow::Result<Plugin> {
    let winch = warm_up_runtime(Compiler::Winch).map_err(anyhow::Error::msg)?;
    match winch.load(instrumented.clone(), options.clone()).await {
        Ok(plugin) => Ok(plugin),
        Err(winch_error) => {
            tracing::info!(error = %winch_error, "Winch refused the warm-up component; compiling it with Cranelift");
            let cranelift = warm_up_runtime(Compiler::Cranelift).map_err(anyhow::Error::msg)?;
            cranelift
                .load(instrumented, options)
                .await
                .map_err(|e| anyhow::anyhow!("loading the component: {e}"))
        }
    }
}

/// Runs the cases on the plugin's warm instance and keeps that instance.
async fn run_cases(
    plugin: Plugin,
    cases: &[Case],
    ran: &AtomicUsize,
) -> anyhow::Result<KeptInstance> {
    if !plugin.info().stateless {
        anyhow::bail!("the plugin is not stateless (its info() says calls keep state)");
    }
    for case in cases {
        if cases::warm_up_with(&plugin, case).await {
            ran.fetch_add(1, Ordering::Relaxed);
        }
    }
    if ran.load(Ordering::Relaxed) == 0 {
        anyhow::bail!("none of the cases fits a {}", plugin.kind());
    }
    plugin
        .take_warm_instance()
        .ok_or_else(|| anyhow::anyhow!("no instance survived the example cases"))
}
