//! Tools for plugin authors behind `arbiter plugin build | new | test`: detecting a
//! project's language, building it into one component, and checking the result.
//!
//! `manifest.rs` reads what a project says about itself (language, name, world);
//! `build.rs` has the one [`Language`] enum and the [`build::Builder`] trait, and
//! dispatches to one file per language (`rust.rs`, `python.rs`, `c.rs`, `js.rs`);
//! `wit.rs` carries the contract so projects build anywhere; `freshness.rs` skips
//! rebuilds of unchanged projects for tools without an incremental mode; `new.rs`
//! scaffolds projects from the templates in `sdk/<language>/templates/`; `cases.rs` runs
//! case files (`arbiter plugin test`, and the calls of `plugin call` and `plugin bench`).

pub mod build;
pub mod c;
pub mod cases;
pub mod freshness;
pub mod js;
pub mod manifest;
pub mod new;
pub mod python;
pub mod rust;
pub mod snapshot;
pub mod wit;

pub use build::{build, detect_language, BuildError, BuildOptions, BuildOutput, Language};
