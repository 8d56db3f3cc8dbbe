//! The wasmtime engine: pooling allocator, epoch interruption and optional fuel.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::error::{Error, Result};

/// The engine settings that change compiled code. Compiled artifacts are only valid for
/// the same profile, so it is part of the cache key and is handed to the compile worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineProfile {
    /// Count instructions (fuel) so calls can report and cap them; costs ~2x in hot loops
    /// compared to epochs alone, so it is off on the serving path and on in author tools.
    pub fuel: bool,
    /// Deepest wasm stack a call may use, in bytes.
    pub max_wasm_stack: usize,
    /// Which code generator compiles plugins.
    pub compiler: Compiler,
}

/// wasmtime's two code generators. Both run the same wasm with the same results, limits
/// and sandbox; they trade compile time against speed of the compiled code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compiler {
    /// Cranelift, the optimising compiler: what serves calls.
    #[default]
    Cranelift,
    /// Winch, the baseline compiler: one pass, ~3 s instead of Cranelift's 12–17 s for an
    /// interpreter-sized component, slower code. For code that runs a few calls and is
    /// thrown away, such as the build's warm-up run (`authoring/snapshot.rs`). It refuses
    /// a few proposals (tail calls, exceptions, relaxed SIMD, GC) with a compile error.
    Winch,
}

impl Default for EngineProfile {
    fn default() -> Self {
        EngineProfile {
            fuel: false,
            max_wasm_stack: 512 << 10,
            compiler: Compiler::Cranelift,
        }
    }
}

/// How many instances may be alive at once; sizes the pooling allocator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolSizes {
    /// Component instances alive at once (concurrent calls plus warm instances).
    pub component_instances: u32,
    /// Core instances per component instance: module instantiations of real plugins are
    /// Rust 3, C and JS 4, Python 14; 20 leaves room without letting one component take a
    /// large share of `total_core_instances`.
    pub core_instances_per_component: u32,
    /// Linear memories per component instance.
    pub memories_per_component: u32,
    pub tables_per_component: u32,
    /// Bytes of each linear memory reset in place (only pages the guest dirtied, where the
    /// kernel supports PAGEMAP_SCAN) instead of being decommitted with `madvise` and
    /// faulted in again by the next instance.
    pub memory_keep_resident: usize,
    pub table_keep_resident: usize,
    /// Find the dirtied pages with Linux's PAGEMAP_SCAN (6.7+; ignored elsewhere), so a
    /// large keep-resident region costs only what the guest touched. Not used while swap
    /// is active, whatever this says: see [`effective_pagemap_scan`].
    pub pagemap_scan: bool,
}

impl Default for PoolSizes {
    fn default() -> Self {
        PoolSizes {
            component_instances: 1000,
            core_instances_per_component: 20,
            memories_per_component: 4,
            tables_per_component: 8,
            memory_keep_resident: 1 << 20,
            table_keep_resident: 64 << 10,
            pagemap_scan: true,
        }
    }
}

/// Builds the engine configuration. `pool: None` uses on-demand allocation (the compile
/// worker: it never instantiates, and a pool's address-space reservation would defeat its
/// memory rlimit). Both produce identical compiled code.
pub(crate) fn wasmtime_config(
    profile: &EngineProfile,
    pool: Option<&PoolSizes>,
) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.strategy(match profile.compiler {
        Compiler::Cranelift => wasmtime::Strategy::Cranelift,
        Compiler::Winch => wasmtime::Strategy::Winch,
    });
    config.epoch_interruption(true);
    config.consume_fuel(profile.fuel);
    config.max_wasm_stack(profile.max_wasm_stack);
    config.async_stack_size(profile.max_wasm_stack + (1 << 20));
    config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(64));
    config.parallel_compilation(true);
    if let Some(pool) = pool {
        let total = pool.component_instances;
        let mut p = PoolingAllocationConfig::new();
        p.total_component_instances(total);
        p.total_core_instances(total.saturating_mul(pool.core_instances_per_component.min(8)));
        p.total_memories(total.saturating_mul(2));
        p.total_tables(total.saturating_mul(4));
        p.total_stacks(total);
        p.max_core_instances_per_component(pool.core_instances_per_component);
        p.max_memories_per_component(pool.memories_per_component);
        p.max_tables_per_component(pool.tables_per_component);
        p.max_memories_per_module(2);
        p.max_tables_per_module(4);
        // Interpreters (Python, JS) have large vmctx and component metadata.
        p.max_core_instance_size(2 << 20);
        p.max_component_instance_size(2 << 20);
        p.linear_memory_keep_resident(pool.memory_keep_resident);
        p.table_keep_resident(pool.table_keep_resident);
        let swaps = std::fs::read_to_string("/proc/swaps").ok();
        p.pagemap_scan(effective_pagemap_scan(pool.pagemap_scan, swaps.as_deref()));
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    config
}

/// wasmtime 48 resets a pooled memory with PAGEMAP_SCAN by restoring only pages that are
/// dirty *and present in RAM*: a dirtied page that was swapped out keeps the previous
/// call's data for the next instance of the plugin (wasmtime 50 scans swapped pages too,
/// but needs a newer rustc than we build with). So the scan is used only when
/// `/proc/swaps` lists no swap device; otherwise memories are reset by copying and
/// `madvise`, which is correct with or without swap. `swaps` is the content of
/// `/proc/swaps`, `None` when it cannot be read (then swap is assumed).
pub(crate) fn effective_pagemap_scan(requested: bool, swaps: Option<&str>) -> wasmtime::Enabled {
    let swap_active = match swaps {
        // The first line is the column header; each further line is a swap device.
        Some(table) => table.lines().skip(1).any(|l| !l.trim().is_empty()),
        None => cfg!(target_os = "linux"),
    };
    if !requested {
        return wasmtime::Enabled::No;
    }
    if swap_active {
        tracing::info!("swap is active: PAGEMAP_SCAN memory resets are off (see engine.rs)");
        return wasmtime::Enabled::No;
    }
    wasmtime::Enabled::Auto
}

pub(crate) fn build_engine(profile: &EngineProfile, pool: Option<&PoolSizes>) -> Result<Engine> {
    Engine::new(&wasmtime_config(profile, pool))
        .map_err(|e| Error::Internal(format!("cannot create the wasmtime engine: {e:#}")))
}

/// How often the epoch advances while no guest code runs. Deadlines are only checked on
/// a tick, so this bounds how late a deadline fires should guest code ever run without
/// [`EpochTicker::busy`]; it saves the idle gateway 1,000 wakeups a second.
pub(crate) const IDLE_TICK: Duration = Duration::from_millis(100);

/// Advances the engine's epoch every `tick` while guest code runs (so deadlines fire and
/// long calls yield to the async executor) and every `idle` otherwise. Stops when dropped.
pub(crate) struct EpochTicker {
    shared: Arc<TickerShared>,
    thread: std::thread::Thread,
}

struct TickerShared {
    stop: AtomicBool,
    /// Guest executions in progress (instantiations and calls).
    busy: AtomicUsize,
    /// The ticker is (about to be) parked at the idle pace: the next guard wakes it.
    parked: AtomicBool,
    /// Epochs advanced so far; lets tests see the ticker's pace.
    ticks: AtomicU64,
}

/// Keeps the ticker at its fast pace while guest code may run.
pub(crate) struct Busy {
    shared: Arc<TickerShared>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine, tick: Duration, idle: Duration) -> EpochTicker {
        let shared = Arc::new(TickerShared {
            stop: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
        });
        let state = shared.clone();
        let handle = std::thread::Builder::new()
            .name("arbiter-epoch".into())
            .spawn(move || {
                while !state.stop.load(Ordering::Relaxed) {
                    if state.busy.load(Ordering::SeqCst) > 0 {
                        std::thread::sleep(tick);
                    } else {
                        // A guard taken after `parked` is set sees it and unparks this
                        // thread (an unpark before the park makes it return at once); one
                        // taken before is seen here. So no wake-up is lost, and a guard
                        // taken while this thread is awake costs no system call.
                        state.parked.store(true, Ordering::SeqCst);
                        if state.busy.load(Ordering::SeqCst) == 0 {
                            std::thread::park_timeout(idle);
                        }
                        state.parked.store(false, Ordering::SeqCst);
                        // Woken by a guard: the first tick comes a full `tick` after the
                        // guest code started. Ticking at once made the call that woke
                        // this thread see its epoch deadline within microseconds and
                        // yield to the executor, so a 12 µs call could wait behind every
                        // other ready request, holding its warm instance.
                        if state.busy.load(Ordering::SeqCst) > 0 {
                            continue;
                        }
                    }
                    engine.increment_epoch();
                    state.ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
            .expect("spawning the epoch ticker thread");
        EpochTicker {
            shared,
            thread: handle.thread().clone(),
        }
    }

    /// Marks guest code as running until the guard drops. Every instantiation and call
    /// holds one, so its deadline is checked every `tick`, not every [`IDLE_TICK`].
    pub(crate) fn busy(&self) -> Busy {
        if self.shared.busy.fetch_add(1, Ordering::SeqCst) == 0
            && self.shared.parked.load(Ordering::SeqCst)
        {
            self.thread.unpark();
        }
        Busy {
            shared: self.shared.clone(),
        }
    }

    #[cfg(test)]
    fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.shared.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::{effective_pagemap_scan, Compiler, EngineProfile, EpochTicker};
    use std::time::{Duration, Instant};
    use wasmtime::Enabled;

    /// Ticks in `window` of `ticker`; a parked thread may wake spuriously now and then.
    fn ticks_within(ticker: &EpochTicker, window: Duration) -> u64 {
        let before = ticker.ticks();
        std::thread::sleep(window);
        ticker.ticks() - before
    }

    #[test]
    fn the_epoch_ticker_runs_fast_only_while_guest_code_runs() {
        let hour = Duration::from_secs(3600);
        let ticker =
            EpochTicker::start(wasmtime::Engine::default(), Duration::from_millis(1), hour);
        let idle = ticks_within(&ticker, Duration::from_millis(50));
        assert!(idle <= 2, "{idle} ticks while idle");

        let busy = ticker.busy();
        let start = ticker.ticks();
        let waited = Instant::now();
        while ticker.ticks() < start + 5 {
            assert!(
                waited.elapsed() < Duration::from_secs(30),
                "a busy guard did not wake the ticker"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // A second guard keeps it fast after the first is gone.
        let nested = ticker.busy();
        drop(busy);
        let start = ticker.ticks();
        while ticker.ticks() < start + 5 {
            assert!(
                waited.elapsed() < Duration::from_secs(30),
                "the ticker slowed with a guard held"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(nested);
        std::thread::sleep(Duration::from_millis(20));
        let idle = ticks_within(&ticker, Duration::from_millis(50));
        assert!(idle <= 2, "{idle} ticks after the last guard dropped");
    }

    /// The guard that wakes an idle ticker must not be met by a tick at once: guest code
    /// yields at every tick, so the call that woke the ticker would yield within
    /// microseconds of starting.
    #[test]
    fn waking_the_ticker_does_not_tick_at_once() {
        let hour = Duration::from_secs(3600);
        let ticker = EpochTicker::start(wasmtime::Engine::default(), hour, hour);
        // Let the thread reach its idle park.
        std::thread::sleep(Duration::from_millis(50));
        let before = ticker.ticks();
        let busy = ticker.busy();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(ticker.ticks(), before, "the ticker ticked as it woke");
        drop(busy);
    }

    /// An operator's `[runtime.profile]` may name just the setting it changes.
    #[test]
    fn profile_fields_default_one_by_one() {
        let winch: EngineProfile = toml::from_str("compiler = \"winch\"").unwrap();
        assert_eq!(
            winch,
            EngineProfile {
                compiler: Compiler::Winch,
                ..EngineProfile::default()
            }
        );
        let fuel: EngineProfile = toml::from_str("fuel = true").unwrap();
        assert!(fuel.fuel);
        assert_eq!(fuel.compiler, Compiler::Cranelift);
        assert!(toml::from_str::<EngineProfile>("compiler = \"llvm\"").is_err());
    }

    const HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

    #[test]
    fn pagemap_scan_only_without_swap() {
        assert_eq!(effective_pagemap_scan(true, Some(HEADER)), Enabled::Auto);
        let with_swap = format!(
            "{HEADER}/dev/zram0                              partition\t8388604\t\t0\t\t100\n"
        );
        assert_eq!(effective_pagemap_scan(true, Some(&with_swap)), Enabled::No);
        // Unreadable /proc/swaps on Linux: assume swap.
        let unknown = if cfg!(target_os = "linux") {
            Enabled::No
        } else {
            Enabled::Auto
        };
        assert_eq!(effective_pagemap_scan(true, None), unknown);
        assert_eq!(effective_pagemap_scan(false, Some(HEADER)), Enabled::No);
    }
}
