//! Rust plugins: a cargo project with a `cdylib` depending on `arbiter-sdk`, built for
//! `wasm32-wasip2` (which produces a component directly). Cargo decides what is stale.
//!
//! rustup installs the targets a `rust-toolchain.toml` lists only with the toolchain
//! itself, not into a toolchain already installed, so on a fresh machine the first build
//! would stop for want of the target. When rustup is there the build adds the target
//! itself, saying so; without rustup it says what to install.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::build::{BuildError, BuildOptions, Builder, Built};
use super::manifest::CARGO_MANIFEST;
use super::new::{NewError, TemplateFile, Templates};
use super::wit;
use crate::runtime::types::PluginKind::{Decomposer, Router, Verifier};

/// Rust templates: `sdk/rust/templates/`.
pub(super) const TEMPLATES: Templates = Templates {
    kinds: &[
        (
            Verifier,
            embed!("rust/templates/verifier": "Cargo.toml", "src/lib.rs", "README.md"),
        ),
        (
            Router,
            embed!("rust/templates/router": "Cargo.toml", "src/lib.rs", "README.md"),
        ),
        (
            Decomposer,
            embed!("rust/templates/decomposer": "Cargo.toml", "src/lib.rs", "README.md"),
        ),
    ],
    common: embed!("rust/templates/common": "gitignore" => ".gitignore", "Cargo.lock"),
    vendored: Some(vendored),
};

/// The Rust SDK's sources, vendored verbatim into Rust projects.
pub(super) const SDK: &[TemplateFile] = embed!("rust":
    "src/lib.rs" => "vendor/arbiter-sdk/src/lib.rs",
    "src/bindings.rs" => "vendor/arbiter-sdk/src/bindings.rs",
    "src/config.rs" => "vendor/arbiter-sdk/src/config.rs",
    "src/decomposer.rs" => "vendor/arbiter-sdk/src/decomposer.rs",
    "src/helpers.rs" => "vendor/arbiter-sdk/src/helpers.rs",
    "src/log.rs" => "vendor/arbiter-sdk/src/log.rs",
    "src/model.rs" => "vendor/arbiter-sdk/src/model.rs",
    "src/router.rs" => "vendor/arbiter-sdk/src/router.rs",
    "src/stats.rs" => "vendor/arbiter-sdk/src/stats.rs",
    "src/verifier.rs" => "vendor/arbiter-sdk/src/verifier.rs",
);
const SDK_MANIFEST: &str = include_str!("../../../sdk/rust/Cargo.toml");
const WORKSPACE_MANIFEST: &str = include_str!("../../../Cargo.toml");

/// What a Rust project gets besides its template: the SDK, its manifest made standalone,
/// and the WIT of every contract version, so the project builds outside this repository.
fn vendored() -> Result<Vec<(String, String)>, NewError> {
    let mut files = vec![(
        "vendor/arbiter-sdk/Cargo.toml".to_string(),
        vendored_sdk_manifest()?,
    )];
    files.extend(SDK.iter().map(|f| (f.path.to_string(), f.text.to_string())));
    for (version, wit_files) in wit::VERSIONS {
        for (name, text) in *wit_files {
            files.push((
                format!("vendor/arbiter-sdk/wit/v{version}/{name}"),
                text.to_string(),
            ));
        }
    }
    Ok(files)
}

/// The SDK's manifest with what it inherits from the workspace written out.
pub(super) fn vendored_sdk_manifest() -> Result<String, NewError> {
    let workspace: toml::Table =
        toml::from_str(WORKSPACE_MANIFEST).map_err(|e| NewError::Manifest(e.to_string()))?;
    let inherited = workspace
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.as_table())
        .ok_or_else(|| NewError::Manifest("no [workspace.package] to inherit from".into()))?;
    let mut out = String::from(
        "# Vendored by `arbiter plugin new`: the Arbiter Rust SDK, with the plugin contract's\n\
         # WIT in wit/. Replace this folder to update the SDK.\n",
    );
    for line in SDK_MANIFEST.lines() {
        match line.strip_suffix(".workspace = true") {
            Some(key) => {
                let value = inherited.get(key).ok_or_else(|| {
                    NewError::Manifest(format!("`{key}` is not in [workspace.package]"))
                })?;
                out.push_str(&format!("{key} = {value}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

const RUST_TARGET: &str = "wasm32-wasip2";

/// The Rust builder. `rustup` is the program that lists and adds targets.
#[derive(Debug, Clone)]
pub struct Rust {
    pub rustup: OsString,
}

impl Rust {
    /// rustup from `$ARBITER_RUSTUP` (a stand-in for tests), else from `PATH`.
    pub fn from_env() -> Rust {
        Rust {
            rustup: std::env::var_os("ARBITER_RUSTUP").unwrap_or_else(|| "rustup".into()),
        }
    }

    /// Whether rustup reports the target installed for the project's toolchain (rustup
    /// honours its `rust-toolchain.toml`); `None` when rustup is absent or cannot tell.
    fn rustup_has_target(&self, dir: &Path) -> Option<bool> {
        let out = Command::new(&self.rustup)
            .current_dir(dir)
            .args(["target", "list", "--installed"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == RUST_TARGET),
        )
    }

    /// `rustup target add`, announced on stderr; rustup's own output is shown only when
    /// it fails.
    fn add_target(&self, dir: &Path) -> Result<(), String> {
        eprintln!(
            "arbiter: the Rust target {RUST_TARGET} is not installed; adding it with `rustup target add {RUST_TARGET}`"
        );
        let out = Command::new(&self.rustup)
            .current_dir(dir)
            .args(["target", "add", RUST_TARGET])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if text.is_empty() {
                text = out.status.to_string();
            }
            return Err(text);
        }
        eprintln!("arbiter: added the Rust target {RUST_TARGET}");
        Ok(())
    }
}

/// Today's probe without rustup: rustc knows where the target's standard library is.
fn rustc_has_target(dir: &Path) -> Result<bool, BuildError> {
    let out = Command::new("rustc")
        .current_dir(dir)
        .args(["--print", "target-libdir", "--target", RUST_TARGET])
        .stderr(Stdio::null())
        .output()
        .map_err(|_| BuildError::MissingToolchain {
            what: "cargo (Rust) was not found".into(),
            install: "https://rustup.rs, then `rustup target add wasm32-wasip2`".into(),
        })?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Ok(out.status.success() && libdir.is_dir())
}

fn missing_target(why: Option<String>) -> BuildError {
    let why = why
        .map(|w| format!(" (adding it failed: {w})"))
        .unwrap_or_default();
    BuildError::MissingToolchain {
        what: format!("the Rust target {RUST_TARGET} is not installed{why}"),
        install: format!("rustup target add {RUST_TARGET}"),
    }
}

/// A cargo project: a package, or a workspace of plugins.
#[derive(Debug, Clone)]
pub struct CargoProject {
    /// A workspace manifest without a package of its own builds all its members.
    pub workspace: bool,
}

impl Builder for Rust {
    type Manifest = CargoProject;
    type Toolchain = ();

    fn read_manifest(&self, dir: &Path) -> Result<CargoProject, BuildError> {
        let text = std::fs::read_to_string(dir.join(CARGO_MANIFEST))?;
        Ok(CargoProject {
            workspace: text.contains("[workspace]") && !text.contains("[package]"),
        })
    }

    fn toolchain_check(
        &self,
        dir: &Path,
        _: &CargoProject,
        _: &BuildOptions,
    ) -> Result<(), BuildError> {
        // Through rustup when there is one, so the probe and the fix are the same tool.
        match self.rustup_has_target(dir) {
            Some(true) => Ok(()),
            Some(false) => match self.add_target(dir) {
                Ok(()) => Ok(()),
                Err(why) => Err(missing_target(Some(why))),
            },
            None if rustc_has_target(dir)? => Ok(()),
            None => Err(missing_target(None)),
        }
    }

    fn build(
        &self,
        dir: &Path,
        project: &CargoProject,
        (): (),
        options: &BuildOptions,
    ) -> Result<Built, BuildError> {
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
            .arg(dir.join(CARGO_MANIFEST))
            .stdout(Stdio::piped())
            .stderr(options.tool_output());
        if project.workspace {
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
        Ok(Built {
            components,
            rebuilt,
            warm_up: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in rustup that has no targets until `target add` runs, which succeeds or
    /// fails as asked.
    fn fake_rustup(dir: &Path, add_succeeds: bool) -> OsString {
        let add = if add_succeeds {
            "touch \"$here/added\"; echo 'info: downloading component' >&2"
        } else {
            "echo 'error: could not download the component' >&2; exit 1"
        };
        let script = format!(
            "#!/bin/sh\nhere=$(dirname \"$0\")\necho \"$PWD $*\" >> \"$here/calls\"\n\
             case \"$*\" in\n\
             'target list --installed') [ -f \"$here/added\" ] && echo {RUST_TARGET}; echo x86_64-unknown-linux-gnu ;;\n\
             'target add {RUST_TARGET}') {add} ;;\n\
             *) exit 2 ;;\nesac\n"
        );
        let path = dir.join("rustup");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.into_os_string()
    }

    #[test]
    fn a_missing_target_is_added_through_rustup() {
        let tools = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let rust = Rust {
            rustup: fake_rustup(tools.path(), true),
        };
        let cargo = CargoProject { workspace: false };
        rust.toolchain_check(project.path(), &cargo, &BuildOptions::default())
            .unwrap();
        assert!(tools.path().join("added").is_file());
        let calls = std::fs::read_to_string(tools.path().join("calls")).unwrap();
        let calls: Vec<&str> = calls.lines().collect();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(calls[1].ends_with("target add wasm32-wasip2"), "{calls:?}");
        // In the project, so rustup adds it to the project's toolchain.
        let project = project.path().canonicalize().unwrap();
        assert!(calls[1].starts_with(project.to_str().unwrap()), "{calls:?}");
        // Installed now: nothing more is added.
        rust.toolchain_check(&project, &cargo, &BuildOptions::default())
            .unwrap();
        let calls = std::fs::read_to_string(tools.path().join("calls")).unwrap();
        assert_eq!(calls.lines().count(), 3);
    }

    #[test]
    fn a_failed_add_says_what_to_run() {
        let tools = tempfile::tempdir().unwrap();
        let rust = Rust {
            rustup: fake_rustup(tools.path(), false),
        };
        let err = rust
            .toolchain_check(
                tools.path(),
                &CargoProject { workspace: false },
                &BuildOptions::default(),
            )
            .unwrap_err();
        match &err {
            BuildError::MissingToolchain { what, install } => {
                assert_eq!(install, "rustup target add wasm32-wasip2");
                assert!(what.contains("could not download"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        assert!(err
            .to_string()
            .contains("Install it with: rustup target add"));
    }

    #[test]
    fn without_rustup_rustc_is_asked() {
        // The target this repository's toolchain file installs is found without rustup.
        let rust = Rust {
            rustup: "rustup-that-does-not-exist".into(),
        };
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        rust.toolchain_check(
            repo,
            &CargoProject { workspace: false },
            &BuildOptions::default(),
        )
        .unwrap();
    }
}
