//! The generated WIT bindings: one world per plugin kind, chosen by cargo feature. Each
//! binds the kind's widest world; imports a plugin never calls (`model`, `stats`) are
//! dropped from the component when it is linked, so they need no grant.
//!
//! The WIT is read from `wit/` beside the SDK's manifest: in this repository a symlink to
//! the top-level `wit/`, in projects made by `arbiter plugin new` (which vendor the SDK)
//! a real copy.

#[cfg(feature = "verifier")]
wit_bindgen::generate!({
    path: "wit/v0.2.0",
    world: "model-verifier",
    pub_export_macro: true,
    export_macro_name: "__export_arbiter_world",
    default_bindings_module: "::arbiter_sdk::bindings",
    runtime_path: "::arbiter_sdk::__wit_bindgen::rt",
});

#[cfg(feature = "router")]
wit_bindgen::generate!({
    path: "wit/v0.2.0",
    world: "stats-router",
    pub_export_macro: true,
    export_macro_name: "__export_arbiter_world",
    default_bindings_module: "::arbiter_sdk::bindings",
    runtime_path: "::arbiter_sdk::__wit_bindgen::rt",
});

#[cfg(feature = "decomposer")]
wit_bindgen::generate!({
    path: "wit/v0.2.0",
    world: "model-decomposer",
    pub_export_macro: true,
    export_macro_name: "__export_arbiter_world",
    default_bindings_module: "::arbiter_sdk::bindings",
    runtime_path: "::arbiter_sdk::__wit_bindgen::rt",
});
