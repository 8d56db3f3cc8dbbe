//! The embedded database: SQLite in WAL mode, one file readable by its owner only.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::database::{
    trace_list_query, Database, Param, PipelineRow, PluginCallRow, PluginRow, RecentAttempt,
    TenantRow, TraceFilter, TraceRow, TraceSummaryRow, WindowRow, WriteOp,
};
use super::{StoreError, UsageRow};
use crate::tenancy::{KeyRecord, Role};

/// Schema migrations, applied in order inside one transaction each: entry `i` brings the
/// store from `user_version` i to i + 1. Released entries never change; a new one is
/// appended. 2: tenants with their policies, keys that can expire and be revoked, and
/// usage by tenant, day, pipeline and model (backfilled from the traces kept). 3:
/// tenants' plugins and pipelines. 4: indexes for listing a tenant's traces by time,
/// pipeline, outcome, model and tag (`database::trace_list_query`), and each request's
/// budget. 5: which attempt's answer each request returned (`answer_attempt`, and with
/// `n` > 1 every choice's, `answer_attempts`).
pub(super) const MIGRATIONS: &[&str] = &[MIG1, MIG2, MIG3, MIG4, MIG5];

const MIG1: &str = "
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, pipeline TEXT NOT NULL, created_at INTEGER NOT NULL,
    latency_ms REAL NOT NULL, cost_usd REAL NOT NULL, outcome TEXT NOT NULL, model TEXT,
    score REAL, answer TEXT, error TEXT, tags TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_tenant ON requests(tenant, created_at);
CREATE TABLE IF NOT EXISTS attempts (
    request_id TEXT NOT NULL, seq INTEGER NOT NULL, record TEXT NOT NULL,
    model TEXT NOT NULL, outcome TEXT NOT NULL, latency_ms REAL NOT NULL, cost_usd REAL NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE INDEX IF NOT EXISTS attempts_model ON attempts(model);
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT NOT NULL, tenant TEXT NOT NULL, created_at INTEGER NOT NULL,
    correct INTEGER, score REAL, note TEXT
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback(request_id);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY, tenant TEXT NOT NULL, label TEXT NOT NULL, created_at INTEGER NOT NULL
);
";

const MIG2: &str = "
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

const MIG3: &str = "
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

const MIG4: &str = "
DROP INDEX requests_tenant;
CREATE INDEX requests_tenant_time ON requests(tenant, created_at, id);
CREATE INDEX requests_tenant_pipeline ON requests(tenant, pipeline, created_at, id);
CREATE INDEX requests_tenant_outcome ON requests(tenant, outcome, created_at, id);
CREATE INDEX requests_tenant_model ON requests(tenant, model, created_at, id);
CREATE TABLE request_tags (
    request_id TEXT NOT NULL, tenant TEXT NOT NULL, tag TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, tag)
);
CREATE INDEX request_tags_list ON request_tags(tenant, tag, created_at, request_id);
ALTER TABLE requests ADD COLUMN budget TEXT;
INSERT OR IGNORE INTO request_tags (request_id, tenant, tag, created_at)
    SELECT r.id, r.tenant, j.value, r.created_at FROM requests r, json_each(r.tags) j
    WHERE j.type = 'text';
";

const MIG5: &str = "
ALTER TABLE requests ADD COLUMN answer_attempt INTEGER;
ALTER TABLE requests ADD COLUMN answer_attempts TEXT;
";

/// A window of a tenant's requests, newest first: `?1` tenant, `?2` since, `?3`
/// until (Unix ms), `?4` at most. One range of `requests_tenant_time`, no sort.
pub(super) const WINDOW_REQUESTS: &str = "
SELECT pipeline, outcome, cost_usd, latency_ms FROM requests
WHERE tenant = ?1 AND created_at >= ?2 AND created_at < ?3
ORDER BY created_at DESC, id DESC LIMIT ?4";

/// How many requests a window holds, up to `?4`: the index alone.
pub(super) const WINDOW_COUNT: &str = "
SELECT count(*) FROM (SELECT 1 FROM requests
WHERE tenant = ?1 AND created_at >= ?2 AND created_at < ?3 LIMIT ?4)";

/// The plugin calls in the attempts of a window's newest requests: routers and
/// decomposers, and model calls' verdicts.
pub(super) const WINDOW_PLUGIN_CALLS: &str = "
WITH recent AS (
    SELECT id FROM requests WHERE tenant = ?1 AND created_at >= ?2 AND created_at < ?3
    ORDER BY created_at DESC, id DESC LIMIT ?4
), calls AS (
    SELECT json_extract(a.record, '$.kind') AS kind, a.model, a.latency_ms,
           json_extract(a.record, '$.error') AS error, json_extract(a.record, '$.verdicts') AS verdicts
    FROM recent JOIN attempts a ON a.request_id = recent.id
)
SELECT kind, model, latency_ms, error, verdicts FROM calls
WHERE kind <> 'model' OR verdicts IS NOT NULL";

pub(super) const WARM_QUERY: &str = "
WITH recent AS (SELECT rowid AS n, id, tenant, tags FROM requests ORDER BY rowid DESC LIMIT ?1)
SELECT a.record, recent.tags, recent.tenant FROM recent JOIN attempts a ON a.request_id = recent.id
ORDER BY recent.n DESC, a.seq DESC";

/// The tenants that have requests, read from the `(tenant, created_at)` index one
/// tenant at a time rather than by scanning it.
const TENANTS: &str = "
WITH RECURSIVE t(name) AS (
    SELECT min(tenant) FROM requests
    UNION ALL
    SELECT (SELECT min(tenant) FROM requests WHERE tenant > t.name) FROM t WHERE t.name IS NOT NULL
)
SELECT name FROM t WHERE name IS NOT NULL";

/// One chunk of a tenant's requests created before a time: `?1` tenant, `?2` cutoff
/// (Unix ms), `?3` chunk size; attempts and feedback first, then the requests.
macro_rules! expired {
    () => {
        "SELECT id FROM requests WHERE tenant = ?1 AND created_at < ?2 LIMIT ?3"
    };
}
const PRUNE: [&str; 4] = [
    concat!(
        "DELETE FROM attempts WHERE request_id IN (",
        expired!(),
        ")"
    ),
    concat!(
        "DELETE FROM request_tags WHERE request_id IN (",
        expired!(),
        ")"
    ),
    concat!(
        "DELETE FROM feedback WHERE request_id IN (",
        expired!(),
        ")"
    ),
    concat!("DELETE FROM requests WHERE id IN (", expired!(), ")"),
];

/// Opens a connection to the file at `path`, creating it private.
pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
    create_private(path).map_err(|source| StoreError::Create {
        path: path.into(),
        source,
    })?;
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.into(),
        source,
    })?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL + NORMAL: a committed batch survives a process crash; only an OS crash can
    // lose the last few commits.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Creates the database file readable by its owner only (SQLite gives its WAL and
/// shared-memory files the same mode): traces hold prompts and answers.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

pub(super) struct Sqlite {
    pub(super) conn: Connection,
    path: PathBuf,
}

impl Sqlite {
    pub(super) fn open(path: &Path) -> Result<Sqlite, StoreError> {
        Ok(Sqlite {
            conn: open(path)?,
            path: path.into(),
        })
    }

    /// Runs `f` in a transaction, committed before it returns.
    fn commit<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

fn role_of(s: &str) -> Role {
    match s {
        "operator" => Role::Operator,
        _ => Role::Tenant,
    }
}

impl Database for Sqlite {
    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        let found: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > known {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    fn write_batch(&mut self, ops: &[WriteOp<'_>], usage: &[UsageRow]) -> Result<(), StoreError> {
        self.commit(|tx| {
            for op in ops {
                match op {
                    WriteOp::Trace(t) => {
                        tx.prepare_cached(
                            "INSERT OR REPLACE INTO requests (id, tenant, pipeline, created_at, latency_ms, cost_usd, outcome, model, score, answer, error, tags, budget, answer_attempt, answer_attempts)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                        )?
                        .execute(params![
                            t.id,
                            t.tenant,
                            t.pipeline,
                            t.created_at,
                            t.latency_ms,
                            t.cost_usd,
                            super::outcome_text(t.outcome),
                            t.model,
                            t.score,
                            t.answer,
                            t.error,
                            serde_json::to_string(&t.tags).unwrap_or_default(),
                            t.budget.and_then(|b| serde_json::to_string(&b).ok()),
                            t.answer_attempt,
                            super::database::answer_attempts_text(t),
                        ])?;
                        // A replaced request's old tags go with it.
                        tx.prepare_cached("DELETE FROM request_tags WHERE request_id = ?1")?
                            .execute(params![t.id])?;
                        let mut tag = tx.prepare_cached(
                            "INSERT INTO request_tags (request_id, tenant, tag, created_at) VALUES (?1, ?2, ?3, ?4)",
                        )?;
                        for name in super::database::distinct_tags(&t.tags) {
                            tag.execute(params![t.id, t.tenant, name, t.created_at])?;
                        }
                        let mut insert = tx.prepare_cached(
                            "INSERT OR REPLACE INTO attempts (request_id, seq, record, model, outcome, latency_ms, cost_usd)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        )?;
                        for a in &t.attempts {
                            insert.execute(params![
                                t.id,
                                a.seq,
                                serde_json::to_string(a).unwrap_or_default(),
                                a.model,
                                a.outcome.as_str(),
                                a.latency_ms,
                                a.cost_usd
                            ])?;
                        }
                    }
                    WriteOp::Feedback {
                        tenant,
                        feedback,
                        at,
                    } => {
                        tx.prepare_cached(
                            "INSERT INTO feedback (request_id, tenant, created_at, correct, score, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )?
                        .execute(params![feedback.request_id, tenant, at, feedback.correct, feedback.score, feedback.note])?;
                    }
                    WriteOp::Judged(_) => {}
                    WriteOp::KeyUsed { id, at } => {
                        tx.prepare_cached("UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1")?
                            .execute(params![id, at])?;
                    }
                }
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO usage (tenant, day, pipeline, model, requests, calls, input_tokens, output_tokens, cost_usd, errors)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (tenant, day, pipeline, model) DO UPDATE SET
                   requests = requests + excluded.requests, calls = calls + excluded.calls,
                   input_tokens = input_tokens + excluded.input_tokens,
                   output_tokens = output_tokens + excluded.output_tokens,
                   cost_usd = cost_usd + excluded.cost_usd, errors = errors + excluded.errors",
            )?;
            for u in usage {
                upsert.execute(params![
                    u.tenant,
                    u.day,
                    u.pipeline,
                    u.model,
                    u.requests,
                    u.calls,
                    u.input_tokens,
                    u.output_tokens,
                    u.cost_usd,
                    u.errors
                ])?;
            }
            Ok(())
        })
    }

    /// Freed pages are reused by new traces; the file does not shrink.
    fn prune(
        &mut self,
        cutoff_ms: i64,
        chunk: usize,
        max_chunks: usize,
    ) -> Result<bool, StoreError> {
        let tenants = self
            .conn
            .prepare(TENANTS)?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut chunks = 0;
        for tenant in tenants {
            loop {
                if chunks == max_chunks {
                    return Ok(true);
                }
                chunks += 1;
                let gone = self.commit(|tx| {
                    let mut gone = 0;
                    for sql in PRUNE {
                        gone = tx.prepare_cached(sql)?.execute(params![
                            tenant,
                            cutoff_ms,
                            chunk as i64
                        ])?;
                    }
                    Ok(gone)
                })?;
                // `gone` counts the requests, deleted last.
                if gone < chunk {
                    break;
                }
            }
        }
        Ok(false)
    }

    /// Requests are read newest first along the rowid (insertion order), so start-up
    /// reads at most `limit` of them however large the store has grown; ordering by
    /// `created_at` made SQLite scan and sort the whole table (5 s of start-up at a
    /// million requests).
    fn recent_attempts(&mut self, limit: usize) -> Result<Vec<RecentAttempt>, StoreError> {
        let mut q = self.conn.prepare(WARM_QUERY)?;
        let rows = q.query_map(params![limit as i64], |row| {
            Ok(RecentAttempt {
                record: row.get(0)?,
                tags: row.get(1)?,
                tenant: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn trace(&mut self, tenant: &str, id: &str) -> Result<Option<TraceRow>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT pipeline, created_at, latency_ms, cost_usd, outcome, model, score, answer, error, tags, budget,
                        answer_attempt, answer_attempts
                 FROM requests WHERE id = ?1 AND tenant = ?2",
                params![id, tenant],
                |r| {
                    Ok(TraceRow {
                        pipeline: r.get(0)?,
                        created_at: r.get(1)?,
                        latency_ms: r.get(2)?,
                        cost_usd: r.get(3)?,
                        outcome: r.get(4)?,
                        model: r.get(5)?,
                        score: r.get(6)?,
                        answer: r.get(7)?,
                        error: r.get(8)?,
                        tags: r.get(9)?,
                        budget: r.get(10)?,
                        answer_attempt: r.get(11)?,
                        answer_attempts: r.get(12)?,
                        attempts: Vec::new(),
                    })
                },
            )
            .optional()?;
        let Some(mut row) = row else {
            return Ok(None);
        };
        let mut q = self
            .conn
            .prepare_cached("SELECT record FROM attempts WHERE request_id = ?1 ORDER BY seq")?;
        row.attempts = q
            .query_map(params![id], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(row))
    }

    fn traces(
        &mut self,
        tenant: &str,
        filter: &TraceFilter,
    ) -> Result<Vec<TraceSummaryRow>, StoreError> {
        let (sql, params) = trace_list_query(tenant, filter, |n| format!("?{n}"));
        let values = params.into_iter().map(|p| match p {
            Param::Text(s) => rusqlite::types::Value::Text(s),
            Param::Int(i) => rusqlite::types::Value::Integer(i),
        });
        let mut q = self.conn.prepare_cached(&sql)?;
        let rows = q.query_map(rusqlite::params_from_iter(values), |r| {
            Ok(TraceSummaryRow {
                id: r.get(0)?,
                pipeline: r.get(1)?,
                created_at: r.get(2)?,
                latency_ms: r.get(3)?,
                cost_usd: r.get(4)?,
                outcome: r.get(5)?,
                model: r.get(6)?,
                tags: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn window_requests(
        &mut self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<WindowRow>, StoreError> {
        let mut q = self.conn.prepare_cached(WINDOW_REQUESTS)?;
        let rows = q.query_map(params![tenant, since_ms, until_ms, limit as i64], |r| {
            Ok(WindowRow {
                pipeline: r.get(0)?,
                outcome: r.get(1)?,
                cost_usd: r.get(2)?,
                latency_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn window_count(
        &mut self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached(WINDOW_COUNT)?
            .query_row(params![tenant, since_ms, until_ms, limit as i64], |r| {
                r.get(0)
            })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn window_plugin_calls(
        &mut self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<PluginCallRow>, StoreError> {
        let mut q = self.conn.prepare_cached(WINDOW_PLUGIN_CALLS)?;
        let rows = q.query_map(params![tenant, since_ms, until_ms, limit as i64], |r| {
            Ok(PluginCallRow {
                kind: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                model: r.get(1)?,
                latency_ms: r.get(2)?,
                error: r.get(3)?,
                verdicts: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn tenants(&mut self) -> Result<Vec<TenantRow>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT name, created_at, disabled, policy FROM tenants")?;
        let rows = q.query_map([], |r| {
            Ok(TenantRow {
                name: r.get(0)?,
                created_at: r.get(1)?,
                disabled: r.get(2)?,
                policy: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn create_tenant(&mut self, t: &TenantRow) -> Result<bool, StoreError> {
        self.commit(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO tenants (name, created_at, disabled, policy) VALUES (?1, ?2, ?3, ?4)",
                params![t.name, t.created_at, t.disabled, t.policy],
            )?;
            Ok(n == 1)
        })
    }

    fn update_tenant(&mut self, t: &TenantRow) -> Result<bool, StoreError> {
        self.commit(|tx| {
            let n = tx.execute(
                "UPDATE tenants SET disabled = ?2, policy = ?3 WHERE name = ?1",
                params![t.name, t.disabled, t.policy],
            )?;
            Ok(n == 1)
        })
    }

    fn delete_tenant(&mut self, name: &str) -> Result<bool, StoreError> {
        self.commit(|tx| {
            tx.execute(
                "DELETE FROM api_keys WHERE tenant = ?1 AND role = 'tenant'",
                params![name],
            )?;
            tx.execute(
                "DELETE FROM tenant_plugins WHERE tenant = ?1",
                params![name],
            )?;
            tx.execute(
                "DELETE FROM tenant_pipelines WHERE tenant = ?1",
                params![name],
            )?;
            Ok(tx.execute("DELETE FROM tenants WHERE name = ?1", params![name])? == 1)
        })
    }

    fn keys(&mut self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut q = self.conn.prepare(
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
    }

    fn add_key(&mut self, k: &KeyRecord) -> Result<(), StoreError> {
        self.commit(|tx| {
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
    }

    fn revoke_key(&mut self, id: &str, at: i64) -> Result<bool, StoreError> {
        self.commit(|tx| {
            Ok(tx.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
                params![id, at],
            )? == 1)
        })
    }

    fn usage(
        &mut self,
        tenant: Option<&str>,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let mut q = self.conn.prepare_cached(
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
    }

    fn spent(
        &mut self,
        tenant: &str,
        today: &str,
        month_start: &str,
    ) -> Result<(f64, f64), StoreError> {
        let sum = |from: &str| -> Result<f64, StoreError> {
            Ok(self
                .conn
                .query_row(
                    "SELECT sum(cost_usd) FROM usage WHERE tenant = ?1 AND day >= ?2 AND day <= ?3",
                    params![tenant, from, today],
                    |r| r.get::<_, Option<f64>>(0),
                )
                .optional()?
                .flatten()
                .unwrap_or(0.0))
        };
        Ok((sum(today)?, sum(month_start)?))
    }

    fn tenant_plugins(&mut self, with_bytes: bool) -> Result<Vec<PluginRow>, StoreError> {
        let mut q = self.conn.prepare(
            "SELECT tenant, name, meta, CASE WHEN ?1 THEN bytes ELSE x'' END
             FROM tenant_plugins ORDER BY created_at, rowid",
        )?;
        let rows = q.query_map(params![with_bytes], |r| {
            Ok(PluginRow {
                tenant: r.get(0)?,
                name: r.get(1)?,
                meta: r.get(2)?,
                bytes: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn plugin_bytes(
        &mut self,
        tenant: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT bytes FROM tenant_plugins WHERE tenant = ?1 AND name = ?2 AND version = ?3",
                params![tenant, name, version],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn add_plugin_version(
        &mut self,
        row: &PluginRow,
        version: &str,
        created_at: i64,
    ) -> Result<bool, StoreError> {
        self.commit(|tx| {
            Ok(tx.execute(
                "INSERT OR IGNORE INTO tenant_plugins (tenant, name, version, created_at, meta, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![row.tenant, row.name, version, created_at, row.meta, row.bytes],
            )? == 1)
        })
    }

    fn delete_plugin(&mut self, tenant: &str, name: &str) -> Result<usize, StoreError> {
        self.commit(|tx| {
            Ok(tx.execute(
                "DELETE FROM tenant_plugins WHERE tenant = ?1 AND name = ?2",
                params![tenant, name],
            )?)
        })
    }

    fn tenant_pipelines(&mut self) -> Result<Vec<PipelineRow>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT tenant, name, updated_at, definition FROM tenant_pipelines")?;
        let rows = q.query_map([], |r| {
            Ok(PipelineRow {
                tenant: r.get(0)?,
                name: r.get(1)?,
                updated_at: r.get(2)?,
                definition: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn put_pipeline(&mut self, row: &PipelineRow) -> Result<(), StoreError> {
        self.commit(|tx| {
            tx.execute(
                "INSERT INTO tenant_pipelines (tenant, name, updated_at, definition) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, name) DO UPDATE SET updated_at = excluded.updated_at, definition = excluded.definition",
                params![row.tenant, row.name, row.updated_at, row.definition],
            )?;
            Ok(())
        })
    }

    fn delete_pipeline(&mut self, tenant: &str, name: &str) -> Result<bool, StoreError> {
        self.commit(|tx| {
            Ok(tx.execute(
                "DELETE FROM tenant_pipelines WHERE tenant = ?1 AND name = ?2",
                params![tenant, name],
            )? == 1)
        })
    }
}
