//! The sandboxed plugin runtime: loads plugin components (verifiers, routers,
//! decomposers) and calls them under per-call deadlines, memory caps and log budgets.
//!
//! Layout: `engine` (wasmtime config, epoch ticker), `cache` (compiled artifacts, bounded
//! compilation), `inspect` (what a component is and imports), `contract/` (one module per
//! released WIT version, behind a version-neutral surface), `capability/` (one module per
//! host capability, and their registry), `state` (per-call store data), `plugin` (calling
//! a loaded plugin), `limits`, `error`, `types` (the host's own records).

mod cache;
pub mod capability;
mod contract;
mod engine;
mod error;
mod inspect;
mod kept;
mod limits;
mod plugin;
mod state;
pub mod types;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

pub use cache::{
    compile_worker_main, component_digest, CompileIsolation, CompileLimits, LoadSource,
};
pub use capability::{AllowedModels, CallContext, Grants, ModelAccess, ModelContext, StatsSource};
pub use contract::{LATEST as CONTRACT_VERSION, PACKAGE as CONTRACT_PACKAGE};
pub use engine::{Compiler, EngineProfile, PoolSizes};
pub use error::{Error, Result};
pub use inspect::{precheck, ComponentSummary};
pub use kept::KeptInstance;
pub use limits::Limits;
pub use plugin::{CallStats, LoadReport, Outcome, Plugin, PluginOptions};

use self::cache::ArtifactCache;
use self::engine::EpochTicker;
use self::state::CallState;

/// Runtime-wide settings. Per-plugin limits are in [`PluginOptions`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    pub profile: EngineProfile,
    pub pool: PoolSizes,
    /// Where compiled artifacts are kept; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Process wiring, not configuration: the embedding program says how it compiles.
    #[serde(skip)]
    pub compile: CompileIsolation,
    pub compile_limits: CompileLimits,
    /// Largest component accepted, in bytes (default 64 MiB).
    pub max_component_bytes: usize,
    /// Epoch tick while guest code runs: the precision of deadlines and how often long
    /// calls yield (default 1 ms). With no guest code running the epoch advances every
    /// 100 ms, so an idle host does not wake up a thousand times a second.
    #[serde(with = "tick_ms", rename = "epoch_tick_ms")]
    pub epoch_tick: Duration,
    /// Calls running at once across all plugins; more wait in line. Default (and at most):
    /// half the pool, the other half being kept for warm instances.
    pub max_concurrent_calls: Option<usize>,
    /// Calls of one plugin running at once, so one plugin (one tenant's, or one under a
    /// flood) cannot take every slot from the others. More wait, for at most what their
    /// caller's budget has left (`CallContext::deadline`), then fail with `overloaded`. Default: half of `max_concurrent_calls`
    /// (at least 1).
    pub max_calls_per_plugin: Option<usize>,
    /// Bytes the memory caps (`Limits::memory_bytes`) of the calls running at once may add
    /// up to, so concurrent calls cannot together claim more memory than the machine has:
    /// a call waits for room as for a call slot, then fails with `overloaded`. Default:
    /// three quarters of physical memory (8 GiB where it cannot be read).
    pub max_memory_total: Option<usize>,
    /// Warm instances kept per stateless plugin (0 disables warm reuse everywhere).
    pub warm_instances_per_plugin: usize,
    /// Fresh instances made ahead of demand per plugin that gets a fresh instance per
    /// call (0: create each one when the call arrives). Each still serves one call.
    pub prepared_instances_per_plugin: usize,
}

mod tick_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?.max(1)))
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_concurrent_calls: None,
            max_calls_per_plugin: None,
            max_memory_total: None,
            profile: EngineProfile::default(),
            pool: PoolSizes::default(),
            cache_dir: None,
            compile: CompileIsolation::InProcess,
            compile_limits: CompileLimits::default(),
            max_component_bytes: 64 << 20,
            epoch_tick: Duration::from_millis(1),
            warm_instances_per_plugin: 8,
            prepared_instances_per_plugin: 1,
        }
    }
}

/// Three quarters of physical memory (`MemTotal`), or 8 GiB where it cannot be read.
fn default_memory_total() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib << 10)
    });
    total.map_or(8 << 30, |bytes| bytes / 4 * 3)
}

/// Loads and runs plugins. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) config: RuntimeConfig,
    /// One linker per grant set (index = `Grants::index`): an ungranted capability is not
    /// even present to link against.
    linkers: Vec<Linker<CallState>>,
    cache: ArtifactCache,
    components: Mutex<HashMap<String, Component>>,
    /// A call holds a permit until its instance is torn down, which for prepared
    /// instances happens after the reply, in the background.
    pub(crate) calls: Arc<tokio::sync::Semaphore>,
    /// Slots of `calls` one plugin may hold at once.
    pub(crate) per_plugin: usize,
    /// MiB of memory caps left for calls to claim (`max_memory_total`).
    pub(crate) memory: Arc<tokio::sync::Semaphore>,
    pub(crate) memory_total_mib: u32,
    /// Pool slots left for instances kept between calls (warm and prepared ones).
    pub(crate) warm_budget: std::sync::atomic::AtomicUsize,
    pub(crate) ticker: EpochTicker,
    /// Where calls of capability-free plugins run, when set (`Runtime::run_calls_on`).
    pub(crate) offload: std::sync::OnceLock<Offload>,
}

/// Threads for plugin calls, for a caller on a single-threaded runtime: each call runs
/// on a thread of the caller's blocking pool, at most one per core at once.
pub(crate) struct Offload {
    /// Drives the calls' timers (their deadlines run on the real clock).
    pub(crate) timers: tokio::runtime::Handle,
    pub(crate) cores: Arc<tokio::sync::Semaphore>,
}

impl Runtime {
    /// Runs calls of plugins granted no capability off the caller's thread, on up to
    /// `cores` threads at once, with `timers` (a multi-threaded runtime's handle) driving
    /// their deadlines. For `arbiter eval`, whose single-threaded runtime keeps a paused
    /// clock for simulated latencies: a call parked on the blocking pool stops that clock
    /// from advancing, so a call still takes no simulated time, and independent calls
    /// now use every core. Set once; later calls are ignored.
    pub fn run_calls_on(&self, timers: tokio::runtime::Handle, cores: usize) {
        let _ = self.inner.offload.set(Offload {
            timers,
            cores: Arc::new(tokio::sync::Semaphore::new(cores.max(1))),
        });
    }

    pub fn new(config: RuntimeConfig) -> Result<Runtime> {
        let engine = engine::build_engine(&config.profile, Some(&config.pool))?;
        let linkers = capability::linkers(&engine)?;
        let cache = ArtifactCache::new(config.cache_dir.clone(), &engine, &config.profile)?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick, engine::IDLE_TICK);
        let pool = config.pool.component_instances as usize;
        let concurrent = config
            .max_concurrent_calls
            .unwrap_or(pool / 2)
            .clamp(1, pool.max(1));
        let warm_total = pool.saturating_sub(concurrent);
        let per_plugin = config
            .max_calls_per_plugin
            .unwrap_or(concurrent / 2)
            .clamp(1, concurrent);
        let memory_total_mib = (config.max_memory_total.unwrap_or_else(default_memory_total) >> 20)
            .clamp(1, u32::MAX as usize) as u32;
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                calls: Arc::new(tokio::sync::Semaphore::new(concurrent)),
                per_plugin,
                memory: Arc::new(tokio::sync::Semaphore::new(memory_total_mib as usize)),
                memory_total_mib,
                warm_budget: std::sync::atomic::AtomicUsize::new(warm_total),
                engine,
                config,
                linkers,
                cache,
                components: Mutex::new(HashMap::new()),
                ticker,
                offload: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Loads a plugin from a file.
    pub async fn load_file(&self, path: &Path, options: PluginOptions) -> Result<Plugin> {
        let bytes = tokio::fs::read(path).await.map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            ))
        })?;
        self.load(bytes, options).await
    }

    /// Loads a plugin: validates, compiles (or fetches the cached artifact), checks the
    /// world and imports against the grants, pre-instantiates and reads its metadata.
    pub async fn load(&self, bytes: Vec<u8>, options: PluginOptions) -> Result<Plugin> {
        let limit = self.inner.config.max_component_bytes;
        if bytes.len() > limit {
            return Err(Error::ResourceLimit(format!(
                "component of {} bytes exceeds the upload limit of {limit} bytes",
                bytes.len()
            )));
        }
        let started = Instant::now();
        let bytes = Arc::new(bytes);
        let digest = {
            let b = bytes.clone();
            tokio::task::spawn_blocking(move || component_digest(&b))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
        };
        let (component, source) = self.component(&digest, bytes.clone()).await?;
        let loaded = async {
            let summary = inspect::analyze(&self.inner.engine, &component, options.grants)?;
            let linker = &self.inner.linkers[options.grants.index()];
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| link_error(&e))?;
            let report = LoadReport {
                digest: digest.clone(),
                size: bytes.len(),
                source,
                load_time: started.elapsed(),
            };
            Plugin::new(self.inner.clone(), pre, summary, report, options).await
        }
        .await;
        // A component compiled for a load that then failed (wrong world, ungranted
        // capability) is not kept: a refused upload leaves nothing behind.
        if loaded.is_err() && source == LoadSource::Compiled {
            self.inner
                .components
                .lock()
                .expect("component map")
                .remove(&digest);
            if let Some(path) = self.inner.cache.path(&digest) {
                let _ = std::fs::remove_file(path);
            }
        }
        loaded
    }

    async fn component(
        &self,
        digest: &str,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(Component, LoadSource)> {
        if let Some(c) = self
            .inner
            .components
            .lock()
            .expect("component map")
            .get(digest)
        {
            return Ok((c.clone(), LoadSource::Memory));
        }
        let inner = self.inner.clone();
        let key = digest.to_string();
        let cached = tokio::task::spawn_blocking(move || inner.cache.load(&inner.engine, &key))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let (component, source) = match cached {
            Some(c) => (c, LoadSource::Disk),
            None => {
                let check = bytes.clone();
                tokio::task::spawn_blocking(move || precheck(&check))
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))??;
                let c = &self.inner.config;
                let artifact = cache::compile(
                    &self.inner.engine,
                    &c.profile,
                    &c.compile,
                    &c.compile_limits,
                    bytes,
                )
                .await?;
                self.inner.cache.store(digest, &artifact)?;
                // SAFETY: `artifact` was just produced by `precompile_component` for this
                // engine's profile (here or in our own compile worker).
                let component = unsafe { Component::deserialize(&self.inner.engine, &artifact) }
                    .map_err(|e| {
                        Error::Compile(format!("compiled artifact did not load: {e:#}"))
                    })?;
                (component, LoadSource::Compiled)
            }
        };
        self.inner
            .components
            .lock()
            .expect("component map")
            .insert(digest.to_string(), component.clone());
        Ok((component, source))
    }

    /// Path of the cached artifact of a component digest (for tooling and tests).
    pub fn cache_path(&self, digest: &str) -> Option<PathBuf> {
        self.inner.cache.path(digest)
    }

    /// Forgets components loaded in memory, so the next load goes to the disk cache.
    pub fn clear_memory_cache(&self) {
        self.inner.components.lock().expect("component map").clear();
    }
}

/// Linking failures after `analyze` passed are type mismatches: the plugin was built
/// against a different shape of the contract than its version string claims.
fn link_error(e: &wasmtime::Error) -> Error {
    Error::WrongWorld(format!(
        "the component's imports do not match {CONTRACT_PACKAGE}@{CONTRACT_VERSION}: {e:#}"
    ))
}
