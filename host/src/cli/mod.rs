//! The `arbiter` command line. Each subcommand family lives in its own file.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub mod admin;
pub mod eval;
pub mod output;
pub mod plugin;
pub mod remote;
pub mod serve;

#[derive(Debug, Parser)]
#[command(
    name = "arbiter",
    version,
    about = "LLM orchestration with sandboxed WebAssembly verifiers, routers and decomposers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, inspect, call and benchmark plugins.
    #[command(subcommand)]
    Plugin(Box<plugin::PluginCommand>),
    /// Run the gateway (default: embedded example configuration, no API key needed).
    Serve(serve::ServeArgs),
    /// Replay a dataset through pipelines and report accuracy, cost and latency.
    Eval(eval::EvalArgs),
    /// The admin API of a running gateway: tenants, keys, usage, reload.
    Admin(admin::AdminArgs),
    /// Your own pipelines on a running gateway (a tenant key): apply, list, delete.
    #[command(subcommand)]
    Pipeline(remote::PipelineCommand),
    /// API keys: make a new one, or print the hash to put in a configuration.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Internal: compile a component in a resource-limited child process.
    #[command(name = "__compile-plugin", hide = true)]
    CompilePlugin {
        #[arg(long)]
        profile: String,
        #[arg(long)]
        memory_mib: u64,
        input: PathBuf,
        output: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print a new random key and its hash.
    New,
    /// Print the hash of a key (`sha256:<hex>`), for `[tenants.<name>] api_keys`.
    Hash { key: String },
}

pub fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    if !matches!(cli.command, Command::Serve(_)) {
        crate::telemetry::init_subscriber(None);
    }
    match cli.command {
        Command::CompilePlugin {
            profile,
            memory_mib,
            input,
            output,
        } => {
            crate::runtime::compile_worker_main(&profile, memory_mib, &input, &output)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Plugin(cmd) => plugin::run(*cmd),
        Command::Serve(args) => serve::run(args),
        Command::Admin(args) => admin::run(args),
        Command::Pipeline(cmd) => remote::pipeline(cmd),
        Command::Eval(args) => eval::run_cli(args),
        Command::Key(KeyCommand::New) => {
            let key = crate::server::auth::generate_key();
            println!("key:  {key}\nhash: {}", crate::server::auth::hash_key(&key));
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Key(KeyCommand::Hash { key }) => {
            println!("{}", crate::server::auth::hash_key(&key));
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
