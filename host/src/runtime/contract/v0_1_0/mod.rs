//! Contract 0.1.0, generated from the frozen `wit/v0.1.0`: the bindings, conversions
//! between its records and the host's (`convert`), linking its host interfaces to the
//! capabilities (`link`) and calling its exports (`calls`). No binding type leaves this
//! module.

/// Calling 0.1.0's exports: the same code for every version, over these bindings.
mod calls {
    include!("../per_version/calls.rs");
}
mod convert;
/// 0.1.0's host interfaces: the same code for every version, over these bindings.
mod link {
    include!("../per_version/link.rs");
}

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "host",
    imports: {
        "arbiter:plugin/log.log": trappable,
        "arbiter:plugin/model.complete": async,
        default: tracing,
    },
    exports: { default: async },
});

/// The released version these bindings were generated from.
pub const VERSION: &str = "0.1.0";

pub(crate) use calls::{dispatch, prepare, Args, Exports, Returned};
pub(crate) use link::{add_log, add_model, add_stats, add_types};
