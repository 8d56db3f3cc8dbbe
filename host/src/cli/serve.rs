//! `arbiter serve`: the gateway. With no arguments it runs the embedded example
//! configuration (replay provider, SQLite, reference plugins): no API key needed.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::app::{App, AppOptions};
use crate::config::GatewayConfig;
use crate::server::serve;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (default: ./arbiter.toml if present, else the embedded example).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides the configuration).
    #[arg(long)]
    pub listen: Option<String>,
    /// Accept this API key for the `default` tenant (stored hashed).
    #[arg(long, env = "ARBITER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Accept this operator key for the admin API (`/admin/v1`; stored hashed).
    #[arg(long, env = "ARBITER_OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<String>,
    /// Data folder: SQLite traces, compiled plugins (overrides the configuration).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print the paths the configuration resolves to (data folder, plugins, datasets)
    /// and exit, without building or loading anything.
    #[arg(long)]
    pub paths: bool,
}

pub fn run(args: ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut config = GatewayConfig::load_or_embedded(args.config.as_deref())?;
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    if let Some(d) = args.data_dir {
        // Relative to where the user typed it, not to the configuration's folder.
        config.server.data_dir =
            std::path::absolute(&d).with_context(|| format!("data folder {}", d.display()))?;
    }
    if args.paths {
        for (key, path) in config.paths() {
            say(format_args!("{key} {}", path.display()));
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.server.worker_threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Inside the runtime: the gRPC exporter's connection runs on it.
    let telemetry = {
        let _rt = rt.enter();
        crate::telemetry::Telemetry::start(&config.telemetry).context("starting span export")?
    };
    crate::telemetry::init_subscriber(telemetry.as_ref());
    // What a reload reads: the file this start read (the embedded example is reread
    // from the binary).
    let source = match args.config {
        Some(p) => Some(p),
        None => Some(PathBuf::from("arbiter.toml")).filter(|p| p.is_file()),
    }
    .map(|p| std::path::absolute(&p).unwrap_or(p));
    let served = rt.block_on(serve_main(config, source, args.api_key, args.operator_key));
    // After the last request has finished, so its spans are in the queue being flushed.
    if let Some(t) = telemetry {
        t.shutdown();
    }
    served?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve_main(
    config: GatewayConfig,
    source: Option<PathBuf>,
    api_key: Option<String>,
    operator_key: Option<String>,
) -> anyhow::Result<()> {
    eprintln!("arbiter: loading plugins and pipelines (first start builds the plugins)...");
    let program = std::env::current_exe().context("locating the arbiter binary")?;
    let options = AppOptions {
        store: true,
        replay_dataset: None,
        compile_program: Some(program),
        ..Default::default()
    };
    let app = App::build(config, options.clone()).await?;
    let gateway = app
        .gateway_with_keys(api_key.as_deref(), operator_key.as_deref())
        .await?;
    let _ = gateway
        .state
        .reloader
        .set(app.reloader(source, options) as Arc<dyn crate::server::Reload>);
    reload_on_sighup(gateway.state.clone());
    if let Some(key) = &gateway.generated_key {
        say(format_args!("Created an API key for the default tenant (shown once; only its hash is stored):\n\n    {key}\n"));
    }
    if let Some(key) = &gateway.generated_operator_key {
        say(format_args!("Created an operator key for the admin API, /admin/v1 (shown once; only its hash is stored):\n\n    {key}\n"));
    }

    let stop = shutdown_signal();
    let listener = tokio::net::TcpListener::bind(&app.config.server.listen)
        .await
        .with_context(|| format!("binding {}", app.config.server.listen))?;
    let addr = listener.local_addr()?;
    say(format_args!(
        "Arbiter listening on http://{addr}/v1 (traces in {})",
        app.data_dir.display()
    ));
    let width = app
        .engine
        .pipelines
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0);
    for (name, p) in &app.engine.pipelines {
        say(format_args!("  pipeline {name:<width$} {}", p.description));
    }
    serve(listener, gateway.state, &app.config.server, stop).await?;
    eprintln!("arbiter: stopped");
    Ok(())
}

/// SIGHUP reloads the configuration, as `POST /admin/v1/reload` does; the outcome is
/// logged.
fn reload_on_sighup(state: Arc<crate::server::AppState>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match crate::server::reload(&state).await {
                Ok(p) => eprintln!("arbiter: configuration reloaded ({} pipelines)", p.len()),
                Err(e) => eprintln!("arbiter: {}", e.message),
            }
        }
    });
}

/// Start-up messages: a closed stdout (a supervisor that stopped reading) must not
/// take the gateway down, so write errors are ignored.
fn say(message: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{message}");
    let _ = out.flush();
}

/// The handlers are installed when this is called, not when the future is first polled:
/// a supervisor may send SIGTERM as soon as it reads the listening address, and a
/// signal that arrives before the handler exists kills the process with no clean stop.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(interrupt) => {},
            _ = wait(term) => {},
        }
        eprintln!("arbiter: shutting down; finishing in-flight requests");
    }
}
