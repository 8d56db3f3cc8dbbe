//! Reads what a component is before the host trusts it: is it a component at all, which
//! plugin world and contract version it implements, and what it imports.

use serde::Serialize;
use wasmtime::component::Component;
use wasmtime::Engine;

use super::bindings::{CONTRACT_PACKAGE, CONTRACT_VERSION};
use super::error::{Error, Result};
use super::types::PluginKind;

/// Capabilities a plugin may be granted. Everything else is denied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// `arbiter:plugin/model`: ask the host's models for completions.
    pub model: bool,
    /// `arbiter:plugin/stats`: read per-model outcome statistics.
    pub stats: bool,
}

impl Grants {
    pub const NONE: Grants = Grants {
        model: false,
        stats: false,
    };

    /// Parses capability names as written in configuration (`["model", "stats"]`).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> std::result::Result<Grants, String> {
        let mut grants = Grants::NONE;
        for name in names {
            match name.as_ref() {
                "model" => grants.model = true,
                "stats" => grants.stats = true,
                other => return Err(format!("unknown capability `{other}` (model, stats)")),
            }
        }
        Ok(grants)
    }

    pub(crate) fn index(self) -> usize {
        usize::from(self.model) | (usize::from(self.stats) << 1)
    }
}

/// What a component declares, as shown by `arbiter plugin inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentSummary {
    pub kind: PluginKind,
    /// The contract version the plugin was built against, e.g. `0.1.0`.
    pub contract_version: String,
    /// Capabilities the plugin needs granted (`model`, `stats`).
    pub capabilities: Vec<String>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Rejects non-components (random bytes, core modules, truncated files) with a message
/// that says what the bytes are, before any compilation is attempted.
pub fn precheck(bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        let head: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(Error::NotAComponent(format!(
            "missing the WebAssembly header (first bytes: {}; {} bytes in all)",
            if head.is_empty() {
                "none".to_string()
            } else {
                head
            },
            bytes.len()
        )));
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(Error::NotAComponent(
            "this is a core WebAssembly module; plugins are components: build for \
             `wasm32-wasip2` (`arbiter plugin build`), or wrap the module with \
             `wasm-tools component new`"
                .into(),
        ));
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err(Error::NotAComponent(
            "unknown WebAssembly binary version".into(),
        ));
    }
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator
        .validate_all(bytes)
        .map_err(|e| Error::Malformed(format!("{e} (the file may be truncated or corrupted)")))?;
    Ok(())
}

/// Finds the plugin kind and contract version from the exports, and checks every import
/// against what the host provides and what `grants` allows.
pub fn analyze(engine: &Engine, component: &Component, grants: Grants) -> Result<ComponentSummary> {
    let ty = component.component_type();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();

    let mut found: Vec<(PluginKind, String)> = Vec::new();
    for export in &exports {
        let Some((pkg, iface, version)) = split_name(export) else {
            continue;
        };
        if pkg != CONTRACT_PACKAGE {
            continue;
        }
        if let Some(kind) = PluginKind::ALL
            .into_iter()
            .find(|k| k.export_interface() == iface)
        {
            found.push((kind, version.unwrap_or("").to_string()));
        }
    }
    let (kind, version) = match found.as_slice() {
        [] => {
            return Err(Error::WrongWorld(format!(
                "the component exports [{}] but no Arbiter plugin interface; a plugin exports \
                 exactly one of {p}/verification@{v} (world `verifier`), {p}/routing@{v} \
                 (world `router`) or {p}/decomposition@{v} (world `decomposer`)",
                exports.join(", "),
                p = CONTRACT_PACKAGE,
                v = CONTRACT_VERSION
            )))
        }
        [one] => one.clone(),
        many => {
            return Err(Error::WrongWorld(format!(
                "the component exports several plugin interfaces ({}); a plugin is one kind",
                many.iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    if !version_compatible(&version) {
        return Err(Error::UnsupportedVersion {
            found: version,
            supported: format!("{CONTRACT_PACKAGE}@{CONTRACT_VERSION} and compatible 0.1.x"),
        });
    }

    let mut capabilities = Vec::new();
    for import in &imports {
        let Some((pkg, iface, version)) = split_name(import) else {
            return Err(Error::UnsupportedImport(import.clone()));
        };
        match pkg {
            CONTRACT_PACKAGE => {
                if !version.is_some_and(version_compatible) {
                    return Err(Error::UnsupportedVersion {
                        found: version.unwrap_or("(none)").to_string(),
                        supported: format!("{CONTRACT_PACKAGE}@{CONTRACT_VERSION}"),
                    });
                }
                let granted = match iface {
                    "types" | "log" => continue,
                    "model" => grants.model,
                    "stats" => grants.stats,
                    _ => return Err(Error::UnsupportedImport(import.clone())),
                };
                capabilities.push(iface.to_string());
                if !granted {
                    return Err(Error::CapabilityNotGranted {
                        capability: iface.to_string(),
                        import: import.clone(),
                    });
                }
            }
            // WASI 0.2 is linked with an empty context: no files, env, network or stdin.
            "wasi:cli" | "wasi:clocks" | "wasi:filesystem" | "wasi:io" | "wasi:random"
            | "wasi:sockets"
                if version.is_some_and(|v| v.starts_with("0.2.")) => {}
            _ => return Err(Error::UnsupportedImport(import.clone())),
        }
    }

    Ok(ComponentSummary {
        kind,
        contract_version: version,
        capabilities,
        imports,
        exports,
    })
}

/// `arbiter:plugin/log@0.1.0` -> (`arbiter:plugin`, `log`, Some(`0.1.0`)).
fn split_name(name: &str) -> Option<(&str, &str, Option<&str>)> {
    let (path, version) = match name.split_once('@') {
        Some((p, v)) => (p, Some(v)),
        None => (name, None),
    };
    let (pkg, iface) = path.split_once('/')?;
    Some((pkg, iface, version))
}

/// Same 0.x minor (semver rules for 0.x): later patch releases stay loadable.
fn version_compatible(version: &str) -> bool {
    let mut parts = version.split('.');
    matches!((parts.next(), parts.next()), (Some("0"), Some("1")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precheck_names_what_the_bytes_are() {
        assert!(matches!(precheck(b""), Err(Error::NotAComponent(_))));
        assert!(matches!(
            precheck(b"hello world, not wasm"),
            Err(Error::NotAComponent(_))
        ));
        let core = b"\0asm\x01\0\0\0";
        match precheck(core) {
            Err(Error::NotAComponent(m)) => assert!(m.contains("core WebAssembly module"), "{m}"),
            other => panic!("{other:?}"),
        }
        // A component header with a truncated section body.
        let truncated = b"\0asm\x0d\0\x01\0\x01\x05\x00";
        assert!(matches!(precheck(truncated), Err(Error::Malformed(_))));
    }

    #[test]
    fn versions_and_names() {
        assert!(version_compatible("0.1.0"));
        assert!(version_compatible("0.1.7"));
        assert!(!version_compatible("0.2.0"));
        assert!(!version_compatible("1.1.0"));
        assert_eq!(
            split_name("arbiter:plugin/log@0.1.0"),
            Some(("arbiter:plugin", "log", Some("0.1.0")))
        );
        assert_eq!(split_name("plain"), None);
    }

    #[test]
    fn grants_parse() {
        assert_eq!(
            Grants::from_names(&["model"]).unwrap(),
            Grants {
                model: true,
                stats: false
            }
        );
        assert!(Grants::from_names(&["network"]).is_err());
        assert_eq!(
            Grants {
                model: true,
                stats: true
            }
            .index(),
            3
        );
    }
}
