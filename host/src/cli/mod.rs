//! The `arbiter` command line. Each subcommand family lives in its own file.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub mod output;
pub mod plugin;

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

pub fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
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
    }
}
