//! A tenant's own plugins and pipelines, uploaded at run time (`/v1/plugins`,
//! `/v1/pipelines`). A catalog is an immutable snapshot: a change builds a new one and
//! swaps it in, and a request holds the snapshot it started with, so it finishes on the
//! plugin versions and pipeline trees it began on.
//!
//! A tenant's trees are kept twice: as the tenant wrote them (`name` for a plugin's latest
//! version, `name@sha256:<hex>` pinned) and resolved for running, with every plugin
//! reference pinned to a version in this snapshot and every reference to one of the
//! tenant's own pipelines marked with [`OWN`]. Shared pipelines and plugins never carry
//! either form (the configuration refuses `@` in their names), so a shared pipeline run
//! from a tenant's tree cannot reach the tenant's names, and names never collide.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::def::PipelineDef;
use super::engine::{Engine, PluginEntry};
use super::spec::settings;
use super::strategy::{Node, PluginUse};
use crate::tenancy::Policy;

/// Marks a reference to one of the tenant's own pipelines in a resolved tree.
pub const OWN: char = '@';

/// One stored version of a tenant's plugin, as listed by `GET /v1/plugins`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginMeta {
    /// `sha256:<hex>` of the component's bytes: the version's immutable name.
    pub version: String,
    /// The world it implements: `verifier`, `router` or `decomposer`.
    pub world: String,
    /// The contract version it was built against.
    pub contract_version: String,
    /// Its own name, version and description (from its `metadata` export).
    pub metadata: PluginOwnInfo,
    pub size_bytes: u64,
    /// Compile (or cache load) and instantiation-check time at upload.
    pub compile_ms: f64,
    /// Unix seconds.
    pub created_at: i64,
    pub grants: Vec<String>,
    pub limits: PluginLimits,
    /// Warm instances are reused between this tenant's calls (never another's).
    #[serde(default)]
    pub warm: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginOwnInfo {
    pub name: String,
    pub version: String,
    pub description: String,
}

/// The per-call limits a tenant chose for a version, within its policy's ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginLimits {
    pub deadline_ms: u64,
    pub memory_mb: u64,
    pub fuel: u64,
}

impl PluginLimits {
    /// The runtime's limits with these three set.
    pub fn runtime(&self) -> crate::runtime::Limits {
        crate::runtime::Limits {
            deadline: std::time::Duration::from_millis(self.deadline_ms),
            memory_bytes: usize::try_from(self.memory_mb << 20).unwrap_or(usize::MAX),
            fuel: self.fuel,
            ..crate::runtime::Limits::default()
        }
    }
}

/// A loaded version.
pub struct PluginVersion {
    pub name: String,
    pub meta: PluginMeta,
    pub entry: PluginEntry,
}

impl PluginVersion {
    /// The reference that pins this version: `name@sha256:<hex>`.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.name, self.meta.version)
    }
}

/// A tenant's pipeline as stored: its definition as the tenant sent it.
#[derive(Debug, Clone)]
pub struct StoredPipeline {
    pub def: PipelineDef,
    /// The JSON the tenant sent (what `GET` returns).
    pub source: serde_json::Value,
    pub updated_at: i64,
}

#[derive(Default)]
pub struct TenantCatalog {
    /// Versions by plugin name, oldest first: the last is what `name` means.
    pub plugins: BTreeMap<String, Vec<Arc<PluginVersion>>>,
    pub pipelines: BTreeMap<String, StoredPipeline>,
    /// The pipelines ready to run (see the module's comment).
    resolved: BTreeMap<String, PipelineDef>,
    /// Versions by pinned reference.
    pinned: HashMap<String, Arc<PluginVersion>>,
}

/// A reference to a plugin is `name` or `name@sha256:<hex>`.
fn split_reference(reference: &str) -> (&str, Option<&str>) {
    match reference.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (reference, None),
    }
}

impl TenantCatalog {
    /// A snapshot of these plugins and pipelines, resolved for running.
    pub fn new(
        plugins: BTreeMap<String, Vec<Arc<PluginVersion>>>,
        pipelines: BTreeMap<String, StoredPipeline>,
    ) -> TenantCatalog {
        let mut c = TenantCatalog {
            plugins,
            pipelines,
            ..TenantCatalog::default()
        };
        c.pinned = c
            .plugins
            .values()
            .flatten()
            .map(|v| (v.pinned(), v.clone()))
            .collect();
        c.resolved = c
            .pipelines
            .iter()
            .map(|(name, p)| (name.clone(), c.resolve(&p.def)))
            .collect();
        c
    }

    /// The version a reference names, if there is one.
    pub fn find(&self, reference: &str) -> Option<&Arc<PluginVersion>> {
        let (name, version) = split_reference(reference);
        let versions = self.plugins.get(name)?;
        match version {
            None => versions.last(),
            Some(v) => versions.iter().find(|p| p.meta.version == v),
        }
    }

    /// A version by its pinned reference (what resolved trees name).
    pub(crate) fn pinned(&self, reference: &str) -> Option<&PluginEntry> {
        self.pinned.get(reference).map(|v| &v.entry)
    }

    /// A pipeline ready to run, by its name.
    pub(crate) fn resolved(&self, name: &str) -> Option<&PipelineDef> {
        self.resolved.get(name)
    }

    /// The pipelines that use plugin `name` (any version).
    pub fn users_of_plugin(&self, name: &str) -> Vec<String> {
        self.pipelines
            .iter()
            .filter(|(_, stored)| {
                let uses = stored.def.node.inventory().plugins;
                uses.iter().any(|u| split_reference(u.name).0 == name)
            })
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Which of the tenant's pipelines runs pipeline `name`, if one does.
    pub fn users_of_pipeline(&self, name: &str) -> Option<&str> {
        self.pipelines.iter().find_map(|(p, stored)| {
            (p != name && stored.def.node.inventory().pipelines.contains(&name))
                .then_some(p.as_str())
        })
    }

    /// Bytes and versions stored.
    pub fn usage(&self) -> (u64, u32) {
        let versions = self.plugins.values().flatten();
        let bytes = versions.clone().map(|v| v.meta.size_bytes).sum();
        (bytes, versions.count() as u32)
    }

    /// The tree with plugin references pinned and own-pipeline references marked.
    fn resolve(&self, def: &PipelineDef) -> PipelineDef {
        let mut tree = match serde_json::to_value(&def.node) {
            Ok(v) => v,
            Err(_) => return def.clone(),
        };
        rename(&mut tree, &|kind, name| match kind {
            Ref::Plugin => self.find(name).map(|v| v.pinned()),
            Ref::Pipeline => self
                .pipelines
                .contains_key(name)
                .then(|| format!("{OWN}{name}")),
        });
        match serde_json::from_value::<Node>(tree) {
            Ok(node) => PipelineDef {
                node,
                ..def.clone()
            },
            Err(_) => def.clone(),
        }
    }
}

#[derive(Clone, Copy)]
enum Ref {
    Plugin,
    Pipeline,
}

/// Rewrites the plugin and pipeline names a serialized tree holds: the `plugin` of every
/// plugin reference and the `name` of every `pipeline` node. Plugin settings (`config`)
/// are never entered, so a setting called `plugin` is left alone.
fn rename(v: &mut serde_json::Value, f: &dyn Fn(Ref, &str) -> Option<String>) {
    match v {
        serde_json::Value::Object(map) => {
            let is_pipeline = map.get("type").and_then(|t| t.as_str()) == Some("pipeline");
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("config", _) => {}
                    ("plugin", serde_json::Value::String(name)) => {
                        if let Some(new) = f(Ref::Plugin, name) {
                            *name = new;
                        }
                    }
                    ("name", serde_json::Value::String(name)) if is_pipeline => {
                        if let Some(new) = f(Ref::Pipeline, name) {
                            *name = new;
                        }
                    }
                    (_, child) => rename(child, f),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| rename(i, f)),
        _ => {}
    }
}

/// Plugin, pipeline and model names a tenant chooses: short and plain, so they are safe
/// in URLs and logs and cannot take the forms references use (`@`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Parses a tenant's pipeline as sent (JSON, the TOML table's shape). `tenants` is not
/// the tenant's to set: its pipelines serve itself alone.
pub fn parse_pipeline(tenant: &str, source: &serde_json::Value) -> Result<PipelineDef, String> {
    let map = source
        .as_object()
        .ok_or("a pipeline is a JSON object with a `type`")?;
    if map.contains_key("tenants") {
        return Err("`tenants` cannot be set on a tenant's own pipeline".into());
    }
    let mut def: PipelineDef = serde_json::from_value(source.clone()).map_err(|e| e.to_string())?;
    def.tenants = vec![tenant.to_string()];
    Ok(def)
}

/// What a tenant's pipeline may name: the models and shared pipelines its policy
/// allows, its own pipelines (without a cycle), and its own plugins. Checked when it is
/// stored, and on each request for the names (a narrowed policy holds at once). What
/// the tenant may not call reads as unknown, so names it was not given do not leak.
pub fn check_references(
    engine: &Engine,
    catalog: &TenantCatalog,
    tenant: &str,
    policy: &Policy,
    name: &str,
    def: &PipelineDef,
) -> Result<(), String> {
    let uses = def.node.inventory();
    if let Some(m) = uses.problem {
        return Err(m);
    }
    let model_ok = |m: &str| engine.models.contains_key(m) && policy.admits_model(m);
    if let Some(m) = uses
        .models
        .iter()
        .copied()
        .chain(def.judge_models.iter().map(String::as_str))
        .find(|m| !model_ok(m))
    {
        return Err(format!("unknown model `{m}`"));
    }
    for r in &uses.pipelines {
        let own = catalog.pipelines.contains_key(*r) || *r == name;
        if !own && !engine.may_call(tenant, policy, r) {
            return Err(format!("unknown pipeline `{r}`"));
        }
    }
    if let Some(u) = uses.plugins.iter().find(|u| catalog.find(u.name).is_none()) {
        return Err(format!("unknown plugin `{}`", u.name));
    }
    // A cycle through the tenant's own pipelines would only fail at its first request.
    let mut pending: Vec<(String, Vec<String>)> = vec![(name.to_string(), vec![])];
    while let Some((at, path)) = pending.pop() {
        let tree = if at == name {
            Some(def)
        } else {
            catalog.pipelines.get(&at).map(|p| &p.def)
        };
        let Some(tree) = tree else { continue };
        for next in tree.node.inventory().pipelines {
            if next == name {
                return Err(format!("pipeline `{name}` runs itself (through {})", {
                    let mut p = path.clone();
                    p.push(at.clone());
                    p.join(" -> ")
                }));
            }
            if catalog.pipelines.contains_key(next) && !path.iter().any(|p| p == next) {
                let mut p = path.clone();
                p.push(at.clone());
                pending.push((next.to_string(), p));
            }
        }
    }
    Ok(())
}

/// Every plugin a tree uses must be of the world the node uses it as, and accept the
/// settings the node gives it (merged over its own): checked by the plugin itself, as
/// at start-up.
pub async fn check_plugins<'a>(
    pipeline: &str,
    uses: &[PluginUse<'a>],
    lookup: impl Fn(&str) -> Option<&'a PluginEntry>,
) -> Result<(), String> {
    for u in uses {
        let entry = lookup(u.name).ok_or_else(|| format!("unknown plugin `{}`", u.name))?;
        if entry.plugin.kind() != u.kind {
            return Err(format!(
                "pipeline `{pipeline}` uses plugin `{}` as a {}, but it is a {}",
                u.name,
                u.kind,
                entry.plugin.kind()
            ));
        }
        let mut c = entry.config.clone();
        c.extend(settings(u.config));
        entry.plugin.check_config(&c).await.map_err(|e| {
            format!(
                "pipeline `{pipeline}`: plugin `{}` refused its settings: {e}",
                u.name
            )
        })?;
    }
    Ok(())
}

/// Every tenant's catalog, swapped whole on each change.
#[derive(Default)]
pub struct Catalogs {
    slots: RwLock<HashMap<String, Arc<CatalogSlot>>>,
}

pub struct CatalogSlot {
    current: arc_swap::ArcSwap<TenantCatalog>,
    /// Counts the snapshots stored, so a re-read of the store that began before the
    /// last change here can tell it is older than what it would replace.
    generation: std::sync::atomic::AtomicU64,
    /// One change at a time per tenant: each builds on the one before.
    pub writing: tokio::sync::Mutex<()>,
}

impl CatalogSlot {
    pub fn load(&self) -> Arc<TenantCatalog> {
        self.current.load_full()
    }

    pub fn store(&self, catalog: TenantCatalog) {
        self.current.store(Arc::new(catalog));
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Catalogs {
    /// The tenant's current snapshot (`None`: it has stored nothing).
    pub fn get(&self, tenant: &str) -> Option<Arc<TenantCatalog>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.get(tenant).map(|s| s.load())
    }

    /// The tenant's slot, made empty if it has none.
    pub fn slot(&self, tenant: &str) -> Arc<CatalogSlot> {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(tenant.to_string())
            .or_insert_with(|| {
                Arc::new(CatalogSlot {
                    current: arc_swap::ArcSwap::from_pointee(TenantCatalog::default()),
                    generation: Default::default(),
                    writing: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    /// The tenants that have a catalog here, with its generation.
    pub fn generations(&self) -> std::collections::HashMap<String, u64> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .map(|(t, s)| (t.clone(), s.generation()))
            .collect()
    }

    /// Forgets a deleted tenant's catalog (requests in flight keep their snapshot).
    pub fn remove(&self, tenant: &str) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots.remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renaming_leaves_settings_alone() {
        let mut tree = serde_json::json!({
            "type": "cascade",
            "steps": [
                {"type": "single", "model": "m", "verify": [{"plugin": "check", "config": {"plugin": "check"}}]},
                {"type": "pipeline", "name": "other"},
                {"type": "route", "router": {"plugin": "r"}, "branches": {"x": {"type": "pipeline", "name": "shared"}}}
            ]
        });
        rename(&mut tree, &|kind, name| match (kind, name) {
            (Ref::Plugin, n) => Some(format!("{n}@v")),
            (Ref::Pipeline, "other") => Some("@other".into()),
            _ => None,
        });
        assert_eq!(tree["steps"][0]["verify"][0]["plugin"], "check@v");
        assert_eq!(tree["steps"][0]["verify"][0]["config"]["plugin"], "check");
        assert_eq!(tree["steps"][1]["name"], "@other");
        assert_eq!(tree["steps"][2]["router"]["plugin"], "r@v");
        assert_eq!(tree["steps"][2]["branches"]["x"]["name"], "shared");
    }

    #[test]
    fn names_and_pipelines_parse() {
        assert!(valid_name("checker-2.py") && !valid_name("a@b") && !valid_name("-x"));
        assert!(!valid_name("") && !valid_name(&"x".repeat(65)));
        let def = parse_pipeline(
            "acme",
            &serde_json::json!({"type": "single", "model": "m", "verify": [{"plugin": "c"}]}),
        )
        .unwrap();
        assert_eq!(def.tenants, ["acme"]);
        assert!(parse_pipeline(
            "acme",
            &serde_json::json!({"type": "single", "model": "m", "tenants": ["*"]})
        )
        .is_err());
        assert!(
            parse_pipeline("acme", &serde_json::json!({"type": "single", "modle": "m"})).is_err()
        );
        assert!(parse_pipeline("acme", &serde_json::json!([1])).is_err());
    }
}
