//! Tenants, keys and usage in the store. Every change here is its own transaction,
//! committed before the call returns (the admin API acknowledges only what is on disk);
//! usage rows are written by the trace writer, in the same transaction as their trace.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::{StoreError, TraceStore};
use crate::pipeline::{AttemptKind, AttemptOutcome, RequestOutcome, RequestTrace};
use crate::tenancy::{KeyRecord, Policy, Role, TenantRecord};

/// Schema version 2: tenants with their policies, keys that can expire and be revoked,
/// and usage by tenant, day, pipeline and model (backfilled from the traces kept).
pub(super) const MIGRATION: &str = "
CREATE TABLE tenants (
    name TEXT PRIMARY KEY, created_at INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
    policy TEXT NOT NULL
);
ALTER TABLE api_keys ADD COLUMN id TEXT;
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'tenant';
ALTER TABLE api_keys ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
UPDATE api_keys SET id = 'key_' || substr(key_hash, 8, 16), created_at = created_at / 1000;
CREATE UNIQUE INDEX api_keys_id ON api_keys(id);
-- Tenants that had keys before tenants were stored keep what they could do: everything.
INSERT OR IGNORE INTO tenants (name, created_at, disabled, policy)
    SELECT tenant, min(created_at), 0, '{\"models\":[\"*\"]}' FROM api_keys GROUP BY tenant;
CREATE TABLE usage (
    tenant TEXT NOT NULL, day TEXT NOT NULL, pipeline TEXT NOT NULL, model TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0, calls INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, day, pipeline, model)
);
INSERT INTO usage (tenant, day, pipeline, model, calls, input_tokens, output_tokens, cost_usd, errors)
    SELECT r.tenant, date(r.created_at / 1000, 'unixepoch'), r.pipeline, a.model, count(*),
           sum(json_extract(a.record, '$.input_tokens')), sum(json_extract(a.record, '$.output_tokens')),
           sum(a.cost_usd), sum(a.outcome = 'failed')
    FROM requests r JOIN attempts a ON a.request_id = r.id
    WHERE json_extract(a.record, '$.kind') = 'model'
    GROUP BY 1, 2, 3, 4;
INSERT INTO usage (tenant, day, pipeline, model, requests, errors)
    SELECT tenant, date(created_at / 1000, 'unixepoch'), pipeline, coalesce(model, ''), count(*),
           sum(outcome = 'failed')
    FROM requests GROUP BY 1, 2, 3, 4
    ON CONFLICT (tenant, day, pipeline, model)
    DO UPDATE SET requests = excluded.requests, errors = errors + excluded.errors;
";

/// Usage of one batch of traces, summed per row before it is written: under load most
/// requests of a batch share their tenant, day, pipeline and model, so a batch costs a
/// few upserts instead of two or more per request (which showed as +0.1 ms p90 at c=1).
#[derive(Default)]
pub(super) struct UsageBatch {
    rows: std::collections::HashMap<(String, String, String, String), [f64; 6]>,
}

fn utc_day(created_at_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(created_at_ms.div_euclid(1000))
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| "1970-01-01".into())
}

impl UsageBatch {
    /// Adds a finished request: each model call to its model's row, the request itself
    /// to the row of the model that answered (`""` when none did).
    pub(super) fn add(&mut self, t: &RequestTrace) {
        let day = utc_day(t.created_at);
        let mut add = |model: &str, delta: [f64; 6]| {
            let row = self
                .rows
                .entry((
                    t.tenant.clone(),
                    day.clone(),
                    t.pipeline.clone(),
                    model.to_string(),
                ))
                .or_default();
            for (r, d) in row.iter_mut().zip(delta) {
                *r += d;
            }
        };
        for a in t.attempts.iter().filter(|a| a.kind == AttemptKind::Model) {
            let failed = f64::from(u8::from(a.outcome == AttemptOutcome::Failed));
            add(
                &a.model,
                [
                    0.0,
                    1.0,
                    f64::from(a.input_tokens),
                    f64::from(a.output_tokens),
                    a.cost_usd,
                    failed,
                ],
            );
        }
        let failed = f64::from(u8::from(t.outcome == RequestOutcome::Failed));
        add(
            t.model.as_deref().unwrap_or(""),
            [1.0, 0.0, 0.0, 0.0, 0.0, failed],
        );
    }

    /// Upserts the summed rows, in the batch's transaction.
    pub(super) fn write(self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO usage (tenant, day, pipeline, model, requests, calls, input_tokens, output_tokens, cost_usd, errors)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (tenant, day, pipeline, model) DO UPDATE SET
               requests = requests + excluded.requests, calls = calls + excluded.calls,
               input_tokens = input_tokens + excluded.input_tokens,
               output_tokens = output_tokens + excluded.output_tokens,
               cost_usd = cost_usd + excluded.cost_usd, errors = errors + excluded.errors",
        )?;
        for ((tenant, day, pipeline, model), d) in self.rows {
            let n = |i: usize| d[i].round() as i64;
            upsert.execute(params![
                tenant,
                day,
                pipeline,
                model,
                n(0),
                n(1),
                n(2),
                n(3),
                d[4],
                n(5)
            ])?;
        }
        Ok(())
    }
}

/// One row of usage.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageRow {
    pub tenant: String,
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub pipeline: String,
    /// `""`: requests that no model answered.
    pub model: String,
    pub requests: i64,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub errors: i64,
}

fn role_of(s: &str) -> Role {
    match s {
        "operator" => Role::Operator,
        _ => Role::Tenant,
    }
}

impl TraceStore {
    /// Runs `f` in a transaction of its own on the store's second connection, committed
    /// before it returns.
    pub(super) async fn blocking_write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
    }

    pub async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        self.blocking_read(|conn| {
            let mut q = conn.prepare("SELECT name, created_at, disabled, policy FROM tenants")?;
            let rows = q.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            rows.map(|row| {
                let (name, created_at, disabled, policy) = row?;
                let policy: Policy = serde_json::from_str(&policy)
                    .map_err(|e| StoreError::Corrupt(format!("tenant `{name}`'s policy: {e}")))?;
                Ok(TenantRecord {
                    name,
                    created_at,
                    disabled,
                    policy,
                })
            })
            .collect()
        })
        .await
    }

    /// Stores a new tenant; false (and nothing changed) if the name is taken.
    pub async fn create_tenant(&self, t: TenantRecord) -> Result<bool, StoreError> {
        self.blocking_write(move |tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO tenants (name, created_at, disabled, policy) VALUES (?1, ?2, ?3, ?4)",
                params![t.name, t.created_at, t.disabled, policy_json(&t.policy)],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// Replaces a tenant's policy and disabled flag; false if there is no such tenant.
    pub async fn update_tenant(&self, t: TenantRecord) -> Result<bool, StoreError> {
        self.blocking_write(move |tx| {
            let n = tx.execute(
                "UPDATE tenants SET disabled = ?2, policy = ?3 WHERE name = ?1",
                params![t.name, t.disabled, policy_json(&t.policy)],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// Deletes a tenant, its keys, plugins and pipelines (its traces and usage stay, for the operator's
    /// records, until retention removes the traces); false if there was none.
    pub async fn delete_tenant(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.blocking_write(move |tx| {
            tx.execute(
                "DELETE FROM api_keys WHERE tenant = ?1 AND role = 'tenant'",
                params![name],
            )?;
            tx.execute("DELETE FROM tenant_plugins WHERE tenant = ?1", params![name])?;
            tx.execute("DELETE FROM tenant_pipelines WHERE tenant = ?1", params![name])?;
            Ok(tx.execute("DELETE FROM tenants WHERE name = ?1", params![name])? == 1)
        })
        .await
    }

    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.blocking_read(|conn| {
            let mut q = conn.prepare(
                "SELECT id, key_hash, tenant, role, label, prefix, created_at, expires_at, revoked_at, last_used_at FROM api_keys",
            )?;
            let rows = q.query_map([], |r| {
                let role = role_of(&r.get::<_, String>(3)?);
                Ok(KeyRecord {
                    id: r.get(0)?,
                    hash: r.get(1)?,
                    tenant: match role {
                        Role::Tenant => Some(r.get(2)?),
                        Role::Operator => None,
                    },
                    role,
                    name: r.get(4)?,
                    prefix: r.get(5)?,
                    created_at: r.get(6)?,
                    expires_at: r.get(7)?,
                    revoked_at: r.get(8)?,
                    last_used_at: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Stores a key (its hash), committed before it returns. A tenant key's tenant must
    /// exist; a key already stored is left as it is.
    pub async fn add_key(&self, k: KeyRecord) -> Result<(), StoreError> {
        self.blocking_write(move |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO api_keys (key_hash, tenant, label, created_at, id, role, prefix, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    k.hash,
                    k.tenant.as_deref().unwrap_or(""),
                    k.name,
                    k.created_at,
                    k.id,
                    k.role.as_str(),
                    k.prefix,
                    k.expires_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Marks a key revoked; false if there is no such key.
    pub async fn revoke_key(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.blocking_write(move |tx| {
            Ok(tx.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
                params![id, at],
            )? == 1)
        })
        .await
    }

    /// Notes a key's last use. Best effort, off the request path: dropped when the
    /// write queue is full (the exact time is kept in memory).
    pub fn key_used(&self, id: String, at: i64) {
        let _ = self.tx.try_send(super::Op::KeyUsed { id, at });
    }

    /// Usage rows of `tenant` (all tenants with `None`) from `from` to `to` (UTC days,
    /// inclusive), after everything queued is committed.
    pub async fn usage(
        &self,
        tenant: Option<&str>,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageRow>, StoreError> {
        self.flush().await?;
        let (tenant, from, to) = (tenant.map(String::from), from.to_string(), to.to_string());
        self.blocking_read(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT tenant, day, pipeline, model, requests, calls, input_tokens, output_tokens, cost_usd, errors
                 FROM usage WHERE (?1 IS NULL OR tenant = ?1) AND day >= ?2 AND day <= ?3
                 ORDER BY tenant, day, pipeline, model",
            )?;
            let rows = q.query_map(params![tenant, from, to], |r| {
                Ok(UsageRow {
                    tenant: r.get(0)?,
                    day: r.get(1)?,
                    pipeline: r.get(2)?,
                    model: r.get(3)?,
                    requests: r.get(4)?,
                    calls: r.get(5)?,
                    input_tokens: r.get(6)?,
                    output_tokens: r.get(7)?,
                    cost_usd: r.get(8)?,
                    errors: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// What `tenant` spent on `today` and in the month up to it (`YYYY-MM-DD`), from
    /// the usage rows: where its spend counters start after a restart.
    pub async fn spent(&self, tenant: &str, today: &str) -> Result<(f64, f64), StoreError> {
        let (tenant, today) = (tenant.to_string(), today.to_string());
        self.blocking_read(move |conn| {
            let sum = |from: &str| -> Result<f64, StoreError> {
                Ok(conn
                    .query_row(
                        "SELECT sum(cost_usd) FROM usage WHERE tenant = ?1 AND day >= ?2 AND day <= ?3",
                        params![tenant, from, today],
                        |r| r.get::<_, Option<f64>>(0),
                    )
                    .optional()?
                    .flatten()
                    .unwrap_or(0.0))
            };
            let month_start = format!("{}-01", &today[..today.len().min(7)]);
            Ok((sum(&today)?, sum(&month_start)?))
        })
        .await
    }
}

fn policy_json(p: &Policy) -> String {
    serde_json::to_string(p).unwrap_or_else(|_| "{}".into())
}
