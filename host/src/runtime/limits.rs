//! Per-call limits and the resource limiter that enforces the memory and table caps.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits applied to every call of a plugin. Defaults suit verifiers on the request path;
/// override per plugin (and per tenant) in configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock deadline of one call, instantiation included (default 1 s).
    #[serde(with = "millis", rename = "deadline_ms")]
    pub deadline: Duration,
    /// Linear memory one instance may use, all memories together (default 256 MiB:
    /// Python and JavaScript interpreters need ~20-60 MiB before running any user code).
    pub memory_bytes: usize,
    /// Elements per table (default 100,000: interpreters have large function tables).
    pub table_elements: usize,
    /// Core instances, tables and memories one component instance may create. Defaults
    /// (20, 8, 4) are what the pool allows a component ([`super::PoolSizes`]), set from
    /// real components: a componentize-py plugin instantiates 14 core modules, JS and C 4,
    /// Rust 3 (module instantiations counted in each binary's core-instance sections).
    pub instances: usize,
    pub tables: usize,
    pub memories: usize,
    /// Bytes of strings a call may return (default 1 MiB); each element of a returned
    /// list (a check, a sub-task, a dependency, a route step) counts 32 bytes besides
    /// its text, so lists of empty strings are not free. Counted before the reply is
    /// converted, so `details` is bounded before it is parsed.
    pub output_bytes: usize,
    /// Bytes a call may log through `log`, stdout and stderr together (default 64 KiB).
    /// Each record (each line of stdout/stderr) costs 64 bytes besides its text and each
    /// field 48, so empty records are not free: at most 1,024 records per call by default.
    pub log_bytes: usize,
    /// Instructions a call may execute when fuel metering is on (default 10 billion).
    pub fuel: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(1),
            memory_bytes: 256 << 20,
            table_elements: 100_000,
            instances: 20,
            tables: 8,
            memories: 4,
            output_bytes: 1 << 20,
            log_bytes: 64 << 10,
            fuel: 10_000_000_000,
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Enforces [`Limits`] on one store and remembers which limit was hit, so a guest that
/// aborts after a refused allocation is reported as out of memory rather than as a bare
/// `unreachable` trap.
pub(crate) struct CallLimiter {
    memory_limit: usize,
    table_elements: usize,
    instances: usize,
    tables: usize,
    memories: usize,
    /// Bytes currently held by each memory (by growth order), to cap them together.
    memory_in_use: usize,
    pub(crate) memory_refused: Option<usize>,
    pub(crate) table_refused: Option<usize>,
}

impl CallLimiter {
    pub(crate) fn new(limits: &Limits) -> CallLimiter {
        CallLimiter {
            memory_limit: limits.memory_bytes,
            table_elements: limits.table_elements,
            instances: limits.instances,
            tables: limits.tables,
            memories: limits.memories,
            memory_in_use: 0,
            memory_refused: None,
            table_refused: None,
        }
    }

    pub(crate) fn memory_limit(&self) -> usize {
        self.memory_limit
    }
}

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_in_use - current.min(self.memory_in_use) + desired;
        if total > self.memory_limit || maximum.is_some_and(|m| desired > m) {
            // Refuse the growth: the guest sees `memory.grow` fail and may recover (an
            // interpreter raises MemoryError); if it aborts instead, the call is
            // classified as a memory-limit error from this record.
            self.memory_refused = Some(total);
            return Ok(false);
        }
        self.memory_in_use = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements || maximum.is_some_and(|m| desired > m) {
            self.table_refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}
