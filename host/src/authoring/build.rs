//! Builds a plugin project into a WebAssembly component.
//!
//! One entry point for every language: detect the language from the project's files,
//! check the toolchain is there (and say exactly what to install if not), build, and
//! report the component path. Builds are incremental: the language's own build tool
//! decides what changed (cargo for Rust).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Language::Rust => "rust",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0} is not a plugin project: no Cargo.toml found (Rust plugins are cargo projects; see `arbiter plugin new`)")]
    NotAProject(PathBuf),
    #[error("missing toolchain: {what}. Install it with: {install}")]
    MissingToolchain { what: String, install: String },
    #[error("the build failed ({status}):\n{output}")]
    Failed { status: String, output: String },
    #[error("the build produced no component (is the crate type `cdylib`?)")]
    NoArtifact,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Cargo target directory (default: the project's own `target/`).
    pub target_dir: Option<PathBuf>,
    /// Pass the build tool's output through instead of capturing it.
    pub verbose: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildOutput {
    pub language: Language,
    /// The component(s) built; a Rust workspace may build several.
    pub components: Vec<PathBuf>,
    /// False when nothing changed since the last build.
    pub rebuilt: bool,
    #[serde(serialize_with = "ser_ms")]
    pub duration: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

pub fn detect_language(dir: &Path) -> Result<Language, BuildError> {
    if dir.join("Cargo.toml").is_file() {
        return Ok(Language::Rust);
    }
    Err(BuildError::NotAProject(dir.to_path_buf()))
}

/// Builds the project in `dir`.
pub fn build(dir: &Path, options: &BuildOptions) -> Result<BuildOutput, BuildError> {
    let started = Instant::now();
    let dir = &dir
        .canonicalize()
        .map_err(|_| BuildError::NotAProject(dir.to_path_buf()))?;
    let language = detect_language(dir)?;
    let (components, rebuilt) = match language {
        Language::Rust => build_rust(dir, options)?,
    };
    Ok(BuildOutput {
        language,
        components,
        rebuilt,
        duration: started.elapsed(),
    })
}

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

fn build_rust(dir: &Path, options: &BuildOptions) -> Result<(Vec<PathBuf>, bool), BuildError> {
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
