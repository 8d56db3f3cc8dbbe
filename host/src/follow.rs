//! Following the store: what other replicas commit (tenants, keys, plugins, pipelines)
//! is applied here too. With PostgreSQL, each change is announced as it commits
//! (LISTEN/NOTIFY), and everything is re-read every few seconds in case a notification
//! was lost; with SQLite there is one replica and nothing to follow. The same reading
//! builds the tenants' catalogs at start-up.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context;

use crate::pipeline::catalog::{parse_pipeline, PluginVersion, StoredPipeline};
use crate::pipeline::{PluginEntry, TenantCatalog};
use crate::runtime::{Grants, PluginOptions};
use crate::server::AppState;
use crate::tenancy::Source;

/// How often everything is re-read when no change was announced.
const FALLBACK: Duration = Duration::from_secs(5);

/// How often a replica tells the others it is live (and counts them).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Follows the store's announced changes for as long as the gateway lives, and keeps
/// each tenant's share of the rate and concurrency limits to the live replicas' count.
pub fn spawn(state: &Arc<AppState>) {
    let Some(mut changes) = state.store.changes() else {
        return;
    };
    let beat: Weak<AppState> = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(HEARTBEAT);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(state) = beat.upgrade() else { return };
            match state.store.heartbeat().await {
                Ok(live) => state.tenants.set_replicas(live),
                // The share stays as it was until the store answers again.
                Err(e) => tracing::warn!(error = %e, "heartbeat to the shared store failed"),
            }
        }
    });
    let state: Weak<AppState> = Arc::downgrade(state);
    tokio::spawn(async move {
        loop {
            let closed = matches!(
                tokio::time::timeout(FALLBACK, changes.recv()).await,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed))
            );
            // Several changes in a row are one re-read.
            while changes.try_recv().is_ok() {}
            let Some(state) = state.upgrade() else { return };
            if closed {
                return;
            }
            if let Err(e) = refresh(&state).await {
                tracing::warn!(error = %format!("{e:#}"), "re-reading the shared store failed; retrying");
            }
        }
    });
}

/// Applies the store's tenants, keys, plugins and pipelines to this replica.
pub async fn refresh(state: &AppState) -> anyhow::Result<()> {
    refresh_tenants(state).await?;
    refresh_catalogs(state).await
}

async fn refresh_tenants(state: &AppState) -> anyhow::Result<()> {
    let store = &state.store;
    let before = state.tenants.generation();
    let stored = store.tenants().await.context("reading tenants")?;
    let keys = store.keys().await.context("reading keys")?;
    let today = crate::tenancy::spend::today().to_string();
    let mut changed = Vec::new();
    for t in stored.iter() {
        match state.tenants.tenant(&t.name) {
            Some(cur) if cur.source == Source::Config || cur.record == *t => {}
            _ => changed.push((t.clone(), store.spent(&t.name, &today).await?)),
        }
    }
    if state.tenants.generation() != before {
        // Changed here while the rows were read: they may be older than what is
        // applied, and that change's own announcement brings the next re-read.
        return Ok(());
    }
    for (t, spent) in changed {
        state.tenants.put_tenant(t, Source::Store, spent);
    }
    let names: HashSet<&str> = stored.iter().map(|t| t.name.as_str()).collect();
    for cur in state.tenants.tenants() {
        if cur.source == Source::Store && !names.contains(cur.name()) {
            state.tenants.remove_tenant(cur.name());
            state.catalogs.remove(cur.name());
        }
    }
    for k in keys {
        let known = state.tenants.key(&k.id);
        let changed = known.is_none_or(|m| {
            m.revoked_at != k.revoked_at || m.expires_at != k.expires_at || m.name != k.name
        });
        let owner_known = k
            .tenant
            .as_deref()
            .is_none_or(|t| state.tenants.tenant(t).is_some());
        if changed && owner_known {
            state.tenants.put_key(k);
        }
    }
    Ok(())
}

/// Rebuilds the catalog of each tenant whose stored plugins or pipelines differ from
/// what this replica runs. Versions it has loaded are kept; new ones are read and loaded
/// (compiled, or from the artifact cache).
pub async fn refresh_catalogs(state: &AppState) -> anyhow::Result<()> {
    let store = &state.store;
    let before = state.catalogs.generations();
    let mut plugins: BTreeMap<String, Vec<crate::store::StoredPlugin>> = BTreeMap::new();
    for p in store
        .tenant_plugins(false)
        .await
        .context("reading plugins")?
    {
        plugins.entry(p.tenant.clone()).or_default().push(p);
    }
    let mut pipelines: BTreeMap<String, Vec<crate::store::StoredPipelineRow>> = BTreeMap::new();
    for p in store
        .tenant_pipelines()
        .await
        .context("reading pipelines")?
    {
        pipelines.entry(p.tenant.clone()).or_default().push(p);
    }
    let mut tenants: HashSet<String> = plugins.keys().chain(pipelines.keys()).cloned().collect();
    tenants.extend(before.keys().cloned());
    for tenant in tenants {
        if state.tenants.tenant(&tenant).is_none() {
            continue;
        }
        let versions = plugins.remove(&tenant).unwrap_or_default();
        let trees = pipelines.remove(&tenant).unwrap_or_default();
        let slot = state.catalogs.slot(&tenant);
        let _writing = slot.writing.lock().await;
        if slot.generation() != before.get(&tenant).copied().unwrap_or(0) {
            // Changed here since the rows were read: they are older than what runs, and
            // that change's own announcement brings the next re-read.
            continue;
        }
        let current = slot.load();
        let same_plugins = versions.len() == current.plugins.values().map(Vec::len).sum::<usize>()
            && versions.iter().all(|v| {
                current
                    .find(&format!("{}@{}", v.name, v.meta.version))
                    .is_some()
            });
        let same_pipelines = trees.len() == current.pipelines.len()
            && trees.iter().all(|p| {
                current
                    .pipelines
                    .get(&p.name)
                    .is_some_and(|c| c.updated_at == p.updated_at && c.source == p.definition)
            });
        if same_plugins && same_pipelines {
            continue;
        }
        let mut loaded: BTreeMap<String, Vec<Arc<PluginVersion>>> = BTreeMap::new();
        for v in versions {
            let pinned = format!("{}@{}", v.name, v.meta.version);
            let version = match current.find(&pinned) {
                Some(have) => have.clone(),
                None => match load(state, &tenant, v).await {
                    Ok(Some(version)) => version,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(%tenant, plugin = %pinned, error = %format!("{e:#}"), "a stored plugin version did not load; it is left out");
                        continue;
                    }
                },
            };
            loaded
                .entry(version.name.clone())
                .or_default()
                .push(version);
        }
        let mut defs = BTreeMap::new();
        for row in trees {
            match parse_pipeline(&tenant, &row.definition) {
                Ok(def) => {
                    defs.insert(
                        row.name,
                        StoredPipeline {
                            def,
                            source: row.definition,
                            updated_at: row.updated_at,
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(%tenant, pipeline = %row.name, error = %e, "a stored pipeline did not parse; it is left out")
                }
            }
        }
        slot.store(TenantCatalog::new(loaded, defs));
    }
    Ok(())
}

/// Loads a stored version (its bytes read now) with the grants and limits it was
/// uploaded with; `None` if it was deleted meanwhile.
async fn load(
    state: &AppState,
    tenant: &str,
    v: crate::store::StoredPlugin,
) -> anyhow::Result<Option<Arc<PluginVersion>>> {
    let Some(bytes) = state
        .store
        .plugin_bytes(tenant, &v.name, &v.meta.version)
        .await?
    else {
        return Ok(None);
    };
    let options = PluginOptions {
        grants: Grants::from_names(&v.meta.grants).map_err(anyhow::Error::msg)?,
        limits: v.meta.limits.runtime(),
        warm: v.meta.warm,
    };
    let plugin = state.runtime.load(bytes, options).await?;
    Ok(Some(Arc::new(PluginVersion {
        name: v.name,
        meta: v.meta,
        entry: PluginEntry {
            plugin,
            config: Default::default(),
        },
    })))
}
