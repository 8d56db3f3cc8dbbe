//! Reads what a component is before the host trusts it: is it a component at all, which
//! plugin world and contract version it implements, and what it imports.

use serde::Serialize;
use wasmtime::component::Component;
use wasmtime::Engine;

use super::capability::{self, Grants};
use super::contract::{self, Version, PACKAGE};
use super::error::{Error, Result};
use super::types::PluginKind;

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
    let (kind, version) = contract::detect(&exports)?;

    let mut capabilities = Vec::new();
    for import in &imports {
        let Some((pkg, iface, version)) = contract::split_name(import) else {
            return Err(Error::UnsupportedImport(import.clone()));
        };
        match pkg {
            PACKAGE => {
                if version.and_then(Version::of).is_none() {
                    return Err(Error::UnsupportedVersion {
                        found: version.unwrap_or("(none)").to_string(),
                        supported: contract::supported(),
                    });
                }
                match capability::check_import(iface, import, grants) {
                    Ok(None) => {}
                    Ok(Some(name)) => capabilities.push(name.to_string()),
                    Err(e) => return Err(e),
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
}
