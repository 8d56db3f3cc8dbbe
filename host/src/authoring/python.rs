//! Python plugins: a folder with an `arbiter.toml` manifest (`language = "python"`) and
//! the plugin's modules, built with componentize-py against the embedded contract.
//!
//! Plugin authors have no clone of this repository, so the Python SDK (`arbiter_sdk`)
//! and the WIT travel inside the `arbiter` binary and are written out at build time.
//! componentize-py has no incremental mode and a build takes 10-30 s, so the inputs are
//! fingerprinted (`freshness`) and an unchanged project is not rebuilt.
//!
//! ```toml
//! [plugin]
//! name = "python-code-verifier"   # the component is target/<name>.wasm
//! language = "python"
//! kind = "verifier"               # verifier | router | decomposer
//! entry = "code_verifier"         # the module, or "module:Class"
//! capabilities = []               # ["model"] (verifier, decomposer) or ["stats"] (router)
//! ```

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::build::{BuildError, BuildOptions, Builder, Built};
use super::manifest::{self, invalid};
use super::new::Templates;
use super::{freshness, snapshot, wit};
use crate::runtime::types::PluginKind::{Decomposer, Router, Verifier};

/// Python templates: `sdk/python/templates/`.
pub(super) const TEMPLATES: Templates = Templates {
    kinds: &[
        (
            Verifier,
            embed!("python/templates/verifier": "arbiter.toml", "plugin.py", "README.md"),
        ),
        (
            Router,
            embed!("python/templates/router": "arbiter.toml", "plugin.py", "README.md"),
        ),
        (
            Decomposer,
            embed!("python/templates/decomposer": "arbiter.toml", "plugin.py", "README.md"),
        ),
    ],
    common: embed!("python/templates/common": "gitignore" => ".gitignore"),
    // Nothing vendored: `arbiter plugin build` carries the SDK and the WIT.
    vendored: None,
};

pub use super::manifest::MANIFEST;

/// The componentize-py release the SDK's export glue is written against.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
const COMPONENTIZE_PY_SERIES: &str = "0.25.";

/// The Python SDK (`sdk/python/arbiter_sdk`), embedded so projects build anywhere.
pub const SDK_FILES: &[(&str, &str)] = &[
    (
        "arbiter_sdk/__init__.py",
        include_str!("../../../sdk/python/arbiter_sdk/__init__.py"),
    ),
    (
        "arbiter_sdk/_export.py",
        include_str!("../../../sdk/python/arbiter_sdk/_export.py"),
    ),
    (
        "arbiter_sdk/config.py",
        include_str!("../../../sdk/python/arbiter_sdk/config.py"),
    ),
    (
        "arbiter_sdk/log.py",
        include_str!("../../../sdk/python/arbiter_sdk/log.py"),
    ),
    (
        "arbiter_sdk/model.py",
        include_str!("../../../sdk/python/arbiter_sdk/model.py"),
    ),
    (
        "arbiter_sdk/plugin.py",
        include_str!("../../../sdk/python/arbiter_sdk/plugin.py"),
    ),
    (
        "arbiter_sdk/py.typed",
        include_str!("../../../sdk/python/arbiter_sdk/py.typed"),
    ),
    (
        "arbiter_sdk/stats.py",
        include_str!("../../../sdk/python/arbiter_sdk/stats.py"),
    ),
    (
        "arbiter_sdk/types.py",
        include_str!("../../../sdk/python/arbiter_sdk/types.py"),
    ),
];

/// The generated app module componentize-py is pointed at. Its name must not be a WIT
/// world name (componentize-py generates a module per world).
const APP_MODULE: &str = "arbiter_main";

/// The `[plugin]` table of a Python project's `arbiter.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PythonManifest {
    /// Component file name (`<name>.wasm`): lowercase letters, digits, `-` and `_`.
    pub name: String,
    pub language: String,
    /// `verifier`, `router` or `decomposer`.
    pub kind: String,
    /// The module implementing the plugin, optionally `module:Class`.
    pub entry: String,
    /// Capabilities the plugin uses; they choose the world it is built for.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl PythonManifest {
    /// The WIT world the manifest asks for (`manifest::world`).
    pub fn world(&self) -> Result<&'static str, String> {
        manifest::world(&self.kind, &self.capabilities)
    }

    /// (module, class) of `entry`.
    pub fn entry_parts(&self) -> Result<(&str, Option<&str>), String> {
        let (module, class) = match self.entry.split_once(':') {
            Some((m, c)) => (m, Some(c)),
            None => (self.entry.as_str(), None),
        };
        let ident = |s: &str| {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !module.split('.').all(ident) || !class.is_none_or(ident) {
            return Err(format!(
                "entry = \"{}\" is not `module` or `module:Class`",
                self.entry
            ));
        }
        if module.split('.').next() == Some(APP_MODULE) || module == "wit_world" {
            return Err(format!("entry module `{module}` is a reserved name"));
        }
        Ok((module, class))
    }

    fn validate(&self) -> Result<(), String> {
        manifest::check_name(&self.name)?;
        self.world()?;
        self.entry_parts()?;
        Ok(())
    }
}

/// Reads and validates a Python project's manifest.
pub fn read_manifest(dir: &Path) -> Result<PythonManifest, BuildError> {
    let manifest: PythonManifest = manifest::read(dir)?;
    manifest.validate().map_err(|m| invalid(dir, m))?;
    Ok(manifest)
}

/// Checks that `program` is componentize-py of the supported series; returns its
/// version line.
fn check_tool(program: &OsStr) -> Result<String, BuildError> {
    let install = format!("pip install componentize-py=={COMPONENTIZE_PY_VERSION}");
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|_| BuildError::MissingToolchain {
            what: "componentize-py (builds Python plugins into components) was not found".into(),
            install: install.clone(),
        })?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let series = version.strip_prefix("componentize-py ").unwrap_or("");
    if !out.status.success() || !series.starts_with(COMPONENTIZE_PY_SERIES) {
        return Err(BuildError::MissingToolchain {
            what: format!(
                "the Python SDK needs componentize-py {COMPONENTIZE_PY_SERIES}x, found `{}`",
                if version.is_empty() {
                    "no version"
                } else {
                    &version
                }
            ),
            install,
        });
    }
    Ok(version)
}

/// The app module: binds the plugin class to the name componentize-py exports. The
/// imports run when componentize-py pre-initialises the interpreter, so the plugin, the
/// SDK and their imports are in the snapshot rather than paid for on every call. The
/// final `gc.freeze()` moves everything built so far out of the collector's reach:
/// collections during calls then never walk (and dirty) the snapshot's pages.
fn app_module(manifest: &PythonManifest) -> Result<String, String> {
    let (module, class) = manifest.entry_parts()?;
    let export = match manifest.kind.as_str() {
        "verifier" => "Verification",
        "router" => "Routing",
        _ => "Decomposition",
    };
    let class = class.map_or("None".to_string(), |c| format!("{c:?}"));
    Ok(format!(
        "# Generated by `arbiter plugin build`; do not edit.\n\
         import gc\n\
         from arbiter_sdk._export import export\n\
         \n\
         {export} = export({kind:?}, {module:?}, {class})\n\
         \n\
         gc.collect()\n\
         gc.freeze()\n",
        kind = manifest.kind,
    ))
}

/// The Python builder; `program` is componentize-py.
#[derive(Debug, Clone)]
pub struct Python {
    pub program: OsString,
}

impl Default for Python {
    fn default() -> Python {
        Python {
            program: "componentize-py".into(),
        }
    }
}

impl Builder for Python {
    type Manifest = PythonManifest;
    /// componentize-py's version line.
    type Toolchain = String;

    fn read_manifest(&self, dir: &Path) -> Result<PythonManifest, BuildError> {
        read_manifest(dir)
    }

    fn toolchain_check(
        &self,
        _: &Path,
        _: &PythonManifest,
        _: &BuildOptions,
    ) -> Result<String, BuildError> {
        check_tool(&self.program)
    }

    fn build(
        &self,
        dir: &Path,
        manifest: &PythonManifest,
        tool_version: String,
        options: &BuildOptions,
    ) -> Result<Built, BuildError> {
        let world = manifest.world().map_err(|m| invalid(dir, m))?;
        let target = options.target(dir);
        let output = target.join(format!("{}.wasm", manifest.name));
        // Per-project work folder: a shared target dir may hold several Python plugins.
        let work = target.join("python-build").join(&manifest.name);
        let wit_dir = wit::materialize(&work.join("wit"), wit::latest())?;
        let sdk_dir = work.join("sdk");
        for (name, text) in SDK_FILES {
            freshness::write_if_changed(&sdk_dir.join(name), text.as_bytes())?;
        }
        let app_dir = work.join("app");
        let app = app_module(manifest).map_err(|m| invalid(dir, m))?;
        freshness::write_if_changed(&app_dir.join(format!("{APP_MODULE}.py")), app.as_bytes())?;

        let mut sources = freshness::sources(dir, &[".py", ".toml"])?;
        let warm_up_marker = snapshot::fingerprint_inputs(dir, !options.no_warm_up, &mut sources);
        let fingerprint = freshness::build_fingerprint(
            &sources,
            &[&tool_version, world, &app],
            SDK_FILES,
            warm_up_marker,
        )?;
        if freshness::is_fresh(&output, &fingerprint) {
            return Ok(Built::one(output, false, None));
        }

        // Build next to the output and rename, so a failed or concurrent build never
        // leaves a truncated component where a loader would pick it up.
        let partial = freshness::partial_path(&output);
        let mut cmd = Command::new(&self.program);
        cmd.current_dir(dir)
            .arg("-d")
            .arg(&wit_dir)
            .args(["-w", world]);
        if !options.verbose {
            cmd.arg("-q");
        }
        cmd.args(["componentize", APP_MODULE])
            // The SDK comes before the project so a stray local copy cannot shadow it.
            .arg("-p")
            .arg(&app_dir)
            .arg("-p")
            .arg(&sdk_dir)
            .arg("-p")
            .arg(dir)
            .arg("-o")
            .arg(&partial)
            // componentize-py is a Rust program: with backtraces on (as in a developer's
            // shell) its errors bury the plugin's Python traceback under 60 lines of frames.
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(options.tool_output())
            .stderr(options.tool_output());
        let out = cmd.output()?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&partial);
            return Err(BuildError::tool_failed(&out));
        }
        let warm_up = snapshot::apply(dir, &partial, !options.no_warm_up);
        std::fs::rename(&partial, &output)?;
        freshness::record(&output, &fingerprint)?;
        Ok(Built::one(output, true, Some(warm_up)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(kind: &str, caps: &[&str], entry: &str) -> PythonManifest {
        PythonManifest {
            name: "p".into(),
            language: "python".into(),
            kind: kind.into(),
            entry: entry.into(),
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn capabilities_choose_the_world() {
        assert_eq!(manifest("verifier", &[], "m").world(), Ok("verifier"));
        assert_eq!(
            manifest("verifier", &["model"], "m").world(),
            Ok("model-verifier")
        );
        assert_eq!(
            manifest("router", &["stats"], "m").world(),
            Ok("stats-router")
        );
        assert_eq!(
            manifest("decomposer", &["model"], "m").world(),
            Ok("model-decomposer")
        );
        assert!(manifest("router", &["model"], "m").world().is_err());
        assert!(manifest("verifier", &["stats"], "m").world().is_err());
        assert!(manifest("judge", &[], "m").world().is_err());
    }

    #[test]
    fn entries_are_module_or_module_class() {
        assert_eq!(
            manifest("verifier", &[], "a.b").entry_parts(),
            Ok(("a.b", None))
        );
        assert_eq!(
            manifest("verifier", &[], "mod:Cls").entry_parts(),
            Ok(("mod", Some("Cls")))
        );
        for bad in ["", "a-b", "m:", "m:C:D", "1x", "arbiter_main", "wit_world"] {
            assert!(
                manifest("verifier", &[], bad).entry_parts().is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn manifests_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MANIFEST),
            "[plugin]\nname = \"x\"\nlanguage = \"python\"\nkind = \"verifier\"\nentry = \"app\"\nbogus = 1\n",
        )
        .unwrap();
        let err = read_manifest(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
        std::fs::write(
            dir.path().join(MANIFEST),
            "[plugin]\nname = \"Bad Name\"\nlanguage = \"python\"\nkind = \"verifier\"\nentry = \"app\"\n",
        )
        .unwrap();
        let err = read_manifest(dir.path()).unwrap_err().to_string();
        assert!(err.contains("name"), "{err}");
    }

    #[test]
    fn a_missing_componentize_py_says_what_to_install() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MANIFEST),
            "[plugin]\nname = \"x\"\nlanguage = \"python\"\nkind = \"verifier\"\nentry = \"app\"\n",
        )
        .unwrap();
        let python = Python {
            program: "componentize-py-that-does-not-exist".into(),
        };
        let err =
            super::super::build::run(&python, dir.path(), &BuildOptions::default()).unwrap_err();
        match &err {
            BuildError::MissingToolchain { install, .. } => {
                assert_eq!(install, "pip install componentize-py==0.25.1")
            }
            other => panic!("{other:?}"),
        }
        assert!(err
            .to_string()
            .contains("pip install componentize-py==0.25.1"));
    }

    #[test]
    fn the_embedded_sdk_is_the_repositorys() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/python");
        for (name, text) in SDK_FILES {
            let on_disk = std::fs::read_to_string(root.join(name)).unwrap();
            assert_eq!(&on_disk, text, "{name}");
        }
        // Every SDK file is embedded (a new module must be added to SDK_FILES).
        for entry in std::fs::read_dir(root.join("arbiter_sdk")).unwrap() {
            let path = entry.unwrap().path();
            let name = format!(
                "arbiter_sdk/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            if path.is_file() && !name.ends_with(".pyc") {
                assert!(
                    SDK_FILES.iter().any(|(n, _)| *n == name),
                    "{name} is not embedded in SDK_FILES"
                );
            }
        }
    }

    #[test]
    fn the_app_module_names_the_export() {
        let app = app_module(&manifest("router", &[], "my_router:Cheap")).unwrap();
        assert!(
            app.contains("Routing = export(\"router\", \"my_router\", \"Cheap\")"),
            "{app}"
        );
        let app = app_module(&manifest("verifier", &[], "v")).unwrap();
        assert!(
            app.contains("Verification = export(\"verifier\", \"v\", None)"),
            "{app}"
        );
    }
}
