//! Tenants' own plugins (bytes and metadata, content-addressed) and pipelines in the
//! store. Each change is one transaction, committed before the call returns: a version
//! is in the store whole or not at all, so a crash during an upload leaves the state
//! before it.

use rusqlite::params;

use super::{StoreError, TraceStore};
use crate::pipeline::catalog::PluginMeta;

/// Schema version 3.
pub(super) const MIGRATION: &str = "
CREATE TABLE tenant_plugins (
    tenant TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, created_at INTEGER NOT NULL,
    meta TEXT NOT NULL, bytes BLOB NOT NULL,
    PRIMARY KEY (tenant, name, version)
);
CREATE TABLE tenant_pipelines (
    tenant TEXT NOT NULL, name TEXT NOT NULL, updated_at INTEGER NOT NULL, definition TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
";

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
    /// Every tenant's plugin versions, oldest first.
    pub async fn tenant_plugins(&self) -> Result<Vec<StoredPlugin>, StoreError> {
        self.blocking_read(|conn| {
            let mut q = conn.prepare(
                "SELECT tenant, name, meta, bytes FROM tenant_plugins ORDER BY created_at, rowid",
            )?;
            let rows = q.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })?;
            rows.map(|row| {
                let (tenant, name, meta, bytes) = row?;
                let meta = serde_json::from_str(&meta).map_err(|e| {
                    StoreError::Corrupt(format!("plugin `{name}` of `{tenant}`: {e}"))
                })?;
                Ok(StoredPlugin {
                    tenant,
                    name,
                    meta,
                    bytes,
                })
            })
            .collect()
        })
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
        let (tenant, name) = (tenant.to_string(), name.to_string());
        let (version, created_at) = (meta.version.clone(), meta.created_at);
        let meta = serde_json::to_string(meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.blocking_write(move |tx| {
            Ok(tx.execute(
                "INSERT OR IGNORE INTO tenant_plugins (tenant, name, version, created_at, meta, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant, name, version, created_at, meta, bytes.as_slice()],
            )? == 1)
        })
        .await
    }

    /// Deletes every version of a plugin; the number deleted.
    pub async fn delete_plugin(&self, tenant: &str, name: &str) -> Result<usize, StoreError> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking_write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM tenant_plugins WHERE tenant = ?1 AND name = ?2",
                params![tenant, name],
            )?)
        })
        .await
    }

    pub async fn tenant_pipelines(&self) -> Result<Vec<StoredPipelineRow>, StoreError> {
        self.blocking_read(|conn| {
            let mut q =
                conn.prepare("SELECT tenant, name, updated_at, definition FROM tenant_pipelines")?;
            let rows = q.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            rows.map(|row| {
                let (tenant, name, updated_at, definition) = row?;
                let definition = serde_json::from_str(&definition).map_err(|e| {
                    StoreError::Corrupt(format!("pipeline `{name}` of `{tenant}`: {e}"))
                })?;
                Ok(StoredPipelineRow {
                    tenant,
                    name,
                    updated_at,
                    definition,
                })
            })
            .collect()
        })
        .await
    }

    /// Creates or replaces a tenant's pipeline.
    pub async fn put_pipeline(
        &self,
        tenant: &str,
        name: &str,
        updated_at: i64,
        definition: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        let definition = definition.to_string();
        self.blocking_write(move |tx| {
            tx.execute(
                "INSERT INTO tenant_pipelines (tenant, name, updated_at, definition) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, name) DO UPDATE SET updated_at = excluded.updated_at, definition = excluded.definition",
                params![tenant, name, updated_at, definition],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes a tenant's pipeline; false if there was none.
    pub async fn delete_pipeline(&self, tenant: &str, name: &str) -> Result<bool, StoreError> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking_write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM tenant_pipelines WHERE tenant = ?1 AND name = ?2",
                params![tenant, name],
            )? == 1)
        })
        .await
    }
}
