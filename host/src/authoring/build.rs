//! Builds a plugin project into a WebAssembly component.
//!
//! One entry point for every language: detect the language from the project's files
//! (`manifest`), then run that language's [`Builder`]: read and check its manifest, check
//! the toolchain is there (and say exactly what to install if not), build, and report the
//! components. Builds are incremental: the language's own build tool decides what changed
//! (cargo for Rust), or the inputs are fingerprinted (`freshness`).
//!
//! The languages and which builder serves each are registered in `authoring/mod.rs`
//! ([`Language`]).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::snapshot::WarmUp;
use super::Language;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0} is not a plugin project: no Cargo.toml or arbiter.toml found (Rust plugins are cargo projects, others have an arbiter.toml; see `arbiter plugin new`)")]
    NotAProject(PathBuf),
    #[error("{}: {message}", path.display())]
    InvalidManifest { path: PathBuf, message: String },
    #[error("missing toolchain: {what}. Install it with: {install}")]
    MissingToolchain { what: String, install: String },
    #[error("the build failed ({status}):\n{output}")]
    Failed { status: String, output: String },
    #[error("the build produced no component (is the crate type `cdylib`?)")]
    NoArtifact,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl BuildError {
    /// A build tool that exited unsuccessfully: its status, and what it printed (stderr
    /// first, where the diagnostics are).
    pub(super) fn tool_failed(out: &Output) -> BuildError {
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        BuildError::Failed {
            status: out.status.to_string(),
            output: text.trim().to_string(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Cargo target directory (default: the project's own `target/`).
    pub target_dir: Option<PathBuf>,
    /// Pass the build tool's output through instead of capturing it.
    pub verbose: bool,
    /// Skip the warm-up snapshot of Python and JavaScript/TypeScript plugins
    /// (`authoring::snapshot`).
    pub no_warm_up: bool,
}

impl BuildOptions {
    /// Where the components of the project in `dir` go.
    pub(super) fn target(&self, dir: &Path) -> PathBuf {
        self.target_dir
            .clone()
            .unwrap_or_else(|| dir.join("target"))
    }

    /// What a build tool's stdout or stderr is connected to: the terminal when verbose,
    /// else a pipe (shown only when the build fails).
    pub(super) fn tool_output(&self) -> Stdio {
        if self.verbose {
            Stdio::inherit()
        } else {
            Stdio::piped()
        }
    }
}

/// What one language's build produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// The component(s) built; a Rust workspace may build several.
    pub components: Vec<PathBuf>,
    /// False when nothing changed since the last build.
    pub rebuilt: bool,
    /// What the warm-up snapshot did (builders that take one, when they built).
    pub warm_up: Option<WarmUp>,
}

impl Built {
    /// One component, built now or found up to date.
    pub(super) fn one(component: PathBuf, rebuilt: bool, warm_up: Option<WarmUp>) -> Built {
        Built {
            components: vec![component],
            rebuilt,
            warm_up,
        }
    }
}

/// One language's builder. [`build`] runs the steps in order, so a project's mistakes
/// are reported before a missing tool, and the tools before a build starts.
pub trait Builder {
    /// The project's manifest, as the builder needs it.
    type Manifest;
    /// What the toolchain check found (tools, versions), handed on to the build.
    type Toolchain;

    /// Reads and checks the project's manifest.
    fn read_manifest(&self, dir: &Path) -> Result<Self::Manifest, BuildError>;

    /// Checks that the tools this project needs are installed, naming what to install
    /// when they are not.
    fn toolchain_check(
        &self,
        dir: &Path,
        manifest: &Self::Manifest,
        options: &BuildOptions,
    ) -> Result<Self::Toolchain, BuildError>;

    /// Builds the project (or finds its components up to date).
    fn build(
        &self,
        dir: &Path,
        manifest: &Self::Manifest,
        toolchain: Self::Toolchain,
        options: &BuildOptions,
    ) -> Result<Built, BuildError>;
}

/// A builder's steps, in order.
pub(super) fn run<B: Builder>(
    builder: &B,
    dir: &Path,
    options: &BuildOptions,
) -> Result<Built, BuildError> {
    let manifest = builder.read_manifest(dir)?;
    let toolchain = builder.toolchain_check(dir, &manifest, options)?;
    builder.build(dir, &manifest, toolchain, options)
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildOutput {
    pub language: Language,
    /// The component(s) built; a Rust workspace may build several.
    pub components: Vec<PathBuf>,
    /// False when nothing changed since the last build.
    pub rebuilt: bool,
    /// What the warm-up snapshot did (Python and JavaScript/TypeScript builds that ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_up: Option<WarmUp>,
    #[serde(serialize_with = "ser_ms")]
    pub duration: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

/// The language of the project in `dir` (`manifest::detect`).
pub fn detect_language(dir: &Path) -> Result<Language, BuildError> {
    super::manifest::detect(dir)
}

/// Builds the project in `dir`.
pub fn build(dir: &Path, options: &BuildOptions) -> Result<BuildOutput, BuildError> {
    let started = Instant::now();
    let dir = &dir
        .canonicalize()
        .map_err(|_| BuildError::NotAProject(dir.to_path_buf()))?;
    let language = detect_language(dir)?;
    // Builders run tools in other working directories: a relative target folder would
    // point somewhere else for them.
    let absolute;
    let options = match &options.target_dir {
        Some(t) if t.is_relative() => {
            absolute = BuildOptions {
                target_dir: Some(std::path::absolute(t)?),
                ..options.clone()
            };
            &absolute
        }
        _ => options,
    };
    let built = language.build(dir, options)?;
    Ok(BuildOutput {
        language,
        components: built.components,
        rebuilt: built.rebuilt,
        warm_up: built.warm_up,
        duration: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_have_one_name_per_place() {
        for language in Language::ALL {
            assert_eq!(language.short().parse::<Language>(), Ok(language));
            assert_eq!(
                serde_json::to_value(language).unwrap(),
                language.as_str(),
                "reports and --json agree"
            );
        }
        assert_eq!(
            "go".parse::<Language>().unwrap_err(),
            "unknown language `go` (rust, python, js, ts, c)"
        );
        assert_eq!(Language::from_manifest("TS"), Some(Language::TypeScript));
        assert_eq!(
            Language::from_manifest("javascript"),
            Some(Language::JavaScript)
        );
        assert_eq!(Language::from_manifest("Python"), Some(Language::Python));
        // Rust projects are cargo projects: `language = "rust"` names no builder.
        assert_eq!(Language::from_manifest("rust"), None);
    }
}
