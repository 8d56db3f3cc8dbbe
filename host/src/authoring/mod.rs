//! Tools for plugin authors behind `arbiter plugin build | new | test`: detecting a
//! project's language, building it into one component, and checking the result.
//!
//! This module is the registry of languages: the one [`Language`] enum, with each
//! language's names, its [`build::Builder`] and its templates, which live in one file per
//! language (`rust.rs`, `python.rs`, `c.rs`, `js.rs`). `manifest.rs` reads what a
//! project says about itself (language, name, world); `build.rs` has the builder trait
//! and the build entry point;
//! `wit.rs` carries the contract so projects build anywhere; `freshness.rs` skips
//! rebuilds of unchanged projects for tools without an incremental mode; `new.rs`
//! scaffolds projects from the templates in `sdk/<language>/templates/`; `cases.rs` runs
//! case files (`arbiter plugin test`, and the calls of `plugin call` and `plugin bench`).
//!
//! Adding a language: its file (a [`build::Builder`] and its [`new::Templates`], the
//! template files themselves under `sdk/<language>/templates/`), and here its `mod` line,
//! a [`Language`] variant with its line in `ALL`, `names`, `templates` and `build`.

use std::path::Path;

use serde::Serialize;

/// Embeds files of `sdk/<dir>/` as [`new::TemplateFile`]s, each at the same relative path
/// in the project, or at `dest` with `"file" => "dest"`.
macro_rules! embed {
    ($dir:literal: $($file:literal $(=> $dest:literal)?),* $(,)?) => {
        &[$($crate::authoring::new::TemplateFile {
            path: embed!(@dest $file $(, $dest)?),
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/", $dir, "/", $file)),
        }),*]
    };
    (@dest $file:literal) => { $file };
    (@dest $file:literal, $dest:literal) => { $dest };
}

pub mod build;
pub mod c;
pub mod cases;
pub mod freshness;
pub mod js;
pub mod manifest;
pub mod new;
pub mod python;
pub mod rust;
pub mod snapshot;
pub mod wit;

pub use build::{build, detect_language, BuildError, BuildOptions, BuildOutput};

/// Languages a plugin can be written in. Each has one builder module in `authoring/`
/// (JavaScript and TypeScript share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
    C,
    JavaScript,
    TypeScript,
}

/// How a language is written in each place it appears.
struct Names {
    /// Build reports (`plugin build`, `--json`).
    name: &'static str,
    /// `plugin new --lang`, template folders, `plugin new` reports.
    short: &'static str,
    /// Prose.
    title: &'static str,
    /// `language` values of an `arbiter.toml` that select it, compared ignoring case;
    /// none for Rust, whose projects are cargo projects.
    manifest: &'static [&'static str],
}

impl Language {
    /// Every language, in the order `--help` lists them.
    pub const ALL: [Language; 5] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::C,
    ];

    fn names(self) -> Names {
        let n = |name, short, title, manifest| Names {
            name,
            short,
            title,
            manifest,
        };
        match self {
            Language::Rust => n("rust", "rust", "Rust", &[]),
            Language::Python => n("python", "python", "Python", &["python"]),
            Language::C => n("c", "c", "C", &["c"]),
            Language::JavaScript => n("javascript", "js", "JavaScript", &["js", "javascript"]),
            Language::TypeScript => n("typescript", "ts", "TypeScript", &["ts", "typescript"]),
        }
    }

    /// The name in build reports (`javascript`).
    pub fn as_str(self) -> &'static str {
        self.names().name
    }

    /// The name `plugin new --lang` takes and template folders use (`js`).
    pub fn short(self) -> &'static str {
        self.names().short
    }

    /// The name in prose (`JavaScript`).
    pub fn title(self) -> &'static str {
        self.names().title
    }

    /// The language an `arbiter.toml` names with `language = "<value>"`, if any.
    pub fn from_manifest(value: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| {
            l.names()
                .manifest
                .iter()
                .any(|m| m.eq_ignore_ascii_case(value))
        })
    }

    /// Its templates for `plugin new`.
    pub fn templates(self) -> &'static new::Templates {
        match self {
            Language::Rust => &rust::TEMPLATES,
            Language::Python => &python::TEMPLATES,
            Language::C => &c::TEMPLATES,
            Language::JavaScript => &js::JS_TEMPLATES,
            Language::TypeScript => &js::TS_TEMPLATES,
        }
    }

    /// Builds the project in `dir` (already detected as this language) with its builder.
    fn build(self, dir: &Path, options: &BuildOptions) -> Result<build::Built, BuildError> {
        match self {
            Language::Rust => build::run(&rust::Rust::from_env(), dir, options),
            Language::Python => build::run(&python::Python::default(), dir, options),
            Language::C => build::run(&c::C, dir, options),
            Language::JavaScript | Language::TypeScript => {
                build::run(&js::Js::default(), dir, options)
            }
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the short names (`--lang`).
impl std::str::FromStr for Language {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Language::ALL
            .into_iter()
            .find(|l| l.short() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Language::ALL.iter().map(|l| l.short()).collect();
                format!("unknown language `{s}` ({})", all.join(", "))
            })
    }
}
