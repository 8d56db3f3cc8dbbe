//! Tenants' own plugins (bytes and metadata, content-addressed) and pipelines in the
//! store. Each change is one transaction, committed before the call returns: a version
//! is in the store whole or not at all, so a crash during an upload leaves the state
//! before it.

use super::database::{PipelineRow, PluginRow};
use super::{StoreError, TraceStore};
use crate::pipeline::catalog::PluginMeta;

/// A stored plugin version with its bytes (read at start to load it).
pub struct StoredPlugin {
    pub tenant: String,
    pub name: String,
    pub meta: PluginMeta,
    pub bytes: Vec<u8>,
}

/// A stored pipeline, as the tenant sent it.
pub struct StoredPipelineRow {
    pub tenant: String,
    pub name: String,
    pub updated_at: i64,
    pub definition: serde_json::Value,
}

impl TraceStore {
    /// Every tenant's plugin versions, oldest first; `bytes` left empty unless
    /// `with_bytes`.
    pub async fn tenant_plugins(&self, with_bytes: bool) -> Result<Vec<StoredPlugin>, StoreError> {
        let rows = self
            .blocking(move |db| db.tenant_plugins(with_bytes))
            .await?;
        rows.into_iter()
            .map(|row| {
                let meta = serde_json::from_str(&row.meta).map_err(|e| {
                    StoreError::Corrupt(format!("plugin `{}` of `{}`: {e}", row.name, row.tenant))
                })?;
                Ok(StoredPlugin {
                    tenant: row.tenant,
                    name: row.name,
                    meta,
                    bytes: row.bytes,
                })
            })
            .collect()
    }

    /// One version's bytes, if it is stored.
    pub async fn plugin_bytes(
        &self,
        tenant: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (tenant, name, version) = (tenant.to_string(), name.to_string(), version.to_string());
        self.blocking(move |db| db.plugin_bytes(&tenant, &name, &version))
            .await
    }

    /// Stores a plugin version; false (nothing changed) if it is stored already.
    pub async fn add_plugin_version(
        &self,
        tenant: &str,
        name: &str,
        meta: &PluginMeta,
        bytes: std::sync::Arc<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let (version, created_at) = (meta.version.clone(), meta.created_at);
        let row = PluginRow {
            tenant: tenant.to_string(),
            name: name.to_string(),
            meta: serde_json::to_string(meta).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            // One copy, made off the async threads.
            bytes: Vec::new(),
        };
        self.blocking(move |db| {
            let row = PluginRow {
                bytes: bytes.to_vec(),
                ..row
            };
            db.add_plugin_version(&row, &version, created_at)
        })
        .await
    }

    /// Deletes every version of a plugin; the number deleted.
    pub async fn delete_plugin(&self, tenant: &str, name: &str) -> Result<usize, StoreError> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking(move |db| db.delete_plugin(&tenant, &name))
            .await
    }

    pub async fn tenant_pipelines(&self) -> Result<Vec<StoredPipelineRow>, StoreError> {
        let rows = self.blocking(|db| db.tenant_pipelines()).await?;
        rows.into_iter()
            .map(|row| {
                let definition = serde_json::from_str(&row.definition).map_err(|e| {
                    StoreError::Corrupt(format!("pipeline `{}` of `{}`: {e}", row.name, row.tenant))
                })?;
                Ok(StoredPipelineRow {
                    tenant: row.tenant,
                    name: row.name,
                    updated_at: row.updated_at,
                    definition,
                })
            })
            .collect()
    }

    /// Creates or replaces a tenant's pipeline.
    pub async fn put_pipeline(
        &self,
        tenant: &str,
        name: &str,
        updated_at: i64,
        definition: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let row = PipelineRow {
            tenant: tenant.to_string(),
            name: name.to_string(),
            updated_at,
            definition: definition.to_string(),
        };
        self.blocking(move |db| db.put_pipeline(&row)).await
    }

    /// Deletes a tenant's pipeline; false if there was none.
    pub async fn delete_pipeline(&self, tenant: &str, name: &str) -> Result<bool, StoreError> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking(move |db| db.delete_pipeline(&tenant, &name))
            .await
    }
}
