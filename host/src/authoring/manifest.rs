//! A plugin project's manifest (`docs/plugin-manifest.md`): which language it is, and the
//! `[plugin]` table of its `arbiter.toml` (name, kind, capabilities and the world they
//! choose). Rust projects are cargo projects and have no `arbiter.toml`.
//!
//! Each builder deserializes the table into its own type, since the keys of one language
//! are errors in another; the checks every language shares are here.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::build::BuildError;
use super::Language;

/// The manifest every non-cargo plugin project carries.
pub const MANIFEST: &str = "arbiter.toml";

/// The cargo manifest that makes a folder a Rust plugin project.
pub const CARGO_MANIFEST: &str = "Cargo.toml";

#[derive(Debug, Deserialize)]
struct ManifestFile {
    plugin: Option<toml::Value>,
}

/// The `arbiter.toml` of `dir` is wrong: says where and why.
pub fn invalid(dir: &Path, message: impl Into<String>) -> BuildError {
    BuildError::InvalidManifest {
        path: dir.join(MANIFEST),
        message: message.into(),
    }
}

fn read_file(dir: &Path) -> Result<ManifestFile, BuildError> {
    let text = std::fs::read_to_string(dir.join(MANIFEST))?;
    toml::from_str(&text).map_err(|e| invalid(dir, e.to_string()))
}

/// The language of the project in `dir`: the one its `arbiter.toml` names, else Rust
/// when it has a `Cargo.toml`. A manifest that is not TOML at all is an error here,
/// since no builder could use it.
pub fn detect(dir: &Path) -> Result<Language, BuildError> {
    if dir.join(MANIFEST).is_file() {
        let named = read_file(dir)?
            .plugin
            .as_ref()
            .and_then(|p| p.get("language"))
            .and_then(|l| l.as_str())
            .and_then(Language::from_manifest);
        if let Some(language) = named {
            return Ok(language);
        }
    }
    if dir.join(CARGO_MANIFEST).is_file() {
        return Ok(Language::Rust);
    }
    Err(BuildError::NotAProject(dir.to_path_buf()))
}

/// The `[plugin]` table of `dir/arbiter.toml` as a builder's manifest type `M`.
pub fn read<M: DeserializeOwned>(dir: &Path) -> Result<M, BuildError> {
    let table = read_file(dir)?
        .plugin
        .ok_or_else(|| invalid(dir, "missing the [plugin] table"))?;
    table
        .try_into()
        .map_err(|e: toml::de::Error| invalid(dir, format!("[plugin]: {e}")))
}

/// `name` names the component file (`<name>.wasm`): lowercase letters, digits, `-`
/// and `_`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name = \"{name}\": use lowercase letters, digits, `-` and `_` (it names the .wasm file)"
        ))
    }
}

/// The WIT world a manifest's `kind` and `capabilities` ask for: the kind's plain world,
/// or its capability variant (`model-verifier`, `stats-router`, `model-decomposer`).
pub fn world(kind: &str, capabilities: &[String]) -> Result<&'static str, String> {
    let (plain, capability, wide) = match kind {
        "verifier" => ("verifier", "model", "model-verifier"),
        "router" => ("router", "stats", "stats-router"),
        "decomposer" => ("decomposer", "model", "model-decomposer"),
        other => {
            return Err(format!(
                "kind = \"{other}\" is not a plugin kind (verifier, router, decomposer)"
            ))
        }
    };
    match capabilities {
        [] => Ok(plain),
        [c] if c == capability => Ok(wide),
        _ => Err(format!(
            "capabilities = {capabilities:?}: a {kind} may use only [\"{capability}\"]"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(c: &[&str]) -> Vec<String> {
        c.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn capabilities_choose_the_world() {
        assert_eq!(world("verifier", &[]), Ok("verifier"));
        assert_eq!(world("verifier", &caps(&["model"])), Ok("model-verifier"));
        assert_eq!(world("router", &caps(&["stats"])), Ok("stats-router"));
        assert_eq!(
            world("decomposer", &caps(&["model"])),
            Ok("model-decomposer")
        );
        assert!(world("router", &caps(&["model"])).is_err());
        assert!(world("verifier", &caps(&["stats"])).is_err());
        assert!(world("verifier", &caps(&["model", "stats"])).is_err());
        assert_eq!(
            world("judge", &[]).unwrap_err(),
            "kind = \"judge\" is not a plugin kind (verifier, router, decomposer)"
        );
        assert_eq!(
            world("router", &caps(&["model"])).unwrap_err(),
            "capabilities = [\"model\"]: a router may use only [\"stats\"]"
        );
    }

    #[test]
    fn names_are_file_names() {
        assert!(check_name("my-check_2").is_ok());
        for bad in ["", "Bad Name", "a.b", "ü"] {
            assert!(check_name(bad).unwrap_err().contains("name ="), "{bad}");
        }
    }

    #[test]
    fn languages_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(matches!(detect(d), Err(BuildError::NotAProject(_))));
        let write = |text: &str| std::fs::write(d.join(MANIFEST), text).unwrap();
        for (value, language) in [
            ("python", Language::Python),
            ("c", Language::C),
            ("JS", Language::JavaScript),
            ("ts", Language::TypeScript),
        ] {
            write(&format!("[plugin]\nlanguage = \"{value}\"\n"));
            assert_eq!(detect(d).unwrap(), language, "{value}");
        }
        write("not = [toml");
        assert!(matches!(detect(d), Err(BuildError::InvalidManifest { .. })));
        // A manifest naming no builder leaves the folder to cargo, if it is a cargo project.
        write("[plugin]\nlanguage = \"cobol\"\n");
        assert!(matches!(detect(d), Err(BuildError::NotAProject(_))));
        std::fs::write(d.join(CARGO_MANIFEST), "[package]\n").unwrap();
        assert_eq!(detect(d).unwrap(), Language::Rust);
    }

    #[test]
    fn the_plugin_table_is_required_and_strict() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct M {
            name: String,
            language: String,
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join(MANIFEST), "[other]\n").unwrap();
        let err = read::<M>(d).unwrap_err().to_string();
        assert!(err.ends_with("missing the [plugin] table"), "{err}");
        std::fs::write(
            d.join(MANIFEST),
            "[plugin]\nname = \"x\"\nlanguage = \"c\"\nbogus = 1\n",
        )
        .unwrap();
        let err = read::<M>(d).unwrap_err().to_string();
        assert!(err.contains("[plugin]: ") && err.contains("bogus"), "{err}");
    }
}
