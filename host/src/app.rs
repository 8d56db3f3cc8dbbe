//! The composition root: assembles a running gateway (or an evaluation) from its
//! configuration: providers, models, plugins (built and loaded once, settings checked),
//! pipelines, the trace store, and who may call the gateway. The `serve` and `eval`
//! commands and the tests all assemble through here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::authoring::{self, BuildOptions};
use crate::config::GatewayConfig;
use crate::pipeline::catalog::check_plugins;
use crate::pipeline::spec::settings;
use crate::pipeline::{Catalogs, Engine, ModelEntry, OutcomeStats, PluginEntry};
use crate::providers::{Price, Provider};
use crate::runtime::{CompileIsolation, Grants, PluginOptions, Runtime};
use crate::server::metrics::Metrics;
use crate::server::AppState;
use crate::store::{StatsBook, TraceStore};
use crate::tenancy::{
    generate_key, hash_key, KeyRecord, Policy, Role, Source, TenantRecord, Tenants,
};

#[derive(Default, Clone)]
pub struct AppOptions {
    /// Open the SQLite trace store (the gateway does; evaluation keeps traces in memory).
    pub store: bool,
    /// Serve every replay provider from this dataset instead (evaluation).
    pub replay_dataset: Option<PathBuf>,
    /// The binary that compiles plugins in a limited child process (`None`: in-process).
    pub compile_program: Option<PathBuf>,
    /// Providers the embedding program supplies, each used in place of the configured
    /// provider of its name (the tests inject failing upstreams this way).
    pub providers: HashMap<String, Arc<dyn Provider>>,
    /// Share verdicts of capability-free verifiers between requests judging the same
    /// candidate (evaluation only: see `pipeline::verdict_memo`).
    pub reuse_verdicts: bool,
}

pub struct App {
    pub engine: Arc<Engine>,
    pub store: Option<Arc<TraceStore>>,
    pub stats: Arc<StatsBook>,
    pub runtime: Runtime,
    pub config: GatewayConfig,
    pub data_dir: PathBuf,
}

impl App {
    pub async fn build(config: GatewayConfig, options: AppOptions) -> anyhow::Result<App> {
        let data_dir = config.data_dir();
        crate::private::create_dir(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;

        let store = if options.store {
            let retention = config
                .server
                .trace_retention_days
                .map(|days| std::time::Duration::from_secs(u64::from(days) * 86_400));
            let window = Duration::from_millis(config.server.trace_batch_ms);
            Some(Arc::new(match config.store.url() {
                Some(url) => {
                    let url = url.clone();
                    tokio::task::spawn_blocking(move || {
                        TraceStore::open_postgres(&url, retention, window)
                    })
                    .await??
                }
                None => TraceStore::open_batched(&data_dir.join("traces.db"), retention, window)?,
            }))
        } else {
            None
        };
        let stats = store
            .as_ref()
            .map(|s| s.stats.clone())
            .unwrap_or_else(|| Arc::new(StatsBook::new()));

        let mut runtime_config = config.runtime.clone();
        if runtime_config.cache_dir.is_none() {
            runtime_config.cache_dir = Some(data_dir.join("plugin-cache"));
        }
        runtime_config.compile = match &options.compile_program {
            Some(p) => CompileIsolation::Subprocess { program: p.clone() },
            None => CompileIsolation::InProcess,
        };
        let runtime = Runtime::new(runtime_config)?;
        let engine = Arc::new(build_engine(&config, &options, &runtime, &stats).await?);
        Ok(App {
            engine,
            store,
            stats,
            runtime,
            config,
            data_dir,
        })
    }
}

/// What a configuration runs: providers, models, plugins (built and loaded, settings
/// checked) and pipelines, over a runtime and statistics that outlive it (a reload
/// builds a new one over the same).
async fn build_engine(
    config: &GatewayConfig,
    options: &AppOptions,
    runtime: &Runtime,
    stats: &Arc<StatsBook>,
) -> anyhow::Result<Engine> {
    let data_dir = config.data_dir();
    let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
    for (name, p) in &config.providers {
        if let Some(given) = options.providers.get(name) {
            providers.insert(name.clone(), given.clone());
            continue;
        }
        let provider = p
            .build(
                |path| config.resolve(path),
                options.replay_dataset.as_deref(),
            )
            .with_context(|| format!("provider `{name}`"))?;
        providers.insert(name.clone(), provider);
    }
    let models = config
        .models
        .iter()
        .map(|(name, m)| {
            let entry = ModelEntry {
                provider: providers[&m.provider].clone(),
                provider_name: m.provider.clone(),
                upstream: m.upstream.clone().unwrap_or_else(|| name.clone()),
                price: Price {
                    input: m.input_price,
                    output: m.output_price,
                },
                expected_latency: Duration::from_millis(m.expected_latency_ms.unwrap_or(1000)),
            };
            (name.clone(), entry)
        })
        .collect();

    let mut plugins = HashMap::new();
    for (name, spec) in &config.plugins {
        let path = match (&spec.path, &spec.build) {
            (Some(p), _) => config.resolve(p),
            (None, Some(dir)) => {
                let dir = config.resolve(dir);
                // A shared cargo target (CARGO_TARGET_DIR) avoids rebuilding the SDK
                // for every data folder.
                let target_dir = Some(
                    std::env::var_os("CARGO_TARGET_DIR")
                        .map(PathBuf::from)
                        .unwrap_or_else(|| data_dir.join("plugin-build")),
                );
                let built = tokio::task::spawn_blocking(move || {
                    authoring::build(
                        &dir,
                        &BuildOptions {
                            target_dir,
                            ..Default::default()
                        },
                    )
                })
                .await?
                .with_context(|| format!("building plugin `{name}`"))?;
                built
                    .components
                    .into_iter()
                    .next()
                    .context("the build produced no component")?
            }
            (None, None) => bail!("plugin `{name}` has neither `path` nor `build`"),
        };
        let grants = Grants::from_names(&spec.grants).map_err(anyhow::Error::msg)?;
        let options = PluginOptions {
            grants,
            limits: spec.limits.clone(),
            warm: spec.warm,
        };
        let plugin = runtime
            .load_file(&path, options)
            .await
            .with_context(|| format!("loading plugin `{name}` from {}", path.display()))?;
        let own = settings(&spec.config);
        plugin
            .check_config(&own)
            .await
            .with_context(|| format!("plugin `{name}` refused its settings"))?;
        plugins.insert(
            name.clone(),
            PluginEntry {
                plugin,
                config: own,
            },
        );
    }

    let mut pipelines = std::collections::BTreeMap::new();
    for (name, p) in &config.pipelines {
        let uses = p.node.inventory().plugins;
        check_plugins(name, &uses, |n| plugins.get(n))
            .await
            .map_err(anyhow::Error::msg)?;
        pipelines.insert(name.clone(), p.clone());
    }
    Ok(Engine {
        models,
        plugins,
        pipelines,
        stats: Some(stats.clone() as Arc<dyn OutcomeStats>),
        default_budget: config.default_budget,
        verdicts: options
            .reuse_verdicts
            .then(|| Arc::new(crate::pipeline::verdict_memo::VerdictMemo::new())),
    })
}

/// Rebuilds the engine from the configuration file (`POST /admin/v1/reload`, SIGHUP):
/// providers, models, shared plugins and pipelines. The `[server]` and `[runtime]`
/// sections keep the values the gateway started with (they need a restart).
pub struct Reloader {
    /// `None`: the embedded example.
    path: Option<PathBuf>,
    server: crate::config::ServerConfig,
    runtime_config: crate::runtime::RuntimeConfig,
    options: AppOptions,
    runtime: Runtime,
    stats: Arc<StatsBook>,
    /// One reload at a time.
    running: tokio::sync::Mutex<()>,
}

impl crate::server::Reload for Reloader {
    fn reload(&self) -> futures::future::BoxFuture<'_, Result<Arc<Engine>, String>> {
        Box::pin(async move {
            let _one = self.running.lock().await;
            let mut config = match &self.path {
                Some(p) => GatewayConfig::load(p),
                None => GatewayConfig::embedded(),
            }
            .map_err(|e| e.to_string())?;
            config.server = self.server.clone();
            config.runtime = self.runtime_config.clone();
            let engine = build_engine(&config, &self.options, &self.runtime, &self.stats)
                .await
                .map_err(|e| format!("{e:#}"))?;
            Ok(Arc::new(engine))
        })
    }
}

impl App {
    /// A reloader for this app's gateway, reading `path` (`None`: the embedded example).
    pub fn reloader(&self, path: Option<PathBuf>, options: AppOptions) -> Arc<Reloader> {
        Arc::new(Reloader {
            path,
            server: self.config.server.clone(),
            runtime_config: self.config.runtime.clone(),
            options,
            runtime: self.runtime.clone(),
            stats: self.stats.clone(),
            running: tokio::sync::Mutex::new(()),
        })
    }
}

/// The gateway's shared state, and the keys made at its first start.
pub struct Gateway {
    pub state: Arc<AppState>,
    /// Made because no tenant key was configured, stored or given: to be shown once
    /// (only its hash is stored).
    pub generated_key: Option<String>,
    /// Made because no operator key was configured, stored or given.
    pub generated_operator_key: Option<String>,
}

impl App {
    /// The gateway's state over this app (built with its store), with `api_key` for the
    /// `default` tenant if given. See [`App::gateway_with_keys`].
    pub async fn gateway(&self, api_key: Option<&str>) -> anyhow::Result<Gateway> {
        self.gateway_with_keys(api_key, None).await
    }

    /// The gateway's state over this app. Tenants: the configuration's (read-only through
    /// the admin API) and the store's. Keys: the configuration's hashes, the store's,
    /// `api_key` for the `default` tenant and `operator_key` (stored hashed); with no
    /// tenant key anywhere, a new one for `default` is made, and with no operator key, a
    /// new operator key. The `default` tenant, made here when it is not configured,
    /// may call every pipeline that admits it and every raw model, as a single-team
    /// gateway always could; the operator can narrow its policy.
    pub async fn gateway_with_keys(
        &self,
        api_key: Option<&str>,
        operator_key: Option<&str>,
    ) -> anyhow::Result<Gateway> {
        let store = self
            .store
            .clone()
            .context("the gateway needs its trace store (`AppOptions::store`)")?;
        let tenants = Tenants::with_ledger(store.spend_ledger());
        let today = crate::tenancy::spend::today().to_string();
        let stored = store.tenants().await?;
        for (name, t) in &self.config.tenants {
            let spent = store.spent(name, &today).await?;
            let record = TenantRecord {
                name: name.clone(),
                created_at: 0,
                disabled: false,
                policy: t.policy.clone(),
            };
            tenants.put_tenant(record, Source::Config, spent);
            for hash in &t.api_keys {
                let mut k = KeyRecord::new(
                    hash.clone(),
                    String::new(),
                    Some(name.clone()),
                    Role::Tenant,
                    "configured".into(),
                );
                k.created_at = 0;
                tenants.put_key(k);
            }
        }
        for t in stored {
            if !self.config.tenants.contains_key(&t.name) {
                let spent = store.spent(&t.name, &today).await?;
                tenants.put_tenant(t, Source::Store, spent);
            }
        }
        for hash in &self.config.server.operator_keys {
            let mut k = KeyRecord::new(
                hash.clone(),
                String::new(),
                None,
                Role::Operator,
                "configured".into(),
            );
            k.created_at = 0;
            tenants.put_key(k);
        }
        for k in store.keys().await? {
            tenants.put_key(k);
        }

        let (default_key, generated_key) =
            start_key(api_key, "--api-key", tenants.has_keys(Role::Tenant));
        if let Some((key, name)) = default_key {
            if tenants.tenant(DEFAULT_TENANT).is_none() {
                let record = TenantRecord {
                    name: DEFAULT_TENANT.into(),
                    created_at: crate::tenancy::registry::now_s(),
                    disabled: false,
                    policy: Policy::open(),
                };
                store.create_tenant(record.clone()).await?;
                tenants.put_tenant(record, Source::Store, (0.0, 0.0));
            }
            let tenant = Some(DEFAULT_TENANT.to_string());
            let k = KeyRecord::new(hash_key(&key), key_prefix(&key), tenant, Role::Tenant, name);
            store.add_key(k.clone()).await?;
            tenants.put_key(k);
        }
        let (op_key, generated_operator_key) = start_key(
            operator_key,
            "--operator-key",
            tenants.has_keys(Role::Operator),
        );
        if let Some((key, name)) = op_key {
            let k = KeyRecord::new(hash_key(&key), key_prefix(&key), None, Role::Operator, name);
            store.add_key(k.clone()).await?;
            tenants.put_key(k);
        }
        let state = Arc::new(AppState {
            engine: arc_swap::ArcSwap::new(self.engine.clone()),
            reloader: std::sync::OnceLock::new(),
            store,
            tenants,
            catalogs: Catalogs::default(),
            runtime: self.runtime.clone(),
            uploads: tokio::sync::Semaphore::new(MAX_UPLOADS),
            metrics: Metrics::new(),
            ready: AtomicBool::new(true),
        });
        // Tenants' plugins and pipelines, then what other replicas change from now on.
        crate::follow::refresh_catalogs(&state).await?;
        crate::follow::spawn(&state);
        Ok(Gateway {
            state,
            generated_key,
            generated_operator_key,
        })
    }
}

/// Uploads received or compiled at once: each holds its body (up to the runtime's
/// `max_component_bytes`) and a compile (a child process of bounded memory).
const MAX_UPLOADS: usize = 2;

/// The key to store at start, with its name: the one given (named after its flag), else
/// a new one when none of its role exists (also returned, to be shown once).
fn start_key(
    given: Option<&str>,
    flag: &str,
    exists: bool,
) -> (Option<(String, String)>, Option<String>) {
    match given {
        Some(key) => (Some((key.to_string(), flag.to_string())), None),
        None if !exists => {
            let key = generate_key();
            (
                Some((key.clone(), "generated at first start".into())),
                Some(key),
            )
        }
        None => (None, None),
    }
}

/// The tenant of a single-team gateway (`--api-key`, the key made at first start).
pub const DEFAULT_TENANT: &str = "default";

/// What is shown of a key in listings: enough to tell keys apart, too little to use.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(15).collect()
}
