//! The plugin contract, one module per released WIT version (`wit/v<version>/`). Each
//! holds what `bindgen!` generates from its folder and the conversions between its records
//! and the host's own (`runtime::types`), so nothing else in the host names a binding type
//! (the pattern of Zed's `extension_host/src/wasm_host/wit.rs`). Code that is the same for
//! every version (calls, host interfaces, unchanged records) is written once in
//! `per_version/` and `include!`d into each version's module. This module is the
//! version-neutral surface: which version a component targets, and resolving and calling
//! its exports. Capabilities link their interfaces per version (`capability`).

pub(crate) mod v0_1_0;
pub(crate) mod v0_2_0;

use wasmtime::component::{Instance, InstancePre};
use wasmtime::Store;

use super::error::{Error, Result};
use super::state::CallState;
use super::types::*;

/// The contract's WIT package.
pub const PACKAGE: &str = "arbiter:plugin";

/// The newest contract version, the one new plugins are built against.
pub const LATEST: &str = v0_2_0::VERSION;

/// What `unsupported_version` errors name as supported: every line with bindings here.
pub(crate) fn supported() -> String {
    format!(
        "{PACKAGE}@{} and @{} (each with its compatible releases)",
        v0_1_0::VERSION,
        v0_2_0::VERSION
    )
}

/// A contract line the host has bindings for. Before 1.0 versions with the same minor
/// are compatible (semver for 0.x): a plugin built against 0.1.7 loads with the 0.1.0
/// bindings, and its imports link against them. Every line stays loadable: one linker
/// holds each line's host interfaces under its own versioned names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V0_1,
    V0_2,
}

impl Version {
    /// The supported line `version` (as in `arbiter:plugin/log@0.1.0`) belongs to.
    pub(crate) fn of(version: &str) -> Option<Version> {
        let mut parts = version.split('.');
        match (parts.next(), parts.next()) {
            (Some("0"), Some("1")) => Some(Version::V0_1),
            (Some("0"), Some("2")) => Some(Version::V0_2),
            _ => None,
        }
    }
}

/// `arbiter:plugin/log@0.1.0` -> (`arbiter:plugin`, `log`, Some(`0.1.0`)).
pub(crate) fn split_name(name: &str) -> Option<(&str, &str, Option<&str>)> {
    let (path, version) = match name.split_once('@') {
        Some((p, v)) => (p, Some(v)),
        None => (name, None),
    };
    let (pkg, iface) = path.split_once('/')?;
    Some((pkg, iface, version))
}

/// Finds the plugin kind and the exact contract version from a component's exports.
pub(crate) fn detect(exports: &[String]) -> Result<(PluginKind, String)> {
    let mut found: Vec<(PluginKind, String)> = Vec::new();
    for export in exports {
        let Some((pkg, iface, version)) = split_name(export) else {
            continue;
        };
        if pkg != PACKAGE {
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
                p = PACKAGE,
                v = LATEST
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
    if Version::of(&version).is_none() {
        return Err(Error::UnsupportedVersion {
            found: version,
            supported: supported(),
        });
    }
    Ok((kind, version))
}

/// One call to a plugin, in the host's types.
pub(crate) enum Call<'a> {
    Info,
    CheckConfig(&'a PluginConfig),
    Verify(&'a PluginConfig, &'a Task, &'a Candidate),
    Select(&'a PluginConfig, &'a Task, &'a [Judged]),
    Route(&'a PluginConfig, &'a Task, &'a [ModelOption]),
    Decompose(&'a PluginConfig, &'a Task),
    Compose(&'a PluginConfig, &'a Task, &'a [Subresult]),
}

/// What a call returned, in the host's types.
pub(crate) enum Reply {
    Info(PluginInfo),
    Unit(std::result::Result<(), PluginFailure>),
    Verdict(std::result::Result<Verdict, PluginFailure>),
    Selection(std::result::Result<Selection, PluginFailure>),
    Route(std::result::Result<RouteDecision, PluginFailure>),
    Plan(std::result::Result<Plan, PluginFailure>),
    Text(std::result::Result<String, PluginFailure>),
}

/// A plugin's exports, resolved at load for the contract version it targets.
pub(crate) enum Exports {
    V0_1(v0_1_0::Exports),
    V0_2(v0_2_0::Exports),
}

/// A call's arguments in the records of the plugin's contract version.
pub(crate) enum Args {
    V0_1(v0_1_0::Args),
    V0_2(v0_2_0::Args),
}

/// A call's result as the plugin returned it: measured before it is converted.
pub(crate) enum Returned {
    V0_1(v0_1_0::Returned),
    V0_2(v0_2_0::Returned),
}

impl Exports {
    /// Finds the functions a plugin of `kind` exports for the contract `version` it was
    /// built against (as `detect` found it).
    pub(crate) fn resolve(
        pre: &InstancePre<CallState>,
        kind: PluginKind,
        version: &str,
    ) -> Result<Exports> {
        let interface = format!("{PACKAGE}/{}@{version}", kind.export_interface());
        match Version::of(version) {
            Some(Version::V0_1) => Ok(Exports::V0_1(v0_1_0::Exports::resolve(
                pre, kind, &interface,
            )?)),
            Some(Version::V0_2) => Ok(Exports::V0_2(v0_2_0::Exports::resolve(
                pre, kind, &interface,
            )?)),
            None => Err(Error::UnsupportedVersion {
                found: version.to_string(),
                supported: supported(),
            }),
        }
    }

    /// Checks every export against the host's types (once per plugin), which is what
    /// makes the unchecked typed calls of `call` sound.
    pub(crate) fn typecheck(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> wasmtime::Result<()> {
        match self {
            Exports::V0_1(e) => e.typecheck(store, instance),
            Exports::V0_2(e) => e.typecheck(store, instance),
        }
    }

    /// Converts a call's arguments into the plugin's version.
    pub(crate) fn prepare(&self, call: Call<'_>) -> Args {
        match self {
            Exports::V0_1(_) => Args::V0_1(v0_1_0::prepare(call)),
            Exports::V0_2(_) => Args::V0_2(v0_2_0::prepare(call)),
        }
    }

    pub(crate) async fn call(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
        args: Args,
    ) -> wasmtime::Result<Returned> {
        match (self, args) {
            (Exports::V0_1(e), Args::V0_1(a)) => Ok(Returned::V0_1(
                v0_1_0::dispatch(store, instance, e, a).await?,
            )),
            (Exports::V0_2(e), Args::V0_2(a)) => Ok(Returned::V0_2(
                v0_2_0::dispatch(store, instance, e, a).await?,
            )),
            // `prepare` made the arguments from these same exports.
            _ => Err(wasmtime::Error::msg(
                "a call's arguments were prepared for another contract version",
            )),
        }
    }
}

impl Returned {
    /// Bytes of text in the result: what the guest made the host allocate.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Returned::V0_1(r) => r.bytes(),
            Returned::V0_2(r) => r.bytes(),
        }
    }

    pub(crate) fn into_reply(self) -> Reply {
        match self {
            Returned::V0_1(r) => r.into_reply(),
            Returned::V0_2(r) => r.into_reply(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_names() {
        assert_eq!(Version::of(v0_1_0::VERSION), Some(Version::V0_1));
        assert_eq!(Version::of(v0_2_0::VERSION), Some(Version::V0_2));
        assert_eq!(Version::of("0.1.7"), Some(Version::V0_1));
        assert_eq!(Version::of("0.2.0"), Some(Version::V0_2));
        assert_eq!(Version::of("0.2.3"), Some(Version::V0_2));
        assert_eq!(Version::of("0.3.0"), None);
        assert_eq!(Version::of("1.1.0"), None);
        assert_eq!(
            split_name("arbiter:plugin/log@0.1.0"),
            Some(("arbiter:plugin", "log", Some("0.1.0")))
        );
        assert_eq!(split_name("plain"), None);
    }
}
