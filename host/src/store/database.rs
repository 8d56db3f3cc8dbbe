//! The one interface both databases implement: SQLite (`sqlite.rs`, the embedded
//! default) and PostgreSQL (`postgres.rs`, for many replicas). A `Database` is one
//! connection, used from one thread at a time: the writer thread owns one, and reads and
//! committed writes go through a second one on the blocking pool. It speaks in rows;
//! [`super::TraceStore`] turns them into the host's types, so the decoding is written
//! once.

use super::{Feedback, StoreError, UsageRow};
use crate::pipeline::RequestTrace;
use crate::tenancy::{KeyRecord, TenantRecord};

/// An operation the writer commits in a batch.
pub(crate) enum WriteOp<'a> {
    Trace(&'a RequestTrace),
    Feedback {
        tenant: &'a str,
        feedback: &'a Feedback,
        at: i64,
    },
    /// A key's last use (Unix seconds); only ever moves forward.
    KeyUsed {
        id: &'a str,
        at: i64,
    },
    /// A verdict's effect on the routers' statistics, which a shared database passes on
    /// to the other replicas (as it does for every trace's attempts); nothing is stored.
    Judged(&'a super::stats::StatsEvent),
}

/// A request's row, as stored.
pub(crate) struct TraceRow {
    pub pipeline: String,
    pub created_at: i64,
    pub latency_ms: f64,
    pub cost_usd: f64,
    pub outcome: String,
    pub model: Option<String>,
    pub score: Option<f64>,
    pub answer: Option<String>,
    pub error: Option<String>,
    /// JSON array.
    pub tags: String,
    /// JSON `BudgetLimits`; none for a request stored before budgets were.
    pub budget: Option<String>,
    /// The `seq` of the attempt whose answer was returned.
    pub answer_attempt: Option<i64>,
    /// JSON array of each returned choice's attempt (`n` > 1 only).
    pub answer_attempts: Option<String>,
    /// Each attempt's JSON record, in order.
    pub attempts: Vec<String>,
}

/// What a trace listing keeps: the tenant's requests matching every filter given,
/// newest first, strictly after `after` (the last row of the previous page).
#[derive(Debug, Clone, Default)]
pub(crate) struct TraceFilter {
    pub pipeline: Option<String>,
    pub outcome: Option<String>,
    /// The chosen answer's model.
    pub model: Option<String>,
    pub tag: Option<String>,
    /// Unix ms, inclusive.
    pub since: Option<i64>,
    /// Unix ms, exclusive.
    pub until: Option<i64>,
    /// `(created_at, id)` of the previous page's last row.
    pub after: Option<(i64, String)>,
    pub limit: usize,
}

/// A request's row as a listing shows it (no answer, no attempts).
pub(crate) struct TraceSummaryRow {
    pub id: String,
    pub pipeline: String,
    pub created_at: i64,
    pub latency_ms: f64,
    pub cost_usd: f64,
    pub outcome: String,
    pub model: Option<String>,
    /// JSON array.
    pub tags: String,
}

/// A request as windowed statistics read it (`insights`).
pub(crate) struct WindowRow {
    pub pipeline: String,
    pub outcome: String,
    pub cost_usd: f64,
    pub latency_ms: f64,
}

/// An attempt that called plugins: a router or decomposer call (`kind`, the plugin in
/// `model`), or a model call with its verdicts (JSON array).
pub(crate) struct PluginCallRow {
    pub kind: String,
    pub model: String,
    pub latency_ms: f64,
    pub error: Option<String>,
    pub verdicts: Option<String>,
}

/// A parameter of a listing query.
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// The listing query for both databases, `placeholder(n)` naming parameter `n` (1-based).
/// It pages along `(created_at, id)` (keyset, never OFFSET), so every page is one index
/// range whatever its depth: `(tenant, created_at, id)`, the same with `pipeline`,
/// `outcome` or `model` after `tenant`, and `request_tags (tenant, tag, created_at,
/// request_id)` when a tag is asked for.
pub(crate) fn trace_list_query(
    tenant: &str,
    f: &TraceFilter,
    placeholder: fn(usize) -> String,
) -> (String, Vec<Param>) {
    let mut params = vec![Param::Text(tenant.to_string())];
    let next = |p: Param, params: &mut Vec<Param>| {
        params.push(p);
        placeholder(params.len())
    };
    // With a tag, its table drives the range and ordering; the requests are joined by key.
    let (from, key_time, key_id) = match &f.tag {
        Some(tag) => {
            let t = next(Param::Text(tag.clone()), &mut params);
            (
                format!(
                    "request_tags g JOIN requests r ON r.id = g.request_id WHERE g.tenant = {} AND g.tag = {t}",
                    placeholder(1)
                ),
                "g.created_at",
                "g.request_id",
            )
        }
        None => (
            format!("requests r WHERE r.tenant = {}", placeholder(1)),
            "r.created_at",
            "r.id",
        ),
    };
    let mut sql = format!(
        "SELECT r.id, r.pipeline, r.created_at, r.latency_ms, r.cost_usd, r.outcome, r.model, r.tags FROM {from}"
    );
    for (column, value) in [
        ("r.pipeline", &f.pipeline),
        ("r.outcome", &f.outcome),
        ("r.model", &f.model),
    ] {
        if let Some(v) = value {
            let p = next(Param::Text(v.clone()), &mut params);
            sql += &format!(" AND {column} = {p}");
        }
    }
    if let Some(since) = f.since {
        let p = next(Param::Int(since), &mut params);
        sql += &format!(" AND {key_time} >= {p}");
    }
    if let Some(until) = f.until {
        let p = next(Param::Int(until), &mut params);
        sql += &format!(" AND {key_time} < {p}");
    }
    if let Some((at, id)) = &f.after {
        let a = next(Param::Int(*at), &mut params);
        let i = next(Param::Text(id.clone()), &mut params);
        sql += &format!(" AND ({key_time}, {key_id}) < ({a}, {i})");
    }
    let limit = next(
        Param::Int(i64::try_from(f.limit).unwrap_or(i64::MAX)),
        &mut params,
    );
    sql += &format!(" ORDER BY {key_time} DESC, {key_id} DESC LIMIT {limit}");
    (sql, params)
}

/// A request's `answer_attempts` as stored: a JSON array, or nothing for a single answer.
pub(crate) fn answer_attempts_text(t: &RequestTrace) -> Option<String> {
    (!t.answer_attempts.is_empty())
        .then(|| serde_json::to_string(&t.answer_attempts).ok())
        .flatten()
}

/// A request's tags, each once (they key its rows in `request_tags`).
pub(crate) fn distinct_tags(tags: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(tags.len());
    for t in tags {
        if !out.contains(&t.as_str()) {
            out.push(t);
        }
    }
    out
}

/// An attempt of a recent request, for rebuilding the routers' statistics.
pub(crate) struct RecentAttempt {
    /// JSON record.
    pub record: String,
    /// JSON array.
    pub tags: String,
    pub tenant: String,
}

/// A tenant's row; `policy` is JSON.
pub(crate) struct TenantRow {
    pub name: String,
    pub created_at: i64,
    pub disabled: bool,
    pub policy: String,
}

/// A stored plugin version; `meta` is JSON.
pub(crate) struct PluginRow {
    pub tenant: String,
    pub name: String,
    pub meta: String,
    pub bytes: Vec<u8>,
}

/// A stored pipeline; `definition` is JSON.
pub(crate) struct PipelineRow {
    pub tenant: String,
    pub name: String,
    pub updated_at: i64,
    pub definition: String,
}

pub(crate) trait Database: Send + 'static {
    /// Applies the migrations this build knows, each in its own transaction (with
    /// PostgreSQL, under a lock: the first replica to start migrates, the others wait);
    /// refuses a schema a newer build wrote.
    fn migrate(&mut self) -> Result<(), StoreError>;

    /// Commits a batch in one transaction: traces (requests and attempts, replacing a
    /// request stored under the same id), feedback, key uses, and `usage`, the batch's
    /// usage summed per row, added to the stored rows (upsert).
    fn write_batch(&mut self, ops: &[WriteOp<'_>], usage: &[UsageRow]) -> Result<(), StoreError>;

    /// Deletes requests created before `cutoff_ms` with their attempts and feedback:
    /// `chunk` requests per transaction, at most `max_chunks` transactions. True if old
    /// requests may be left.
    fn prune(
        &mut self,
        cutoff_ms: i64,
        chunk: usize,
        max_chunks: usize,
    ) -> Result<bool, StoreError>;

    /// The attempts of the newest `limit` requests, newest request first and each
    /// request's attempts last first.
    fn recent_attempts(&mut self, limit: usize) -> Result<Vec<RecentAttempt>, StoreError>;

    /// Request `id` if it belongs to `tenant`.
    fn trace(&mut self, tenant: &str, id: &str) -> Result<Option<TraceRow>, StoreError>;

    /// One page of `tenant`'s requests ([`trace_list_query`]).
    fn traces(
        &mut self,
        tenant: &str,
        filter: &TraceFilter,
    ) -> Result<Vec<TraceSummaryRow>, StoreError>;

    /// `tenant`'s newest requests created from `since_ms` (inclusive) to `until_ms`
    /// (exclusive), at most `limit`: one range of `(tenant, created_at, id)`.
    fn window_requests(
        &mut self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<WindowRow>, StoreError>;

    /// How many requests of `tenant` the window holds, counting up to `limit` (read
    /// from the index alone).
    fn window_count(
        &mut self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError>;

    /// The attempts that called plugins, of `tenant`'s newest `limit` requests in the
    /// window (each request's attempts found by primary key).
    fn window_plugin_calls(
        &mut self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<PluginCallRow>, StoreError>;

    fn tenants(&mut self) -> Result<Vec<TenantRow>, StoreError>;
    /// False (nothing changed) if the name is taken.
    fn create_tenant(&mut self, t: &TenantRow) -> Result<bool, StoreError>;
    /// Sets `disabled` and `policy`; false if there is no such tenant.
    fn update_tenant(&mut self, t: &TenantRow) -> Result<bool, StoreError>;
    /// Deletes the tenant, its tenant keys, plugins and pipelines; false if none.
    fn delete_tenant(&mut self, name: &str) -> Result<bool, StoreError>;

    fn keys(&mut self) -> Result<Vec<KeyRecord>, StoreError>;
    /// A key already stored (same hash) is left as it is.
    fn add_key(&mut self, k: &KeyRecord) -> Result<(), StoreError>;
    /// Sets `revoked_at` unless set; false if there is no such key.
    fn revoke_key(&mut self, id: &str, at: i64) -> Result<bool, StoreError>;

    /// Usage rows of `tenant` (all with `None`) from `from` to `to` (UTC days,
    /// inclusive), ordered by tenant, day, pipeline, model.
    fn usage(
        &mut self,
        tenant: Option<&str>,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageRow>, StoreError>;
    /// The tenant's spend on `today` and from `month_start` to `today`.
    fn spent(
        &mut self,
        tenant: &str,
        today: &str,
        month_start: &str,
    ) -> Result<(f64, f64), StoreError>;

    /// Every tenant's plugin versions, oldest first; `bytes` left empty unless
    /// `with_bytes` (a replica following changes reads the list often, bytes rarely).
    fn tenant_plugins(&mut self, with_bytes: bool) -> Result<Vec<PluginRow>, StoreError>;
    /// One version's bytes.
    fn plugin_bytes(
        &mut self,
        tenant: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// False (nothing changed) if this version is stored already.
    fn add_plugin_version(
        &mut self,
        row: &PluginRow,
        version: &str,
        created_at: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes every version of a plugin; how many there were.
    fn delete_plugin(&mut self, tenant: &str, name: &str) -> Result<usize, StoreError>;

    fn tenant_pipelines(&mut self) -> Result<Vec<PipelineRow>, StoreError>;
    /// Creates or replaces.
    fn put_pipeline(&mut self, row: &PipelineRow) -> Result<(), StoreError>;
    /// False if there was none.
    fn delete_pipeline(&mut self, tenant: &str, name: &str) -> Result<bool, StoreError>;

    /// Marks `replica` live at `now_ms` and counts the replicas seen since `since_ms`
    /// (itself included): how many share the tenants' rate and concurrency limits. A
    /// database only one replica opens (SQLite) answers 1.
    fn heartbeat(&mut self, replica: &str, now_ms: i64, since_ms: i64) -> Result<u32, StoreError> {
        let _ = (replica, now_ms, since_ms);
        Ok(1)
    }

    /// Forgets `replica` (it is shutting down), so the others take over its share now.
    fn retire(&mut self, replica: &str) -> Result<(), StoreError> {
        let _ = replica;
        Ok(())
    }
}

/// Tenant rows to records, and back.
pub(crate) fn tenant_record(row: TenantRow) -> Result<TenantRecord, StoreError> {
    let policy = serde_json::from_str(&row.policy)
        .map_err(|e| StoreError::Corrupt(format!("tenant `{}`'s policy: {e}", row.name)))?;
    Ok(TenantRecord {
        name: row.name,
        created_at: row.created_at,
        disabled: row.disabled,
        policy,
    })
}

pub(crate) fn tenant_row(t: &TenantRecord) -> TenantRow {
    TenantRow {
        name: t.name.clone(),
        created_at: t.created_at,
        disabled: t.disabled,
        policy: serde_json::to_string(&t.policy).unwrap_or_else(|_| "{}".into()),
    }
}
