//! `arbiter plugin new`: a plugin project that builds and passes its own tests at once.
//!
//! Templates are real files in this repository, `sdk/<language>/templates/<kind>/`,
//! embedded in the binary so `new` works anywhere. Every template implements the same
//! example check, and every project gets the shared vectors of its kind
//! (`tests/vectors/template-<kind>.jsonl`) as its `cases.jsonl`, so templates of all
//! languages are held to identical verdicts. Projects are self-contained: what a
//! language needs from this repository (the Rust SDK and the WIT) is vendored into them.
//!
//! Each language's file declares its [`Templates`] (`rust::TEMPLATES`, ...), registered
//! in [`Language::templates`].

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::wit;
use super::Language;
use crate::runtime::types::PluginKind;

/// One file of a template: its path in the generated project and its text.
#[derive(Debug, Clone, Copy)]
pub struct TemplateFile {
    pub path: &'static str,
    pub text: &'static str,
}

/// A language's templates. Placeholders `{{name}}`, `{{crate_name}}`, `{{kind}}`,
/// `{{contract_version}}` and `{{arbiter_version}}` are filled in; any other `{{...}}` is
/// left as written.
pub struct Templates {
    /// The files of each kind it has templates for.
    pub kinds: &'static [(PluginKind, &'static [TemplateFile])],
    /// Files every project of the language gets, whatever its kind.
    pub common: &'static [TemplateFile],
    /// Files made per project from this repository rather than a template (Rust: the
    /// vendored SDK), as (relative path, contents).
    pub vendored: Option<Vendor>,
}

/// Makes the files a language vendors into each project, as (relative path, contents).
pub type Vendor = fn() -> Result<Vec<(String, String)>, NewError>;

impl Templates {
    fn of(&self, kind: PluginKind) -> Option<&'static [TemplateFile]> {
        self.kinds.iter().find(|(k, _)| *k == kind).map(|(_, f)| *f)
    }
}

use PluginKind::{Decomposer, Router, Verifier};

/// The shared example vectors of each kind, which every project gets as `cases.jsonl`.
const VECTORS: &[(PluginKind, &str)] = &[
    (
        Verifier,
        include_str!("../../../tests/vectors/template-verifier.jsonl"),
    ),
    (
        Router,
        include_str!("../../../tests/vectors/template-router.jsonl"),
    ),
    (
        Decomposer,
        include_str!("../../../tests/vectors/template-decomposer.jsonl"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("{title} {kind} templates are not available yet in this build of arbiter (available for {kind}s: {available})")]
    NotAvailable {
        title: &'static str,
        kind: PluginKind,
        available: String,
    },
    #[error("invalid plugin name `{name}`: {why}")]
    InvalidName { name: String, why: String },
    #[error("{0} already exists and is not empty")]
    Exists(PathBuf),
    #[error("the vendored SDK manifest: {0}")]
    Manifest(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `new` created.
#[derive(Debug, Clone, Serialize)]
pub struct NewProject {
    pub dir: PathBuf,
    /// Reported as `plugin new --lang` takes it (`ts`).
    #[serde(serialize_with = "short_name")]
    pub language: Language,
    pub kind: PluginKind,
    /// Files written, relative to `dir`.
    pub files: Vec<PathBuf>,
}

fn short_name<S: serde::Serializer>(language: &Language, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(language.short())
}

/// The languages with templates of `kind` in this build.
pub fn available(kind: PluginKind) -> Vec<Language> {
    Language::ALL
        .into_iter()
        .filter(|l| l.templates().of(kind).is_some())
        .collect()
}

/// Names that would not build as a package, crate or module in some language.
const RESERVED: &[&str] = &[
    "arbiter-sdk",
    "arbiter_sdk",
    "test",
    "core",
    "std",
    "alloc",
    "proc_macro",
    "proc-macro",
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "import",
    "class",
    "def",
    "from",
    "with",
    "none",
];

/// A name is a lowercase identifier with dashes or underscores, usable unchanged as a
/// cargo package, npm package, and (dashes to underscores) a Python module or C symbol.
pub fn validate_name(name: &str) -> Result<(), NewError> {
    let invalid = |why: &str| NewError::InvalidName {
        name: name.to_string(),
        why: why.to_string(),
    };
    let Some(first) = name.chars().next() else {
        return Err(invalid("it is empty"));
    };
    if !first.is_ascii_lowercase() {
        return Err(invalid("it must start with a lowercase letter"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(invalid("use lowercase letters, digits, `-` and `_` only"));
    }
    if name.len() > 64 {
        return Err(invalid("it is longer than 64 characters"));
    }
    if RESERVED.contains(&name) || RESERVED.contains(&name.replace('-', "_").as_str()) {
        return Err(invalid("it is a reserved word or the name of a library"));
    }
    Ok(())
}

/// Fills in the placeholders of a template file.
fn render(text: &str, name: &str, kind: PluginKind) -> String {
    [
        ("{{name}}", name),
        ("{{crate_name}}", &name.replace('-', "_")),
        ("{{kind}}", kind.as_str()),
        ("{{contract_version}}", wit::latest()),
        ("{{arbiter_version}}", env!("CARGO_PKG_VERSION")),
    ]
    .iter()
    .fold(text.to_string(), |t, (key, value)| t.replace(key, value))
}

/// The kind's shared vectors as a project's `cases.jsonl`: the maintainers' header
/// comment replaced by one for the plugin's author.
fn cases_file(kind: PluginKind) -> String {
    let vectors = VECTORS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, v)| *v)
        .expect("vectors for every kind");
    let mut out = String::from(
        "// Test cases for `arbiter plugin test`: one JSON object per line (input, settings,\n\
         // expected result). These check the template's example; replace them with your own.\n",
    );
    for line in vectors
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
    {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The SDK's manifest with the values it inherits from this repository's workspace
/// Every file of a new project, as (relative path, contents).
pub fn project_files(
    language: Language,
    kind: PluginKind,
    name: &str,
) -> Result<Vec<(String, String)>, NewError> {
    validate_name(name)?;
    let templates = language.templates();
    let Some(template) = templates.of(kind) else {
        let available = available(kind);
        return Err(NewError::NotAvailable {
            title: language.title(),
            kind,
            available: if available.is_empty() {
                "none".into()
            } else {
                available
                    .iter()
                    .map(|l| l.short())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        });
    };
    let mut files: Vec<(String, String)> = template
        .iter()
        .chain(templates.common)
        .map(|f| (f.path.to_string(), render(f.text, name, kind)))
        .collect();
    files.push(("cases.jsonl".into(), cases_file(kind)));
    if let Some(vendored) = templates.vendored {
        files.extend(vendored()?);
    }
    Ok(files)
}

/// Creates the project `parent/name`. The folder must not exist or be empty.
pub fn create(
    language: Language,
    kind: PluginKind,
    name: &str,
    parent: &Path,
) -> Result<NewProject, NewError> {
    let files = project_files(language, kind, name)?;
    let dir = parent.join(name);
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(NewError::Exists(dir));
    }
    let mut written = Vec::new();
    for (path, text) in files {
        let full = dir.join(&path);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&full, &text)
        };
        write().map_err(|source| NewError::Write {
            path: full.clone(),
            source,
        })?;
        written.push(PathBuf::from(path));
    }
    Ok(NewProject {
        dir,
        language,
        kind,
        files: written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// Every file under `dir`, relative to it, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_sdk_source_is_vendored() {
        let mut embedded: Vec<String> = super::super::rust::SDK
            .iter()
            .map(|f| f.path.trim_start_matches("vendor/arbiter-sdk/").to_string())
            .collect();
        embedded.sort();
        let on_disk: Vec<String> = listing(&repo().join("sdk/rust/src"))
            .into_iter()
            .map(|f| format!("src/{f}"))
            .collect();
        assert_eq!(embedded, on_disk, "update SDK in rust.rs");
    }

    #[test]
    fn every_template_file_is_embedded() {
        for (language, (kind, files)) in Language::ALL
            .into_iter()
            .flat_map(|l| l.templates().kinds.iter().map(move |k| (l, k)))
        {
            let short = language.short();
            let sdk = match language {
                Language::JavaScript | Language::TypeScript => format!("js/templates/{short}"),
                _ => format!("{short}/templates"),
            };
            let dir = repo().join(format!("sdk/{sdk}/{kind}"));
            let mut embedded: Vec<&str> = files.iter().map(|f| f.path).collect();
            embedded.sort();
            assert_eq!(embedded, listing(&dir), "{language} {kind}");
        }
    }

    #[test]
    fn vendored_manifest_stands_alone() {
        let text = super::super::rust::vendored_sdk_manifest().unwrap();
        let manifest: toml::Table = toml::from_str(&text).unwrap();
        let package = manifest["package"].as_table().unwrap();
        assert_eq!(package["name"].as_str(), Some("arbiter-sdk"));
        for (key, value) in package {
            assert!(
                value.get("workspace").is_none(),
                "{key} still inherits from the workspace"
            );
        }
        assert_eq!(package["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
        assert!(manifest["features"].get("verifier").is_some());
    }

    #[test]
    fn rust_projects_are_complete() {
        for kind in PluginKind::ALL {
            let dir = tempfile::tempdir().unwrap();
            let project = create(Language::Rust, kind, "my-check", dir.path()).unwrap();
            assert_eq!(project.dir, dir.path().join("my-check"));
            let files = listing(&project.dir);
            for f in [
                "Cargo.toml",
                "Cargo.lock",
                ".gitignore",
                "README.md",
                "cases.jsonl",
                "src/lib.rs",
                "vendor/arbiter-sdk/Cargo.toml",
                "vendor/arbiter-sdk/src/bindings.rs",
                "vendor/arbiter-sdk/wit/v0.1.0/worlds.wit",
                "vendor/arbiter-sdk/wit/v0.2.0/worlds.wit",
            ] {
                assert!(files.iter().any(|x| x == f), "{kind}: {f} missing");
            }
            let manifest = std::fs::read_to_string(project.dir.join("Cargo.toml")).unwrap();
            assert!(manifest.contains("name = \"my-check\""));
            assert!(manifest.contains(&format!("features = [\"{kind}\"]")));
            let readme = std::fs::read_to_string(project.dir.join("README.md")).unwrap();
            assert!(readme.contains("my_check.wasm") && !readme.contains("{{"));
            let lock = std::fs::read_to_string(project.dir.join("Cargo.lock")).unwrap();
            assert!(lock.contains("name = \"my-check\""));
            // The shipped cases are the shared vectors, and parse.
            let cases = std::fs::read_to_string(project.dir.join("cases.jsonl")).unwrap();
            let parsed = super::super::cases::parse(&cases, Path::new("cases.jsonl")).unwrap();
            assert!(parsed.len() >= 5, "{kind}");
            // A second `new` into the same folder refuses to overwrite it.
            assert!(matches!(
                create(Language::Rust, kind, "my-check", dir.path()),
                Err(NewError::Exists(_))
            ));
        }
    }

    #[test]
    fn placeholders_are_filled_and_others_kept() {
        let out = render(
            "{{name}} {{crate_name}} {{kind}} {{contract_version}} {{id}}",
            "a-b",
            PluginKind::Router,
        );
        assert_eq!(out, format!("a-b a_b router {} {{{{id}}}}", wit::latest()));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("my-check_2").is_ok());
        for bad in [
            "",
            "My",
            "2x",
            "a b",
            "a.b",
            "test",
            "arbiter-sdk",
            "self",
            "ünï",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_languages_say_so() {
        // Languages whose templates are not in this build fail clearly, never with a stub.
        for language in Language::ALL {
            for kind in PluginKind::ALL {
                let r = project_files(language, kind, "x");
                if available(kind).contains(&language) {
                    assert!(r.is_ok());
                } else {
                    let e = r.unwrap_err().to_string();
                    assert!(e.contains("not available yet"), "{e}");
                    assert!(e.contains(language.title()), "{e}");
                }
            }
        }
    }
}
