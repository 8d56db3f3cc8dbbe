use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ARBITER_LOG")
                // Plugins' own log lines are opt-in (`plugin=info`): a plugin decides
                // how much it logs.
                .unwrap_or_else(|_| "warn,plugin=off".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in log files and collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = arbiter::cli::Cli::parse();
    match arbiter::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
