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
use crate::pipeline::spec::settings;
use crate::pipeline::strategy::PluginUse;
use crate::pipeline::{Engine, ModelEntry, OutcomeStats, PluginEntry};
use crate::providers::{Price, Provider};
use crate::runtime::{CompileIsolation, Grants, PluginOptions, Runtime};
use crate::server::auth::{generate_key, hash_key, Auth};
use crate::server::metrics::Metrics;
use crate::server::AppState;
use crate::store::{StatsBook, TraceStore};

#[derive(Default)]
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
            Some(Arc::new(TraceStore::open_batched(
                &data_dir.join("traces.db"),
                retention,
                Duration::from_millis(config.server.trace_batch_ms),
            )?))
        } else {
            None
        };
        let stats = store
            .as_ref()
            .map(|s| s.stats.clone())
            .unwrap_or_else(|| Arc::new(StatsBook::new()));

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

        let mut runtime_config = config.runtime.clone();
        if runtime_config.cache_dir.is_none() {
            runtime_config.cache_dir = Some(data_dir.join("plugin-cache"));
        }
        runtime_config.compile = match &options.compile_program {
            Some(p) => CompileIsolation::Subprocess { program: p.clone() },
            None => CompileIsolation::InProcess,
        };
        let runtime = Runtime::new(runtime_config)?;
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
            for u in &uses {
                let entry = &plugins[u.name];
                if entry.plugin.kind() != u.kind {
                    bail!(
                        "pipeline `{name}` uses plugin `{}` as a {}, but it is a {}",
                        u.name,
                        u.kind,
                        entry.plugin.kind()
                    );
                }
            }
            check_settings(name, &uses, &plugins).await?;
            pipelines.insert(name.clone(), p.clone());
        }
        let engine = Arc::new(Engine {
            models,
            plugins,
            pipelines,
            stats: Some(stats.clone() as Arc<dyn OutcomeStats>),
            default_budget: config.default_budget,
        });
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

/// The gateway's shared state, and the key made at its first start.
pub struct Gateway {
    pub state: Arc<AppState>,
    /// Made because no key was configured, stored or given: to be shown once (only its
    /// hash is stored).
    pub generated_key: Option<String>,
}

impl App {
    /// The gateway's state over this app (built with its store). API keys: the
    /// configuration's tenants', those in the store, `api_key` (stored, hashed, for the
    /// `default` tenant); with none of these, a new key for `default` is made and stored.
    pub async fn gateway(&self, api_key: Option<&str>) -> anyhow::Result<Gateway> {
        let store = self
            .store
            .clone()
            .context("the gateway needs its trace store (`AppOptions::store`)")?;
        let auth = Auth::default();
        for (tenant, t) in &self.config.tenants {
            for h in &t.api_keys {
                auth.add(h.clone(), tenant.clone());
            }
        }
        for (hash, tenant) in store.api_keys().await? {
            auth.add(hash, tenant);
        }
        let mut generated_key = None;
        if let Some(key) = api_key {
            let hash = hash_key(key);
            store.add_api_key(&hash, "default", "--api-key").await?;
            auth.add(hash, "default".into());
        } else if auth.is_empty() {
            let key = generate_key();
            let hash = hash_key(&key);
            store
                .add_api_key(&hash, "default", "generated at first start")
                .await?;
            auth.add(hash, "default".into());
            generated_key = Some(key);
        }
        let state = Arc::new(AppState {
            engine: self.engine.clone(),
            store,
            auth,
            metrics: Metrics::new(),
            ready: AtomicBool::new(true),
        });
        Ok(Gateway {
            state,
            generated_key,
        })
    }
}

/// Every per-use setting a pipeline gives a plugin is checked by the plugin at start-up.
async fn check_settings(
    pipeline: &str,
    uses: &[PluginUse<'_>],
    plugins: &HashMap<String, PluginEntry>,
) -> anyhow::Result<()> {
    for u in uses {
        let entry = &plugins[u.name];
        let mut c = entry.config.clone();
        c.extend(settings(u.config));
        entry.plugin.check_config(&c).await.with_context(|| {
            format!(
                "pipeline `{pipeline}`: plugin `{}` refused its settings",
                u.name
            )
        })?;
    }
    Ok(())
}
