//! Typed errors of the plugin runtime: each names what went wrong in terms a plugin
//! author or operator can act on.

use std::time::Duration;

use super::types::{PluginFailure, PluginKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Random bytes, a core module, truncated data: anything that is not a component.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// A component binary that does not validate.
    #[error("malformed component: {0}")]
    Malformed(String),
    /// The component does not implement an Arbiter plugin world.
    #[error("wrong world: {0}")]
    WrongWorld(String),
    #[error("plugin is a {actual}, but a {expected} is needed here")]
    WrongKind {
        expected: PluginKind,
        actual: PluginKind,
    },
    #[error("unsupported contract version: the plugin targets arbiter:plugin@{found}; this host supports {supported}")]
    UnsupportedVersion { found: String, supported: String },
    /// Named as the operator grants it: `grants` in the gateway's plugin entry,
    /// `--grant` for `arbiter plugin`, `"grants"` in a test case.
    #[error("capability `{capability}` is not granted: the plugin imports `{import}`. Grant it only to plugins you trust (grants = [\"{capability}\"] in the plugin's `[plugins.<name>]` entry, or --grant {capability} for `arbiter plugin`)")]
    CapabilityNotGranted { capability: String, import: String },
    #[error("the plugin imports `{0}`, which Arbiter does not provide to plugins")]
    UnsupportedImport(String),
    #[error("compilation failed: {0}")]
    Compile(String),
    #[error("compilation did not finish within {0:?}")]
    CompileTimeout(Duration),
    #[error("compilation exceeded its memory limit of {0} MiB")]
    CompileMemory(u64),
    #[error("plugin trapped: {message}{}", backtrace.as_deref().map(|b| format!("\nguest backtrace:\n{b}")).unwrap_or_default())]
    Trap {
        message: String,
        backtrace: Option<String>,
    },
    #[error("plugin overflowed its stack{}", backtrace.as_deref().map(|b| format!("\nguest backtrace:\n{b}")).unwrap_or_default())]
    StackOverflow { backtrace: Option<String> },
    #[error("plugin call exceeded its deadline of {0:?}")]
    DeadlineExceeded(Duration),
    /// The plugin (or the runtime) had no call slot free within the call's deadline.
    #[error("plugin overloaded: {0}")]
    Overloaded(String),
    #[error("plugin exceeded its memory limit of {limit} bytes (asked for {requested} bytes)")]
    MemoryLimit { limit: usize, requested: usize },
    #[error("plugin exhausted its fuel ({0} instructions)")]
    FuelExhausted(u64),
    #[error("plugin exceeded a resource limit: {0}")]
    ResourceLimit(String),
    #[error("plugin output of {size} bytes exceeds the limit of {limit} bytes")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("plugin logged more than {limit} bytes in one call (log, stdout and stderr together)")]
    LogLimit { limit: usize },
    #[error("plugin returned an invalid result: {0}")]
    InvalidOutput(String),
    // Not `#[from]`: that would make the failure the source too, and error chains
    // (anyhow's `{:#}`) would print its message twice.
    #[error("plugin reported an error: {0}")]
    Plugin(PluginFailure),
    #[error("plugin cache: {0}")]
    Cache(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<PluginFailure> for Error {
    fn from(f: PluginFailure) -> Self {
        Error::Plugin(f)
    }
}

impl Error {
    /// Stable machine-readable code (used in `--json` output and API errors).
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotAComponent(_) => "not_a_component",
            Error::Malformed(_) => "malformed",
            Error::WrongWorld(_) => "wrong_world",
            Error::WrongKind { .. } => "wrong_kind",
            Error::UnsupportedVersion { .. } => "unsupported_version",
            Error::CapabilityNotGranted { .. } => "capability_not_granted",
            Error::UnsupportedImport(_) => "unsupported_import",
            Error::Compile(_) => "compile_failed",
            Error::CompileTimeout(_) => "compile_timeout",
            Error::CompileMemory(_) => "compile_memory",
            Error::Trap { .. } => "trap",
            Error::StackOverflow { .. } => "stack_overflow",
            Error::DeadlineExceeded(_) => "deadline_exceeded",
            Error::Overloaded(_) => "overloaded",
            Error::MemoryLimit { .. } => "memory_limit",
            Error::FuelExhausted(_) => "fuel_exhausted",
            Error::ResourceLimit(_) => "resource_limit",
            Error::OutputTooLarge { .. } => "output_too_large",
            Error::LogLimit { .. } => "log_limit",
            Error::InvalidOutput(_) => "invalid_output",
            Error::Plugin(_) => "plugin_error",
            Error::Cache(_) => "cache",
            Error::Io(_) => "io",
            Error::Internal(_) => "internal",
        }
    }

    /// True for errors caused by the plugin's behaviour during one call (as opposed to
    /// loading problems): the orchestrator drops that call's result and carries on.
    pub fn is_call_failure(&self) -> bool {
        matches!(
            self,
            Error::Trap { .. }
                | Error::StackOverflow { .. }
                | Error::DeadlineExceeded(_)
                | Error::Overloaded(_)
                | Error::MemoryLimit { .. }
                | Error::FuelExhausted(_)
                | Error::ResourceLimit(_)
                | Error::OutputTooLarge { .. }
                | Error::LogLimit { .. }
                | Error::InvalidOutput(_)
                | Error::Plugin(_)
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
