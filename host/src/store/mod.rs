//! The trace and feedback store: SQLite (WAL) in embedded mode.
//!
//! Requests never wait for the disk: traces go through a channel to one writer thread
//! that commits them in batches. A read of a trace that may still be queued waits for a
//! flush first, so a client can read the trace of a request it just made. On shutdown
//! the queue is drained before the process exits.
//!
//! The queue is bounded: when the disk cannot keep up, requests wait to queue their
//! traces (back-pressure) instead of the queue growing without end. What a caller is told
//! is stored (feedback, API keys) is committed before the call returns; a trace may be
//! lost in a crash for at most the batch window after its request ended
//! (`[server] trace_batch_ms`, default [`BATCH_WINDOW`]). A failed commit
//! is counted, fails the flushes waiting on it, and keeps `flush` failing (so `/readyz`
//! answers 503) until a later write succeeds.

mod catalog;
mod database;
pub mod insights;
mod ledger;
mod postgres;
mod sqlite;
pub mod stats;
mod tenants;
pub mod test_cluster;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub(crate) use self::database::TraceFilter;
use self::database::{Database, RecentAttempt, WriteOp};

use crate::pipeline::{AttemptRecord, RequestTrace};
pub use catalog::{StoredPipelineRow, StoredPlugin};
pub use stats::StatsBook;
pub use tenants::UsageRow;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("trace store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("trace store {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("trace store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("trace store: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("trace store is closed")]
    Closed,
    #[error("trace store: {0}")]
    Corrupt(String),
    #[error("trace store: writing failed: {0}")]
    WriteFailed(String),
    #[error("trace store {path} has schema version {found}; this build knows up to {known} (a newer arbiter wrote it)")]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

/// A user verdict or ground truth for a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Feedback {
    pub request_id: String,
    #[serde(default)]
    pub correct: Option<bool>,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A request as a trace listing shows it (`GET /v1/traces`); the whole trace is
/// `GET /v1/traces/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TraceSummary {
    pub id: String,
    /// Unix time in milliseconds.
    pub created_at: i64,
    pub pipeline: String,
    /// `accepted`, `unverified`, `rejected`, `budget_best`, `failed` or `cancelled`.
    pub outcome: String,
    /// The chosen answer's model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub cost_usd: f64,
    pub latency_ms: f64,
    pub tags: Vec<String>,
}

enum Op {
    Trace(Box<RequestTrace>),
    Feedback {
        tenant: String,
        feedback: Feedback,
        at: i64,
        /// What the verdict adds to the statistics, for the other replicas.
        judged: Option<stats::StatsEvent>,
    },
    /// A key's last use (seconds), written at most once a minute per key.
    KeyUsed {
        id: String,
        at: i64,
    },
    /// Answered once everything queued before it is committed, with the commit's result.
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Operations queued for the writer at most; more wait for room.
const QUEUE: usize = 16_384;

/// What the writer reports back: failed commits, and whether the last one failed.
#[derive(Default)]
struct WriteHealth {
    errors: AtomicU64,
    failing: AtomicBool,
}

pub struct TraceStore {
    tx: mpsc::Sender<Op>,
    health: Arc<WriteHealth>,
    /// Reads, and the writes acknowledged as committed (keys, tenants, uploads).
    reader: Arc<Mutex<Box<dyn Database>>>,
    pub stats: Arc<StatsBook>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Changes other replicas commit (PostgreSQL only), and the listener's stop flag.
    changes: Option<(tokio::sync::broadcast::Sender<String>, Arc<AtomicBool>)>,
    /// Tenants' spend counters, when replicas share them (PostgreSQL only).
    ledger: Option<Arc<dyn crate::tenancy::spend::SpendLedger>>,
    /// This replica's id in a shared store.
    replica: Option<String>,
}

/// A replica not heard from for this long no longer counts as live.
pub const LIVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// How many recent requests rebuild the routers' statistics at start-up.
const WARM_REQUESTS: usize = 20_000;

/// A request outcome as stored (its JSON name).
fn outcome_text(o: crate::pipeline::RequestOutcome) -> Option<String> {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
}

/// The batch's operations as the database writes them, and its usage summed per row.
fn write_batch(db: &mut dyn Database, batch: &[Op]) -> Result<(), StoreError> {
    let mut usage = tenants::UsageBatch::default();
    let mut ops: Vec<WriteOp<'_>> = Vec::with_capacity(batch.len());
    for op in batch {
        match op {
            Op::Trace(t) => {
                usage.add(t);
                ops.push(WriteOp::Trace(t));
            }
            Op::Feedback {
                tenant,
                feedback,
                at,
                judged,
            } => {
                ops.push(WriteOp::Feedback {
                    tenant,
                    feedback,
                    at: *at,
                });
                if let Some(e) = judged {
                    ops.push(WriteOp::Judged(e));
                }
            }
            Op::KeyUsed { id, at } => ops.push(WriteOp::KeyUsed { id, at: *at }),
            Op::Flush(_) => {}
        }
    }
    db.write_batch(&ops, &usage.rows())
}

/// How long the writer lets a batch grow before committing it. Each commit appends every
/// page it touched to the WAL, so under load one commit per request cost more than the
/// requests themselves; a crash can lose at most this much more than the commit itself.
pub const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(5);
const MAX_BATCH: usize = 4096;

/// The writer thread: collect what arrives within [`BATCH_WINDOW`] of the first queued
/// operation (at once when someone waits on a flush), commit it in one transaction, then
/// acknowledge the flushes that were waiting for it.
fn writer(
    mut db: Box<dyn Database>,
    mut rx: mpsc::Receiver<Op>,
    retention: Option<Retention>,
    health: Arc<WriteHealth>,
    window: std::time::Duration,
) {
    let mut pruned_at: Option<std::time::Instant> = None;
    // Old traces left by the last pass: pruning goes on between batches until none are.
    let mut backlog = false;
    loop {
        if let Some(r) = retention {
            if backlog || pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                let cutoff = now_ms() - i64::try_from(r.keep.as_millis()).unwrap_or(i64::MAX);
                backlog = db
                    .prune(cutoff, r.chunk, r.chunks_per_pass)
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "pruning old traces failed");
                        false
                    });
                pruned_at = Some(std::time::Instant::now());
                if backlog && rx.is_empty() {
                    continue;
                }
            }
        }
        // An idle store sleeps here: nothing new needs room, and old traces go with the
        // next batch (or at the next start).
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let started = std::time::Instant::now();
        let mut flush = matches!(first, Op::Flush(_));
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => {
                    flush |= matches!(op, Op::Flush(_));
                    batch.push(op);
                }
                // Shutting down: commit what is here; the outer loop then ends.
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if flush || started.elapsed() >= window {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
        let result = write_batch(db.as_mut(), &batch);
        let writes = batch
            .iter()
            .filter(|op| !matches!(op, Op::Flush(_)))
            .count();
        match &result {
            Err(e) => {
                tracing::error!(error = %e, ops = batch.len(), "writing traces failed");
                health.errors.fetch_add(1, Ordering::Relaxed);
                health.failing.store(true, Ordering::Relaxed);
            }
            Ok(()) if writes > 0 => health.failing.store(false, Ordering::Relaxed),
            Ok(()) => {}
        }
        // A flush succeeds only if what was queued before it is on disk: a failed batch
        // fails its flushes, and until a later write succeeds, so do the next ones.
        let reply = match result {
            Err(e) => Err(e.to_string()),
            Ok(()) if health.failing.load(Ordering::Relaxed) => {
                Err("the last write to the store failed".to_string())
            }
            Ok(()) => Ok(()),
        };
        for op in batch {
            if let Op::Flush(done) = op {
                let _ = done.send(reply.clone());
            }
        }
    }
}

/// How long traces are kept, and how the writer deletes older ones: at most once every
/// `PRUNE_EVERY` (more often while a backlog is left), `chunk` requests per transaction,
/// at most `chunks_per_pass` transactions between batches of new traces.
#[derive(Debug, Clone, Copy)]
struct Retention {
    keep: std::time::Duration,
    chunk: usize,
    chunks_per_pass: usize,
}

const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Retention {
    fn keep(keep: std::time::Duration) -> Retention {
        Retention {
            keep,
            chunk: 2_000,
            chunks_per_pass: 10,
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl TraceStore {
    /// Opens (or creates) the store at `path` and rebuilds statistics from recent attempts.
    /// With `retention`, requests older than that are deleted at start and then at most
    /// once a minute while traces are written; without, every trace is kept.
    pub fn open(
        path: &Path,
        retention: Option<std::time::Duration>,
    ) -> Result<TraceStore, StoreError> {
        Self::open_batched(path, retention, BATCH_WINDOW)
    }

    /// As [`TraceStore::open`], letting traces wait up to `window` to be committed
    /// together: what a crash may lose.
    pub fn open_batched(
        path: &Path,
        retention: Option<std::time::Duration>,
        window: std::time::Duration,
    ) -> Result<TraceStore, StoreError> {
        Self::open_with(path, retention.map(Retention::keep), window)
    }

    fn open_with(
        path: &Path,
        retention: Option<Retention>,
        window: std::time::Duration,
    ) -> Result<TraceStore, StoreError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut db = sqlite::Sqlite::open(path)?;
        db.migrate()?;
        let reader = sqlite::Sqlite::open(path)?;
        Self::start(Box::new(db), Box::new(reader), retention, window)
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://...`), migrating it if
    /// this is the first replica to get there, and rebuilds statistics from it.
    pub fn open_postgres(
        url: &str,
        retention: Option<std::time::Duration>,
        window: std::time::Duration,
    ) -> Result<TraceStore, StoreError> {
        let mut db = postgres::Postgres::connect(url)?;
        db.migrate()?;
        let replica = uuid::Uuid::new_v4().to_string();
        db.replica = Some(replica.clone());
        let reader = postgres::Postgres::connect(url)?;
        // Subscribed before the statistics are read, so what other replicas commit from
        // here on reaches them, whether or not the warm-up saw it.
        let mut listener = postgres::Postgres::connect(url)?;
        listener.subscribe()?;
        let mut store = Self::start(
            Box::new(db),
            Box::new(reader),
            retention.map(Retention::keep),
            window,
        )?;
        let (tx, _) = tokio::sync::broadcast::channel(64);
        let stop = Arc::new(AtomicBool::new(false));
        store.replica = Some(replica.clone());
        let follow = postgres::StatsFollow {
            replica,
            book: store.stats.clone(),
        };
        postgres::listen(url.to_string(), listener, tx.clone(), stop.clone(), follow)
            .map_err(|e| StoreError::Corrupt(format!("cannot start the listener thread: {e}")))?;
        store.changes = Some((tx, stop));
        let ledger = ledger::PgLedger::new(url)?;
        store.ledger = Some(Arc::new(ledger::Ledger(ledger)));
        Ok(store)
    }

    /// The spend counters the replicas of this store share; `None` for a store of one
    /// replica (SQLite), which counts in memory.
    pub fn spend_ledger(&self) -> Option<Arc<dyn crate::tenancy::spend::SpendLedger>> {
        self.ledger.clone()
    }

    /// Changes to tenants, keys, plugins and pipelines that any replica (this one too)
    /// commits, as they commit; `reconnected` after a lost connection (changes may have
    /// been missed). `None`: a store no other replica shares (SQLite).
    pub fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.changes.as_ref().map(|(tx, _)| tx.subscribe())
    }

    /// The store over a migrated database: `db` goes to the writer thread, `reader`
    /// serves reads and acknowledged writes.
    fn start(
        db: Box<dyn Database>,
        mut reader: Box<dyn Database>,
        retention: Option<Retention>,
        window: std::time::Duration,
    ) -> Result<TraceStore, StoreError> {
        let stats = Arc::new(StatsBook::new());
        Self::warm_stats(reader.as_mut(), &stats, WARM_REQUESTS)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let health = Arc::new(WriteHealth::default());
        let writer_health = health.clone();
        let handle = std::thread::Builder::new()
            .name("arbiter-traces".into())
            .spawn(move || writer(db, rx, retention, writer_health, window))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(TraceStore {
            tx,
            health,
            reader: Arc::new(Mutex::new(reader)),
            stats,
            writer: Mutex::new(Some(handle)),
            changes: None,
            ledger: None,
            replica: None,
        })
    }

    /// Rebuilds statistics from the attempts of the most recent requests (at most
    /// `limit` of them, however large the store has grown).
    fn warm_stats(
        db: &mut dyn Database,
        stats: &StatsBook,
        limit: usize,
    ) -> Result<(), StoreError> {
        let mut traces = Vec::new();
        for RecentAttempt {
            record,
            tags,
            tenant,
        } in db.recent_attempts(limit)?
        {
            if let (Ok(a), Ok(tags)) = (
                serde_json::from_str::<AttemptRecord>(&record),
                serde_json::from_str::<Vec<String>>(&tags),
            ) {
                traces.push((a, tags, tenant));
            }
        }
        for (a, tags, tenant) in traces.into_iter().rev() {
            let t = RequestTrace {
                id: String::new(),
                tenant,
                pipeline: String::new(),
                created_at: 0,
                latency_ms: 0.0,
                cost_usd: 0.0,
                outcome: crate::pipeline::RequestOutcome::Failed,
                model: None,
                score: None,
                answer: None,
                answer_attempt: None,
                answer_attempts: Vec::new(),
                error: None,
                tags,
                budget: None,
                attempts: vec![a],
            };
            stats.record(&t);
        }
        Ok(())
    }

    /// Queues an operation, waiting for room when the writer is behind.
    async fn send(&self, op: Op) -> Result<(), StoreError> {
        self.tx.send(op).await.map_err(|_| StoreError::Closed)
    }

    /// Queues a finished request's trace; waits only while the queue is full.
    pub async fn record(&self, trace: RequestTrace) -> Result<(), StoreError> {
        self.stats.record(&trace);
        self.send(Op::Trace(Box::new(trace))).await
    }

    /// Waits until everything queued so far is committed; an error if it was not.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.send(Op::Flush(done)).await?;
        wait.await
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::WriteFailed)
    }

    /// Commits that failed since the store was opened (a metric).
    pub fn write_errors(&self) -> u64 {
        self.health.errors.load(Ordering::Relaxed)
    }

    /// Runs `f` on the reading connection in the blocking pool. Its writes (keys,
    /// tenants, uploads) are committed before it returns.
    pub(super) fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Database) -> Result<T, StoreError> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> {
        let reader = self.reader.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                f(reader.lock().unwrap_or_else(|p| p.into_inner()).as_mut())
            })
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
        }
    }

    /// The trace of request `id`, if it belongs to `tenant` (other tenants' traces do not
    /// exist for the caller).
    pub async fn trace(&self, tenant: &str, id: &str) -> Result<Option<RequestTrace>, StoreError> {
        if let Some(t) = self.read_trace(tenant, id).await? {
            return Ok(Some(t));
        }
        // Maybe still queued: wait for the writer, then look again.
        self.flush().await?;
        self.read_trace(tenant, id).await
    }

    async fn read_trace(&self, tenant: &str, id: &str) -> Result<Option<RequestTrace>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        let (t, i) = (tenant.clone(), id.clone());
        let Some(row) = self.blocking(move |db| db.trace(&t, &i)).await? else {
            return Ok(None);
        };
        let attempts = row
            .attempts
            .iter()
            .map(|text| {
                serde_json::from_str(text)
                    .map_err(|e| StoreError::Corrupt(format!("attempt record: {e}")))
            })
            .collect::<Result<Vec<AttemptRecord>, StoreError>>()?;
        Ok(Some(RequestTrace {
            id,
            tenant,
            pipeline: row.pipeline,
            created_at: row.created_at,
            latency_ms: row.latency_ms,
            cost_usd: row.cost_usd,
            outcome: serde_json::from_value(serde_json::Value::String(row.outcome))
                .map_err(|e| StoreError::Corrupt(format!("outcome: {e}")))?,
            model: row.model,
            score: row.score,
            answer: row.answer,
            answer_attempt: row.answer_attempt.and_then(|a| u32::try_from(a).ok()),
            answer_attempts: row
                .answer_attempts
                .map(|a| serde_json::from_str(&a))
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("answer attempts: {e}")))?
                .unwrap_or_default(),
            error: row.error,
            tags: serde_json::from_str(&row.tags).unwrap_or_default(),
            budget: row
                .budget
                .map(|b| serde_json::from_str(&b))
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("budget: {e}")))?,
            attempts,
        }))
    }

    /// One page of `tenant`'s requests, newest first; traces still queued are written
    /// first, so a request just answered is listed.
    pub(crate) async fn traces(
        &self,
        tenant: &str,
        filter: TraceFilter,
    ) -> Result<Vec<TraceSummary>, StoreError> {
        self.flush().await?;
        let tenant = tenant.to_string();
        let rows = self.blocking(move |db| db.traces(&tenant, &filter)).await?;
        Ok(rows
            .into_iter()
            .map(|r| TraceSummary {
                id: r.id,
                created_at: r.created_at,
                pipeline: r.pipeline,
                outcome: r.outcome,
                model: r.model,
                cost_usd: r.cost_usd,
                latency_ms: r.latency_ms,
                tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            })
            .collect())
    }

    /// Records feedback on one of the tenant's requests; false if there is no such request.
    pub async fn feedback(&self, tenant: &str, feedback: Feedback) -> Result<bool, StoreError> {
        let Some(trace) = self.trace(tenant, &feedback.request_id).await? else {
            return Ok(false);
        };
        let judged = match (feedback.correct, &trace.model) {
            (Some(correct), Some(model)) => {
                let e = stats::StatsEvent {
                    tenant: tenant.into(),
                    model: model.clone(),
                    tags: trace.tags.clone(),
                    latency_ms: None,
                    success: Some(correct),
                };
                self.stats.apply(&e);
                Some(e)
            }
            _ => None,
        };
        self.send(Op::Feedback {
            tenant: tenant.into(),
            feedback,
            at: now_ms(),
            judged,
        })
        .await?;
        // Acknowledged feedback is on disk: a crash right after the answer loses none.
        self.flush().await?;
        Ok(true)
    }

    /// Drains the queue and stops the writer (graceful shutdown).
    pub async fn close(&self) -> Result<(), StoreError> {
        self.flush().await?;
        if let Some(id) = self.replica.clone() {
            self.blocking(move |db| db.retire(&id)).await?;
        }
        Ok(())
    }

    /// Tells the other replicas this one is live, and counts the live ones (1 for a
    /// store no other replica shares).
    pub async fn heartbeat(&self) -> Result<u32, StoreError> {
        let Some(id) = self.replica.clone() else {
            return Ok(1);
        };
        let since = now_ms() - LIVE_WITHIN.as_millis() as i64;
        self.blocking(move |db| db.heartbeat(&id, now_ms(), since))
            .await
    }
}

impl Drop for TraceStore {
    fn drop(&mut self) {
        if let Some((_, stop)) = &self.changes {
            stop.store(true, Ordering::Relaxed);
        }
        // Closing the channel ends the writer after it commits what is queued.
        let (tx, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(h) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{params, Connection};

    use super::sqlite::{open, Sqlite, MIGRATIONS, WARM_QUERY};
    use super::*;
    use crate::pipeline::OutcomeStats;
    use crate::pipeline::{AttemptKind, AttemptOutcome, RequestOutcome};

    fn trace(id: &str, tenant: &str) -> RequestTrace {
        RequestTrace {
            id: id.into(),
            tenant: tenant.into(),
            pipeline: "p".into(),
            created_at: 1,
            latency_ms: 12.0,
            cost_usd: 0.5,
            outcome: RequestOutcome::Accepted,
            model: Some("m".into()),
            score: Some(0.9),
            answer: Some("42".into()),
            answer_attempt: Some(0),
            answer_attempts: Vec::new(),
            error: None,
            tags: vec!["math".into()],
            budget: Some(crate::pipeline::BudgetLimits {
                deadline_ms: Some(30_000),
                max_cost_usd: Some(0.25),
                max_calls: Some(8),
                max_depth: None,
            }),
            attempts: vec![AttemptRecord {
                seq: 0,
                node: "root".into(),
                kind: AttemptKind::Model,
                model: "m".into(),
                sample: Some(0),
                started_ms: 0.0,
                latency_ms: 11.0,
                input_tokens: 3,
                output_tokens: 4,
                cost_usd: 0.5,
                outcome: AttemptOutcome::Accepted,
                verdicts: vec![],
                score: Some(0.9),
                error: None,
                text: Some("42".into()),
                tool_calls: vec![crate::runtime::types::ToolCall {
                    id: "call_0".into(),
                    name: "lookup".into(),
                    arguments: "{}".into(),
                }],
                finish_reason: Some("stop".into()),
                label: None,
            }],
        }
    }

    /// Start-up must not read the whole store: only the newest requests, found along the
    /// rowid, then their attempts by key.
    #[tokio::test]
    async fn statistics_warm_up_reads_only_the_newest_requests() {
        let (_dir, path) = scratch();
        let store = TraceStore::open(&path, None).unwrap();
        for i in 0..200 {
            // The newest ten are another tenant's: each tenant's figures are rebuilt apart.
            let tenant = if i >= 190 { "b" } else { "a" };
            let mut t = trace(&format!("r{i}"), tenant);
            // The newest twenty carry their own model, so the warm-up's choice is visible.
            if i >= 180 {
                t.attempts[0].model = "newest".into();
            }
            store.record(t).await.unwrap();
        }
        store.flush().await.unwrap();

        let mut db = Sqlite::open(&path).unwrap();
        let stats = StatsBook::new();
        TraceStore::warm_stats(&mut db, &stats, 20).unwrap();
        let conn = db.conn;
        for tenant in ["a", "b"] {
            let newest = stats.query(tenant, "newest", None).map(|s| s.attempts);
            assert_eq!(newest, Some(10), "{tenant}");
            assert_eq!(stats.query(tenant, "m", None).map(|s| s.attempts), None);
        }

        let mut q = conn.prepare(WARM_QUERY).unwrap();
        let rows = q.query_map(params![20], |_| Ok(())).unwrap().count();
        assert_eq!(rows, 20);
        // A scan of either whole table steps ~200 times; reading the newest 20 and their
        // materialised list steps ~40.
        let scanned = q.get_status(rusqlite::StatementStatus::FullscanStep);
        assert!(
            scanned <= 42,
            "the warm-up scanned {scanned} rows for 20 requests"
        );
    }

    /// A store path in a folder removed when the first value drops.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traces.db");
        (dir, path)
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn pruning_deletes_old_requests_with_their_attempts_and_feedback() {
        let (_dir, path) = scratch();
        let store = TraceStore::open(&path, None).unwrap();
        // Seven old requests, then three new ones, then one old that finished late; one
        // of the old ones is another tenant's.
        for i in 0..11 {
            let mut t = trace(&format!("r{i}"), if i == 3 { "b" } else { "a" });
            t.created_at = if (7..10).contains(&i) { 2_000 } else { 1_000 };
            store.record(t).await.unwrap();
        }
        for id in ["r0", "r8"] {
            let feedback = Feedback {
                request_id: id.into(),
                correct: Some(true),
                score: None,
                note: None,
            };
            assert!(store.feedback("a", feedback).await.unwrap());
        }
        store.flush().await.unwrap();

        let mut db = Sqlite::open(&path).unwrap();
        // Chunks of three, two per pass: six old ones go, more may be left.
        assert!(db.prune(1_500, 3, 2).unwrap());
        assert_eq!(count(&db.conn, "requests"), 5);
        assert!(!db.prune(1_500, 3, 10).unwrap());
        assert_eq!(count(&db.conn, "requests"), 3, "the new ones stay");
        assert_eq!(count(&db.conn, "attempts"), 3);
        assert_eq!(count(&db.conn, "feedback"), 1, "r0's feedback went with it");
        drop(db);

        for (id, kept) in [
            ("r0", false),
            ("r6", false),
            ("r7", true),
            ("r9", true),
            ("r10", false),
        ] {
            assert_eq!(store.trace("a", id).await.unwrap().is_some(), kept, "{id}");
        }
        assert!(
            store.trace("b", "r3").await.unwrap().is_none(),
            "other tenants too"
        );
    }

    #[tokio::test]
    async fn a_store_with_retention_drops_old_traces_when_it_opens() {
        let (_dir, path) = scratch();
        let day = 86_400_000;
        {
            let store = TraceStore::open(&path, None).unwrap();
            let mut old = trace("old", "a");
            old.created_at = now_ms() - 3 * day;
            let mut recent = trace("recent", "a");
            recent.created_at = now_ms() - day / 2;
            store.record(old).await.unwrap();
            store.record(recent).await.unwrap();
        }
        // Without retention nothing is deleted.
        let store = TraceStore::open(&path, None).unwrap();
        store.flush().await.unwrap();
        assert!(store.trace("a", "old").await.unwrap().is_some());
        drop(store);

        let two_days = std::time::Duration::from_secs(2 * 86_400);
        let store = TraceStore::open(&path, Some(two_days)).unwrap();
        store.flush().await.unwrap();
        assert!(store.trace("a", "old").await.unwrap().is_none());
        assert!(store.trace("a", "recent").await.unwrap().is_some());
    }

    /// A backlog larger than one pass keeps being pruned without waiting for the next
    /// minute or for new traces.
    #[tokio::test]
    async fn pruning_continues_until_the_backlog_is_gone() {
        let (_dir, path) = scratch();
        {
            let store = TraceStore::open(&path, None).unwrap();
            for i in 0..9 {
                let mut t = trace(&format!("r{i}"), "a");
                t.created_at = 1_000;
                store.record(t).await.unwrap();
            }
        }
        let small = Retention {
            keep: std::time::Duration::from_secs(86_400),
            chunk: 2,
            chunks_per_pass: 1,
        };
        let _store = TraceStore::open_with(&path, Some(small), BATCH_WINDOW).unwrap();
        let conn = open(&path).unwrap();
        let waited = std::time::Instant::now();
        while count(&conn, "requests") > 0 {
            assert!(
                waited.elapsed() < std::time::Duration::from_secs(30),
                "{} old requests left after one-chunk passes",
                count(&conn, "requests")
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(count(&conn, "attempts"), 0);
    }

    #[tokio::test]
    async fn traces_survive_a_restart_and_stay_with_their_tenant() {
        let (_dir, path) = scratch();
        survive_a_restart(move || TraceStore::open(&path, None).unwrap()).await;
    }

    /// The same on PostgreSQL (a private server the tests start; skipped, loudly, where
    /// there is no PostgreSQL to start).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn traces_survive_a_restart_on_postgres() {
        let Some(url) = postgres_database().await else {
            return;
        };
        survive_a_restart(move || open_postgres(url.clone())).await;
    }

    /// An empty database on the tests' private PostgreSQL server; `None`, said loudly,
    /// where there is no PostgreSQL to start.
    async fn postgres_database() -> Option<String> {
        let url = tokio::task::spawn_blocking(test_cluster::fresh_database)
            .await
            .unwrap();
        if url.is_none() {
            eprintln!("SKIPPED: no PostgreSQL to test against");
        }
        url
    }

    /// The store on `url`, opened off the async threads (it connects synchronously).
    fn open_postgres(url: String) -> TraceStore {
        std::thread::spawn(move || TraceStore::open_postgres(&url, None, BATCH_WINDOW))
            .join()
            .unwrap()
            .unwrap()
    }

    /// Two replicas on one database: what one records and the verdicts it is given reach
    /// the other's statistics (as its routers read them) within a second; spend counted
    /// on one holds on the other, and a refusal names the limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_share_statistics_and_spend_on_postgres() {
        use crate::pipeline::OutcomeStats;
        use crate::tenancy::spend::{SpendLimits, TenantSpend};
        let Some(url) = postgres_database().await else {
            return;
        };
        let (a, b) = (open_postgres(url.clone()), open_postgres(url));
        let attempts = |s: &TraceStore, tag: Option<&str>| {
            s.stats
                .query("a", "m", tag)
                .map(|s| (s.attempts, s.success_rate))
        };
        let within_a_second = |what: &str, probe: &dyn Fn() -> bool| {
            let started = std::time::Instant::now();
            while !probe() {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(1),
                    "{what}"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        };
        a.record(trace("r1", "a")).await.unwrap();
        a.flush().await.unwrap();
        within_a_second("an attempt recorded on A, in B's statistics", &|| {
            attempts(&b, Some("math")) == Some((1, 1.0))
        });
        assert!(b
            .feedback(
                "a",
                Feedback {
                    correct: Some(false),
                    ..verdict("r1")
                }
            )
            .await
            .unwrap());
        within_a_second("a verdict given on B, in A's statistics", &|| {
            attempts(&a, None) == Some((2, 0.5))
        });
        assert_eq!(attempts(&b, None), Some((2, 0.5)), "B counted its own once");

        let limits = SpendLimits {
            daily_usd: Some(1.0),
            monthly_usd: Some(10.0),
        };
        let on = |s: &TraceStore| TenantSpend::shared(limits, "a", s.spend_ledger().unwrap());
        let (spend_a, spend_b) = (on(&a), on(&b));
        assert!(spend_a.reserve(0.6).await.unwrap());
        let refused = spend_b.reserve(0.6).await.unwrap_err();
        assert!(
            refused.to_string().contains("daily spend limit"),
            "{refused}"
        );
        // A's call cost less than its estimate: settled, the room is B's.
        spend_a.adjust(0.3 - 0.6);
        let started = std::time::Instant::now();
        while spend_b.reserve(0.6).await.is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "settling"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(
            (spend_b.spent().0 - 0.9).abs() < 1e-9,
            "{:?}",
            spend_b.spent()
        );
        // Concurrent reservations from both replicas: exactly what fits is granted.
        let limits = SpendLimits {
            daily_usd: Some(0.25),
            monthly_usd: None,
        };
        let (ledger_a, ledger_b) = (a.spend_ledger().unwrap(), b.spend_ledger().unwrap());
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let ledger = if i % 2 == 0 {
                    ledger_a.clone()
                } else {
                    ledger_b.clone()
                };
                tokio::spawn(async move {
                    let spend = TenantSpend::shared(limits, "c", ledger);
                    let mut granted = 0;
                    while spend.reserve(0.012).await.unwrap_or(false) {
                        granted += 1;
                    }
                    granted
                })
            })
            .collect();
        let mut granted = 0;
        for t in tasks {
            granted += t.await.unwrap();
        }
        assert_eq!(granted, 20, "$0.25 holds 20 reservations of $0.012");
        // Without limits, nothing is counted (and nothing waits on the database).
        let free = TenantSpend::shared(SpendLimits::default(), "b", a.spend_ledger().unwrap());
        assert!(!free.reserve(100.0).await.unwrap());
    }

    #[tokio::test]
    async fn trace_listings_filter_page_and_keep_tenants_apart() {
        let (_dir, path) = scratch();
        listings(&TraceStore::open(&path, None).unwrap()).await;
        // The listing is one range of an index, not a scan of the tenant's requests.
        let conn = Sqlite::open(&path).unwrap().conn;
        for filter in [
            TraceFilter {
                limit: 5,
                ..Default::default()
            },
            TraceFilter {
                pipeline: Some("p".into()),
                limit: 5,
                after: Some((5, "r05".into())),
                ..Default::default()
            },
            TraceFilter {
                tag: Some("even".into()),
                limit: 5,
                ..Default::default()
            },
        ] {
            let (sql, params) = database::trace_list_query("a", &filter, |n| format!("?{n}"));
            let values = params.into_iter().map(|p| match p {
                database::Param::Text(s) => rusqlite::types::Value::Text(s),
                database::Param::Int(i) => rusqlite::types::Value::Integer(i),
            });
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(values), |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(
                !plan.contains("TEMP B-TREE") && !plan.contains("SCAN r"),
                "{sql}: {plan}"
            );
        }
    }

    #[tokio::test]
    async fn trace_listings_on_postgres() {
        let Some(url) = postgres_database().await else {
            return;
        };
        listings(&open_postgres(url)).await;
    }

    #[tokio::test]
    async fn window_statistics_read_an_index_range_and_keep_tenants_apart() {
        let (_dir, path) = scratch();
        window_statistics(&TraceStore::open(&path, None).unwrap()).await;
        // Each query is one range of `(tenant, created_at, id)`, newest first: no scan of
        // the tenant's requests, no sort.
        let conn = Sqlite::open(&path).unwrap().conn;
        for sql in [
            sqlite::WINDOW_REQUESTS,
            sqlite::WINDOW_COUNT,
            sqlite::WINDOW_PLUGIN_CALLS,
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params!["a", 0, 100, 10], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(
                plan.contains("requests_tenant_time")
                    && !plan.contains("TEMP B-TREE")
                    && !plan.contains("SCAN requests")
                    && !plan.contains("SCAN a"),
                "{sql}: {plan}"
            );
        }
    }

    #[tokio::test]
    async fn window_statistics_on_postgres() {
        let Some(url) = postgres_database().await else {
            return;
        };
        window_statistics(&open_postgres(url)).await;
    }

    /// Tenant `a`: ten requests through `race` (one failed, each judged by `math`, one
    /// verdict an error), two through `plain` outside the window; tenant `b`: its own
    /// pipeline and plugin at the same times.
    async fn window_statistics(store: &TraceStore) {
        for i in 1..=12i64 {
            let mut t = trace(&format!("a{i:02}"), "a");
            t.created_at = if i > 10 { 500 + i } else { 10 * i };
            t.pipeline = if i > 10 { "plain" } else { "race" }.into();
            t.latency_ms = i as f64;
            t.cost_usd = 0.01;
            if i == 3 {
                t.outcome = RequestOutcome::Failed;
            }
            t.attempts[0].verdicts = vec![crate::pipeline::VerdictRecord {
                plugin: "math".into(),
                score: Some(1.0),
                decision: None,
                reason: String::new(),
                checks_failed: 0,
                checks: vec![],
                error: (i == 5).then(|| "plugin_timeout: over 1000 ms".into()),
                wall_us: 1000.0 * i as f64,
                reused: false,
            }];
            store.record(t).await.unwrap();
        }
        for i in 1..=4i64 {
            let mut t = trace(&format!("b{i:02}"), "b");
            t.created_at = 10 * i;
            t.pipeline = "b-private".into();
            t.attempts[0].verdicts = vec![crate::pipeline::VerdictRecord {
                plugin: "b-secret".into(),
                score: None,
                decision: None,
                reason: String::new(),
                checks_failed: 0,
                checks: vec![],
                error: None,
                wall_us: 5.0,
                reused: false,
            }];
            store.record(t).await.unwrap();
        }
        let (window, pipelines) = store.pipeline_stats("a", 0, 200).await.unwrap();
        assert_eq!((window.requests, window.complete), (10, true));
        assert_eq!(
            pipelines.len(),
            1,
            "plain is outside the window, b's is b's"
        );
        let race = &pipelines[0];
        assert_eq!((race.pipeline.as_str(), race.requests), ("race", 10));
        assert_eq!((race.outcomes["accepted"], race.outcomes["failed"]), (9, 1));
        assert_eq!((race.latency_ms.p50, race.latency_ms.p99), (6.0, 10.0));
        assert!((race.cost_usd - 0.1).abs() < 1e-9);
        let (window, plugins) = store.plugin_stats("a", 0, 200).await.unwrap();
        assert_eq!((window.requests, window.complete), (10, true));
        assert_eq!(plugins.len(), 1, "{plugins:?}");
        let math = &plugins[0];
        assert_eq!(
            (math.plugin.as_str(), math.calls, math.errors),
            ("math", 10, 1)
        );
        assert_eq!(math.errors_by_code["plugin_timeout"], 1);
        assert_eq!((math.call_ms.p50, math.call_ms.p99), (6.0, 10.0));
        let (_, theirs) = store.pipeline_stats("b", 0, 200).await.unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].pipeline, "b-private");
        let (_, theirs) = store.plugin_stats("b", 0, 200).await.unwrap();
        assert_eq!(
            theirs.iter().map(|p| p.plugin.as_str()).collect::<Vec<_>>(),
            ["b-secret"]
        );
        let (window, none) = store.pipeline_stats("c", 0, 200).await.unwrap();
        assert_eq!((window.requests, none.len()), (0, 0));
        // A window holding more than the bound: its newest requests, and it says so.
        let (window, newest) = store.pipeline_stats_within("a", 0, 200, 4).await.unwrap();
        assert_eq!((window.requests, window.complete), (4, false));
        assert_eq!(newest[0].requests, 4);
        assert_eq!(
            newest[0].latency_ms.p50, 9.0,
            "requests 7 to 10, nearest rank"
        );
        let (window, newest) = store.plugin_stats_within("a", 0, 200, 4).await.unwrap();
        assert_eq!((window.requests, window.complete), (4, false));
        assert_eq!(newest[0].calls, 4);
        assert_eq!(newest[0].errors, 0, "the failed verdict was request 5's");
        let (window, _) = store.plugin_stats_within("a", 0, 200, 10).await.unwrap();
        assert!(window.complete, "exactly the bound is all of it");
    }

    /// Twenty requests of tenant `a` at times 1..=20 (ids `r01`..), half tagged `even`,
    /// those from 11 on through pipeline `q`; five of tenant `b` at the same times.
    async fn listings(store: &TraceStore) {
        for i in 1..=20 {
            let mut t = trace(&format!("r{i:02}"), "a");
            t.created_at = i;
            t.tags = if i % 2 == 0 {
                vec!["even".into(), "even".into()]
            } else {
                vec![]
            };
            if i > 10 {
                t.pipeline = "q".into();
            }
            if i == 7 {
                t.outcome = RequestOutcome::Failed;
                t.model = None;
            }
            store.record(t).await.unwrap();
        }
        for i in 1..=5 {
            let mut t = trace(&format!("b{i}"), "b");
            t.created_at = i;
            t.tags = vec!["even".into()];
            store.record(t).await.unwrap();
        }
        let ids = |page: &[TraceSummary]| page.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        let list = |filter: TraceFilter| async move { store.traces("a", filter).await.unwrap() };

        // Paging: newest first, each page starting after the last row of the one before.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = list(TraceFilter {
                limit: 6,
                after: after.clone(),
                ..Default::default()
            })
            .await;
            seen.extend(ids(&page));
            match page.last() {
                Some(last) if page.len() == 6 => after = Some((last.created_at, last.id.clone())),
                _ => break,
            }
        }
        let expected: Vec<String> = (1..=20).rev().map(|i| format!("r{i:02}")).collect();
        assert_eq!(seen, expected, "every request once, newest first");

        // A request replaced under the same id keeps one row and its new tags.
        let mut again = trace("r02", "a");
        again.created_at = 2;
        again.tags = vec!["late".into()];
        store.record(again).await.unwrap();
        let tagged = |tag: &str| TraceFilter {
            tag: Some(tag.into()),
            limit: 50,
            ..Default::default()
        };
        assert_eq!(ids(&list(tagged("late")).await), ["r02"]);
        let even = list(tagged("even")).await;
        assert_eq!(
            ids(&even),
            ["r20", "r18", "r16", "r14", "r12", "r10", "r08", "r06", "r04"]
        );
        assert_eq!(even[0].tags, ["even", "even"], "tags as sent");

        // Filters combine, with each other, a time range and a cursor.
        let page = list(TraceFilter {
            pipeline: Some("q".into()),
            tag: Some("even".into()),
            since: Some(12),
            until: Some(20),
            after: Some((18, "r18".into())),
            limit: 50,
            ..Default::default()
        })
        .await;
        assert_eq!(ids(&page), ["r16", "r14", "r12"]);
        let failed = list(TraceFilter {
            outcome: Some("failed".into()),
            limit: 50,
            ..Default::default()
        })
        .await;
        assert_eq!(ids(&failed), ["r07"]);
        assert_eq!(failed[0].model, None);
        let by_model = list(TraceFilter {
            model: Some("m".into()),
            until: Some(4),
            limit: 50,
            ..Default::default()
        })
        .await;
        assert_eq!(ids(&by_model), ["r03", "r02", "r01"]);

        // Another tenant's requests are never listed, whatever the filter.
        let theirs = store.traces("b", tagged("even")).await.unwrap();
        assert_eq!(ids(&theirs), ["b5", "b4", "b3", "b2", "b1"]);
        assert!(store
            .traces(
                "c",
                TraceFilter {
                    limit: 50,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty());
    }

    /// Read-your-writes, tenants kept apart, a restart that loses nothing queued,
    /// statistics rebuilt from the store, feedback on the tenant's own requests only.
    /// A request that returned two choices (`n` = 2), from attempts 1 and 0.
    fn chosen_of_two(id: &str, tenant: &str) -> RequestTrace {
        let mut t = trace(id, tenant);
        let mut second = t.attempts[0].clone();
        second.seq = 1;
        t.attempts.push(second);
        t.answer_attempt = Some(1);
        t.answer_attempts = vec![1, 0];
        t
    }

    async fn survive_a_restart(open: impl Fn() -> TraceStore) {
        {
            let store = open();
            store.record(trace("r1", "a")).await.unwrap();
            // Read-your-writes: visible right after recording.
            assert_eq!(
                store
                    .trace("a", "r1")
                    .await
                    .unwrap()
                    .unwrap()
                    .answer
                    .as_deref(),
                Some("42")
            );
            assert!(
                store.trace("b", "r1").await.unwrap().is_none(),
                "another tenant sees nothing"
            );
            store.record(chosen_of_two("r2", "a")).await.unwrap();
            // Dropped without an explicit flush: the writer drains its queue first.
        }
        let store = open();
        let t = store
            .trace("a", "r2")
            .await
            .unwrap()
            .expect("kept across restart");
        // Which attempts' answers were returned is kept with the rest.
        assert_eq!(t, chosen_of_two("r2", "a"));
        assert_eq!(
            store
                .trace("a", "r1")
                .await
                .unwrap()
                .unwrap()
                .answer_attempt,
            Some(0)
        );
        assert_eq!(
            store
                .stats
                .query("a", "m", Some("math"))
                .map(|s| s.attempts),
            Some(3),
            "stats rebuilt: r1's attempt and r2's two"
        );
        assert!(store
            .feedback(
                "a",
                Feedback {
                    request_id: "r1".into(),
                    correct: Some(false),
                    score: None,
                    note: None
                }
            )
            .await
            .unwrap());
        assert!(!store
            .feedback(
                "b",
                Feedback {
                    request_id: "r1".into(),
                    correct: Some(true),
                    score: None,
                    note: None
                }
            )
            .await
            .unwrap());
    }

    fn verdict(id: &str) -> Feedback {
        Feedback {
            request_id: id.into(),
            correct: Some(true),
            score: None,
            note: None,
        }
    }

    #[tokio::test]
    async fn a_failed_write_is_an_error_a_metric_and_not_ready_until_a_write_succeeds() {
        let (_dir, path) = scratch();
        let store = TraceStore::open(&path, None).unwrap();
        store.record(trace("r1", "a")).await.unwrap();
        store.flush().await.unwrap();
        // The disk refuses feedback (as a full disk or a locked file would).
        let conn = open(&path).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER no BEFORE INSERT ON feedback BEGIN SELECT RAISE(ABORT, 'no room'); END;",
        )
        .unwrap();
        let err = store.feedback("a", verdict("r1")).await.unwrap_err();
        assert!(matches!(err, StoreError::WriteFailed(_)), "{err:?}");
        assert!(err.to_string().contains("no room"), "{err}");
        assert_eq!(store.write_errors(), 1);
        // Readiness flushes: it keeps failing while the last write failed...
        assert!(store.flush().await.is_err());
        // ...and recovers with the next write that commits.
        conn.execute_batch("DROP TRIGGER no;").unwrap();
        store.record(trace("r2", "a")).await.unwrap();
        store.flush().await.unwrap();
        assert!(store.feedback("a", verdict("r2")).await.unwrap());
        assert_eq!(store.write_errors(), 1);
    }

    #[tokio::test]
    async fn acknowledged_feedback_and_keys_are_committed_before_the_call_returns() {
        let (_dir, path) = scratch();
        let store = TraceStore::open(&path, None).unwrap();
        store.record(trace("r1", "a")).await.unwrap();
        assert!(store.feedback("a", verdict("r1")).await.unwrap());
        let tenant = crate::tenancy::TenantRecord {
            name: "a".into(),
            created_at: 1,
            disabled: false,
            policy: Default::default(),
        };
        assert!(store.create_tenant(tenant.clone()).await.unwrap());
        assert!(
            !store.create_tenant(tenant).await.unwrap(),
            "names are unique"
        );
        let key = crate::tenancy::KeyRecord::new(
            "sha256:k".into(),
            "sk-".into(),
            Some("a".into()),
            crate::tenancy::Role::Tenant,
            "test".into(),
        );
        store.add_key(key.clone()).await.unwrap();
        assert!(store.revoke_key(&key.id, 7).await.unwrap());
        // Another connection (another process after a crash) sees all of it at once.
        let conn = open(&path).unwrap();
        assert_eq!(count(&conn, "feedback"), 1);
        assert_eq!(count(&conn, "api_keys"), 1);
        assert_eq!(count(&conn, "tenants"), 1);
        let revoked: i64 = conn
            .query_row("SELECT revoked_at FROM api_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(revoked, 7);
    }

    /// A store from before tenants were stored: its keys keep working for their tenant,
    /// which may still call everything, and its traces are counted as usage.
    #[tokio::test]
    async fn a_store_from_before_tenancy_migrates_keys_tenants_and_usage() {
        let (_dir, path) = scratch();
        {
            let mut conn = open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute_batch(MIGRATIONS[0]).unwrap();
            tx.pragma_update(None, "user_version", 1).unwrap();
            tx.execute(
                "INSERT INTO api_keys (key_hash, tenant, label, created_at) VALUES ('sha256:abcdef0123456789ff', 'default', '--api-key', 5000)",
                [],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        {
            // Write the old trace as version 1 did: requests and attempts only.
            let conn = open(&path).unwrap();
            conn.execute_batch(
                "INSERT INTO requests (id, tenant, pipeline, created_at, latency_ms, cost_usd, outcome, model, tags)
                   VALUES ('old', 'default', 'p', 1, 1.0, 0.5, 'accepted', 'm', '[]');
                 INSERT INTO attempts (request_id, seq, record, model, outcome, latency_ms, cost_usd)
                   VALUES ('old', 0, '{\"kind\":\"model\",\"input_tokens\":3,\"output_tokens\":4}', 'm', 'accepted', 1.0, 0.5);",
            )
            .unwrap();
        }
        let store = TraceStore::open(&path, None).unwrap();
        let tenants = store.tenants().await.unwrap();
        assert_eq!(tenants.len(), 1);
        assert_eq!(tenants[0].name, "default");
        assert!(
            tenants[0].policy.admits_model("any"),
            "{:?}",
            tenants[0].policy
        );
        let keys = store.keys().await.unwrap();
        assert_eq!(keys[0].id, "key_abcdef0123456789");
        assert_eq!(keys[0].created_at, 5, "milliseconds became seconds");
        let usage = store.usage(None, "1970-01-01", "1970-01-01").await.unwrap();
        let m = usage.iter().find(|r| r.model == "m").unwrap();
        assert_eq!(
            (m.requests, m.calls, m.input_tokens, m.output_tokens),
            (1, 1, 3, 4)
        );
        assert!((m.cost_usd - 0.5).abs() < 1e-9);
    }

    /// Usage is written with each trace: one row per model called, plus the request on
    /// the row of the model that answered; spend sums read it back by day and month.
    #[tokio::test]
    async fn usage_accumulates_by_tenant_day_pipeline_and_model() {
        let (_dir, path) = scratch();
        let store = TraceStore::open(&path, None).unwrap();
        for id in ["r1", "r2"] {
            store.record(trace(id, "a")).await.unwrap();
        }
        store.record(trace("r3", "b")).await.unwrap();
        // The test traces are from 1 ms after the epoch.
        let today = "1970-01-01";
        let rows = store
            .usage(Some("a"), "1969-01-01", "2999-01-01")
            .await
            .unwrap();
        assert!(!rows.is_empty());
        assert!(
            rows.iter().all(|r| r.tenant == "a" && r.day == today),
            "{rows:?}"
        );
        assert_eq!(rows.iter().map(|r| r.requests).sum::<i64>(), 2);
        let calls: i64 = rows.iter().map(|r| r.calls).sum();
        let cost: f64 = rows.iter().map(|r| r.cost_usd).sum();
        let one = trace("x", "a");
        let model_calls = one
            .attempts
            .iter()
            .filter(|a| a.kind == crate::pipeline::AttemptKind::Model)
            .count() as i64;
        assert_eq!(calls, 2 * model_calls);
        assert!((cost - 2.0 * one.cost_usd).abs() < 1e-9, "{cost}");
        let (day, month) = store.spent("a", today).await.unwrap();
        assert!((day - cost).abs() < 1e-9 && (month - cost).abs() < 1e-9);
        assert_eq!(
            store
                .usage(None, today, today)
                .await
                .unwrap()
                .iter()
                .filter(|r| r.tenant == "b")
                .map(|r| r.requests)
                .sum::<i64>(),
            1
        );
    }

    #[tokio::test]
    async fn a_full_queue_makes_callers_wait_instead_of_growing() {
        let (_dir, path) = scratch();
        let store = Arc::new(TraceStore::open(&path, None).unwrap());
        // Another connection holds the write lock: the writer blocks on its first batch.
        let mut blocker = open(&path).unwrap();
        let lock = blocker
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
            .unwrap();
        // What the writer took in its blocked batch, plus a full queue, plus one.
        let fill = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..QUEUE + MAX_BATCH + 1 {
                    store.record(trace(&format!("q{i}"), "a")).await.unwrap();
                }
            })
        };
        let waited = tokio::time::timeout(std::time::Duration::from_millis(1500), async {
            while store.tx.capacity() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the queue never filled");
        assert!(!fill.is_finished(), "a caller queued past the bound");
        lock.rollback().unwrap();
        fill.await.unwrap();
        store.flush().await.unwrap();
    }

    #[test]
    fn the_schema_is_versioned_and_a_newer_store_is_refused() {
        let (_dir, path) = scratch();
        drop(TraceStore::open(&path, None).unwrap());
        let conn = open(&path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = TraceStore::open(&path, None).err().expect("refused");
        assert!(
            matches!(err, StoreError::NewerSchema { found: 99, .. }),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_store_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, path) = scratch();
        drop(TraceStore::open(&path, None).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}
