//! Rust plugins: a cargo project with a `cdylib` depending on `arbiter-sdk`, built for
//! `wasm32-wasip2` (which produces a component directly). Cargo decides what is stale.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::build::{BuildError, BuildOptions};

const RUST_TARGET: &str = "wasm32-wasip2";

fn check_rust_toolchain(dir: &Path) -> Result<(), BuildError> {
    let missing_cargo = || BuildError::MissingToolchain {
        what: "cargo (Rust) was not found".into(),
        install: "https://rustup.rs, then `rustup target add wasm32-wasip2`".into(),
    };
    let out = Command::new("rustc")
        .current_dir(dir)
        .args(["--print", "target-libdir", "--target", RUST_TARGET])
        .stderr(Stdio::null())
        .output()
        .map_err(|_| missing_cargo())?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !libdir.is_dir() {
        return Err(BuildError::MissingToolchain {
            what: format!("the Rust target {RUST_TARGET} is not installed"),
            install: format!("rustup target add {RUST_TARGET}"),
        });
    }
    Ok(())
}

pub(super) fn build_rust(
    dir: &Path,
    options: &BuildOptions,
) -> Result<(Vec<PathBuf>, bool), BuildError> {
    check_rust_toolchain(dir)?;
    let mut cmd = Command::new("cargo");
    cmd.current_dir(dir)
        .args([
            "build",
            "--release",
            "--target",
            RUST_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .stdout(Stdio::piped())
        .stderr(if options.verbose {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
    // A workspace manifest builds all its plugins.
    if std::fs::read_to_string(dir.join("Cargo.toml"))?.contains("[workspace]")
        && !std::fs::read_to_string(dir.join("Cargo.toml"))?.contains("[package]")
    {
        cmd.arg("--workspace");
    }
    if let Some(t) = &options.target_dir {
        cmd.env("CARGO_TARGET_DIR", t);
    }
    let out = cmd.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let mut output: Vec<String> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-message")
            .filter_map(|m| m["message"]["rendered"].as_str().map(String::from))
            .collect();
        output.push(String::from_utf8_lossy(&out.stderr).into_owned());
        return Err(BuildError::Failed {
            status: out.status.to_string(),
            output: output.join("\n"),
        });
    }
    let mut components = Vec::new();
    let mut rebuilt = false;
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        if !is_cdylib {
            continue;
        }
        rebuilt |= msg["fresh"] == false;
        for f in msg["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = f.as_str().filter(|f| f.ends_with(".wasm")) {
                components.push(PathBuf::from(f));
            }
        }
    }
    if components.is_empty() {
        return Err(BuildError::NoArtifact);
    }
    Ok((components, rebuilt))
}
