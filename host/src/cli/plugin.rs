//! `arbiter plugin ...`: the plugin author's tools. Everything runs in the same sandbox
//! the gateway uses, with the same limits.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::output::{human_bytes, human_duration, micros, print_json, report_error};
use crate::authoring::cases::{
    self, Case, CaseCalls, CaseCandidate, CaseReport, Execution, RunOptions, Runner,
};
use crate::authoring::{self, BuildOptions, Language};
use crate::runtime::types::*;
use crate::runtime::{
    CallStats, CompileIsolation, Grants, Limits, LoadSource, Plugin, PluginOptions, PoolSizes,
    Runtime, RuntimeConfig, CONTRACT_PACKAGE,
};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Show a plugin's kind, contract version, metadata, imports/exports, size and compile time.
    Inspect {
        /// A component, or a plugin project folder (built first).
        file: PathBuf,
        #[command(flatten)]
        runtime: RuntimeArgs,
        #[arg(long)]
        json: bool,
    },
    /// Run a plugin once in the real sandbox and print its result, wall time and fuel.
    Call(CallArgs),
    /// Measure instantiate+call and warm-call latency (p50/p99).
    Bench(BenchArgs),
    /// Build a plugin project (default: the current directory) into a component.
    Build {
        dir: Option<PathBuf>,
        /// Copy the component here (a file, or a directory for workspaces).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Show the build tool's own output.
        #[arg(long, short)]
        verbose: bool,
        /// Python and JS/TS: do not snapshot a stateless plugin after running its example
        /// cases (by default its fresh instances start warm; docs/plugin-authoring.md).
        #[arg(long)]
        no_warm_up: bool,
        #[arg(long)]
        json: bool,
    },
    /// Run test cases (JSON Lines) through the real sandbox: PASS/FAIL per case with wall
    /// time and fuel, non-zero exit when one fails. Format: docs/plugin-test-cases.md.
    Test(TestArgs),
    /// Create a plugin project from a template; it builds and passes its tests as is.
    New(NewArgs),
    /// Upload a plugin (a component, or a project folder built first) to a running
    /// gateway as one of your plugins, with a tenant key.
    Push(super::remote::PushArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// A plugin project, built first (default: the current directory), or a component file.
    target: Option<PathBuf>,
    /// The case file (default: cases.jsonl in the project).
    #[arg(long)]
    cases: Option<PathBuf>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name and folder: lowercase letters, digits, `-` and `_`.
    name: String,
    #[arg(long, value_parser = language_parser())]
    lang: Language,
    #[arg(long, value_parser = kind_parser())]
    kind: PluginKind,
    /// Create the project folder in this folder (default: the current directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Parsers listing the possible values in `--help` and suggesting them on typos.
fn language_parser() -> impl TypedValueParser<Value = Language> {
    PossibleValuesParser::new(Language::ALL.map(Language::short))
        .map(|s| s.parse().expect("a listed language"))
}

fn kind_parser() -> impl TypedValueParser<Value = PluginKind> {
    PossibleValuesParser::new(PluginKind::ALL.map(PluginKind::as_str))
        .map(|s| s.parse().expect("a listed kind"))
}

#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Compiled-artifact cache (default: $ARBITER_CACHE_DIR, else ~/.cache/arbiter/plugins).
    #[arg(long, env = "ARBITER_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the compiled-artifact cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Grant a capability (`model`, `stats`); repeatable.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// Per-call deadline in milliseconds.
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Per-call memory cap in MiB.
    #[arg(long)]
    pub memory_mib: Option<usize>,
    /// Runtime settings (TOML, the `[runtime]` table's fields: pool sizes, epoch tick, ...).
    #[arg(long)]
    pub runtime_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// A component, or a plugin project folder (built first).
    file: PathBuf,
    /// The task's prompt (a single user message).
    #[arg(long)]
    prompt: Option<String>,
    /// The whole task as JSON ({"messages": [...], "tags": [...], "metadata": {...}}).
    #[arg(long, conflicts_with = "prompt")]
    task: Option<PathBuf>,
    /// Verifier: a candidate answer; repeat to judge several and run the cross-candidate step.
    #[arg(long = "candidate")]
    candidates: Vec<String>,
    /// Verifier: the model the candidates are attributed to.
    #[arg(long, default_value = "unknown")]
    model: String,
    /// Router: a model option NAME:INPUT_PRICE:OUTPUT_PRICE (USD per 1M tokens); repeatable.
    /// Default: small:0.6:0.6 and large:10:30.
    #[arg(long = "option", value_parser = parse_option)]
    options: Vec<ModelOption>,
    /// Decomposer: answers to compose, in sub-task order; without them only `decompose` runs.
    #[arg(long = "answer")]
    answers: Vec<String>,
    /// A plugin setting KEY=VALUE; repeatable.
    #[arg(long = "config", value_parser = parse_kv)]
    config: Vec<(String, String)>,
    /// Task metadata KEY=VALUE; repeatable.
    #[arg(long = "meta", value_parser = parse_kv)]
    meta: Vec<(String, String)>,
    /// Task tag; repeatable.
    #[arg(long = "tag")]
    tags: Vec<String>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A component, or a plugin project folder (built first).
    file: PathBuf,
    /// Measured calls per mode.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Unmeasured calls first.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    #[arg(long, default_value = "What is 6 * 7?")]
    prompt: String,
    #[arg(long, default_value = "6 * 7 = 42\n#### 42")]
    candidate: String,
    #[arg(long = "config", value_parser = parse_kv)]
    config: Vec<(String, String)>,
    /// Meter fuel during the benchmark (off by default, as on the serving path).
    #[arg(long)]
    fuel: bool,
    /// Idle time before each measured call, in every mode: calls that arrive after a
    /// pause (as on a lightly loaded gateway) find colder caches than back-to-back ones.
    #[arg(long, default_value_t = 0)]
    pause_us: u64,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[arg(long)]
    json: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

fn parse_option(s: &str) -> Result<ModelOption, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let price = |p: &str| {
        p.parse::<f64>()
            .map_err(|e| format!("bad price `{p}` in `{s}`: {e}"))
    };
    match parts.as_slice() {
        [name, input, output] => Ok(ModelOption {
            name: name.to_string(),
            input_price: price(input)?,
            output_price: price(output)?,
            stats: None,
        }),
        _ => Err(format!("expected NAME:INPUT_PRICE:OUTPUT_PRICE, got `{s}`")),
    }
}

/// Authors point the tools at their project as often as at a component: a folder is
/// built (or found up to date) first, as `arbiter plugin test` does.
pub(super) fn component_of(path: &Path, json: bool) -> anyhow::Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let built = authoring::build(path, &BuildOptions::default())
        .with_context(|| format!("building {}", path.display()))?;
    if built.rebuilt && !json {
        for c in &built.components {
            eprintln!("built: {}", c.display());
        }
    }
    match built.components.as_slice() {
        [one] => Ok(one.clone()),
        many => anyhow::bail!(
            "{} builds {} components; name one of them: {}",
            path.display(),
            many.len(),
            many.iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    // A push talks to a gateway: its own runtime, and the server's error codes.
    let cmd = match cmd {
        PluginCommand::Push(args) => return super::remote::push(args),
        cmd => cmd,
    };
    let json = match &cmd {
        PluginCommand::Inspect { json, .. } | PluginCommand::Build { json, .. } => *json,
        PluginCommand::Call(a) => a.json,
        PluginCommand::Bench(a) => a.json,
        PluginCommand::Test(a) => a.json,
        PluginCommand::New(a) => a.json,
        PluginCommand::Push(a) => a.gateway.json,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = rt.block_on(async {
        match cmd {
            PluginCommand::Inspect {
                file,
                runtime,
                json,
            } => inspect(&component_of(&file, json)?, &runtime, json).await,
            PluginCommand::Call(mut args) => {
                args.file = component_of(&args.file, args.json)?;
                call(args).await
            }
            PluginCommand::Bench(mut args) => {
                args.file = component_of(&args.file, args.json)?;
                bench(args).await
            }
            PluginCommand::Build {
                dir,
                out,
                verbose,
                no_warm_up,
                json,
            } => build(dir, out, verbose, no_warm_up, json),
            PluginCommand::Test(args) => test(args).await,
            PluginCommand::New(args) => new_project(args),
            PluginCommand::Push(_) => unreachable!("pushed above"),
        }
    });
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        // The report already said which cases failed.
        Err(e) if e.is::<CasesFailed>() => ExitCode::FAILURE,
        Err(e) => report_error(&e, json),
    })
}

/// The author tools' runtime: a small pool, the on-disk cache, compilation in a limited
/// child process (this same binary), fuel metering unless benchmarking.
pub fn author_runtime(args: &RuntimeArgs, fuel: bool) -> anyhow::Result<Runtime> {
    Ok(Runtime::new(author_config(args, fuel)?)?)
}

fn author_config(args: &RuntimeArgs, fuel: bool) -> anyhow::Result<RuntimeConfig> {
    let cache_dir = if args.no_cache {
        None
    } else {
        Some(args.cache_dir.clone().unwrap_or_else(default_cache_dir))
    };
    let program =
        std::env::current_exe().context("locating the arbiter binary for the compile worker")?;
    let mut config = match &args.runtime_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => RuntimeConfig {
            pool: PoolSizes {
                component_instances: 64,
                ..PoolSizes::default()
            },
            ..RuntimeConfig::default()
        },
    };
    config.profile.fuel = fuel;
    // One-off calls and test cases report what a call costs, instantiation included;
    // an instance made in the background would make that a race (`bench` measures
    // preparation on its own).
    config.prepared_instances_per_plugin = 0;
    config.cache_dir = cache_dir;
    config.compile = CompileIsolation::Subprocess { program };
    Ok(config)
}

pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("arbiter").join("plugins")
}

fn plugin_options(args: &RuntimeArgs, warm: bool) -> anyhow::Result<PluginOptions> {
    let mut limits = Limits::default();
    if let Some(ms) = args.deadline_ms {
        limits.deadline = Duration::from_millis(ms);
    }
    if let Some(mib) = args.memory_mib {
        limits.memory_bytes = mib << 20;
    }
    let grants = Grants::from_names(&args.grants).map_err(anyhow::Error::msg)?;
    Ok(PluginOptions {
        grants,
        limits,
        warm,
    })
}

#[derive(Serialize)]
struct InspectReport<'a> {
    path: &'a Path,
    size: usize,
    sha256: &'a str,
    kind: PluginKind,
    world: &'static str,
    contract: String,
    capabilities: &'a [String],
    info: &'a PluginInfo,
    load_source: LoadSource,
    load_ms: f64,
    cache_file: Option<PathBuf>,
    imports: &'a [String],
    exports: &'a [String],
}

async fn inspect(file: &Path, args: &RuntimeArgs, json: bool) -> anyhow::Result<()> {
    let runtime = author_runtime(args, true)?;
    // Inspection grants every capability so it can report what a plugin asks for.
    let mut options = plugin_options(args, false)?;
    options.grants = Grants::ALL;
    let plugin = runtime.load_file(file, options).await?;
    let summary = plugin.summary();
    let report = plugin.load_report();
    let out = InspectReport {
        path: file,
        size: report.size,
        sha256: &report.digest,
        kind: plugin.kind(),
        world: plugin.kind().as_str(),
        contract: format!("{CONTRACT_PACKAGE}@{}", summary.contract_version),
        capabilities: &summary.capabilities,
        info: plugin.info(),
        load_source: report.source,
        load_ms: report.load_time.as_secs_f64() * 1e3,
        cache_file: runtime.cache_path(&report.digest).filter(|p| p.exists()),
        imports: &summary.imports,
        exports: &summary.exports,
    };
    if json {
        return print_json(&out);
    }
    let info = plugin.info();
    println!(
        "plugin        {} {} ({})",
        info.name, info.version, info.kind
    );
    println!("description   {}", info.description);
    println!("contract      {} (world `{}`)", out.contract, out.world);
    println!(
        "stateless     {}",
        if info.stateless {
            "yes (warm instances allowed)"
        } else {
            "no (fresh instance per call)"
        }
    );
    println!(
        "capabilities  {}",
        if out.capabilities.is_empty() {
            "none".to_string()
        } else {
            out.capabilities.join(", ")
        }
    );
    println!(
        "size          {}  sha256 {}",
        human_bytes(out.size),
        out.sha256
    );
    let how = match out.load_source {
        LoadSource::Compiled => "compiled",
        LoadSource::Disk => "loaded from the compiled cache",
        LoadSource::Memory => "already in memory",
    };
    println!("load          {} ({how})", human_duration(report.load_time));
    if let Some(c) = &out.cache_file {
        println!("cache file    {}", c.display());
    }
    if !info.config_keys.is_empty() {
        println!("settings");
        for k in &info.config_keys {
            let default = k
                .default
                .as_deref()
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default();
            println!("  {:<16} {}{default}", k.name, k.description);
        }
    }
    println!("imports");
    for i in out.imports {
        println!("  {i}");
    }
    println!("exports");
    for e in out.exports {
        println!("  {e}");
    }
    Ok(())
}

fn task_from(args: &CallArgs) -> anyhow::Result<Task> {
    let mut task = match (&args.task, &args.prompt) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("parsing task JSON {}", path.display()))?
        }
        (None, Some(p)) => Task::from_prompt("cli", p.clone()),
        (None, None) => bail!("give the task with --prompt or --task"),
    };
    task.tags.extend(args.tags.iter().cloned());
    task.metadata.extend(args.meta.iter().cloned());
    if task.id.is_empty() {
        task.id = "cli".into();
    }
    Ok(task)
}

#[derive(Serialize)]
struct Timing {
    wall_us: f64,
    instantiate_us: Option<f64>,
    fuel: Option<u64>,
}

impl From<&CallStats> for Timing {
    fn from(s: &CallStats) -> Self {
        Timing {
            wall_us: micros(s.wall),
            instantiate_us: s.instantiate.map(micros),
            fuel: s.fuel,
        }
    }
}

#[derive(Serialize)]
struct CallStep<T: Serialize> {
    call: &'static str,
    result: T,
    #[serde(flatten)]
    timing: Timing,
    logs: Vec<LogRecord>,
}

fn step<T: Serialize>(call: &'static str, value: T, stats: CallStats) -> CallStep<T> {
    CallStep {
        call,
        timing: Timing::from(&stats),
        logs: stats.logs,
        result: value,
    }
}

/// The case `plugin call` runs: the task, candidates, options and answers given on the
/// command line.
fn call_case(args: &CallArgs) -> anyhow::Result<Case> {
    Ok(Case {
        task: Some(task_from(args)?),
        config: args
            .config
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
        candidates: Some(
            args.candidates
                .iter()
                .cloned()
                .map(CaseCandidate::Text)
                .collect(),
        ),
        model: Some(args.model.clone()),
        options: (!args.options.is_empty()).then(|| args.options.clone()),
        answers: (!args.answers.is_empty()).then(|| args.answers.clone()),
        ..Case::default()
    })
}

async fn call(args: CallArgs) -> anyhow::Result<()> {
    let runtime = author_runtime(&args.runtime, true)?;
    let plugin = runtime
        .load_file(&args.file, plugin_options(&args.runtime, false)?)
        .await?;
    let case = call_case(&args)?;
    let execution = CaseCalls::new(&case)
        .run(
            &plugin,
            RunOptions {
                values: true,
                ..RunOptions::default()
            },
        )
        .await;
    // With several candidates a failing `verify` loses only its own verdict; any other
    // failure is the command's error.
    let several = args.candidates.len() > 1;
    let mut steps: Vec<serde_json::Value> = Vec::new();
    for record in execution.calls {
        match (record.call, record.outcome) {
            ("check-config", Ok(_)) => {}
            ("check-config", Err(e)) => {
                return Err(anyhow::Error::new(e).context("the plugin refused its settings"))
            }
            ("verify", Err(e)) if several => steps.push(
                serde_json::json!({"call": "verify", "error": {"code": e.code(), "message": e.to_string()}}),
            ),
            (_, Err(e)) => return Err(e.into()),
            (call, Ok((value, stats))) => {
                let value = value.unwrap_or_default();
                steps.push(serde_json::to_value(step(call, value, stats))?);
            }
        }
    }
    if plugin.kind() == PluginKind::Verifier && args.candidates.is_empty() {
        bail!("a verifier needs at least one --candidate");
    }
    if let (Some(answers), Some(plan)) = (&case.answers, &execution.result.plan) {
        if answers.len() != plan.subtasks.len() {
            bail!(
                "{} --answer given for {} sub-tasks",
                answers.len(),
                plan.subtasks.len()
            );
        }
    }
    if args.json {
        return print_json(&serde_json::json!({
            "plugin": plugin.info(),
            "kind": plugin.kind(),
            "steps": steps,
        }));
    }
    for s in &steps {
        print_step(s);
    }
    Ok(())
}

fn print_step(s: &serde_json::Value) {
    let call = s["call"].as_str().unwrap_or("?");
    if let Some(err) = s.get("error") {
        println!(
            "{call:<10} error [{}] {}",
            err["code"].as_str().unwrap_or(""),
            err["message"].as_str().unwrap_or("")
        );
        return;
    }
    let r = &s["result"];
    match call {
        "verify" => {
            println!(
                "verify     {} score {:.3}",
                r["decision"].as_str().unwrap_or("?"),
                r["score"].as_f64().unwrap_or(0.0)
            );
            println!("  reason   {}", r["reason"].as_str().unwrap_or(""));
            for c in r["checks"].as_array().into_iter().flatten().take(20) {
                let mark = if c["passed"].as_bool() == Some(true) {
                    "pass"
                } else {
                    "FAIL"
                };
                let msg = c["message"]
                    .as_str()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                println!("  {mark}     {}{msg}", c["name"].as_str().unwrap_or(""));
            }
        }
        "select" => println!(
            "select     scores {}  ({})",
            r["scores"],
            r["reason"].as_str().unwrap_or("")
        ),
        "route" => {
            println!("route      {}", r["reason"].as_str().unwrap_or(""));
            for st in r["steps"].as_array().into_iter().flatten() {
                println!(
                    "  step     {} x{} min-score {}",
                    st["target"].as_str().unwrap_or(""),
                    st["samples"],
                    st["min_score"]
                );
            }
        }
        "decompose" => {
            println!("decompose  {}", r["reason"].as_str().unwrap_or(""));
            for st in r["subtasks"].as_array().into_iter().flatten() {
                println!(
                    "  {:<8} {}",
                    st["id"].as_str().unwrap_or(""),
                    st["prompt"].as_str().unwrap_or("").replace('\n', " / ")
                );
            }
        }
        _ => println!(
            "{call:<10} {}",
            r.as_str()
                .map(String::from)
                .unwrap_or_else(|| r.to_string())
        ),
    }
    let fuel = s["fuel"]
        .as_u64()
        .map(|f| format!("  fuel {f}"))
        .unwrap_or_default();
    let inst = s["instantiate_us"]
        .as_f64()
        .map(|i| format!(" (instantiate {i:.1} µs)"))
        .unwrap_or_default();
    println!(
        "  time     {:.1} µs{inst}{fuel}",
        s["wall_us"].as_f64().unwrap_or(0.0)
    );
    for l in s["logs"].as_array().into_iter().flatten() {
        println!(
            "  log      [{}] {}",
            l["level"].as_str().unwrap_or(""),
            l["message"].as_str().unwrap_or("")
        );
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub iterations: usize,
    pub min_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
}

pub fn percentiles(mut samples: Vec<Duration>) -> Percentiles {
    samples.sort();
    let n = samples.len().max(1);
    let at = |q: f64| micros(samples[((n as f64 - 1.0) * q).round() as usize]);
    let mean = samples.iter().sum::<Duration>() / n as u32;
    Percentiles {
        iterations: samples.len(),
        min_us: micros(samples[0]),
        p50_us: at(0.5),
        p90_us: at(0.9),
        p99_us: at(0.99),
        mean_us: micros(mean),
    }
}

/// The case `plugin bench` times: one call of the plugin's kind (`verify` of the
/// candidate, `route` with the default options, `decompose`).
fn bench_case(args: &BenchArgs) -> Case {
    Case {
        task: Some(Task::from_prompt("bench", args.prompt.clone())),
        candidate: Some(CaseCandidate::Text(args.candidate.clone())),
        model: Some("bench".into()),
        config: args
            .config
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
        ..Case::default()
    }
}

/// One measured call: the kind's own call alone, without `check-config`.
async fn one_call(plugin: &Plugin, calls: &CaseCalls) -> anyhow::Result<()> {
    let options = RunOptions {
        skip_check_config: true,
        ..RunOptions::default()
    };
    let Execution { calls, .. } = calls.run(plugin, options).await;
    match calls.into_iter().find_map(|c| c.outcome.err()) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Times `args.iterations` calls. With `await_prepared`, each call starts only once the
/// host has an instance ready for it, as it would on a gateway that is not saturated.
async fn measure(
    plugin: &Plugin,
    args: &BenchArgs,
    calls: &CaseCalls,
    await_prepared: bool,
) -> anyhow::Result<Percentiles> {
    for _ in 0..args.warmup {
        one_call(plugin, calls).await?;
    }
    let mut samples = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        if args.pause_us > 0 {
            tokio::time::sleep(Duration::from_micros(args.pause_us)).await;
        }
        if await_prepared {
            let since = Instant::now();
            while plugin.prepared_instances() == 0 {
                anyhow::ensure!(
                    since.elapsed() < Duration::from_secs(30),
                    "no instance was prepared within 30 s"
                );
                // tokio's timer ticks in milliseconds: a call waits at least this long.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let t = Instant::now();
        one_call(plugin, calls).await?;
        samples.push(t.elapsed());
    }
    Ok(percentiles(samples))
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    // The whole cost of a fresh instance: nothing made ahead of the call.
    let unprepared = author_runtime(&args.runtime, args.fuel)?;
    let calls = CaseCalls::new(&bench_case(&args));
    let fresh = unprepared
        .load_file(&args.file, plugin_options(&args.runtime, false)?)
        .await?;
    let cold = measure(&fresh, &args, &calls, false).await?;
    drop((fresh, unprepared));
    // As the gateway runs fresh instances: one made ahead per plugin.
    let runtime = Runtime::new(RuntimeConfig {
        prepared_instances_per_plugin: 1,
        ..author_config(&args.runtime, args.fuel)?
    })?;
    let fresh = runtime
        .load_file(&args.file, plugin_options(&args.runtime, false)?)
        .await?;
    let prepared = measure(&fresh, &args, &calls, true).await?;
    let warm_plugin = runtime
        .load_file(&args.file, plugin_options(&args.runtime, true)?)
        .await?;
    let warm = if warm_plugin.is_warm() {
        Some(measure(&warm_plugin, &args, &calls, false).await?)
    } else {
        None
    };
    let report = serde_json::json!({
        "plugin": fresh.info(),
        "fuel_metering": args.fuel,
        "instantiate_call": cold,
        "prepared_call": prepared,
        "warm_call": warm,
        "warm_note": if warm.is_none() { Some("the plugin does not declare itself stateless: every call gets a fresh instance") } else { None },
    });
    if args.json {
        return print_json(&report);
    }
    let info = fresh.info();
    println!(
        "plugin             {} {} ({})",
        info.name, info.version, info.kind
    );
    let line = |label: &str, p: &Percentiles| {
        println!(
            "{label:<18} p50 {:>8.1} µs   p90 {:>8.1} µs   p99 {:>8.1} µs   mean {:>8.1} µs   ({} calls)",
            p.p50_us, p.p90_us, p.p99_us, p.mean_us, p.iterations
        )
    };
    line("instantiate+call", &cold);
    line("prepared call", &prepared);
    match &warm {
        Some(w) => line("warm call", w),
        None => println!("warm call          n/a: the plugin is not stateless"),
    }
    Ok(())
}

fn build(
    dir: Option<PathBuf>,
    out: Option<PathBuf>,
    verbose: bool,
    no_warm_up: bool,
    json: bool,
) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let options = BuildOptions {
        verbose,
        no_warm_up,
        ..BuildOptions::default()
    };
    let result = authoring::build(&dir, &options)?;
    let mut components = result.components.clone();
    if let Some(out) = &out {
        components = copy_out(&result.components, out)?;
    }
    if json {
        return print_json(&serde_json::json!({
            "language": result.language,
            "components": components,
            "rebuilt": result.rebuilt,
            "warm_up": result.warm_up,
            "duration_ms": result.duration.as_secs_f64() * 1e3,
        }));
    }
    let state = if result.rebuilt {
        "built"
    } else {
        "up to date"
    };
    for c in &components {
        let size = std::fs::metadata(c).map(|m| m.len() as usize).unwrap_or(0);
        println!(
            "{state}: {} ({}, {}, {})",
            c.display(),
            result.language,
            human_bytes(size),
            human_duration(result.duration)
        );
    }
    if let Some(warm_up) = &result.warm_up {
        println!("warm-up: {warm_up}");
    }
    Ok(())
}

fn copy_out(components: &[PathBuf], out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if components.len() == 1 && !out.is_dir() {
        std::fs::copy(&components[0], out)
            .with_context(|| format!("copying to {}", out.display()))?;
        return Ok(vec![out.to_path_buf()]);
    }
    std::fs::create_dir_all(out)?;
    components
        .iter()
        .map(|c| {
            let dest = out.join(c.file_name().expect("component file name"));
            std::fs::copy(c, &dest).with_context(|| format!("copying to {}", dest.display()))?;
            Ok(dest)
        })
        .collect()
}

/// `plugin test` ran and some cases failed: exit non-zero without a further message.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} cases failed")]
struct CasesFailed {
    failed: usize,
    total: usize,
}

#[derive(Serialize)]
struct CaseOut<'a> {
    component: &'a Path,
    #[serde(flatten)]
    report: &'a CaseReport,
}

async fn test(args: TestArgs) -> anyhow::Result<()> {
    let target = args.target.clone().unwrap_or_else(|| PathBuf::from("."));
    let (components, cases_path) = if target.is_dir() {
        let built = authoring::build(&target, &BuildOptions::default())
            .with_context(|| format!("building {}", target.display()))?;
        if !args.json {
            let state = if built.rebuilt { "built" } else { "up to date" };
            for c in &built.components {
                println!("{state}: {}", c.display());
            }
        }
        let cases = args.cases.unwrap_or_else(|| target.join("cases.jsonl"));
        (built.components, cases)
    } else if target.is_file() {
        let cases = args
            .cases
            .context("give the case file with --cases when testing a component file")?;
        (vec![target], cases)
    } else {
        bail!("{} does not exist", target.display());
    };
    let cases = cases::load(&cases_path)?;
    let runtime = author_runtime(&args.runtime, true)?;
    let base = plugin_options(&args.runtime, false)?;
    let width = cases
        .iter()
        .map(|c| c.display_name().chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    let mut reports = Vec::new();
    for component in &components {
        let bytes =
            std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
        let mut runner = Runner::new(runtime.clone(), bytes, base.clone());
        match runner.load_base().await {
            Ok(p) if !args.json => {
                let info = p.info();
                println!(
                    "testing {} {} ({}) with {}",
                    info.name,
                    info.version,
                    info.kind,
                    cases_path.display()
                );
            }
            Ok(_) => {}
            // Cases may grant the capability themselves; any other load error ends the run.
            Err(e) if e.code() == "capability_not_granted" => {}
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("loading {}", component.display()))
                )
            }
        }
        for case in &cases {
            let report = runner.run(case).await;
            if !args.json {
                print_case(&report, width);
            }
            reports.push((component.as_path(), report));
        }
    }
    let (passed, failed) = cases::summary(reports.iter().map(|(_, r)| r));
    if args.json {
        let cases: Vec<CaseOut> = reports
            .iter()
            .map(|(component, report)| CaseOut { component, report })
            .collect();
        print_json(&serde_json::json!({
            "passed": passed,
            "failed": failed,
            "cases_file": cases_path,
            "components": components,
            "cases": cases,
        }))?;
    } else {
        println!(
            "{passed} passed, {failed} failed ({})",
            cases_path.display()
        );
    }
    if failed > 0 {
        return Err(CasesFailed {
            failed,
            total: reports.len(),
        }
        .into());
    }
    Ok(())
}

fn print_case(r: &CaseReport, width: usize) {
    let fuel = r.fuel.map(|f| format!("  fuel {f}")).unwrap_or_default();
    println!(
        "  {}  {:<width$}  {:>10}{fuel}",
        if r.passed { "PASS" } else { "FAIL" },
        r.name,
        human_duration(Duration::from_secs_f64(r.wall_us / 1e6)),
    );
    for f in &r.failures {
        println!(
            "        {} (line {})",
            f.replace('\n', "\n        "),
            r.line
        );
    }
}

fn new_project(args: NewArgs) -> anyhow::Result<()> {
    let parent = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let project = authoring::new::create(args.lang, args.kind, &args.name, &parent)?;
    if args.json {
        return print_json(&project);
    }
    println!(
        "created {} ({} {}, {} files)",
        project.dir.display(),
        project.language.short(),
        project.kind,
        project.files.len()
    );
    println!("next steps:");
    println!("  cd {}", project.dir.display());
    println!("  arbiter plugin build");
    println!("  arbiter plugin test");
    Ok(())
}
