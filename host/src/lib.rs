//! Arbiter: an LLM orchestration host whose judgement calls (verifiers, routers,
//! decomposers) are sandboxed WebAssembly components loaded at runtime.
//!
//! - [`runtime`]: the plugin sandbox (wasmtime), its contract bindings and limits.
//! - [`authoring`]: building and testing plugin projects (`arbiter plugin build|new|test`).
//! - [`cli`]: the `arbiter` command line.

pub mod app;
pub mod authoring;
pub mod cli;
pub mod config;
pub mod eval;
pub mod follow;
pub mod fuzzing;
pub mod pipeline;
pub mod private;
pub mod providers;
pub mod runtime;
pub mod scrub;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tenancy;
