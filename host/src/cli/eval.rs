//! `arbiter eval`: replay a dataset through pipelines and report accuracy, cost,
//! latency, calls and verifier quality next to the dataset's reference points; with
//! `--plot`, as figures too.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::output::print_json;
use crate::app::{App, AppOptions};
use crate::config::GatewayConfig;
use crate::eval::{
    plot, pre_verify, references, run, upstream_prices, EvalOptions, EvalReport, ProgressMode,
    Verifications,
};
use crate::providers::replay::load_dataset;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Configuration file (default: ./arbiter.toml if present, else the embedded example).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Pipeline (or model) to evaluate; repeat to compare several in one run.
    #[arg(long = "pipeline", short, required = true)]
    pub pipelines: Vec<String>,
    /// Replay dataset (JSON Lines); replay providers serve it during the run.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Only the first N rows.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub limit: Option<usize>,
    /// Requests in flight at once (simulated latency overlaps; results do not change).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Let plugins see the gold `reference` (for oracle-check verifiers only).
    #[arg(long)]
    pub with_reference: bool,
    /// Write figures (accuracy against cost, Success@K, latency) as SVG and PNG into DIR.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Run every verification. By default a verifier without capabilities judges each
    /// distinct candidate once and later pipelines reuse its verdict (it is
    /// deterministic for a given component, configuration, task and candidate).
    #[arg(long)]
    pub fresh_verdicts: bool,
    /// Judge every recorded candidate once, on every core, before the pipelines run
    /// (by each capability-free verifier they use); they then reuse the verdicts. Pays
    /// off when the pipelines sample most of the recorded candidates (a best_of over
    /// all of them); verdicts and reports are the same either way.
    #[arg(long, conflicts_with = "fresh_verdicts")]
    pub pre_verify: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn run_cli(args: EvalArgs) -> anyhow::Result<std::process::ExitCode> {
    let config = GatewayConfig::load_or_embedded(args.config.as_deref())?;
    let mut records = load_dataset(&args.dataset)?;
    if let Some(n) = args.limit {
        records.truncate(n);
    }
    if records.is_empty() {
        bail!("{} has no rows", args.dataset.display());
    }
    // Before the run, so a folder that cannot be written does not cost a whole run.
    if let Some(dir) = &args.plot {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the figures folder {}", dir.display()))?;
    }
    // Current-thread runtime: its clock can be paused, so replay latencies are simulated.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Plugin calls run on up to one thread per core (see `Runtime::run_calls_on`); this
    // runtime only drives their deadlines, on the real clock.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let timers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("plugin-call-timers")
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let program = std::env::current_exe().context("locating the arbiter binary")?;
        let dataset = std::fs::canonicalize(&args.dataset)?;
        let app = App::build(
            config,
            AppOptions {
                store: false,
                replay_dataset: Some(dataset),
                compile_program: Some(program),
                reuse_verdicts: !args.fresh_verdicts,
                ..Default::default()
            },
        )
        .await?;
        app.runtime.run_calls_on(timers.handle().clone(), cores);
        for p in &args.pipelines {
            app.engine
                .resolve("default", None, p, true)
                .with_context(|| format!("pipeline `{p}`"))?;
        }
        let ahead = match (&app.engine.verdicts, args.pre_verify) {
            (Some(memo), true) => {
                pre_verify(
                    &app.engine,
                    memo,
                    &records,
                    &args.pipelines,
                    args.with_reference,
                    cores,
                )
                .await
            }
            _ => 0,
        };
        tokio::time::pause();
        let options = EvalOptions {
            pipelines: args.pipelines.clone(),
            dataset: args.dataset.clone(),
            limit: args.limit,
            concurrency: args.concurrency,
            with_reference: args.with_reference,
            progress: progress_mode(args.json, std::io::stderr().is_terminal()),
        };
        let pipelines = run(app.engine.clone(), &records, &options).await;
        let (models, oracle) = references(&records, &upstream_prices(&app.engine));
        let mut report = EvalReport::new(
            args.dataset.display().to_string(),
            records.len(),
            pipelines,
            models,
            oracle,
        );
        report.verifications = app.engine.verdicts.as_ref().map(|m| {
            let (reused, run) = m.counts();
            Verifications { ahead, run, reused }
        });
        anyhow::Ok(report)
    })?;
    if let Some(dir) = &args.plot {
        let files = plot::write_all(&report, dir)
            .with_context(|| format!("writing figures to {}", dir.display()))?;
        // stdout carries the one JSON document with --json, so the list goes to stderr.
        if !args.json {
            for f in &files {
                eprintln!("wrote {}", f.display());
            }
        }
    }
    if args.json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// A bar on a terminal. Plain lines otherwise, except with `--json`: there stderr is
/// where a script reads the error document, so a non-terminal stays quiet.
fn progress_mode(json: bool, terminal: bool) -> ProgressMode {
    match (terminal, json) {
        (true, _) => ProgressMode::Bar,
        (false, false) => ProgressMode::Lines,
        (false, true) => ProgressMode::Off,
    }
}

fn opt(v: Option<f64>, scale: f64, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{:.*}", digits, x * scale))
}

fn print_report(r: &EvalReport) {
    println!(
        "dataset {} ({} queries; latencies simulated from the replay provider)\n",
        r.dataset, r.queries
    );
    println!(
        "{:<22} {:>8} {:>13} {:>10} {:>10} {:>11} {:>10} {:>8}",
        "pipeline", "accuracy", "$/query", "p50 ms", "p95 ms", "calls/query", "precision", "recall"
    );
    for p in &r.pipelines {
        println!(
            "{:<22} {:>8.3} {:>13.7} {:>10.0} {:>10.0} {:>11.2} {:>10} {:>8}",
            p.pipeline,
            p.accuracy,
            p.cost_per_query_usd,
            p.latency_p50_ms,
            p.latency_p95_ms,
            p.model_calls_per_query,
            opt(p.verifier.precision, 1.0, 3),
            opt(p.verifier.recall, 1.0, 3)
        );
    }
    println!("\nreference points (from the dataset's labels)");
    for m in &r.models {
        println!(
            "  {:<28} accuracy {:.3} (Success@1)  Success@{:.0} {:.3}  $/query {}",
            format!("{} alone", m.model),
            m.accuracy,
            m.samples_per_query,
            m.success_at_k,
            opt(m.cost_per_query_usd, 1.0, 7)
        );
    }
    if let Some(o) = &r.oracle {
        println!(
            "  {:<28} accuracy {:.3}  $/query {:.7}",
            "oracle routing", o.accuracy, o.cost_per_query_usd
        );
    }
    for p in &r.pipelines {
        let chosen: Vec<String> = p
            .chosen_models
            .iter()
            .map(|(m, n)| format!("{m}: {n}"))
            .collect();
        println!(
            "\n{}: answered {}/{}, outcomes {:?}, chosen {}, cancelled calls {}, wall {:.1} s{}",
            p.pipeline,
            p.answered,
            p.queries,
            p.outcomes,
            chosen.join(", "),
            p.cancelled_calls,
            p.wall_seconds,
            p.verifier_call_us
                .map(|u| format!(", verifier call {u:.0} µs"))
                .unwrap_or_default()
        );
    }
    if let Some(v) = &r.verifications {
        println!(
            "\nverifications: {} run ahead on every core, {} run during the pipelines, {} reused",
            v.ahead, v.run, v.reused
        );
    }
}
