//! Arbiter's integration tests as one binary, a module per area (the layout of wasmtime's
//! `tests/all`): the host and its dependencies are linked once instead of once per area,
//! and plugins built for one area are reused by the others in the same process.

mod common;

mod authoring;
mod c;
mod cli;
mod console;
mod crash;
mod embeddings;
mod fuzz_corpus;
mod gateway;
mod hostile;
mod js;
mod main_job;
mod python;
mod replicas;
mod runtime;
mod sdk_install;
mod stats;
mod telemetry;
mod tenancy;
mod uploads;
mod uploads_cli;
