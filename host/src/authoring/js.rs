//! JavaScript and TypeScript plugins: a folder with an `arbiter.toml` manifest
//! (`language = "js"` or `"ts"`) naming the entry module, bundled with esbuild and turned
//! into a component with componentize-js against the embedded contract.
//!
//! ```toml
//! [plugin]
//! name = "js-structured-verifier"   # the component is target/<name>.wasm
//! language = "ts"                   # js | ts
//! kind = "verifier"                 # verifier | router | decomposer
//! entry = "src/index.ts"            # the module whose default export is the plugin class
//! capabilities = []                 # ["model"] (verifier, decomposer) or ["stats"] (router)
//! ```
//!
//! Plugin authors have no clone of this repository, so the JS SDK (`@arbiter/sdk`, its
//! compiled `sdk/js/dist` and the WIT's generated declarations), the build driver
//! (`sdk/js/tools/build.mjs`) and the WIT travel inside the `arbiter` binary. At build time
//! the SDK is written to the project's `node_modules/@arbiter/sdk`, where esbuild, tsc and
//! editors all find it with no configuration (and where `npm install` may prune it: the
//! next build writes it again).
//!
//! **Where the Node.js tools come from.** Building needs Node.js 18+ and three npm
//! packages (componentize-js, esbuild, and TypeScript for `.ts` projects), ~420 MB once
//! installed. They are looked for, in order:
//! 1. `$ARBITER_JS_TOOLS`: a folder whose `node_modules` has them (offline machines, CI);
//! 2. the project's own `node_modules`, when it pins componentize-js 0.23.x itself;
//! 3. `sdk/js` of the checkout this binary was built from (developers of Arbiter);
//! 4. a per-user tools folder, `$XDG_CACHE_HOME/arbiter/js-tools/<version>` (default
//!    `~/.cache/...`), which the first build fills with `npm ci` from the lock file
//!    embedded here (the one `sdk/js` is tested with), so every author builds with the
//!    same tool versions and the project itself needs no build dependencies.
//!
//! componentize-js has no incremental mode and a build takes 10-30 s, so the inputs are
//! fingerprinted (`freshness`) and an unchanged project is not rebuilt.

use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::build::{BuildError, BuildOptions, Builder, Built};
use super::manifest::{self, invalid};
use super::new::Templates;
use super::Language;
use super::{freshness, snapshot, wit};
use crate::runtime::types::PluginKind::{Decomposer, Router, Verifier};

// The JS SDK and the build tools come with `arbiter plugin build`, not the project;
// JavaScript and TypeScript share the JS SDK's folder.
/// JavaScript templates: `sdk/js/templates/js/`.
pub(super) const JS_TEMPLATES: Templates = Templates {
    kinds: &[
        (
            Verifier,
            embed!("js/templates/js/verifier": "arbiter.toml", "src/index.js", "README.md"),
        ),
        (
            Router,
            embed!("js/templates/js/router": "arbiter.toml", "src/index.js", "README.md"),
        ),
        (
            Decomposer,
            embed!("js/templates/js/decomposer": "arbiter.toml", "src/index.js", "README.md"),
        ),
    ],
    common: embed!("js/templates/js/common": "gitignore" => ".gitignore", "package.json"),
    vendored: Some(vendored),
};

/// TypeScript templates: `sdk/js/templates/ts/`.
pub(super) const TS_TEMPLATES: Templates = Templates {
    kinds: &[
        (
            Verifier,
            embed!("js/templates/ts/verifier": "arbiter.toml", "src/index.ts", "README.md"),
        ),
        (
            Router,
            embed!("js/templates/ts/router": "arbiter.toml", "src/index.ts", "README.md"),
        ),
        (
            Decomposer,
            embed!("js/templates/ts/decomposer": "arbiter.toml", "src/index.ts", "README.md"),
        ),
    ],
    common: embed!("js/templates/ts/common": "gitignore" => ".gitignore", "package.json", "tsconfig.json"),
    vendored: Some(vendored),
};

/// Where a new project keeps its copy of the SDK; its `package.json` depends on it as
/// `"@arbiter/sdk": "file:vendor/arbiter-sdk"`, so `npm install` (offline) links it into
/// `node_modules` and editors and `tsc` resolve the SDK before the first build.
pub const VENDORED_SDK_DIR: &str = "vendor/arbiter-sdk";

/// The SDK's files for [`VENDORED_SDK_DIR`].
fn vendored() -> Result<Vec<(String, String)>, super::new::NewError> {
    let manifest = installed_manifest().map_err(super::new::NewError::Manifest)?;
    Ok(installed_files(&manifest)
        .map(|(name, text)| (format!("{VENDORED_SDK_DIR}/{name}"), text.to_string()))
        .collect())
}

/// The SDK's manifest as installed into a project: without the SDK's own scripts and
/// development dependencies (the build tools), which an installed copy never needs and
/// which npm must not see in a linked package. Edited as text because key order matters
/// (conditional `exports` are matched in order) and serde_json here sorts keys.
fn installed_manifest() -> Result<String, String> {
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in TOOLS_PACKAGE_JSON.lines() {
        if skipping {
            skipping = !(line == "  }" || line == "  },");
        } else if line == "  \"scripts\": {" || line == "  \"devDependencies\": {" {
            skipping = true;
        } else {
            kept.push(line);
        }
    }
    // A removed block may have been the last: no comma before the closing brace.
    let out = kept.join("\n").replace(",\n}", "\n}") + "\n";
    let parsed: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| format!("sdk/js/package.json without its build keys: {e}"))?;
    if parsed.get("scripts").is_some() || parsed.get("devDependencies").is_some() {
        return Err(
            "sdk/js/package.json: keep `scripts` and `devDependencies` as top-level \
                    blocks of two-space-indented lines"
                .into(),
        );
    }
    Ok(out)
}

/// [`SDK_FILES`] with `package.json` replaced by `manifest`.
fn installed_files(manifest: &str) -> impl Iterator<Item = (&'static str, &str)> {
    SDK_FILES.iter().map(move |(name, text)| {
        (
            *name,
            if *name == "package.json" {
                manifest
            } else {
                *text
            },
        )
    })
}

pub use super::manifest::MANIFEST;

/// The componentize-js series the SDK's export glue is written against (how results,
/// errors and records cross the bindings).
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
const COMPONENTIZE_JS_SERIES: &str = "0.23.";

/// Oldest Node.js the build tools run on.
const NODE_MIN_MAJOR: u32 = 18;

/// The npm packages a build needs (TypeScript only for `.ts` projects).
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js";
const ESBUILD: &str = "esbuild";
const TYPESCRIPT: &str = "typescript";

/// What to install when Node.js or npm is missing.
pub const NODE_INSTALL_HINT: &str =
    "Node.js 18 or newer with npm: https://nodejs.org/ (Debian/Ubuntu: apt-get install nodejs npm)";

/// The JS SDK as it is written to `node_modules/@arbiter/sdk`: the compiled sources
/// (`sdk/js/dist`, built from `sdk/js/src` by `npm run build`), the declarations generated
/// from the WIT (`npm run gen-types`), the engine's globals, the package manifest.
pub const SDK_FILES: &[(&str, &str)] = &[
    (
        "dist/config.d.ts",
        include_str!("../../../sdk/js/dist/config.d.ts"),
    ),
    (
        "dist/config.js",
        include_str!("../../../sdk/js/dist/config.js"),
    ),
    (
        "dist/export.d.ts",
        include_str!("../../../sdk/js/dist/export.d.ts"),
    ),
    (
        "dist/export.js",
        include_str!("../../../sdk/js/dist/export.js"),
    ),
    (
        "dist/host.d.ts",
        include_str!("../../../sdk/js/dist/host.d.ts"),
    ),
    ("dist/host.js", include_str!("../../../sdk/js/dist/host.js")),
    (
        "dist/index.d.ts",
        include_str!("../../../sdk/js/dist/index.d.ts"),
    ),
    (
        "dist/index.js",
        include_str!("../../../sdk/js/dist/index.js"),
    ),
    (
        "dist/log.d.ts",
        include_str!("../../../sdk/js/dist/log.d.ts"),
    ),
    ("dist/log.js", include_str!("../../../sdk/js/dist/log.js")),
    (
        "dist/model.d.ts",
        include_str!("../../../sdk/js/dist/model.d.ts"),
    ),
    (
        "dist/model.js",
        include_str!("../../../sdk/js/dist/model.js"),
    ),
    (
        "dist/plugin.d.ts",
        include_str!("../../../sdk/js/dist/plugin.d.ts"),
    ),
    (
        "dist/plugin.js",
        include_str!("../../../sdk/js/dist/plugin.js"),
    ),
    (
        "dist/stats.d.ts",
        include_str!("../../../sdk/js/dist/stats.d.ts"),
    ),
    (
        "dist/stats.js",
        include_str!("../../../sdk/js/dist/stats.js"),
    ),
    (
        "dist/types.d.ts",
        include_str!("../../../sdk/js/dist/types.d.ts"),
    ),
    (
        "dist/types.js",
        include_str!("../../../sdk/js/dist/types.js"),
    ),
    (
        "wit-types/decomposer.d.ts",
        include_str!("../../../sdk/js/wit-types/decomposer.d.ts"),
    ),
    (
        "wit-types/index.d.ts",
        include_str!("../../../sdk/js/wit-types/index.d.ts"),
    ),
    (
        "wit-types/interfaces/arbiter-plugin-decomposition.d.ts",
        include_str!("../../../sdk/js/wit-types/interfaces/arbiter-plugin-decomposition.d.ts"),
    ),
    (
        "wit-types/interfaces/arbiter-plugin-log.d.ts",
        include_str!("../../../sdk/js/wit-types/interfaces/arbiter-plugin-log.d.ts"),
    ),
    (
        "wit-types/interfaces/arbiter-plugin-model.d.ts",
        include_str!("../../../sdk/js/wit-types/interfaces/arbiter-plugin-model.d.ts"),
    ),
    (
        "wit-types/interfaces/arbiter-plugin-routing.d.ts",
        include_str!("../../../sdk/js/wit-types/interfaces/arbiter-plugin-routing.d.ts"),
    ),
    (
        "wit-types/interfaces/arbiter-plugin-stats.d.ts",
        include_str!("../../../sdk/js/wit-types/interfaces/arbiter-plugin-stats.d.ts"),
    ),
    (
        "wit-types/interfaces/arbiter-plugin-types.d.ts",
        include_str!("../../../sdk/js/wit-types/interfaces/arbiter-plugin-types.d.ts"),
    ),
    (
        "wit-types/interfaces/arbiter-plugin-verification.d.ts",
        include_str!("../../../sdk/js/wit-types/interfaces/arbiter-plugin-verification.d.ts"),
    ),
    (
        "wit-types/model-decomposer.d.ts",
        include_str!("../../../sdk/js/wit-types/model-decomposer.d.ts"),
    ),
    (
        "wit-types/model-verifier.d.ts",
        include_str!("../../../sdk/js/wit-types/model-verifier.d.ts"),
    ),
    (
        "wit-types/router.d.ts",
        include_str!("../../../sdk/js/wit-types/router.d.ts"),
    ),
    (
        "wit-types/stats-router.d.ts",
        include_str!("../../../sdk/js/wit-types/stats-router.d.ts"),
    ),
    (
        "wit-types/verifier.d.ts",
        include_str!("../../../sdk/js/wit-types/verifier.d.ts"),
    ),
    ("globals.d.ts", include_str!("../../../sdk/js/globals.d.ts")),
    ("package.json", include_str!("../../../sdk/js/package.json")),
    ("README.md", include_str!("../../../sdk/js/README.md")),
];

/// The Node.js side of the build (type-check, bundle, componentize).
const BUILD_DRIVER: &str = include_str!("../../../sdk/js/tools/build.mjs");

/// The tool set the per-user tools folder is installed from (`npm ci`).
const TOOLS_PACKAGE_JSON: &str = include_str!("../../../sdk/js/package.json");
const TOOLS_PACKAGE_LOCK: &str = include_str!("../../../sdk/js/package-lock.json");

/// Where `sdk/js` of this binary's checkout is (used only when it has its tools).
const CHECKOUT_TOOLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/js");

/// Source files whose content decides the build (node_modules and target are skipped).
const SOURCE_EXTENSIONS: &[&str] = &[
    ".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".json", ".toml",
];

/// The `[plugin]` table of a JavaScript/TypeScript project's `arbiter.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JsManifest {
    /// Component file name (`<name>.wasm`): lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// `js` or `ts` (also `javascript`, `typescript`).
    pub language: String,
    /// `verifier`, `router` or `decomposer`.
    pub kind: String,
    /// The entry module, relative to the manifest, optionally `path:ExportName` (default:
    /// the module's default export).
    pub entry: String,
    /// Capabilities the plugin uses; they choose the world it is built for.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl JsManifest {
    pub fn language(&self) -> Result<Language, String> {
        Language::from_manifest(&self.language)
            .filter(|l| matches!(l, Language::JavaScript | Language::TypeScript))
            .ok_or_else(|| format!("language = \"{}\" is not js or ts", self.language))
    }

    /// The WIT world the manifest asks for (`manifest::world`).
    pub fn world(&self) -> Result<&'static str, String> {
        manifest::world(&self.kind, &self.capabilities)
    }

    /// (module path, export name) of `entry`; the export defaults to `default`.
    pub fn entry_parts(&self) -> Result<(&str, &str), String> {
        let (path, export) = match self.entry.rsplit_once(':') {
            Some((p, e)) => (p, e),
            None => (self.entry.as_str(), "default"),
        };
        let bad = |why: &str| format!("entry = \"{}\": {why}", self.entry);
        let ident = |s: &str| {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        };
        if !ident(export) {
            return Err(bad("the export after `:` must be a JavaScript identifier"));
        }
        let relative = Path::new(path);
        if path.is_empty()
            || relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(bad("give a path inside the project, e.g. \"src/index.ts\""));
        }
        let typescript = [".ts", ".mts"].iter().any(|e| path.ends_with(e));
        let javascript = [".js", ".mjs"].iter().any(|e| path.ends_with(e));
        match self.language()? {
            Language::TypeScript if !typescript => {
                Err(bad("a TypeScript entry ends with .ts or .mts"))
            }
            Language::JavaScript if !javascript => {
                Err(bad("a JavaScript entry ends with .js or .mjs"))
            }
            _ => Ok((path, export)),
        }
    }

    fn validate(&self) -> Result<(), String> {
        manifest::check_name(&self.name)?;
        self.language()?;
        self.world()?;
        self.entry_parts()?;
        Ok(())
    }
}

/// Reads and validates a JavaScript/TypeScript project's manifest.
pub fn read_manifest(dir: &Path) -> Result<JsManifest, BuildError> {
    let manifest: JsManifest = manifest::read(dir)?;
    manifest.validate().map_err(|m| invalid(dir, m))?;
    Ok(manifest)
}

/// The entry module the build bundles: it imports the host's interfaces (the log, plus
/// the manifest's capabilities and nothing else, so the component imports exactly what
/// its world allows), hands them to the SDK, and exports the plugin class as the kind's
/// interface. It runs when componentize-js pre-initialises the engine, so the plugin's
/// module and the SDK are loaded, and `info()` is converted and checked, at build time.
pub fn entry_module(manifest: &JsManifest, entry: &Path) -> Result<String, String> {
    let (path, export) = manifest.entry_parts()?;
    let (interface, export_fn) = match manifest.kind.as_str() {
        "verifier" => ("verification", "exportVerifier"),
        "router" => ("routing", "exportRouter"),
        _ => ("decomposition", "exportDecomposer"),
    };
    let version = wit::latest();
    let mut imports = format!("import {{ log }} from 'arbiter:plugin/log@{version}';\n");
    let mut bound = vec!["log"];
    for capability in &manifest.capabilities {
        let (name, function) = match capability.as_str() {
            "model" => ("model", "complete"),
            _ => ("stats", "query"),
        };
        imports.push_str(&format!(
            "import {{ {function} }} from 'arbiter:plugin/{name}@{version}';\n"
        ));
        bound.push(function);
    }
    let quote = |s: &str| serde_json::to_string(s).expect("strings serialize");
    Ok(format!(
        "// Generated by `arbiter plugin build`; do not edit.\n\
         {imports}\
         import {{ bindHost, {export_fn} }} from '@arbiter/sdk';\n\
         import * as plugin from {module};\n\
         \n\
         export const {interface} = {export_fn}(plugin[{export_q}], {source});\n\
         bindHost({{ {bound} }});\n",
        module = quote(&entry.to_string_lossy()),
        export_q = quote(export),
        source = quote(&format!("{path} (export `{export}`)")),
        bound = bound.join(", "),
    ))
}

/// Writes the SDK to `<project>/node_modules/@arbiter/sdk`; returns that folder.
pub fn materialize_sdk(project: &Path) -> std::io::Result<PathBuf> {
    let dir = project.join("node_modules").join("@arbiter").join("sdk");
    // The same files as `plugin new` vendors: this folder may be npm's link to that copy.
    let manifest = installed_manifest().map_err(std::io::Error::other)?;
    for (name, text) in installed_files(&manifest) {
        freshness::write_if_changed(&dir.join(name), text.as_bytes())?;
    }
    Ok(dir)
}

/// `node --version` of `program`, checked against the oldest supported major version.
fn check_node(program: &OsStr) -> Result<String, BuildError> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|_| BuildError::MissingToolchain {
            what: "Node.js (`node`) was not found; JavaScript and TypeScript plugins are \
                   built with Node.js"
                .into(),
            install: NODE_INSTALL_HINT.into(),
        })?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major = version
        .strip_prefix('v')
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if out.status.success() && m >= NODE_MIN_MAJOR => Ok(version),
        _ => Err(BuildError::MissingToolchain {
            what: format!(
                "Node.js {NODE_MIN_MAJOR}+ is needed, found `{}`",
                if version.is_empty() {
                    "no version"
                } else {
                    &version
                }
            ),
            install: NODE_INSTALL_HINT.into(),
        }),
    }
}

/// The packages a build of this language needs.
fn needed(typescript: bool) -> Vec<&'static str> {
    let mut packages = vec![COMPONENTIZE_JS, ESBUILD];
    if typescript {
        packages.push(TYPESCRIPT);
    }
    packages
}

/// The `version` of package `name` installed under `dir/node_modules`.
fn package_version(dir: &Path, name: &str) -> Option<String> {
    let text =
        std::fs::read_to_string(dir.join("node_modules").join(name).join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["version"].as_str().map(String::from)
}

/// `Ok` with the tool versions (for the fingerprint) when `dir/node_modules` has every
/// needed package and componentize-js is of the supported series; else what is wrong.
fn tool_versions(dir: &Path, typescript: bool) -> Result<String, String> {
    let mut versions = Vec::new();
    for name in needed(typescript) {
        let version =
            package_version(dir, name).ok_or_else(|| format!("node_modules/{name} is missing"))?;
        if name == COMPONENTIZE_JS && !version.starts_with(COMPONENTIZE_JS_SERIES) {
            return Err(format!(
                "{name} {version} is installed; the SDK needs {COMPONENTIZE_JS_SERIES}x"
            ));
        }
        versions.push(format!("{name} {version}"));
    }
    Ok(versions.join("; "))
}

/// What to run in a tools folder to give it the needed packages.
fn install_command(dir: &Path) -> String {
    format!(
        "cd {} && npm install {COMPONENTIZE_JS}@{COMPONENTIZE_JS_VERSION} esbuild typescript",
        dir.display()
    )
}

/// The per-user tools folder for the embedded tool set.
fn user_tools_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let digest = hex::encode(Sha256::digest(TOOLS_PACKAGE_LOCK.as_bytes()));
    base.join("arbiter").join("js-tools").join(format!(
        "componentize-js-{COMPONENTIZE_JS_VERSION}-{}",
        &digest[..12]
    ))
}

/// Runs npm in `dir`; a missing npm says what to install.
fn npm(dir: &Path, args: &[&str], verbose: bool) -> Result<(), BuildError> {
    let out = Command::new("npm")
        .current_dir(dir)
        .args(args)
        .args(["--no-audit", "--no-fund", "--loglevel=error"])
        .stdin(Stdio::null())
        .stdout(if verbose {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .stderr(if verbose {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .output()
        .map_err(|_| BuildError::MissingToolchain {
            what: "npm was not found; it installs the JavaScript build tools".into(),
            install: NODE_INSTALL_HINT.into(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(BuildError::Failed {
        status: format!(
            "npm {} in {}: {}",
            args.join(" "),
            dir.display(),
            out.status
        ),
        output: text.trim().to_string(),
    })
}

/// Installs the embedded tool set into `dir` with `npm ci` (next to it first, then
/// renamed, so an interrupted or concurrent install never leaves a half-filled folder).
fn install_user_tools(dir: &Path, verbose: bool) -> Result<(), BuildError> {
    let parent = dir.parent().expect("the tools folder has a parent");
    std::fs::create_dir_all(parent)?;
    let partial = parent.join(format!(
        ".{}.partial-{}",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial)?;
    std::fs::write(partial.join("package.json"), TOOLS_PACKAGE_JSON)?;
    std::fs::write(partial.join("package-lock.json"), TOOLS_PACKAGE_LOCK)?;
    eprintln!(
        "arbiter: installing the JavaScript build tools ({COMPONENTIZE_JS} {COMPONENTIZE_JS_VERSION}, \
         esbuild, TypeScript; ~420 MB) into {} (once)",
        dir.display()
    );
    if let Err(e) = npm(&partial, &["ci", "--include=dev"], verbose) {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(match e {
            BuildError::Failed { status, output } => BuildError::MissingToolchain {
                what: format!(
                    "the JavaScript build tools could not be installed ({status}):\n{output}\n"
                ),
                install: format!(
                    "check the network or npm's registry settings and build again, or set \
                     ARBITER_JS_TOOLS to a folder prepared with `{}`",
                    install_command(Path::new("<folder>"))
                ),
            },
            other => other,
        });
    }
    if std::fs::rename(&partial, dir).is_err() {
        // Another build installed the same tools meanwhile: use theirs.
        let _ = std::fs::remove_dir_all(&partial);
    }
    Ok(())
}

/// The folder whose `node_modules` has the build tools, and their versions (see the
/// module documentation for the order). `configured` is `$ARBITER_JS_TOOLS`.
fn find_tools(
    project: &Path,
    typescript: bool,
    verbose: bool,
    configured: Option<PathBuf>,
) -> Result<(PathBuf, String), BuildError> {
    if let Some(dir) = configured {
        return match tool_versions(&dir, typescript) {
            Ok(v) => Ok((dir, v)),
            Err(why) => Err(BuildError::MissingToolchain {
                what: format!("ARBITER_JS_TOOLS={}: {why}", dir.display()),
                install: install_command(&dir),
            }),
        };
    }
    for dir in [project.to_path_buf(), PathBuf::from(CHECKOUT_TOOLS)] {
        if let Ok(v) = tool_versions(&dir, typescript) {
            return Ok((dir, v));
        }
    }
    let dir = user_tools_dir();
    if let Ok(v) = tool_versions(&dir, typescript) {
        return Ok((dir, v));
    }
    install_user_tools(&dir, verbose)?;
    tool_versions(&dir, typescript)
        .map(|v| (dir.clone(), v))
        .map_err(|why| BuildError::MissingToolchain {
            what: format!("the JavaScript build tools in {}: {why}", dir.display()),
            install: install_command(&dir),
        })
}

/// Installs the project's own npm dependencies when it declares some and
/// `node_modules` is missing or older than `package.json` / `package-lock.json`.
fn install_project_dependencies(dir: &Path, verbose: bool) -> Result<(), BuildError> {
    let package = dir.join("package.json");
    let Ok(text) = std::fs::read_to_string(&package) else {
        return Ok(());
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| BuildError::Failed {
        status: "reading package.json".into(),
        output: format!("{}: {e}", package.display()),
    })?;
    let declares = ["dependencies", "devDependencies"]
        .iter()
        .any(|k| json[k].as_object().is_some_and(|d| !d.is_empty()));
    if !declares {
        return Ok(());
    }
    let lock = dir.join("package-lock.json");
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let installed = mtime(&dir.join("node_modules").join(".package-lock.json"));
    let wanted = [mtime(&package), mtime(&lock)].into_iter().flatten().max();
    if installed.is_some() && installed >= wanted {
        return Ok(());
    }
    if lock.is_file() {
        npm(dir, &["ci", "--include=dev"], verbose)
    } else {
        npm(dir, &["install"], verbose)
    }
}

/// Import names of a component (its own, not those of the modules inside it).
pub fn component_imports(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    imports.push(import.map_err(|e| e.to_string())?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

/// An import the runtime would refuse (`runtime::inspect`): anything but the contract's
/// interfaces and WASI 0.2's cli, clocks, filesystem, io, random and sockets.
fn refused_import(name: &str) -> bool {
    if name.starts_with("arbiter:plugin/") {
        return false;
    }
    let allowed = ["cli", "clocks", "filesystem", "io", "random", "sockets"];
    match name
        .strip_prefix("wasi:")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((package, rest)) => {
            !(allowed.contains(&package) && rest.split_once("@0.2.").is_some())
        }
        None => true,
    }
}

/// The JavaScript/TypeScript builder; `node` is the Node.js program.
#[derive(Debug, Clone)]
pub struct Js {
    pub node: OsString,
}

impl Default for Js {
    fn default() -> Js {
        Js {
            node: "node".into(),
        }
    }
}

/// A JS/TS project's manifest with its entry module found.
#[derive(Debug, Clone)]
pub struct JsProject {
    pub manifest: JsManifest,
    /// The entry module's path.
    pub entry: PathBuf,
}

/// The Node.js side of a build: Node's version, the folder with the npm build tools and
/// their versions.
#[derive(Debug, Clone)]
pub struct NodeTools {
    node_version: String,
    tools: PathBuf,
    tool_versions: String,
}

impl Builder for Js {
    type Manifest = JsProject;
    type Toolchain = NodeTools;

    fn read_manifest(&self, dir: &Path) -> Result<JsProject, BuildError> {
        let manifest = read_manifest(dir)?;
        let (entry_path, _) = manifest.entry_parts().map_err(|m| invalid(dir, m))?;
        let entry = dir.join(entry_path);
        if !entry.is_file() {
            return Err(invalid(
                dir,
                format!(
                    "entry = \"{}\": {} does not exist",
                    manifest.entry,
                    entry.display()
                ),
            ));
        }
        Ok(JsProject { manifest, entry })
    }

    fn toolchain_check(
        &self,
        dir: &Path,
        project: &JsProject,
        options: &BuildOptions,
    ) -> Result<NodeTools, BuildError> {
        let language = project.manifest.language().map_err(|m| invalid(dir, m))?;
        let node_version = check_node(&self.node)?;
        let configured = std::env::var_os("ARBITER_JS_TOOLS").map(PathBuf::from);
        let typescript = language == Language::TypeScript;
        let (tools, tool_versions) = find_tools(dir, typescript, options.verbose, configured)?;
        Ok(NodeTools {
            node_version,
            tools,
            tool_versions,
        })
    }

    fn build(
        &self,
        dir: &Path,
        project: &JsProject,
        tools: NodeTools,
        options: &BuildOptions,
    ) -> Result<Built, BuildError> {
        build_js(&self.node, dir, project, tools, options)
    }
}

fn build_js(
    node: &OsStr,
    dir: &Path,
    JsProject { manifest, entry }: &JsProject,
    NodeTools {
        node_version,
        tools,
        tool_versions,
    }: NodeTools,
    options: &BuildOptions,
) -> Result<Built, BuildError> {
    let typescript = manifest.language().map_err(|m| invalid(dir, m))? == Language::TypeScript;
    let world = manifest.world().map_err(|m| invalid(dir, m))?;
    let target = options.target(dir);
    let output = target.join(format!("{}.wasm", manifest.name));
    // Per-project work folder: a shared target dir may hold several JS plugins.
    let work = target.join("js-build").join(&manifest.name);
    let main = entry_module(manifest, entry).map_err(|m| invalid(dir, m))?;

    // Before the fingerprint: installing writes `package-lock.json`, a source, and new
    // projects depend on their SDK copy, so the first build installs.
    install_project_dependencies(dir, options.verbose)?;
    let mut sources = freshness::sources(dir, SOURCE_EXTENSIONS)?;
    let warm_up_marker = snapshot::fingerprint_inputs(dir, !options.no_warm_up, &mut sources);
    let fingerprint = freshness::build_fingerprint(
        &sources,
        &[&node_version, &tool_versions, world, &main, BUILD_DRIVER],
        SDK_FILES,
        warm_up_marker,
    )?;
    if freshness::is_fresh(&output, &fingerprint) {
        return Ok(Built::one(output, false, None));
    }

    let sdk = materialize_sdk(dir)?;
    let wit_dir = wit::materialize(&work.join("wit"), wit::latest())?;
    let main_path = work.join("arbiter-main.js");
    freshness::write_if_changed(&main_path, main.as_bytes())?;
    let driver = work.join("build.mjs");
    freshness::write_if_changed(&driver, BUILD_DRIVER.as_bytes())?;

    // Build next to the output and rename, so a failed or concurrent build never leaves
    // a truncated component where a loader would pick it up.
    let partial = freshness::partial_path(&output);
    let request = serde_json::json!({
        "tools": tools,
        "project": dir,
        "entry": entry,
        "main": main_path,
        "typescript": typescript,
        "sdk": sdk,
        "wit": wit_dir,
        "world": world,
        "work": work,
        // Alone in its folder: componentize-js maps the bundle's folder into the engine.
        "bundle": work.join("bundle").join("bundle.js"),
        "output": partial,
    });
    let request_path = work.join("request.json");
    std::fs::write(
        &request_path,
        serde_json::to_vec_pretty(&request).expect("JSON"),
    )?;
    let out = Command::new(node)
        .arg(&driver)
        .arg(&request_path)
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(options.tool_output())
        .stderr(options.tool_output())
        .output()?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(BuildError::tool_failed(&out));
    }
    let bytes = std::fs::read(&partial)?;
    let imports = component_imports(&bytes).map_err(|e| BuildError::Failed {
        status: "componentize-js produced an unreadable component".into(),
        output: e,
    })?;
    let refused: Vec<&String> = imports.iter().filter(|i| refused_import(i)).collect();
    if !refused.is_empty() {
        let _ = std::fs::remove_file(&partial);
        return Err(BuildError::Failed {
            status: "the component would be refused at load time".into(),
            output: format!(
                "it imports {}, which Arbiter does not provide to plugins",
                refused
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let warm_up = snapshot::apply(dir, &partial, !options.no_warm_up);
    std::fs::rename(&partial, &output)?;
    freshness::record(&output, &fingerprint)?;
    Ok(Built::one(output, true, Some(warm_up)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(language: &str, kind: &str, caps: &[&str], entry: &str) -> JsManifest {
        JsManifest {
            name: "p".into(),
            language: language.into(),
            kind: kind.into(),
            entry: entry.into(),
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn capabilities_choose_the_world() {
        let m = |kind: &str, caps: &[&str]| manifest("ts", kind, caps, "src/index.ts").world();
        assert_eq!(m("verifier", &[]), Ok("verifier"));
        assert_eq!(m("verifier", &["model"]), Ok("model-verifier"));
        assert_eq!(m("router", &["stats"]), Ok("stats-router"));
        assert_eq!(m("decomposer", &["model"]), Ok("model-decomposer"));
        assert!(m("router", &["model"]).is_err());
        assert!(m("verifier", &["model", "stats"]).is_err());
        assert!(m("judge", &[]).is_err());
    }

    #[test]
    fn entries_are_paths_inside_the_project() {
        let ok = |lang: &str, entry: &str| {
            manifest(lang, "verifier", &[], entry)
                .entry_parts()
                .map(|(p, e)| (p.to_string(), e.to_string()))
        };
        let pair = |p: &str, e: &str| Ok((p.to_string(), e.to_string()));
        assert_eq!(ok("ts", "src/index.ts"), pair("src/index.ts", "default"));
        assert_eq!(
            ok("js", "./main.mjs:MyCheck"),
            pair("./main.mjs", "MyCheck")
        );
        assert_eq!(ok("typescript", "a.mts"), pair("a.mts", "default"));
        for (lang, bad) in [
            ("ts", "src/index.js"),
            ("js", "src/index.ts"),
            ("ts", "../outside.ts"),
            ("ts", "/abs/index.ts"),
            ("ts", "src/index.ts:not-an-ident"),
            ("ts", ""),
        ] {
            assert!(ok(lang, bad).is_err(), "{lang} {bad}");
        }
        assert!(manifest("python", "verifier", &[], "a.ts")
            .language()
            .is_err());
    }

    #[test]
    fn manifests_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| std::fs::write(dir.path().join(MANIFEST), text).unwrap();
        write("[plugin]\nname = \"x\"\nlanguage = \"ts\"\nkind = \"verifier\"\nentry = \"a.ts\"\nbogus = 1\n");
        let err = read_manifest(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
        write("[plugin]\nname = \"x\"\nlanguage = \"ts\"\nkind = \"verifier\"\nentry = \"a.js\"\n");
        let err = read_manifest(dir.path()).unwrap_err().to_string();
        assert!(err.contains(".ts"), "{err}");
        write("[plugin]\nname = \"x\"\nlanguage = \"ts\"\nkind = \"router\"\nentry = \"a.ts\"\ncapabilities = [\"stats\"]\n");
        let m = read_manifest(dir.path()).unwrap();
        assert_eq!(m.world(), Ok("stats-router"));
    }

    #[test]
    fn the_entry_module_imports_only_the_worlds_interfaces() {
        let entry = Path::new("/p/src/index.ts");
        let plain = entry_module(&manifest("ts", "verifier", &[], "src/index.ts"), entry).unwrap();
        assert!(
            plain.contains("import { log } from 'arbiter:plugin/log@0.2.0';"),
            "{plain}"
        );
        assert!(
            !plain.contains("model") && !plain.contains("stats"),
            "{plain}"
        );
        assert!(plain.contains("export const verification = exportVerifier(plugin[\"default\"]"));
        assert!(plain.contains("import * as plugin from \"/p/src/index.ts\";"));
        let judge = entry_module(
            &manifest("ts", "decomposer", &["model"], "src/index.ts:Planner"),
            entry,
        )
        .unwrap();
        assert!(judge.contains("import { complete } from 'arbiter:plugin/model@0.2.0';"));
        assert!(judge.contains("bindHost({ log, complete });"), "{judge}");
        assert!(
            judge.contains("exportDecomposer(plugin[\"Planner\"]"),
            "{judge}"
        );
        let router = entry_module(
            &manifest("js", "router", &["stats"], "r.js"),
            Path::new("/r.js"),
        )
        .unwrap();
        assert!(router.contains("import { query } from 'arbiter:plugin/stats@0.2.0';"));
        assert!(router.contains("export const routing = exportRouter("));
    }

    #[test]
    fn refused_imports_are_recognised() {
        for ok in [
            "arbiter:plugin/log@0.1.0",
            "arbiter:plugin/log@0.2.0",
            "wasi:io/streams@0.2.12",
            "wasi:cli/stderr@0.2.3",
            "wasi:random/random@0.2.0",
        ] {
            assert!(!refused_import(ok), "{ok}");
        }
        for bad in [
            "wasi:http/outgoing-handler@0.2.12",
            "wasi:io/streams@0.3.0",
            "wasi:keyvalue/store@0.2.0",
            "env",
            "other:pkg/iface@1.0.0",
        ] {
            assert!(refused_import(bad), "{bad}");
        }
    }

    #[test]
    fn a_missing_node_says_what_to_install() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MANIFEST),
            "[plugin]\nname = \"x\"\nlanguage = \"ts\"\nkind = \"verifier\"\nentry = \"index.ts\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("index.ts"), "export {};\n").unwrap();
        let js = Js {
            node: "node-that-does-not-exist".into(),
        };
        let err = super::super::build::run(&js, dir.path(), &BuildOptions::default()).unwrap_err();
        match &err {
            BuildError::MissingToolchain { install, .. } => assert_eq!(install, NODE_INSTALL_HINT),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("nodejs.org"), "{err}");
    }

    #[test]
    fn the_installed_manifest_drops_only_the_build_keys() {
        let text = installed_manifest().unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(manifest["name"], "@arbiter/sdk");
        assert!(manifest.get("devDependencies").is_none() && manifest.get("scripts").is_none());
        // Order kept: `types` is the first condition of the main export.
        let at = |k: &str| text.find(k).unwrap();
        assert!(at("\"types\": \"./dist/index.d.ts\",") < at("\"default\": \"./dist/index.js\""));
    }

    #[test]
    fn the_embedded_sdk_is_the_repositorys() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/js");
        for (name, text) in SDK_FILES {
            let on_disk = std::fs::read_to_string(root.join(name)).unwrap();
            assert_eq!(&on_disk, text, "{name}");
        }
        // Every compiled and generated file is embedded (a new one must be added).
        for folder in ["dist", "wit-types", "wit-types/interfaces"] {
            for entry in std::fs::read_dir(root.join(folder)).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    let name = format!("{folder}/{}", path.file_name().unwrap().to_string_lossy());
                    assert!(
                        SDK_FILES.iter().any(|(n, _)| *n == name),
                        "{name} is not embedded in SDK_FILES"
                    );
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let sdk = materialize_sdk(dir.path()).unwrap();
        assert!(sdk.ends_with("node_modules/@arbiter/sdk"));
        assert!(sdk.join("dist/index.js").is_file());
        assert!(sdk
            .join("wit-types/interfaces/arbiter-plugin-types.d.ts")
            .is_file());
    }

    #[test]
    fn a_configured_tools_folder_without_the_tools_says_what_to_run() {
        let tools = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let err = find_tools(
            project.path(),
            true,
            false,
            Some(tools.path().to_path_buf()),
        )
        .unwrap_err();
        match &err {
            BuildError::MissingToolchain { what, install } => {
                assert!(what.contains("ARBITER_JS_TOOLS"), "{what}");
                assert!(what.contains("componentize-js is missing"), "{what}");
                assert!(
                    install.contains("npm install @bytecodealliance/componentize-js@0.23.0"),
                    "{install}"
                );
            }
            other => panic!("{other:?}"),
        }
        // A wrong componentize-js series is refused too: the SDK's glue depends on it.
        let pkg = tools
            .path()
            .join("node_modules/@bytecodealliance/componentize-js");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("package.json"), r#"{"version": "0.19.3"}"#).unwrap();
        let err = find_tools(
            project.path(),
            false,
            false,
            Some(tools.path().to_path_buf()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("0.19.3") && err.contains("0.23.x"), "{err}");
    }

    #[test]
    fn the_user_tools_folder_follows_the_lock_file() {
        let dir = user_tools_dir();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("componentize-js-0.23.0-"), "{name}");
        assert!(dir.parent().unwrap().ends_with("arbiter/js-tools"));
        // The lock file pins the series the SDK is written against.
        let lock: serde_json::Value = serde_json::from_str(TOOLS_PACKAGE_LOCK).unwrap();
        let version = lock["packages"]["node_modules/@bytecodealliance/componentize-js"]["version"]
            .as_str()
            .unwrap();
        assert_eq!(version, COMPONENTIZE_JS_VERSION);
    }
}
