//! Tools for plugin authors behind `arbiter plugin build | new | test`: detecting a
//! project's language, building it into one component, and checking the result.
//!
//! One file per language builder (`rust.rs`, ...); `build.rs` detects and dispatches;
//! `wit.rs` carries the contract so projects build anywhere; `freshness.rs` skips
//! rebuilds of unchanged projects for tools without an incremental mode; `new.rs`
//! scaffolds projects from the templates in `sdk/<language>/templates/`; `cases.rs` runs
//! case files (`arbiter plugin test`).

pub mod build;
pub mod c;
pub mod cases;
pub mod freshness;
pub mod js;
pub mod new;
pub mod python;
mod rust;
pub mod snapshot;
pub mod wit;

pub use build::{build, detect_language, BuildError, BuildOptions, BuildOutput, Language};
