//! Tools for plugin authors behind `arbiter plugin build | new | test`: detecting a
//! project's language, building it into one component, and checking the result.

pub mod build;

pub use build::{build, detect_language, BuildError, BuildOptions, BuildOutput, Language};
