//! The gateway's TOML configuration: providers, models with prices, plugins, pipelines
//! and tenants. Relative paths are resolved against the configuration file's folder.
//! The embedded default (`config/arbiter.toml`) runs with no API key: replay provider,
//! SQLite, the reference plugins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::pipeline::spec::SettingValue;
use crate::pipeline::{BudgetLimits, PipelineDef};
pub use crate::providers::ProviderConfig;
use crate::runtime::{Limits, RuntimeConfig};
use crate::tenancy::Policy;

/// The example configuration shipped with the binary (`arbiter serve` with no arguments).
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/arbiter.toml");

/// The embedded example's data folder, in the working directory.
const EMBEDDED_DATA_DIR: &str = ".arbiter";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSpec>,
    #[serde(default)]
    pub pipelines: BTreeMap<String, PipelineDef>,
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantConfig>,
    #[serde(default)]
    pub store: StoreConfig,
    /// Span export over OTLP (off by default).
    #[serde(default)]
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// Limits where a pipeline sets none, and those of raw model calls. Each limit left
    /// out here keeps its built-in default (`BudgetLimits::DEFAULT`).
    #[serde(default = "default_budget", deserialize_with = "budget_over_default")]
    pub default_budget: BudgetLimits,
    /// Folder relative paths are resolved against (set when loading, not in the file).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// Where the gateway keeps its state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database`: PostgreSQL, which several replicas
    /// share. Unset: SQLite in the data folder (`traces.db`). `ARBITER_STORE_URL` sets
    /// it too (and wins), so the password need not be in the file.
    pub url: Option<String>,
}

impl StoreConfig {
    /// The PostgreSQL URL in effect, if any.
    pub fn url(&self) -> Option<String> {
        std::env::var("ARBITER_STORE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| self.url.clone())
    }
}

fn default_budget() -> BudgetLimits {
    BudgetLimits::DEFAULT
}

fn budget_over_default<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BudgetLimits, D::Error> {
    Ok(BudgetLimits::deserialize(d)?.or(BudgetLimits::DEFAULT))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    /// SQLite trace store, compiled-plugin cache and built plugins live here.
    pub data_dir: PathBuf,
    /// In-flight requests get this long to finish on shutdown.
    pub shutdown_grace_ms: u64,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Tokio worker threads (default: the CPUs this process may run on).
    pub worker_threads: Option<usize>,
    /// Delete traces (with their attempts and feedback) older than this many days.
    /// Unset: keep every trace. A pass-through request takes ~0.65 KB of the store.
    pub trace_retention_days: Option<u32>,
    /// A connection must send a request's headers within this long of opening, or of its
    /// previous response (so it is also the idle timeout of kept-alive connections).
    pub header_read_timeout_ms: u64,
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// A request must have its response started within this long (`request_timeout`,
    /// 504). Budgets' deadlines are usually tighter; this bounds everything else.
    pub request_timeout_ms: u64,
    /// A write to a client may make no progress for at most this long; then the
    /// connection is closed, and a stream it was reading is cancelled, upstream call
    /// included. A client that stops reading a stream holds nothing longer than this.
    pub write_timeout_ms: u64,
    /// Traces wait up to this long to be committed together (one commit per request
    /// costs more than the request under load): a crash loses at most the traces of
    /// requests that ended this long before it. Keys and feedback are committed before
    /// they are acknowledged, whatever this is.
    pub trace_batch_ms: u64,
    /// `sha256:<hex>` of a key `/metrics` then requires (`Authorization: Bearer <key>`).
    /// Unset: `/metrics` is open, as Prometheus scrapers expect by default.
    pub metrics_key: Option<String>,
    /// Operator keys (`sha256:<hex>`), for the admin API (`/admin/v1`). Without any here
    /// or in the store, one is made at first start and shown once.
    pub operator_keys: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: ".arbiter".into(),
            shutdown_grace_ms: 30_000,
            max_body_bytes: 4 << 20,
            worker_threads: None,
            trace_retention_days: None,
            header_read_timeout_ms: 10_000,
            max_connections: 1024,
            request_timeout_ms: 600_000,
            write_timeout_ms: 30_000,
            trace_batch_ms: 5,
            metrics_key: None,
            operator_keys: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub provider: String,
    /// The model's name at the provider (default: this entry's name).
    #[serde(default)]
    pub upstream: Option<String>,
    /// USD per million input tokens.
    pub input_price: f64,
    /// USD per million output tokens.
    pub output_price: f64,
    /// Latency assumed before any is observed (default 1000 ms).
    #[serde(default)]
    pub expected_latency_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// A compiled component.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A plugin project, built at start-up with `arbiter plugin build` (skipped when
    /// nothing changed).
    #[serde(default)]
    pub build: Option<PathBuf>,
    /// Capabilities granted (`model`, `stats`).
    #[serde(default)]
    pub grants: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
    /// Reuse warm instances if the plugin declares itself stateless.
    #[serde(default)]
    pub warm: bool,
    /// Settings for every use of the plugin (pipelines may override per use).
    #[serde(default)]
    pub config: BTreeMap<String, SettingValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// API keys as `sha256:<hex>` of the key: keys are never stored in clear.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// What the tenant may call and spend (default: every pipeline that admits it, no
    /// raw models, no limits).
    #[serde(default)]
    pub policy: Policy,
}

impl GatewayConfig {
    pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<GatewayConfig, ConfigError> {
        let mut config: GatewayConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.into(),
            message: e.to_string(),
        })?;
        config.base_dir = base_dir.to_path_buf();
        config.validate()?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base)
    }

    /// The configuration a command runs with: `path`, else `./arbiter.toml` if there is
    /// one, else the embedded example.
    pub fn load_or_embedded(path: Option<&Path>) -> Result<GatewayConfig, ConfigError> {
        let local = Path::new("arbiter.toml");
        match path {
            Some(p) => Self::load(p),
            None if local.is_file() => Self::load(local),
            None => Self::embedded(),
        }
    }

    /// The embedded example (`config/arbiter.toml`). Its plugin projects and datasets are
    /// found as if it were loaded from that file: in the source tree the binary was built
    /// from when it is present, else in a checkout in the current directory. Its data
    /// folder is `.arbiter` in the current directory, so that a binary run elsewhere does
    /// not write into the checkout it was built in.
    pub fn embedded() -> Result<GatewayConfig, ConfigError> {
        let repo = lexical(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../config"));
        let base = if repo.join("../data").is_dir() {
            repo
        } else {
            PathBuf::from("config")
        };
        let mut config = Self::parse(EMBEDDED_DEFAULT, "embedded default config", &base)?;
        let data = Path::new(EMBEDDED_DATA_DIR);
        config.server.data_dir = std::path::absolute(data).map_err(|source| ConfigError::Read {
            path: data.into(),
            source,
        })?;
        Ok(config)
    }

    /// The data folder (trace store, compiled plugins, plugin builds).
    pub fn data_dir(&self) -> PathBuf {
        self.resolve(&self.server.data_dir)
    }

    /// Every path the configuration names, resolved, with its key (`server.data_dir`,
    /// `plugins.<name>.build` or `.path`, `providers.<name>.dataset`).
    pub fn paths(&self) -> Vec<(String, PathBuf)> {
        let mut out = vec![("server.data_dir".to_string(), self.data_dir())];
        for (name, p) in &self.plugins {
            if let Some(path) = &p.path {
                out.push((format!("plugins.{name}.path"), self.resolve(path)));
            }
            if let Some(dir) = &p.build {
                out.push((format!("plugins.{name}.build"), self.resolve(dir)));
            }
        }
        for (name, p) in &self.providers {
            if let ProviderConfig::Replay(r) = p {
                out.push((
                    format!("providers.{name}.dataset"),
                    self.resolve(&r.dataset),
                ));
            }
        }
        out
    }

    /// A path from the configuration, relative to its folder. `..` is taken as written
    /// (`config/../data` is `data`), as a reader of the file takes it, and so messages
    /// show the short path.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            lexical(&self.base_dir.join(p))
        }
    }

    /// Checks every cross-reference, so a bad configuration fails at start-up with a
    /// message naming the entry, not at the first request.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if let Err(e) = self.telemetry.validate() {
            return bad(e.to_string());
        }
        for (name, m) in &self.models {
            if !self.providers.contains_key(&m.provider) {
                return bad(format!(
                    "model `{name}` uses unknown provider `{}`",
                    m.provider
                ));
            }
            if m.input_price < 0.0
                || m.output_price < 0.0
                || !m.input_price.is_finite()
                || !m.output_price.is_finite()
            {
                return bad(format!("model `{name}` has a negative or invalid price"));
            }
        }
        // `@` is how tenants' references are told apart (`name@sha256:...`, `@own`).
        if let Some(n) = self.plugins.keys().find(|n| n.contains('@')) {
            return bad(format!(
                "plugin name `{n}` contains `@`, which is reserved for versions"
            ));
        }
        if let Some(n) = self
            .pipelines
            .keys()
            .chain(self.models.keys())
            .find(|n| n.starts_with('@'))
        {
            return bad(format!("name `{n}` starts with `@`, which is reserved"));
        }
        for (name, p) in &self.plugins {
            if p.path.is_some() == p.build.is_some() {
                return bad(format!("plugin `{name}` needs exactly one of `path` (a component) or `build` (a project)"));
            }
            crate::runtime::Grants::from_names(&p.grants)
                .map_err(|e| ConfigError::Invalid(format!("plugin `{name}`: {e}")))?;
        }
        for (name, p) in &self.pipelines {
            if self.models.contains_key(name) {
                return bad(format!("pipeline `{name}` has the same name as a model"));
            }
            let uses = p.node.inventory();
            if let Some(m) = uses.problem {
                return bad(format!("pipeline `{name}`: {m}"));
            }
            // A reference must resolve for every tenant the pipeline serves, or that
            // tenant's requests would fail as if the pipeline did not exist.
            for r in uses.pipelines {
                match self.pipelines.get(r) {
                    Some(q) => {
                        if let Some(t) = p.tenants.iter().find(|t| !q.admits(t)) {
                            return bad(format!("pipeline `{name}` uses pipeline `{r}`, which tenant `{t}` may not use"));
                        }
                    }
                    None if self.models.contains_key(r) => {}
                    None => return bad(format!("pipeline `{name}` uses unknown pipeline `{r}`")),
                }
            }
            if let Some(m) = uses.models.iter().find(|m| !self.models.contains_key(**m)) {
                return bad(format!("pipeline `{name}` uses unknown model `{m}`"));
            }
            if let Some(m) = p
                .judge_models
                .iter()
                .find(|m| !self.models.contains_key(*m))
            {
                return bad(format!(
                    "pipeline `{name}` lists unknown model `{m}` in `judge_models`"
                ));
            }
            if let Some(pl) = uses
                .plugins
                .iter()
                .find(|u| !self.plugins.contains_key(u.name))
            {
                return bad(format!(
                    "pipeline `{name}` uses unknown plugin `{}`",
                    pl.name
                ));
            }
            for t in &p.tenants {
                if t != "default" && t != "*" && !self.tenants.contains_key(t) {
                    return bad(format!("pipeline `{name}` names unknown tenant `{t}`"));
                }
            }
        }
        if let Some(k) = self.server.metrics_key.as_ref().filter(|k| !is_key_hash(k)) {
            return bad(format!("server.metrics_key `{}...` is not `sha256:<64 hex>`; store a hash, not the key (`arbiter key hash`)", k.chars().take(12).collect::<String>()));
        }
        if self.server.max_connections == 0
            || self.server.header_read_timeout_ms == 0
            || self.server.request_timeout_ms == 0
        {
            return bad("server.max_connections, header_read_timeout_ms and request_timeout_ms must be above 0".into());
        }
        if let Some(k) = self.server.operator_keys.iter().find(|k| !is_key_hash(k)) {
            return bad(format!("server.operator_keys entry `{}...` is not `sha256:<64 hex>`; store hashes, not keys (`arbiter key hash`)", k.chars().take(12).collect::<String>()));
        }
        for (name, t) in &self.tenants {
            t.policy
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("tenant `{name}`: policy: {e}")))?;
            if let Some(k) = t.api_keys.iter().find(|k| !is_key_hash(k)) {
                return bad(format!("tenant `{name}`: api key entry `{}...` is not `sha256:<64 hex>`; store hashes, not keys (`arbiter key hash`)", k.chars().take(12).collect::<String>()));
            }
        }
        Ok(())
    }
}

fn is_key_hash(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `a/b/../c` as `a/c`, `./a` as `a`; a `..` with nothing to remove stays.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = GatewayConfig::embedded().unwrap();
        assert!(!c.pipelines.is_empty());
        assert!(c.models.contains_key("gpt-4-1106-preview"));
    }

    #[test]
    fn embedded_data_dir_is_in_the_working_directory() {
        let c = GatewayConfig::embedded().unwrap();
        let here = std::env::current_dir().unwrap();
        assert_eq!(c.data_dir(), here.join(".arbiter"));
        // Its plugin projects and datasets are still found.
        for (key, path) in c.paths() {
            if key != "server.data_dir" {
                assert!(path.exists(), "{key}: {} is missing", path.display());
            }
        }
    }

    /// How plugins are compiled is the embedding program's choice, not the file's.
    #[test]
    fn runtime_compile_is_not_a_configuration_key() {
        let err = GatewayConfig::parse(
            "[runtime]\ncompile = { mode = \"in_process\" }\n",
            "t",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `compile`"), "{err}");
        GatewayConfig::parse("[runtime]\ncache_dir = \"c\"\n", "t", Path::new(".")).unwrap();
    }

    #[test]
    fn config_paths_read_as_written() {
        let at = |base: &str, p: &str| {
            let mut c = GatewayConfig::parse("", "t", Path::new(base)).unwrap();
            c.base_dir = PathBuf::from(base);
            c.resolve(Path::new(p))
        };
        assert_eq!(
            at("/srv/arbiter/config", "../data/x.jsonl"),
            PathBuf::from("/srv/arbiter/data/x.jsonl")
        );
        assert_eq!(at("config", "./../plugins/p"), PathBuf::from("plugins/p"));
        assert_eq!(at(".", "../../up"), PathBuf::from("../../up"));
        assert_eq!(at("config", ".."), PathBuf::from("."));
        assert_eq!(at("config", "/abs/../x"), PathBuf::from("/abs/../x"));
        let embedded = GatewayConfig::embedded().unwrap();
        assert!(
            !embedded.base_dir.to_string_lossy().contains(".."),
            "{}",
            embedded.base_dir.display()
        );
    }

    /// The example configurations the README points to must load, and every file they
    /// name (plugin projects, replay datasets) must exist in the repository.
    #[test]
    fn shipped_configurations_load_and_name_real_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let c =
                GatewayConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!c.pipelines.is_empty(), "{}", path.display());
            for (name, p) in &c.plugins {
                let f = p.build.as_ref().or(p.path.as_ref()).unwrap();
                assert!(
                    c.resolve(f).exists(),
                    "{}: plugin {name}: {} is missing",
                    path.display(),
                    f.display()
                );
            }
            for (name, p) in &c.providers {
                if let ProviderConfig::Replay(r) = p {
                    let f = c.resolve(&r.dataset);
                    assert!(
                        f.is_file(),
                        "{}: provider {name}: {} is missing",
                        path.display(),
                        f.display()
                    );
                }
            }
            seen += 1;
        }
        assert!(
            seen >= 3,
            "expected the example configurations in {}",
            dir.display()
        );
    }

    #[test]
    fn budgets_default_to_finite_limits() {
        let c = GatewayConfig::parse("", "t", Path::new(".")).unwrap();
        assert_eq!(c.default_budget, BudgetLimits::DEFAULT);
        let d = BudgetLimits::DEFAULT;
        assert!(d.deadline_ms.is_some() && d.max_cost_usd.is_some());
        assert!(d.max_calls.is_some() && d.max_depth.is_some());
        // A limit left out keeps its default.
        let c =
            GatewayConfig::parse("[default_budget]\nmax_calls = 3\n", "t", Path::new(".")).unwrap();
        assert_eq!(c.default_budget.max_calls, Some(3));
        assert_eq!(c.default_budget.deadline_ms, d.deadline_ms);
        assert!(GatewayConfig::parse(
            "[default_budget]\nmax_cost_usd = nan\n",
            "t",
            Path::new(".")
        )
        .is_err());
    }

    #[test]
    fn cross_references_are_checked() {
        let base = "[providers.r]\nkind = \"replay\"\ndataset = \"x.jsonl\"\n[models.m]\nprovider = \"r\"\ninput_price = 1\noutput_price = 2\n";
        let ok = format!("{base}[pipelines.p]\ntype = \"single\"\nmodel = \"m\"\nbudget = {{ deadline_ms = 100 }}\n");
        let c = GatewayConfig::parse(&ok, "t", Path::new(".")).unwrap();
        assert_eq!(c.pipelines["p"].budget.deadline_ms, Some(100));
        // References to a pipeline its tenants share, and to a model, are fine.
        let refs = format!("{ok}[pipelines.q]\ntype = \"race\"\nbranches = [{{ type = \"pipeline\", name = \"p\" }}, {{ type = \"pipeline\", name = \"m\" }}]\n");
        GatewayConfig::parse(&refs, "t", Path::new(".")).unwrap();
        assert_eq!(c.pipelines["p"].tenants, ["default"]);
        let judged = format!("{ok}judge_models = [\"m\"]\n");
        let c = GatewayConfig::parse(&judged, "t", Path::new(".")).unwrap();
        assert_eq!(c.pipelines["p"].judge_models, ["m"]);
        for (bad, needle) in [
            (format!("[server]\nmetrics_key = \"sk-plain\"\n{base}"), "server.metrics_key"),
            (format!("[server]\nmax_connections = 0\n{base}"), "must be above 0"),
            (format!("{base}[pipelines.p]\ntype = \"single\"\nmodel = \"nope\"\n"), "unknown model"),
            (format!("{base}[pipelines.p]\ntype = \"single\"\nmodel = \"m\"\njudge_models = [\"nope\"]\n"), "pipeline `p` lists unknown model `nope` in `judge_models`"),
            (format!("{base}[pipelines.p]\ntype = \"single\"\nmodel = \"m\"\nverify = [{{ plugin = \"v\" }}]\n"), "unknown plugin"),
            (format!("{base}[pipelines.p]\ntype = \"single\"\nmodle = \"m\"\n"), "modle"),
            (format!("{base}[tenants.a]\napi_keys = [\"sk-plain\"]\n"), "not `sha256"),
            ("[models.m]\nprovider = \"gone\"\ninput_price = 1\noutput_price = 1\n".to_string(), "unknown provider"),
            (format!("{base}[pipelines.p]\ntype = \"cascade\"\nsteps = []\n"), "cascade has no steps"),
            (format!("{base}[pipelines.p]\ntype = \"best_of\"\nmodels = [\"m\"]\nk = 0\n"), "k >= 1"),
            (format!("{base}[pipelines.p]\ntype = \"race\"\n"), "race needs branches"),
            (format!("{base}[pipelines.p]\ntype = \"best_of\"\nmodels = [\"m\"]\nk = 1000000\n"), "limit of 1000"),
            (format!("{base}[plugins.r]\npath = \"r.wasm\"\n[pipelines.p]\ntype = \"route\"\nrouter = {{ plugin = \"r\" }}\n"), "neither models nor branches"),
            (format!("{base}[pipelines.p]\ntype = \"cascade\"\nsteps = [{{ type = \"single\", model = \"m\", threshold = 7 }}]\n"), "threshold 7"),
            (format!("{base}[plugins.v]\npath = \"v.wasm\"\n[pipelines.p]\ntype = \"single\"\nmodel = \"m\"\nverify = [{{ plugin = \"v\", weight = -1 }}]\n"), "weight -1"),
            (format!("{base}[pipelines.p]\ntype = \"single\"\nmodel = \"m\"\nbudget = {{ max_cost_usd = nan }}\n"), "finite amount"),
            (format!("{base}[pipelines.p]\ntype = \"pipeline\"\nname = \"nowhere\"\n"), "unknown pipeline `nowhere`"),
            (format!("{base}[tenants.a]\n[pipelines.q]\ntype = \"single\"\nmodel = \"m\"\n[pipelines.p]\ntype = \"cascade\"\ntenants = [\"a\"]\nsteps = [{{ type = \"pipeline\", name = \"q\" }}]\n"), "tenant `a` may not use"),
        ] {
            let err = GatewayConfig::parse(&bad, "t", Path::new(".")).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
