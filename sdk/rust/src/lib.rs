//! Write [Arbiter](https://github.com/arbiter) plugins in Rust.
//!
//! A plugin is one of three kinds, chosen with a cargo feature of this crate
//! (`verifier`, `router` or `decomposer`). Implement the matching trait and call its
//! export macro once; the SDK hides the WIT bindings, caches your parsed configuration
//! between calls when the host reuses an instance, and converts panics-free errors into
//! the contract's `plugin-error`.
//!
//! ```ignore
//! use arbiter_sdk::prelude::*;
//!
//! struct NonEmpty { min_len: usize }
//!
//! impl Verifier for NonEmpty {
//!     fn info() -> PluginInfo {
//!         PluginInfo::verifier("non-empty", env!("CARGO_PKG_VERSION"), "Rejects short answers")
//!             .stateless()
//!             .config_key("min-len", "Shortest acceptable answer, in characters", Some("1"))
//!     }
//!     fn new(config: &Config) -> Result<Self, PluginError> {
//!         Ok(NonEmpty { min_len: config.parse_or("min-len", 1)? })
//!     }
//!     fn verify(&self, _task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError> {
//!         let len = candidate.text.trim().chars().count();
//!         Ok(if len >= self.min_len {
//!             Verdict::accept(1.0, "long enough")
//!         } else {
//!             Verdict::reject(0.0, format!("{len} < {} characters", self.min_len))
//!         })
//!     }
//! }
//!
//! export_verifier!(NonEmpty);
//! ```
//!
//! Build with `arbiter plugin build` (or `cargo build --release --target wasm32-wasip2`).

#[cfg(any(
    all(feature = "verifier", feature = "router"),
    all(feature = "verifier", feature = "decomposer"),
    all(feature = "router", feature = "decomposer"),
))]
compile_error!(
    "arbiter-sdk: enable exactly one of the features `verifier`, `router`, `decomposer` \
     (a plugin is one kind; build each plugin as its own project)"
);

/// Everything below needs a plugin kind; without one (e.g. a plain workspace build) the
/// crate is empty rather than broken.
macro_rules! with_kind {
    ($($item:item)*) => {
        $(#[cfg(any(feature = "verifier", feature = "router", feature = "decomposer"))] $item)*
    };
}

with_kind! {
    // The generated bindings name this crate by its absolute path, also from inside it.
    extern crate self as arbiter_sdk;

    #[doc(hidden)]
    pub mod bindings;
    #[doc(hidden)]
    pub use wit_bindgen as __wit_bindgen;
    mod config;
    mod helpers;
    pub mod log;

    pub use config::Config;
}

#[cfg(feature = "verifier")]
mod verifier;
#[cfg(feature = "verifier")]
pub use verifier::Verifier;

#[cfg(feature = "router")]
mod router;
#[cfg(feature = "router")]
pub use router::Router;

#[cfg(feature = "decomposer")]
mod decomposer;
#[cfg(feature = "decomposer")]
pub use decomposer::Decomposer;

#[cfg(any(feature = "verifier", feature = "decomposer"))]
pub mod model;
#[cfg(feature = "router")]
pub mod stats;

/// Everything a plugin usually needs, in one `use`.
#[cfg(any(feature = "verifier", feature = "router", feature = "decomposer"))]
pub mod prelude {
    pub use crate::log;
    pub use crate::types::*;
    pub use crate::Config;
    #[cfg(feature = "decomposer")]
    pub use crate::Decomposer;
    #[cfg(feature = "router")]
    pub use crate::Router;
    #[cfg(feature = "verifier")]
    pub use crate::Verifier;
}

/// The contract's records, shared by all plugin kinds.
pub mod types {
    #[cfg(any(feature = "verifier", feature = "router", feature = "decomposer"))]
    pub use crate::bindings::arbiter::plugin::types::{
        Candidate, Check, ConfigKey, Decision, Judged, Message, ModelStats, PluginError,
        PluginInfo, PluginKind, Selection, Task, TokenLogprob, Tool, ToolCall, Verdict,
    };
    #[cfg(feature = "decomposer")]
    pub use crate::bindings::exports::arbiter::plugin::decomposition::{Plan, Subresult, Subtask};
    #[cfg(feature = "router")]
    pub use crate::bindings::exports::arbiter::plugin::routing::{
        ModelOption, RouteDecision, RouteStep,
    };
}

#[doc(hidden)]
#[cfg(any(feature = "verifier", feature = "router", feature = "decomposer"))]
pub mod __private {
    use std::cell::RefCell;
    use std::rc::Rc;

    use crate::types::PluginError;
    use crate::Config;

    #[cfg(feature = "decomposer")]
    pub use crate::decomposer::Export as DecomposerExport;
    #[cfg(feature = "router")]
    pub use crate::router::Export as RouterExport;
    #[cfg(feature = "verifier")]
    pub use crate::verifier::Export as VerifierExport;

    thread_local! {
        /// The plugin value built from the last configuration seen. A fresh instance per
        /// call starts empty; a warm (reused) instance skips `new` while the pipeline's
        /// settings stay the same.
        static STATE: RefCell<Option<(Config, Rc<dyn std::any::Any>)>> = const { RefCell::new(None) };
    }

    pub fn with_state<P: 'static, R>(
        pairs: Vec<(String, String)>,
        new: fn(&Config) -> Result<P, PluginError>,
        f: impl FnOnce(&P) -> Result<R, PluginError>,
    ) -> Result<R, PluginError> {
        let config = Config::new(pairs);
        let cached = STATE.with(|s| {
            s.borrow()
                .as_ref()
                .filter(|(c, _)| *c == config)
                .map(|(_, p)| p.clone())
        });
        let plugin = match cached {
            Some(p) => p,
            None => {
                let built: Rc<dyn std::any::Any> = Rc::new(new(&config)?);
                STATE.with(|s| *s.borrow_mut() = Some((config, built.clone())));
                built
            }
        };
        let plugin = plugin.downcast_ref::<P>().ok_or_else(|| {
            PluginError::Failed("arbiter-sdk: plugin state has the wrong type".into())
        })?;
        f(plugin)
    }
}
