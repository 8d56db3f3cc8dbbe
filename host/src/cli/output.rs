//! Shared output conventions: `--json` prints one JSON document on stdout; errors go to
//! stderr (as `{"error": {"code", "message"}}` with `--json`) with a non-zero exit.

use std::process::ExitCode;

use serde::Serialize;

pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Reports `err` on stderr in the requested format and returns the failing exit code.
pub fn report_error(err: &anyhow::Error, json: bool) -> ExitCode {
    if json {
        let code = err
            .chain()
            .find_map(|e| e.downcast_ref::<crate::runtime::Error>())
            .map(|e| e.code())
            .unwrap_or("error");
        let doc = serde_json::json!({"error": {"code": code, "message": format!("{err:#}")}});
        eprintln!("{doc}");
    } else {
        eprintln!("error: {err:#}");
    }
    ExitCode::FAILURE
}

pub fn micros(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6 * 10.0).round() / 10.0
}

pub fn human_duration(d: std::time::Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

pub fn human_bytes(n: usize) -> String {
    if n < 10 << 10 {
        format!("{n} B")
    } else if n < 10 << 20 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    }
}
