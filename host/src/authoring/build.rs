//! Builds a plugin project into a WebAssembly component.
//!
//! One entry point for every language: detect the language from the project's files,
//! check the toolchain is there (and say exactly what to install if not), build, and
//! report the component path. Builds are incremental: the language's own build tool
//! decides what changed (cargo for Rust).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Languages a plugin can be written in. Each has one builder module in `authoring/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
    C,
    JavaScript,
    TypeScript,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::C => "c",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

#[derive(Debug, Clone, Serialize)]
pub struct BuildOutput {
    pub language: Language,
    /// The component(s) built; a Rust workspace may build several.
    pub components: Vec<PathBuf>,
    /// False when nothing changed since the last build.
    pub rebuilt: bool,
    /// What the warm-up snapshot did (Python and JavaScript/TypeScript builds that ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_up: Option<super::snapshot::WarmUp>,
    #[serde(serialize_with = "ser_ms")]
    pub duration: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

pub fn detect_language(dir: &Path) -> Result<Language, BuildError> {
    if super::python::detect(dir)? {
        return Ok(Language::Python);
    }
    if super::c::detect(dir)? {
        return Ok(Language::C);
    }
    if let Some(language) = super::js::detect(dir)? {
        return Ok(language);
    }
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
    let none = |(components, rebuilt)| (components, rebuilt, None);
    let (components, rebuilt, warm_up) = match language {
        Language::Rust => none(super::rust::build_rust(dir, options)?),
        Language::Python => super::python::build_python(dir, options)?,
        Language::C => none(super::c::build_c(dir, options)?),
        Language::JavaScript | Language::TypeScript => super::js::build_js(dir, options)?,
    };
    Ok(BuildOutput {
        language,
        components,
        rebuilt,
        warm_up,
        duration: started.elapsed(),
    })
}
