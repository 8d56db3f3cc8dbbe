use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The log subscriber is installed by `cli::run`: `serve` installs it once it has
    // read its configuration, which may ask for span export.
    let cli = arbiter::cli::Cli::parse();
    match arbiter::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
