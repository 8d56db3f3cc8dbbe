//! Host capabilities: the contract interfaces a plugin may import, one module each.
//!
//! A capability module owns its name (as written in `grants`, and the interface it
//! provides, `arbiter:plugin/<name>`), its linking for each contract version that has it,
//! its per-instance state (a view into the call's store data, as wasmtime-wasi's
//! per-interface `add_to_linker` takes) and its policy. [`ALWAYS`] and [`GRANTABLE`] are
//! the registry: the runtime's linkers, grant parsing, the load-time refusal of ungranted
//! imports and the messages naming capabilities all come from them.
//!
//! Adding a capability: a module here, a line in one of the two lists, and, when callers
//! hand it a service per call, a field in [`CallContext`].

pub(crate) mod log;
pub mod model;
pub mod stats;
pub(crate) mod types;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wasmtime::component::Linker;
use wasmtime::Engine;

use super::error::{Error, Result};
use super::state::CallState;

pub use model::{AllowedModels, ModelAccess, ModelContext};
pub use stats::StatsSource;

/// One host capability, as the registry knows it.
pub(crate) struct Capability {
    /// As written in `grants`, and the contract interface it provides.
    pub(crate) name: &'static str,
    /// Adds its host functions for every contract version that has it.
    pub(crate) add_to_linker: fn(&mut Linker<CallState>) -> wasmtime::Result<()>,
}

/// Linked for every plugin.
const ALWAYS: &[Capability] = &[types::CAPABILITY, log::CAPABILITY];

/// Linked only for plugins the operator granted them; grant bit `i` is entry `i`.
const GRANTABLE: &[Capability] = &[model::CAPABILITY, stats::CAPABILITY];

// The runtime builds a linker per grant set (see `linkers`).
const _: () = assert!(GRANTABLE.len() <= 8);

/// The capabilities a plugin is granted; everything else is denied. Written in
/// configuration as a list of names (`grants = ["model"]`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Grants(u16);

impl Grants {
    pub const NONE: Grants = Grants(0);
    pub const ALL: Grants = Grants((1 << GRANTABLE.len()) - 1);

    /// Parses capability names as written in configuration (`["model", "stats"]`).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> std::result::Result<Grants, String> {
        let mut grants = Grants::NONE;
        for name in names {
            let name = name.as_ref();
            let Some(bit) = GRANTABLE.iter().position(|c| c.name == name) else {
                let known: Vec<&str> = GRANTABLE.iter().map(|c| c.name).collect();
                return Err(format!(
                    "unknown capability `{name}` ({})",
                    known.join(", ")
                ));
            };
            grants.0 |= 1 << bit;
        }
        Ok(grants)
    }

    /// True when the capability called `name` is granted.
    pub fn contains(self, name: &str) -> bool {
        self.granted().any(|c| c.name == name)
    }

    pub fn union(self, other: Grants) -> Grants {
        Grants(self.0 | other.0)
    }

    /// The granted capabilities' names, in registry order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.granted().map(|c| c.name)
    }

    fn granted(self) -> impl Iterator<Item = &'static Capability> {
        GRANTABLE
            .iter()
            .enumerate()
            .filter(move |(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, c)| c)
    }

    /// Which of the runtime's linkers serves plugins holding these grants.
    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Serialize for Grants {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

impl<'de> Deserialize<'de> for Grants {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        Grants::from_names(&names).map_err(serde::de::Error::custom)
    }
}

/// Checks one import of the contract's package against the registry. `interface` is
/// the name after the package (`model` in `arbiter:plugin/model@0.1.0`); the result is
/// the capability the import needs granted, `None` for one every plugin gets.
pub(crate) fn check_import(
    interface: &str,
    import: &str,
    grants: Grants,
) -> Result<Option<&'static str>> {
    if ALWAYS.iter().any(|c| c.name == interface) {
        return Ok(None);
    }
    let Some(bit) = GRANTABLE.iter().position(|c| c.name == interface) else {
        return Err(Error::UnsupportedImport(import.to_string()));
    };
    let name = GRANTABLE[bit].name;
    if grants.0 & (1 << bit) == 0 {
        return Err(Error::CapabilityNotGranted {
            capability: name.to_string(),
            import: import.to_string(),
        });
    }
    Ok(Some(name))
}

/// One linker per grant set, indexed by [`Grants::index`]: a capability a plugin is not
/// granted is not even present to link against.
pub(crate) fn linkers(engine: &Engine) -> Result<Vec<Linker<CallState>>> {
    (0..=Grants::ALL.0)
        .map(|bits| linker(engine, Grants(bits)))
        .collect()
}

fn linker(engine: &Engine, grants: Grants) -> Result<Linker<CallState>> {
    let err = |e: wasmtime::Error| Error::Internal(format!("linker setup: {e:#}"));
    let mut linker = Linker::<CallState>::new(engine);
    // WASI 0.2 is the environment every plugin runs in, linked with an empty context
    // (see `CallState::new`).
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(err)?;
    for capability in ALWAYS.iter().chain(grants.granted()) {
        (capability.add_to_linker)(&mut linker).map_err(err)?;
    }
    Ok(linker)
}

/// What a caller hands one call: the services behind the capabilities (each used only
/// if the plugin holds the grant) and a deadline.
#[derive(Clone, Default)]
pub struct CallContext {
    /// The `model` capability: the caller's models, and which of them this call may ask.
    pub model: Option<ModelContext>,
    /// The `stats` capability: outcome statistics.
    pub stats: Option<Arc<dyn StatsSource>>,
    /// A deadline tighter than the plugin's own (the request's remaining budget).
    pub deadline: Option<Duration>,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("model", &self.model)
            .field("stats", &self.stats.is_some())
            .field("deadline", &self.deadline)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_from_the_registry() {
        let model = Grants::from_names(&["model"]).unwrap();
        assert!(model.contains("model") && !model.contains("stats"));
        assert_eq!(model.names().collect::<Vec<_>>(), ["model"]);
        let err = Grants::from_names(&["network"]).unwrap_err();
        assert_eq!(err, "unknown capability `network` (model, stats)");
        // Always-linked interfaces are not grants.
        assert!(Grants::from_names(&["log"]).is_err());
        assert_eq!(
            Grants::from_names(&["model", "stats"]).unwrap(),
            Grants::ALL
        );
        assert_eq!(Grants::ALL.index(), 3);
        assert_eq!(
            model.union(Grants::from_names(&["stats"]).unwrap()),
            Grants::ALL
        );
    }

    #[test]
    fn grants_serialize_as_names() {
        let json = serde_json::to_string(&Grants::ALL).unwrap();
        assert_eq!(json, r#"["model","stats"]"#);
        let back: Grants = serde_json::from_str(r#"["stats"]"#).unwrap();
        assert!(back.contains("stats") && !back.contains("model"));
        assert!(serde_json::from_str::<Grants>(r#"["disk"]"#).is_err());
    }

    #[test]
    fn imports_are_checked_against_the_registry() {
        let none = Grants::NONE;
        let import = "arbiter:plugin/model@0.1.0";
        assert_eq!(
            check_import("log", "arbiter:plugin/log@0.1.0", none).unwrap(),
            None
        );
        assert_eq!(
            check_import("types", "arbiter:plugin/types@0.1.0", none).unwrap(),
            None
        );
        match check_import("model", import, none) {
            Err(Error::CapabilityNotGranted { capability, .. }) => assert_eq!(capability, "model"),
            other => panic!("{other:?}"),
        }
        let granted = Grants::from_names(&["model"]).unwrap();
        assert_eq!(
            check_import("model", import, granted).unwrap(),
            Some("model")
        );
        assert!(matches!(
            check_import("disk", "arbiter:plugin/disk@0.1.0", Grants::ALL),
            Err(Error::UnsupportedImport(_))
        ));
    }
}
