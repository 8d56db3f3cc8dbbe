//! The shared database: PostgreSQL, for several gateway replicas over one store.
//!
//! The same rows as SQLite (`sqlite.rs`) with PostgreSQL's types: BIGINT for times and
//! counters, DOUBLE PRECISION for latencies and costs, BOOLEAN for flags, BYTEA for
//! plugin bytes; JSON stays TEXT, as the host reads and writes it whole. The client is
//! the synchronous `postgres` crate: a [`Database`] is only ever called from the writer
//! thread and tokio's blocking pool, never from inside an async task.
//!
//! A batch of traces is written with a few statements over arrays (`UNNEST`) rather
//! than one round trip per row, and pruning takes rows with `FOR UPDATE SKIP LOCKED`, so
//! replicas pruning at the same time do not wait on each other.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use ::postgres::{Client, Config, NoTls, Statement};

use super::database::{
    distinct_tags, trace_list_query, Database, Param, PipelineRow, PluginCallRow, PluginRow,
    RecentAttempt, TenantRow, TraceFilter, TraceRow, TraceSummaryRow, WindowRow, WriteOp,
};
use super::stats::{StatsBook, StatsEvent};
use super::{StoreError, UsageRow};
use crate::pipeline::{AttemptRecord, RequestTrace};
use crate::tenancy::{KeyRecord, Role};

/// Schema migrations, applied in order inside one transaction each: entry `i` brings the
/// database from version i to i + 1 (`arbiter_schema`). Released entries never change;
/// a new one is appended. Entry 1 is SQLite's schema after its three migrations: a
/// PostgreSQL store has no older history to replay.
const MIGRATIONS: &[&str] = &[SCHEMA, SPEND, LISTING, CHOSEN];

/// Text compared or ordered as SQLite does (usage days and keys) is `COLLATE "C"`:
/// byte order, whatever locale the database was created with. `requests.seq` is the
/// insertion order (SQLite's rowid), which the warm-up reads newest first;
/// `tenant_plugins.seq` orders plugin versions of the same `created_at`.
const SCHEMA: &str = r#"
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    tenant TEXT NOT NULL, pipeline TEXT NOT NULL, created_at BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL, cost_usd DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL, model TEXT, score DOUBLE PRECISION, answer TEXT, error TEXT,
    tags TEXT NOT NULL
);
CREATE INDEX requests_tenant ON requests (tenant, created_at);
CREATE UNIQUE INDEX requests_seq ON requests (seq);
CREATE TABLE attempts (
    request_id TEXT NOT NULL, seq BIGINT NOT NULL, record TEXT NOT NULL,
    model TEXT NOT NULL, outcome TEXT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL, cost_usd DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE TABLE feedback (
    request_id TEXT NOT NULL, tenant TEXT NOT NULL, created_at BIGINT NOT NULL,
    correct BOOLEAN, score DOUBLE PRECISION, note TEXT
);
CREATE INDEX feedback_request ON feedback (request_id);
CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY, tenant TEXT NOT NULL, label TEXT NOT NULL,
    created_at BIGINT NOT NULL, id TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL DEFAULT 'tenant', prefix TEXT NOT NULL DEFAULT '',
    expires_at BIGINT, revoked_at BIGINT, last_used_at BIGINT
);
CREATE TABLE tenants (
    name TEXT PRIMARY KEY, created_at BIGINT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE, policy TEXT NOT NULL
);
CREATE TABLE usage (
    tenant TEXT COLLATE "C" NOT NULL, day TEXT COLLATE "C" NOT NULL,
    pipeline TEXT COLLATE "C" NOT NULL, model TEXT COLLATE "C" NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0, calls BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0, output_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0, errors BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, day, pipeline, model)
);
CREATE TABLE tenant_plugins (
    tenant TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    created_at BIGINT NOT NULL, seq BIGINT GENERATED ALWAYS AS IDENTITY,
    meta TEXT NOT NULL, bytes BYTEA NOT NULL,
    PRIMARY KEY (tenant, name, version)
);
CREATE TABLE tenant_pipelines (
    tenant TEXT NOT NULL, name TEXT NOT NULL, updated_at BIGINT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
"#;

/// Migration 2: the live replicas (`seen_at`, Unix ms, renewed every second), which
/// share the tenants' rate and concurrency limits; each tenant's spend per UTC day and
/// month (`start` is the period's first day), shared by the replicas (`ledger.rs`). A period's counter starts from the usage
/// already recorded in it: a limit set mid-month counts the month's spend so far. Both
/// functions lock the day row before the month row, so they never deadlock each other.
const SPEND: &str = r#"
CREATE TABLE replicas (id TEXT PRIMARY KEY, seen_at BIGINT NOT NULL);
CREATE TABLE spend (
    tenant TEXT COLLATE "C" NOT NULL, period TEXT COLLATE "C" NOT NULL,
    start TEXT COLLATE "C" NOT NULL, usd DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, period, start)
);
CREATE FUNCTION arbiter_reserve_spend(
    p_tenant TEXT, p_day TEXT, p_month TEXT, p_estimate DOUBLE PRECISION,
    p_day_limit DOUBLE PRECISION, p_month_limit DOUBLE PRECISION,
    OUT refused TEXT, OUT day_usd DOUBLE PRECISION, OUT month_usd DOUBLE PRECISION
) LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM spend WHERE tenant = p_tenant AND period = 'day' AND start = p_day) THEN
        INSERT INTO spend SELECT p_tenant, 'day', p_day, COALESCE(sum(u.cost_usd), 0)
            FROM usage u WHERE u.tenant = p_tenant AND u.day = p_day
        ON CONFLICT DO NOTHING;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM spend WHERE tenant = p_tenant AND period = 'month' AND start = p_month) THEN
        INSERT INTO spend SELECT p_tenant, 'month', p_month, COALESCE(sum(u.cost_usd), 0)
            FROM usage u WHERE u.tenant = p_tenant AND u.day >= p_month AND u.day <= p_day
        ON CONFLICT DO NOTHING;
    END IF;
    SELECT s.usd INTO day_usd FROM spend s
        WHERE s.tenant = p_tenant AND s.period = 'day' AND s.start = p_day FOR UPDATE;
    SELECT s.usd INTO month_usd FROM spend s
        WHERE s.tenant = p_tenant AND s.period = 'month' AND s.start = p_month FOR UPDATE;
    IF p_day_limit IS NOT NULL AND day_usd + p_estimate > p_day_limit + 1e-12 THEN
        refused := 'day';
        RETURN;
    END IF;
    IF p_month_limit IS NOT NULL AND month_usd + p_estimate > p_month_limit + 1e-12 THEN
        refused := 'month';
        RETURN;
    END IF;
    UPDATE spend SET usd = usd + p_estimate
        WHERE tenant = p_tenant AND period = 'day' AND start = p_day;
    UPDATE spend SET usd = usd + p_estimate
        WHERE tenant = p_tenant AND period = 'month' AND start = p_month;
    day_usd := day_usd + p_estimate;
    month_usd := month_usd + p_estimate;
END
$$;
CREATE FUNCTION arbiter_adjust_spend(
    p_tenant TEXT, p_day TEXT, p_month TEXT, p_delta DOUBLE PRECISION
) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    UPDATE spend SET usd = GREATEST(usd + p_delta, 0)
        WHERE tenant = p_tenant AND period = 'day' AND start = p_day;
    UPDATE spend SET usd = GREATEST(usd + p_delta, 0)
        WHERE tenant = p_tenant AND period = 'month' AND start = p_month;
END
$$;
"#;

/// Migration 3: indexes for listing a tenant's traces by time, pipeline, outcome, model
/// and tag (`database::trace_list_query`); tags get a table of their own, keyed for it.
/// Each request's budget.
const LISTING: &str = r#"
DROP INDEX requests_tenant;
CREATE INDEX requests_tenant_time ON requests (tenant, created_at, id);
CREATE INDEX requests_tenant_pipeline ON requests (tenant, pipeline, created_at, id);
CREATE INDEX requests_tenant_outcome ON requests (tenant, outcome, created_at, id);
CREATE INDEX requests_tenant_model ON requests (tenant, model, created_at, id);
CREATE TABLE request_tags (
    request_id TEXT NOT NULL, tenant TEXT NOT NULL, tag TEXT NOT NULL, created_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, tag)
);
CREATE INDEX request_tags_list ON request_tags (tenant, tag, created_at, request_id);
ALTER TABLE requests ADD COLUMN budget TEXT;
INSERT INTO request_tags (request_id, tenant, tag, created_at)
    SELECT r.id, r.tenant, j.tag, r.created_at
    FROM requests r, json_array_elements_text(r.tags::json) AS j(tag)
    ON CONFLICT DO NOTHING;
"#;

/// Migration 4: which attempt's answer each request returned (`answer_attempt`, and
/// with `n` > 1 every choice's, `answer_attempts`).
const CHOSEN: &str = r#"
ALTER TABLE requests ADD COLUMN answer_attempt BIGINT;
ALTER TABLE requests ADD COLUMN answer_attempts TEXT;
"#;

/// The advisory lock migrations hold (transaction-scoped; advisory locks are per
/// database): replicas starting together migrate one after the other, and the later
/// ones find nothing left to do. "arbiter\0" in ASCII.
const MIGRATION_LOCK: i64 = 0x6172_6269_7465_7200;

/// Upserts a chunk of requests, in the arrays' order (their insertion order). A request
/// stored under the same id is replaced, and becomes the newest as with SQLite's INSERT
/// OR REPLACE.
const UPSERT_REQUESTS: &str = "
INSERT INTO requests (id, tenant, pipeline, created_at, latency_ms, cost_usd, outcome, model, score, answer, error, tags, budget,
                      answer_attempt, answer_attempts)
SELECT id, tenant, pipeline, created_at, latency_ms, cost_usd, outcome, model, score, answer, error, tags, budget,
       answer_attempt, answer_attempts
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::float8[], $6::float8[], $7::text[],
            $8::text[], $9::float8[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[],
            $15::text[])
     WITH ORDINALITY AS r(id, tenant, pipeline, created_at, latency_ms, cost_usd, outcome, model, score,
                          answer, error, tags, budget, answer_attempt, answer_attempts, n)
ORDER BY n
ON CONFLICT (id) DO UPDATE SET
    seq = DEFAULT, tenant = excluded.tenant, pipeline = excluded.pipeline,
    created_at = excluded.created_at, latency_ms = excluded.latency_ms, cost_usd = excluded.cost_usd,
    outcome = excluded.outcome, model = excluded.model, score = excluded.score,
    answer = excluded.answer, error = excluded.error, tags = excluded.tags,
    budget = excluded.budget, answer_attempt = excluded.answer_attempt,
    answer_attempts = excluded.answer_attempts
RETURNING id, xmax <> '0'::xid";

/// Deletes the attempts of the requests the upsert replaced: those it returns with a
/// non-zero `xmax` (a row updated by `ON CONFLICT DO UPDATE` carries the updating
/// transaction there; a row just inserted carries 0), which is nearly never. Looking
/// the chunk's ids up instead (`WHERE request_id = ANY($1)` on `attempts`, or on
/// `requests`) was planned as a sequential scan whenever the table's statistics were
/// behind (a fresh database, a table that grew since the last analyze): 43-158 ms a
/// batch at 4,000-5,000 req/s, which backed the trace queue up into 1 s stalls.
const DELETE_ATTEMPTS: &str = "DELETE FROM attempts WHERE request_id = ANY($1::text[])";
const DELETE_TAGS: &str = "DELETE FROM request_tags WHERE request_id = ANY($1::text[])";

const INSERT_TAGS: &str = "
INSERT INTO request_tags (request_id, tenant, tag, created_at)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[])
ON CONFLICT DO NOTHING";

const INSERT_ATTEMPTS: &str = "
INSERT INTO attempts (request_id, seq, record, model, outcome, latency_ms, cost_usd)
SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[])";

const INSERT_FEEDBACK: &str = "
INSERT INTO feedback (request_id, tenant, created_at, correct, score, note) VALUES ($1, $2, $3, $4, $5, $6)";

/// Each key's latest use of the batch; a key's last use only moves forward.
const KEYS_USED: &str = "
UPDATE api_keys k SET last_used_at = GREATEST(COALESCE(k.last_used_at, 0), u.at)
FROM (SELECT id, max(at) AS at FROM UNNEST($1::text[], $2::bigint[]) AS x(id, at) GROUP BY id) u
WHERE k.id = u.id";

/// Adds the batch's usage to the stored rows. Rows are summed (one upsert may touch a
/// row once) and taken in key order, so replicas upserting the same rows at once wait
/// for each other instead of deadlocking.
const UPSERT_USAGE: &str = "
INSERT INTO usage AS u (tenant, day, pipeline, model, requests, calls, input_tokens, output_tokens, cost_usd, errors)
SELECT tenant, day, pipeline, model, sum(requests), sum(calls), sum(input_tokens), sum(output_tokens),
       sum(cost_usd), sum(errors)
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
            $8::bigint[], $9::float8[], $10::bigint[])
     AS x(tenant, day, pipeline, model, requests, calls, input_tokens, output_tokens, cost_usd, errors)
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
ON CONFLICT (tenant, day, pipeline, model) DO UPDATE SET
    requests = u.requests + excluded.requests, calls = u.calls + excluded.calls,
    input_tokens = u.input_tokens + excluded.input_tokens,
    output_tokens = u.output_tokens + excluded.output_tokens,
    cost_usd = u.cost_usd + excluded.cost_usd, errors = u.errors + excluded.errors";

/// The tenants that have requests, read from the `(tenant, created_at)` index one
/// tenant at a time rather than by scanning it.
const TENANTS: &str = "
WITH RECURSIVE t(name) AS (
    SELECT min(tenant) FROM requests
    UNION ALL
    SELECT (SELECT min(tenant) FROM requests WHERE tenant > t.name) FROM t WHERE t.name IS NOT NULL
)
SELECT name FROM t WHERE name IS NOT NULL";

/// One chunk of a tenant's requests created before a time (`$1` tenant, `$2` cutoff in
/// Unix ms, `$3` chunk size), deleted with their attempts and feedback in one statement,
/// so all three see the same requests. Requests another replica is deleting (or a
/// writer replacing) are skipped rather than waited for. Counts the requests deleted.
const PRUNE: &str = "
WITH expired AS (
    SELECT id FROM requests WHERE tenant = $1 AND created_at < $2
    ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED
), attempts_gone AS (
    DELETE FROM attempts WHERE request_id IN (SELECT id FROM expired)
), feedback_gone AS (
    DELETE FROM feedback WHERE request_id IN (SELECT id FROM expired)
), tags_gone AS (
    DELETE FROM request_tags WHERE request_id IN (SELECT id FROM expired)
)
DELETE FROM requests WHERE id IN (SELECT id FROM expired)";

/// A window of a tenant's requests, newest first (`$1` tenant, `$2` since, `$3` until
/// in Unix ms, `$4` at most): one range of `requests_tenant_time`.
const WINDOW_REQUESTS: &str = "
SELECT pipeline, outcome, cost_usd, latency_ms FROM requests
WHERE tenant = $1 AND created_at >= $2 AND created_at < $3
ORDER BY created_at DESC, id DESC LIMIT $4";

/// How many requests a window holds, up to `$4`.
const WINDOW_COUNT: &str = "
SELECT count(*) FROM (SELECT 1 FROM requests
WHERE tenant = $1 AND created_at >= $2 AND created_at < $3 LIMIT $4) w";

/// The plugin calls in the attempts of a window's newest requests: routers and
/// decomposers, and model calls' verdicts.
const WINDOW_PLUGIN_CALLS: &str = "
WITH recent AS (
    SELECT id FROM requests WHERE tenant = $1 AND created_at >= $2 AND created_at < $3
    ORDER BY created_at DESC, id DESC LIMIT $4
), calls AS (
    SELECT j->>'kind' AS kind, a.model, a.latency_ms, j->>'error' AS error,
           (j->'verdicts')::text AS verdicts
    FROM recent JOIN attempts a ON a.request_id = recent.id, LATERAL (SELECT a.record::json AS j) r
)
SELECT kind, model, latency_ms, error, verdicts FROM calls
WHERE kind <> 'model' OR verdicts IS NOT NULL";

const WARM_QUERY: &str = "
WITH recent AS (SELECT seq AS n, id, tenant, tags FROM requests ORDER BY seq DESC LIMIT $1)
SELECT a.record, recent.tags, recent.tenant FROM recent JOIN attempts a ON a.request_id = recent.id
ORDER BY recent.n DESC, a.seq DESC";

/// A batch's traces go in statements of at most this many requests, or about
/// [`CHUNK_BYTES`] of text: a statement's parameters must stay well below PostgreSQL's
/// 1 GB message limit however long the answers are.
const CHUNK_TRACES: usize = 1_000;
const CHUNK_BYTES: usize = 32 << 20;

/// The statements a batch runs, prepared once per connection.
#[derive(Clone)]
struct Statements {
    upsert_requests: Statement,
    delete_attempts: Statement,
    insert_attempts: Statement,
    delete_tags: Statement,
    insert_tags: Statement,
    insert_feedback: Statement,
    keys_used: Statement,
    upsert_usage: Statement,
    prune: Statement,
}

impl Statements {
    fn prepare(client: &mut Client) -> Result<Statements, StoreError> {
        Ok(Statements {
            upsert_requests: client.prepare(UPSERT_REQUESTS)?,
            delete_attempts: client.prepare(DELETE_ATTEMPTS)?,
            insert_attempts: client.prepare(INSERT_ATTEMPTS)?,
            delete_tags: client.prepare(DELETE_TAGS)?,
            insert_tags: client.prepare(INSERT_TAGS)?,
            insert_feedback: client.prepare(INSERT_FEEDBACK)?,
            keys_used: client.prepare(KEYS_USED)?,
            upsert_usage: client.prepare(UPSERT_USAGE)?,
            prune: client.prepare(PRUNE)?,
        })
    }
}

/// One connection to the database. A connection the server closed (a restart, a
/// failover) is opened again at the next call: the call that saw it fail has failed.
pub(crate) struct Postgres {
    /// The synchronous client owns a small runtime of its own, which tokio refuses to
    /// drop on an async thread; `Drop` hands it to a thread of its own instead.
    client: std::mem::ManuallyDrop<Client>,
    config: Config,
    /// Prepared on first use, after `migrate` created the tables.
    statements: Option<Statements>,
    /// The URL without its password, to name the database in errors.
    name: String,
    /// Set on a replica's writer: the replica's id, with which it tells the others what
    /// its traces and feedback add to the routers' statistics.
    pub(super) replica: Option<String>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SAFETY: `client` is taken once, here, and never used again.
        let client = unsafe { std::mem::ManuallyDrop::take(&mut self.client) };
        // The store may be dropped on an async thread (a gateway shutting down).
        let _ = std::thread::Builder::new()
            .name("arbiter-pg-close".into())
            .spawn(move || drop(client));
    }
}

impl Postgres {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db` or
    /// `host=... user=...`), without TLS. Unless the URL says otherwise, connecting
    /// gives up after 10 s and the session is named `arbiter`.
    pub(crate) fn connect(url: &str) -> Result<Postgres, StoreError> {
        let mut config: Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("arbiter");
        }
        let client = config.connect(NoTls)?;
        Ok(Postgres {
            client: std::mem::ManuallyDrop::new(client),
            config,
            statements: None,
            name: redact(url),
            replica: None,
        })
    }

    /// Reconnects if the server closed the connection (on the blocking threads this
    /// runs on, where dropping the old client is allowed).
    fn ready(&mut self) -> Result<(), StoreError> {
        if self.client.is_closed() {
            self.statements = None;
            *self.client = self.config.connect(NoTls)?;
        }
        Ok(())
    }

    /// The batch statements, prepared on first use (cheap clones of shared handles).
    fn statements(&mut self) -> Result<Statements, StoreError> {
        self.ready()?;
        if self.statements.is_none() {
            self.statements = Some(Statements::prepare(&mut self.client)?);
        }
        Ok(self.statements.clone().expect("prepared above"))
    }

    /// As `commit`, telling every replica that listens (`CHANNEL`) when it commits:
    /// PostgreSQL delivers the notification with the commit, never before.
    fn announce<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut ::postgres::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.commit(|tx| {
            let out = f(tx)?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &what])?;
            Ok(out)
        })
    }

    /// Runs `f` in a transaction, committed before it returns.
    fn commit<T>(
        &mut self,
        f: impl FnOnce(&mut ::postgres::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.ready()?;
        let mut tx = self.client.transaction()?;
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Where replicas announce the changes they commit to tenants, keys, plugins and
/// pipelines.
const CHANNEL: &str = "arbiter_changes";

/// Where each replica's writer tells the others, with the commit, what its batch adds
/// to the routers' statistics ([`StatsEvent`]s, as JSON).
const STATS_CHANNEL: &str = "arbiter_stats";

/// A notification's payload must stay under 8000 bytes.
const MAX_PAYLOAD: usize = 7_900;

#[derive(serde::Serialize, serde::Deserialize)]
struct StatsPayload<'a> {
    #[serde(rename = "r", borrow)]
    replica: std::borrow::Cow<'a, str>,
    #[serde(rename = "e")]
    events: Vec<StatsEvent>,
}

/// `events` as payloads of at most [`MAX_PAYLOAD`] bytes. An event too large for one
/// alone (tags are the caller's to choose) goes without its tags, as the one thing of
/// it worth sharing is the model's figure.
fn stats_payloads(replica: &str, events: impl Iterator<Item = StatsEvent>) -> Vec<String> {
    let head = format!(r#"{{"r":{},"e":["#, serde_json::Value::from(replica));
    let mut out = Vec::new();
    let mut cur = head.clone();
    for mut e in events {
        let mut json = serde_json::to_string(&e).unwrap_or_default();
        if head.len() + json.len() + 2 > MAX_PAYLOAD {
            e.tags.clear();
            json = serde_json::to_string(&e).unwrap_or_default();
            if head.len() + json.len() + 2 > MAX_PAYLOAD {
                continue;
            }
        }
        if cur.len() + json.len() + 3 > MAX_PAYLOAD {
            cur.push_str("]}");
            out.push(std::mem::replace(&mut cur, head.clone()));
        }
        if cur.len() > head.len() {
            cur.push(',');
        }
        cur.push_str(&json);
    }
    if cur.len() > head.len() {
        cur.push_str("]}");
        out.push(cur);
    }
    out
}

/// What a listener reports: a change some replica committed, or a new connection
/// (notifications may have been missed while there was none: re-read everything).
pub(crate) const RECONNECTED: &str = "reconnected";

/// The routers' statistics a listener keeps up to date with the other replicas.
pub(crate) struct StatsFollow {
    /// This replica's id: its own events are in `book` already.
    pub replica: String,
    pub book: std::sync::Arc<StatsBook>,
}

impl Postgres {
    /// Starts receiving the changes and statistics replicas announce. Notifications are
    /// queued on the connection from here on, until read.
    pub(crate) fn subscribe(&mut self) -> Result<(), StoreError> {
        self.ready()?;
        self.client
            .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {STATS_CHANNEL}"))?;
        Ok(())
    }
}

/// Follows `CHANNEL` and `STATS_CHANNEL` on `first` (subscribed already), in a thread of
/// its own, until `stop` is set: each change goes to `tx`, other replicas' statistics
/// into `stats.book`. A lost connection is retried every second; on the new one, the
/// statistics are rebuilt from the store, as events may have been missed meanwhile.
pub(crate) fn listen(
    url: String,
    first: Postgres,
    tx: tokio::sync::broadcast::Sender<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stats: StatsFollow,
) -> std::io::Result<()> {
    use ::postgres::fallible_iterator::FallibleIterator;
    use std::sync::atomic::Ordering;
    std::thread::Builder::new()
        .name("arbiter-pg-listen".into())
        .spawn(move || {
            let mut next = Some(first);
            while !stop.load(Ordering::Relaxed) {
                let mut db = match next.take() {
                    Some(db) => db,
                    None => match Postgres::connect(&url).and_then(|mut db| {
                        db.subscribe()?;
                        let fresh = StatsBook::new();
                        super::TraceStore::warm_stats(&mut db, &fresh, super::WARM_REQUESTS)?;
                        stats.book.replace(fresh);
                        Ok(db)
                    }) {
                        Ok(db) => db,
                        Err(e) => {
                            tracing::warn!(error = %e, "listening for other replicas' changes: no connection; retrying");
                            std::thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    },
                };
                let _ = tx.send(RECONNECTED.into());
                while !stop.load(Ordering::Relaxed) {
                    let next = {
                        let mut notes = db.client.notifications();
                        let mut it = notes.timeout_iter(Duration::from_millis(500));
                        it.next()
                            .map(|n| n.map(|n| (n.channel() == STATS_CHANNEL, n.payload().to_string())))
                    };
                    match next {
                        Ok(Some((true, payload))) => {
                            match serde_json::from_str::<StatsPayload<'_>>(&payload) {
                                Ok(p) if p.replica != stats.replica => {
                                    for e in &p.events {
                                        stats.book.apply(e);
                                    }
                                }
                                Ok(_) => {}
                                Err(e) => tracing::warn!(error = %e, "unreadable statistics from another replica"),
                            }
                        }
                        Ok(Some((false, payload))) => {
                            let _ = tx.send(payload);
                        }
                        Ok(None) if db.client.is_closed() => break,
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "the listening connection failed; reconnecting");
                            break;
                        }
                    }
                }
            }
        })
        .map(drop)
}

/// `url` without its password, to show in errors and logs.
fn redact(url: &str) -> String {
    use std::sync::LazyLock;
    static USERINFO: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^:@/?#]*):[^@/?#]*@").unwrap()
    });
    static PARAM: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"([?&]password=)[^&#]*").unwrap());
    static KEY_VALUE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)").unwrap()
    });
    let url = USERINFO.replace(url, "$1@");
    let url = PARAM.replace_all(&url, "${1}***");
    KEY_VALUE.replace_all(&url, "${1}password=***").into_owned()
}

/// A request outcome as stored: its JSON name.
fn outcome_text(t: &RequestTrace) -> String {
    serde_json::to_value(t.outcome)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn role_of(s: &str) -> Role {
    match s {
        "operator" => Role::Operator,
        _ => Role::Tenant,
    }
}

/// The traces of a batch, each id once: a request written twice in one batch is
/// stored as its last version (one upsert may not touch a row twice).
fn last_versions(traces: Vec<&RequestTrace>) -> Vec<&RequestTrace> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(traces.len());
    for (i, t) in traces.iter().enumerate() {
        last.insert(&t.id, i);
    }
    if last.len() == traces.len() {
        return traces;
    }
    traces
        .iter()
        .enumerate()
        .filter(|(i, t)| last[t.id.as_str()] == *i)
        .map(|(_, t)| *t)
        .collect()
}

/// A request's attempts, each `seq` once (the last one written, as INSERT OR REPLACE
/// would leave it).
fn unique_attempts(t: &RequestTrace) -> Vec<&AttemptRecord> {
    if t.attempts.windows(2).all(|w| w[0].seq < w[1].seq) {
        return t.attempts.iter().collect();
    }
    let mut seen = HashSet::new();
    let mut out: Vec<&AttemptRecord> = t
        .attempts
        .iter()
        .rev()
        .filter(|a| seen.insert(a.seq))
        .collect();
    out.reverse();
    out
}

/// Writes one chunk of requests (ids unique) with their attempts.
fn write_traces(
    tx: &mut ::postgres::Transaction<'_>,
    s: &Statements,
    traces: &[&RequestTrace],
    records: &[Vec<(&AttemptRecord, String)>],
) -> Result<(), StoreError> {
    let ids: Vec<&str> = traces.iter().map(|t| t.id.as_str()).collect();
    let tenants: Vec<&str> = traces.iter().map(|t| t.tenant.as_str()).collect();
    let pipelines: Vec<&str> = traces.iter().map(|t| t.pipeline.as_str()).collect();
    let created: Vec<i64> = traces.iter().map(|t| t.created_at).collect();
    let latency: Vec<f64> = traces.iter().map(|t| t.latency_ms).collect();
    let cost: Vec<f64> = traces.iter().map(|t| t.cost_usd).collect();
    let outcomes: Vec<String> = traces.iter().map(|t| outcome_text(t)).collect();
    let models: Vec<Option<&str>> = traces.iter().map(|t| t.model.as_deref()).collect();
    let scores: Vec<Option<f64>> = traces.iter().map(|t| t.score).collect();
    let answers: Vec<Option<&str>> = traces.iter().map(|t| t.answer.as_deref()).collect();
    let errors: Vec<Option<&str>> = traces.iter().map(|t| t.error.as_deref()).collect();
    let tags: Vec<String> = traces
        .iter()
        .map(|t| serde_json::to_string(&t.tags).unwrap_or_default())
        .collect();
    let budgets: Vec<Option<String>> = traces
        .iter()
        .map(|t| t.budget.and_then(|b| serde_json::to_string(&b).ok()))
        .collect();
    let chosen: Vec<Option<i64>> = traces
        .iter()
        .map(|t| t.answer_attempt.map(i64::from))
        .collect();
    let choices: Vec<Option<String>> = traces
        .iter()
        .map(|t| super::database::answer_attempts_text(t))
        .collect();
    let replaced: Vec<String> = tx
        .query(
            &s.upsert_requests,
            &[
                &ids, &tenants, &pipelines, &created, &latency, &cost, &outcomes, &models, &scores,
                &answers, &errors, &tags, &budgets, &chosen, &choices,
            ],
        )?
        .iter()
        .filter(|r| r.get::<_, bool>(1))
        .map(|r| r.get(0))
        .collect();
    if !replaced.is_empty() {
        tx.execute(&s.delete_attempts, &[&replaced])?;
        tx.execute(&s.delete_tags, &[&replaced])?;
    }
    let (mut g_ids, mut g_tenants, mut g_tags, mut g_created) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for t in traces {
        for tag in distinct_tags(&t.tags) {
            g_ids.push(t.id.as_str());
            g_tenants.push(t.tenant.as_str());
            g_tags.push(tag);
            g_created.push(t.created_at);
        }
    }
    if !g_ids.is_empty() {
        tx.execute(&s.insert_tags, &[&g_ids, &g_tenants, &g_tags, &g_created])?;
    }

    let count: usize = records.iter().map(Vec::len).sum();
    if count == 0 {
        return Ok(());
    }
    let mut a_ids: Vec<&str> = Vec::with_capacity(count);
    let mut a_seq: Vec<i64> = Vec::with_capacity(count);
    let mut a_record: Vec<&str> = Vec::with_capacity(count);
    let mut a_model: Vec<&str> = Vec::with_capacity(count);
    let mut a_outcome: Vec<&str> = Vec::with_capacity(count);
    let mut a_latency: Vec<f64> = Vec::with_capacity(count);
    let mut a_cost: Vec<f64> = Vec::with_capacity(count);
    for (t, attempts) in traces.iter().zip(records) {
        for (a, record) in attempts {
            a_ids.push(&t.id);
            a_seq.push(i64::from(a.seq));
            a_record.push(record);
            a_model.push(&a.model);
            a_outcome.push(a.outcome.as_str());
            a_latency.push(a.latency_ms);
            a_cost.push(a.cost_usd);
        }
    }
    tx.execute(
        &s.insert_attempts,
        &[
            &a_ids, &a_seq, &a_record, &a_model, &a_outcome, &a_latency, &a_cost,
        ],
    )?;
    Ok(())
}

impl Database for Postgres {
    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        self.ready()?;
        loop {
            let mut tx = self.client.transaction()?;
            tx.batch_execute(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
                 CREATE TABLE IF NOT EXISTS arbiter_schema (version INT NOT NULL);"
            ))?;
            let found: i64 = tx
                .query_one(
                    "SELECT COALESCE(max(version), 0)::bigint FROM arbiter_schema",
                    &[],
                )?
                .get(0);
            if found > known {
                return Err(StoreError::NewerSchema {
                    path: PathBuf::from(&self.name),
                    found,
                    known,
                });
            }
            if found == known {
                tx.commit()?;
                return Ok(());
            }
            tx.batch_execute(MIGRATIONS[found as usize])?;
            tx.execute("DELETE FROM arbiter_schema", &[])?;
            tx.execute(
                "INSERT INTO arbiter_schema (version) VALUES ($1)",
                &[&(found as i32 + 1)],
            )?;
            tx.commit()?;
        }
    }

    fn write_batch(&mut self, ops: &[WriteOp<'_>], usage: &[UsageRow]) -> Result<(), StoreError> {
        let s = self.statements()?;
        let mut traces = Vec::new();
        let mut judged: Vec<&StatsEvent> = Vec::new();
        let mut keys: Vec<&str> = Vec::new();
        let mut key_times: Vec<i64> = Vec::new();
        for op in ops {
            match op {
                WriteOp::Trace(t) => traces.push(*t),
                WriteOp::KeyUsed { id, at } => {
                    keys.push(*id);
                    key_times.push(*at);
                }
                WriteOp::Feedback { .. } => {}
                WriteOp::Judged(e) => judged.push(*e),
            }
        }
        let traces = last_versions(traces);

        let mut tx = self.client.transaction()?;
        let mut start = 0;
        while start < traces.len() {
            // A chunk: up to CHUNK_TRACES requests, or about CHUNK_BYTES of text.
            let mut records = Vec::new();
            let mut bytes = 0;
            let mut end = start;
            while end < traces.len()
                && end - start < CHUNK_TRACES
                && (end == start || bytes < CHUNK_BYTES)
            {
                let t = traces[end];
                let attempts: Vec<(&AttemptRecord, String)> = unique_attempts(t)
                    .into_iter()
                    .map(|a| (a, serde_json::to_string(a).unwrap_or_default()))
                    .collect();
                bytes += t.answer.as_ref().map_or(0, String::len)
                    + t.error.as_ref().map_or(0, String::len)
                    + attempts.iter().map(|(_, r)| r.len()).sum::<usize>();
                records.push(attempts);
                end += 1;
            }
            write_traces(&mut tx, &s, &traces[start..end], &records)?;
            start = end;
        }
        for op in ops {
            if let WriteOp::Feedback {
                tenant,
                feedback,
                at,
            } = op
            {
                tx.execute(
                    &s.insert_feedback,
                    &[
                        &feedback.request_id,
                        tenant,
                        at,
                        &feedback.correct,
                        &feedback.score,
                        &feedback.note,
                    ],
                )?;
            }
        }
        if !keys.is_empty() {
            tx.execute(&s.keys_used, &[&keys, &key_times])?;
        }
        if !usage.is_empty() {
            let col = |f: fn(&UsageRow) -> &str| usage.iter().map(f).collect::<Vec<&str>>();
            let num = |f: fn(&UsageRow) -> i64| usage.iter().map(f).collect::<Vec<i64>>();
            let cost: Vec<f64> = usage.iter().map(|u| u.cost_usd).collect();
            tx.execute(
                &s.upsert_usage,
                &[
                    &col(|u| &u.tenant),
                    &col(|u| &u.day),
                    &col(|u| &u.pipeline),
                    &col(|u| &u.model),
                    &num(|u| u.requests),
                    &num(|u| u.calls),
                    &num(|u| u.input_tokens),
                    &num(|u| u.output_tokens),
                    &cost,
                    &num(|u| u.errors),
                ],
            )?;
        }
        if let Some(replica) = &self.replica {
            let events = traces
                .iter()
                .flat_map(|t| StatsBook::events(t))
                .chain(judged.into_iter().cloned());
            for payload in stats_payloads(replica, events) {
                tx.execute("SELECT pg_notify($1, $2)", &[&STATS_CHANNEL, &payload])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Deleted rows' space is reused once vacuumed (autovacuum); the tables do not
    /// shrink.
    fn prune(
        &mut self,
        cutoff_ms: i64,
        chunk: usize,
        max_chunks: usize,
    ) -> Result<bool, StoreError> {
        let s = self.statements()?;
        let tenants: Vec<String> = self
            .client
            .query(TENANTS, &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let limit = i64::try_from(chunk).unwrap_or(i64::MAX);
        let mut chunks = 0;
        for tenant in tenants {
            loop {
                if chunks == max_chunks {
                    return Ok(true);
                }
                chunks += 1;
                // One statement: its own transaction.
                let gone = self
                    .client
                    .execute(&s.prune, &[&tenant, &cutoff_ms, &limit])?;
                if (gone as usize) < chunk {
                    break;
                }
            }
        }
        Ok(false)
    }

    /// Requests are read newest first along `seq` (insertion order), so start-up reads
    /// at most `limit` of them however large the store has grown.
    fn recent_attempts(&mut self, limit: usize) -> Result<Vec<RecentAttempt>, StoreError> {
        self.ready()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .client
            .query(WARM_QUERY, &[&limit])?
            .iter()
            .map(|r| RecentAttempt {
                record: r.get(0),
                tags: r.get(1),
                tenant: r.get(2),
            })
            .collect())
    }

    fn trace(&mut self, tenant: &str, id: &str) -> Result<Option<TraceRow>, StoreError> {
        self.ready()?;
        let Some(r) = self.client.query_opt(
            "SELECT pipeline, created_at, latency_ms, cost_usd, outcome, model, score, answer, error, tags, budget,
                    answer_attempt, answer_attempts
             FROM requests WHERE id = $1 AND tenant = $2",
            &[&id, &tenant],
        )?
        else {
            return Ok(None);
        };
        let attempts = self
            .client
            .query(
                "SELECT record FROM attempts WHERE request_id = $1 ORDER BY seq",
                &[&id],
            )?
            .iter()
            .map(|a| a.get(0))
            .collect();
        Ok(Some(TraceRow {
            pipeline: r.get(0),
            created_at: r.get(1),
            latency_ms: r.get(2),
            cost_usd: r.get(3),
            outcome: r.get(4),
            model: r.get(5),
            score: r.get(6),
            answer: r.get(7),
            error: r.get(8),
            tags: r.get(9),
            budget: r.get(10),
            answer_attempt: r.get(11),
            answer_attempts: r.get(12),
            attempts,
        }))
    }

    fn traces(
        &mut self,
        tenant: &str,
        filter: &TraceFilter,
    ) -> Result<Vec<TraceSummaryRow>, StoreError> {
        self.ready()?;
        let (sql, params) = trace_list_query(tenant, filter, |n| format!("${n}"));
        let values: Vec<Box<dyn ::postgres::types::ToSql + Sync>> = params
            .into_iter()
            .map(|p| -> Box<dyn ::postgres::types::ToSql + Sync> {
                match p {
                    Param::Text(s) => Box::new(s),
                    Param::Int(i) => Box::new(i),
                }
            })
            .collect();
        let refs: Vec<&(dyn ::postgres::types::ToSql + Sync)> =
            values.iter().map(|v| v.as_ref()).collect();
        Ok(self
            .client
            .query(&sql, &refs)?
            .iter()
            .map(|r| TraceSummaryRow {
                id: r.get(0),
                pipeline: r.get(1),
                created_at: r.get(2),
                latency_ms: r.get(3),
                cost_usd: r.get(4),
                outcome: r.get(5),
                model: r.get(6),
                tags: r.get(7),
            })
            .collect())
    }

    fn window_requests(
        &mut self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<WindowRow>, StoreError> {
        self.ready()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .client
            .query(WINDOW_REQUESTS, &[&tenant, &since_ms, &until_ms, &limit])?
            .iter()
            .map(|r| WindowRow {
                pipeline: r.get(0),
                outcome: r.get(1),
                cost_usd: r.get(2),
                latency_ms: r.get(3),
            })
            .collect())
    }

    fn window_count(
        &mut self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.ready()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let n: i64 = self
            .client
            .query_one(WINDOW_COUNT, &[&tenant, &since_ms, &until_ms, &limit])?
            .get(0);
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn window_plugin_calls(
        &mut self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<PluginCallRow>, StoreError> {
        self.ready()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .client
            .query(
                WINDOW_PLUGIN_CALLS,
                &[&tenant, &since_ms, &until_ms, &limit],
            )?
            .iter()
            .map(|r| PluginCallRow {
                kind: r.get::<_, Option<String>>(0).unwrap_or_default(),
                model: r.get(1),
                latency_ms: r.get(2),
                error: r.get(3),
                verdicts: r.get(4),
            })
            .collect())
    }

    fn tenants(&mut self) -> Result<Vec<TenantRow>, StoreError> {
        self.ready()?;
        Ok(self
            .client
            .query(
                "SELECT name, created_at, disabled, policy FROM tenants ORDER BY created_at, name",
                &[],
            )?
            .iter()
            .map(|r| TenantRow {
                name: r.get(0),
                created_at: r.get(1),
                disabled: r.get(2),
                policy: r.get(3),
            })
            .collect())
    }

    fn create_tenant(&mut self, t: &TenantRow) -> Result<bool, StoreError> {
        self.announce("tenants", |tx| {
            Ok(tx.execute(
                "INSERT INTO tenants (name, created_at, disabled, policy) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&t.name, &t.created_at, &t.disabled, &t.policy],
            )? == 1)
        })
    }

    fn update_tenant(&mut self, t: &TenantRow) -> Result<bool, StoreError> {
        self.announce("tenants", |tx| {
            Ok(tx.execute(
                "UPDATE tenants SET disabled = $2, policy = $3 WHERE name = $1",
                &[&t.name, &t.disabled, &t.policy],
            )? == 1)
        })
    }

    fn delete_tenant(&mut self, name: &str) -> Result<bool, StoreError> {
        self.announce("tenants", |tx| {
            tx.execute(
                "DELETE FROM api_keys WHERE tenant = $1 AND role = 'tenant'",
                &[&name],
            )?;
            tx.execute("DELETE FROM tenant_plugins WHERE tenant = $1", &[&name])?;
            tx.execute("DELETE FROM tenant_pipelines WHERE tenant = $1", &[&name])?;
            Ok(tx.execute("DELETE FROM tenants WHERE name = $1", &[&name])? == 1)
        })
    }

    fn keys(&mut self) -> Result<Vec<KeyRecord>, StoreError> {
        self.ready()?;
        Ok(self
            .client
            .query(
                "SELECT id, key_hash, tenant, role, label, prefix, created_at, expires_at, revoked_at,
                        last_used_at
                 FROM api_keys ORDER BY created_at, id",
                &[],
            )?
            .iter()
            .map(|r| {
                let role = role_of(r.get(3));
                KeyRecord {
                    id: r.get(0),
                    hash: r.get(1),
                    tenant: match role {
                        Role::Tenant => Some(r.get(2)),
                        Role::Operator => None,
                    },
                    role,
                    name: r.get(4),
                    prefix: r.get(5),
                    created_at: r.get(6),
                    expires_at: r.get(7),
                    revoked_at: r.get(8),
                    last_used_at: r.get(9),
                }
            })
            .collect())
    }

    fn add_key(&mut self, k: &KeyRecord) -> Result<(), StoreError> {
        self.announce("keys", |tx| {
            tx.execute(
                "INSERT INTO api_keys (key_hash, tenant, label, created_at, id, role, prefix, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT DO NOTHING",
                &[
                    &k.hash,
                    &k.tenant.as_deref().unwrap_or(""),
                    &k.name,
                    &k.created_at,
                    &k.id,
                    &k.role.as_str(),
                    &k.prefix,
                    &k.expires_at,
                ],
            )?;
            Ok(())
        })
    }

    fn revoke_key(&mut self, id: &str, at: i64) -> Result<bool, StoreError> {
        self.announce("keys", |tx| {
            Ok(tx.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                &[&id, &at],
            )? == 1)
        })
    }

    fn usage(
        &mut self,
        tenant: Option<&str>,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageRow>, StoreError> {
        self.ready()?;
        Ok(self
            .client
            .query(
                "SELECT tenant, day, pipeline, model, requests, calls, input_tokens, output_tokens,
                        cost_usd, errors
                 FROM usage WHERE ($1::text IS NULL OR tenant = $1) AND day >= $2 AND day <= $3
                 ORDER BY tenant, day, pipeline, model",
                &[&tenant, &from, &to],
            )?
            .iter()
            .map(|r| UsageRow {
                tenant: r.get(0),
                day: r.get(1),
                pipeline: r.get(2),
                model: r.get(3),
                requests: r.get(4),
                calls: r.get(5),
                input_tokens: r.get(6),
                output_tokens: r.get(7),
                cost_usd: r.get(8),
                errors: r.get(9),
            })
            .collect())
    }

    fn spent(
        &mut self,
        tenant: &str,
        today: &str,
        month_start: &str,
    ) -> Result<(f64, f64), StoreError> {
        self.ready()?;
        let r = self.client.query_one(
            "SELECT COALESCE(sum(cost_usd) FILTER (WHERE day = $2), 0),
                    COALESCE(sum(cost_usd) FILTER (WHERE day >= $3), 0)
             FROM usage WHERE tenant = $1 AND day <= $2 AND (day = $2 OR day >= $3)",
            &[&tenant, &today, &month_start],
        )?;
        Ok((r.get(0), r.get(1)))
    }

    fn tenant_plugins(&mut self, with_bytes: bool) -> Result<Vec<PluginRow>, StoreError> {
        self.ready()?;
        Ok(self
            .client
            .query(
                "SELECT tenant, name, meta, CASE WHEN $1 THEN bytes ELSE ''::bytea END
                 FROM tenant_plugins ORDER BY created_at, seq",
                &[&with_bytes],
            )?
            .iter()
            .map(|r| PluginRow {
                tenant: r.get(0),
                name: r.get(1),
                meta: r.get(2),
                bytes: r.get(3),
            })
            .collect())
    }

    fn plugin_bytes(
        &mut self,
        tenant: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.ready()?;
        Ok(self
            .client
            .query_opt(
                "SELECT bytes FROM tenant_plugins WHERE tenant = $1 AND name = $2 AND version = $3",
                &[&tenant, &name, &version],
            )?
            .map(|r| r.get(0)))
    }

    fn add_plugin_version(
        &mut self,
        row: &PluginRow,
        version: &str,
        created_at: i64,
    ) -> Result<bool, StoreError> {
        self.announce("catalog", |tx| {
            Ok(tx.execute(
                "INSERT INTO tenant_plugins (tenant, name, version, created_at, meta, bytes)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT DO NOTHING",
                &[
                    &row.tenant,
                    &row.name,
                    &version,
                    &created_at,
                    &row.meta,
                    &row.bytes,
                ],
            )? == 1)
        })
    }

    fn delete_plugin(&mut self, tenant: &str, name: &str) -> Result<usize, StoreError> {
        self.announce("catalog", |tx| {
            Ok(tx.execute(
                "DELETE FROM tenant_plugins WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )? as usize)
        })
    }

    fn tenant_pipelines(&mut self) -> Result<Vec<PipelineRow>, StoreError> {
        self.ready()?;
        Ok(self
            .client
            .query(
                "SELECT tenant, name, updated_at, definition FROM tenant_pipelines ORDER BY tenant, name",
                &[],
            )?
            .iter()
            .map(|r| PipelineRow {
                tenant: r.get(0),
                name: r.get(1),
                updated_at: r.get(2),
                definition: r.get(3),
            })
            .collect())
    }

    fn put_pipeline(&mut self, row: &PipelineRow) -> Result<(), StoreError> {
        self.announce("catalog", |tx| {
            tx.execute(
                "INSERT INTO tenant_pipelines (tenant, name, updated_at, definition) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, name) DO UPDATE SET
                     updated_at = excluded.updated_at, definition = excluded.definition",
                &[&row.tenant, &row.name, &row.updated_at, &row.definition],
            )?;
            Ok(())
        })
    }

    fn heartbeat(&mut self, replica: &str, now_ms: i64, since_ms: i64) -> Result<u32, StoreError> {
        self.ready()?;
        self.client.execute(
            "INSERT INTO replicas (id, seen_at) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            &[&replica, &now_ms],
        )?;
        // Replicas gone for an hour are forgotten (a kill -9 leaves its row behind).
        self.client.execute(
            "DELETE FROM replicas WHERE seen_at < $1",
            &[&(now_ms - 3_600_000)],
        )?;
        let live: i64 = self
            .client
            .query_one(
                "SELECT count(*) FROM replicas WHERE seen_at >= $1 OR id = $2",
                &[&since_ms, &replica],
            )?
            .get(0);
        Ok(u32::try_from(live).unwrap_or(u32::MAX).max(1))
    }

    fn retire(&mut self, replica: &str) -> Result<(), StoreError> {
        self.ready()?;
        self.client
            .execute("DELETE FROM replicas WHERE id = $1", &[&replica])?;
        Ok(())
    }

    fn delete_pipeline(&mut self, tenant: &str, name: &str) -> Result<bool, StoreError> {
        self.announce("catalog", |tx| {
            Ok(tx.execute(
                "DELETE FROM tenant_pipelines WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )? == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{AttemptKind, AttemptOutcome, RequestOutcome};
    use crate::store::test_cluster;
    use crate::store::Feedback;

    /// A connection to a new, empty database; `None` (after saying so) without a server.
    fn fresh() -> Option<String> {
        let url = test_cluster::fresh_database();
        if url.is_none() {
            eprintln!("SKIPPED: no PostgreSQL server for this test (see test_cluster)");
        }
        url
    }

    fn migrated(url: &str) -> Postgres {
        let mut db = Postgres::connect(url).unwrap();
        db.migrate().unwrap();
        db
    }

    fn attempt(seq: u32, model: &str) -> AttemptRecord {
        AttemptRecord {
            seq,
            node: "root".into(),
            kind: AttemptKind::Model,
            model: model.into(),
            sample: Some(0),
            started_ms: 0.0,
            latency_ms: 11.0,
            input_tokens: 3,
            output_tokens: 4,
            cost_usd: 0.25,
            outcome: AttemptOutcome::Accepted,
            verdicts: vec![],
            score: Some(0.9),
            error: None,
            text: Some("42".into()),
            // Stored with the attempt, so its round trip is checked with the rest.
            tool_calls: vec![crate::runtime::types::ToolCall {
                id: "call_0".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
            }],
            finish_reason: Some("stop".into()),
            label: None,
        }
    }

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
            answer_attempt: Some(1),
            answer_attempts: vec![1, 0],
            error: None,
            tags: vec!["math".into()],
            budget: Some(crate::pipeline::BudgetLimits {
                max_cost_usd: Some(1.5),
                ..Default::default()
            }),
            attempts: vec![attempt(0, "m"), attempt(1, "m")],
        }
    }

    fn usage_row(tenant: &str, day: &str, model: &str, cost: f64) -> UsageRow {
        UsageRow {
            tenant: tenant.into(),
            day: day.into(),
            pipeline: "p".into(),
            model: model.into(),
            requests: 1,
            calls: 2,
            input_tokens: 3,
            output_tokens: 4,
            cost_usd: cost,
            errors: 0,
        }
    }

    fn count(db: &mut Postgres, table: &str) -> i64 {
        db.client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .unwrap()
            .get(0)
    }

    fn key(hash: &str, tenant: Option<&str>) -> KeyRecord {
        let role = if tenant.is_some() {
            Role::Tenant
        } else {
            Role::Operator
        };
        KeyRecord::new(
            hash.into(),
            "sk-".into(),
            tenant.map(String::from),
            role,
            "test".into(),
        )
    }

    fn tenant(name: &str) -> TenantRow {
        TenantRow {
            name: name.into(),
            created_at: 5,
            disabled: false,
            policy: r#"{"models":["*"]}"#.into(),
        }
    }

    #[test]
    fn migrating_twice_changes_nothing_and_a_newer_schema_is_refused() {
        let Some(url) = fresh() else { return };
        let mut db = migrated(&url);
        db.migrate().unwrap();
        let version: i32 = db
            .client
            .query_one("SELECT version FROM arbiter_schema", &[])
            .unwrap()
            .get(0);
        assert_eq!(version, MIGRATIONS.len() as i32);
        assert_eq!(count(&mut db, "arbiter_schema"), 1);

        db.client
            .execute("UPDATE arbiter_schema SET version = 99", &[])
            .unwrap();
        let err = Postgres::connect(&url).unwrap().migrate().unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::NewerSchema {
                    found: 99,
                    known,
                    ..
                } if known == MIGRATIONS.len() as i64
            ),
            "{err}"
        );
    }

    /// Replicas starting together: both succeed, the schema is created once.
    #[test]
    fn replicas_migrating_at_once_migrate_once() {
        let Some(url) = fresh() else { return };
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let replicas: Vec<_> = (0..2)
            .map(|_| {
                let (url, start) = (url.clone(), start.clone());
                std::thread::spawn(move || {
                    let mut db = Postgres::connect(&url)?;
                    start.wait();
                    db.migrate()
                })
            })
            .collect();
        for r in replicas {
            r.join().unwrap().unwrap();
        }
        let mut db = migrated(&url);
        let row = db
            .client
            .query_one("SELECT count(*), max(version) FROM arbiter_schema", &[])
            .unwrap();
        assert_eq!(
            (row.get::<_, i64>(0), row.get::<_, i32>(1)),
            (1, MIGRATIONS.len() as i32)
        );
    }

    #[test]
    fn the_database_is_named_without_its_password() {
        assert_eq!(
            redact("postgres://arbiter:s3cret@db:5432/arbiter?sslmode=disable"),
            "postgres://arbiter@db:5432/arbiter?sslmode=disable"
        );
        assert_eq!(
            redact("postgresql://db/arbiter?user=a&password=s3cret&x=1"),
            "postgresql://db/arbiter?user=a&password=***&x=1"
        );
        assert_eq!(
            redact("host=db password='s 3cret' user=a"),
            "host=db password=*** user=a"
        );
        assert_eq!(redact("postgres://a@db/x"), "postgres://a@db/x");
    }

    #[test]
    fn traces_feedback_key_uses_and_usage_round_trip() {
        let Some(url) = fresh() else { return };
        let mut db = migrated(&url);
        let k = key("sha256:00112233445566778899", Some("a"));
        db.add_key(&k).unwrap();

        let (r1, mut r2) = (trace("r1", "a"), trace("r2", "b"));
        r2.model = None;
        r2.score = None;
        r2.answer = None;
        r2.error = Some("upstream failed".into());
        r2.outcome = RequestOutcome::Failed;
        r2.attempts[1].model = "n".into();
        let verdict = Feedback {
            request_id: "r1".into(),
            correct: Some(false),
            score: Some(0.25),
            note: Some("wrong".into()),
        };
        let usage = [
            usage_row("a", "2024-03-01", "m", 0.5),
            usage_row("a", "2024-03-02", "m", 0.25),
            usage_row("b", "2024-03-02", "", 1.0),
        ];
        db.write_batch(
            &[
                WriteOp::Trace(&r1),
                WriteOp::Trace(&r2),
                WriteOp::Feedback {
                    tenant: "a",
                    feedback: &verdict,
                    at: 77,
                },
                WriteOp::KeyUsed { id: &k.id, at: 50 },
                WriteOp::KeyUsed { id: &k.id, at: 60 },
                WriteOp::KeyUsed {
                    id: "key_unknown",
                    at: 60,
                },
            ],
            &usage,
        )
        .unwrap();

        let row = db.trace("a", "r1").unwrap().expect("stored");
        assert_eq!(
            (
                row.pipeline.as_str(),
                row.created_at,
                row.latency_ms,
                row.cost_usd
            ),
            ("p", 1, 12.0, 0.5)
        );
        assert_eq!(row.outcome, "accepted");
        assert_eq!(
            (
                row.model.as_deref(),
                row.score,
                row.answer.as_deref(),
                row.error
            ),
            (Some("m"), Some(0.9), Some("42"), None)
        );
        assert_eq!(row.tags, r#"["math"]"#);
        assert_eq!(
            (row.answer_attempt, row.answer_attempts.as_deref()),
            (Some(1), Some("[1,0]")),
            "which attempts' answers were returned"
        );
        let attempts: Vec<AttemptRecord> = row
            .attempts
            .iter()
            .map(|a| serde_json::from_str(a).unwrap())
            .collect();
        assert_eq!(attempts, r1.attempts);
        assert!(db.trace("b", "r1").unwrap().is_none(), "another tenant's");
        let row = db.trace("b", "r2").unwrap().unwrap();
        assert_eq!(row.outcome, "failed");
        assert_eq!((row.model, row.score, row.answer), (None, None, None));
        assert_eq!(row.error.as_deref(), Some("upstream failed"));

        let fb = db
            .client
            .query_one(
                "SELECT request_id, tenant, created_at, correct, score, note FROM feedback",
                &[],
            )
            .unwrap();
        assert_eq!(fb.get::<_, String>(0), "r1");
        assert_eq!(fb.get::<_, String>(1), "a");
        assert_eq!(fb.get::<_, i64>(2), 77);
        assert_eq!(fb.get::<_, Option<bool>>(3), Some(false));
        assert_eq!(fb.get::<_, Option<f64>>(4), Some(0.25));
        assert_eq!(fb.get::<_, Option<String>>(5).as_deref(), Some("wrong"));
        assert_eq!(db.keys().unwrap()[0].last_used_at, Some(60));
        // A key's last use never moves back.
        db.write_batch(&[WriteOp::KeyUsed { id: &k.id, at: 10 }], &[])
            .unwrap();
        assert_eq!(db.keys().unwrap()[0].last_used_at, Some(60));

        // Newest request first, each request's attempts last first.
        let recent = db.recent_attempts(10).unwrap();
        let seen: Vec<(String, u32)> = recent
            .iter()
            .map(|a| {
                let rec: AttemptRecord = serde_json::from_str(&a.record).unwrap();
                (a.tenant.clone(), rec.seq)
            })
            .collect();
        let expect = [("b", 1), ("b", 0), ("a", 1), ("a", 0)];
        assert_eq!(
            seen,
            expect.map(|(t, s)| (t.to_string(), s)).to_vec(),
            "newest request first"
        );
        assert_eq!(recent[0].tags, r#"["math"]"#);
        assert_eq!(db.recent_attempts(1).unwrap().len(), 2, "one request's");

        // A request stored again under its id replaces the old one, attempts and all,
        // and is the newest; so is the last of two versions in one batch.
        let mut again = trace("r1", "a");
        again.answer = Some("43".into());
        again.attempts.truncate(1);
        let mut last = again.clone();
        last.answer = Some("44".into());
        db.write_batch(&[WriteOp::Trace(&again), WriteOp::Trace(&last)], &[])
            .unwrap();
        let row = db.trace("a", "r1").unwrap().unwrap();
        assert_eq!(row.answer.as_deref(), Some("44"));
        assert_eq!(row.attempts.len(), 1);
        assert_eq!(count(&mut db, "requests"), 2);
        assert_eq!(db.recent_attempts(1).unwrap()[0].tenant, "a");

        // Usage written twice adds up.
        db.write_batch(&[], &usage).unwrap();
        let rows = db.usage(Some("a"), "2024-03-01", "2024-03-31").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows.iter().map(|r| r.day.as_str()).collect::<Vec<_>>(),
            ["2024-03-01", "2024-03-02"]
        );
        assert_eq!(
            (
                rows[0].requests,
                rows[0].calls,
                rows[0].input_tokens,
                rows[0].output_tokens,
                rows[0].errors
            ),
            (2, 4, 6, 8, 0)
        );
        assert!((rows[0].cost_usd - 1.0).abs() < 1e-9);
        let all = db.usage(None, "2024-03-02", "2024-03-02").unwrap();
        assert_eq!(
            all.iter()
                .map(|r| (r.tenant.as_str(), r.model.as_str()))
                .collect::<Vec<_>>(),
            [("a", "m"), ("b", "")],
            "ordered by tenant, day, pipeline, model"
        );
        assert!(db
            .usage(Some("a"), "2024-04-01", "2024-04-30")
            .unwrap()
            .is_empty());

        let (day, month) = db.spent("a", "2024-03-02", "2024-03-01").unwrap();
        assert!((day - 0.5).abs() < 1e-9, "{day}");
        assert!((month - 1.5).abs() < 1e-9, "{month}");
        let (day, month) = db.spent("a", "2024-04-01", "2024-04-01").unwrap();
        assert_eq!((day, month), (0.0, 0.0));
        assert_eq!(
            db.spent("nobody", "2024-03-02", "2024-03-01").unwrap(),
            (0.0, 0.0)
        );
    }

    #[test]
    fn a_batch_larger_than_a_statement_is_written_whole() {
        let Some(url) = fresh() else { return };
        let mut db = migrated(&url);
        let traces: Vec<RequestTrace> = (0..CHUNK_TRACES + 5)
            .map(|i| trace(&format!("r{i}"), "a"))
            .collect();
        let ops: Vec<WriteOp<'_>> = traces.iter().map(WriteOp::Trace).collect();
        db.write_batch(&ops, &[]).unwrap();
        assert_eq!(count(&mut db, "requests"), traces.len() as i64);
        assert_eq!(count(&mut db, "attempts"), 2 * traces.len() as i64);
        let newest: AttemptRecord =
            serde_json::from_str(&db.recent_attempts(1).unwrap()[0].record).unwrap();
        assert_eq!(newest.seq, 1);
        let n: i64 = db
            .client
            .query_one("SELECT count(*) FROM requests WHERE seq = (SELECT max(seq) FROM requests) AND id = $1", &[&format!("r{}", CHUNK_TRACES + 4)])
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "the last written is the newest");
    }

    #[test]
    fn tenants_keys_plugins_and_pipelines() {
        let Some(url) = fresh() else { return };
        let mut db = migrated(&url);

        // Tenants.
        assert!(db.create_tenant(&tenant("a")).unwrap());
        assert!(!db.create_tenant(&tenant("a")).unwrap(), "names are unique");
        assert!(db.create_tenant(&tenant("b")).unwrap());
        let mut changed = tenant("a");
        changed.disabled = true;
        changed.policy = r#"{"models":["m"]}"#.into();
        changed.created_at = 999;
        assert!(db.update_tenant(&changed).unwrap());
        assert!(!db.update_tenant(&tenant("nobody")).unwrap());
        let rows = db.tenants().unwrap();
        assert_eq!(rows.len(), 2);
        let a = rows.iter().find(|t| t.name == "a").unwrap();
        assert_eq!(
            (a.created_at, a.disabled, a.policy.as_str()),
            (5, true, r#"{"models":["m"]}"#),
            "created_at is kept"
        );

        // Keys.
        let ka = key("sha256:aaaaaaaaaaaaaaaaaaaa", Some("a"));
        let kb = key("sha256:bbbbbbbbbbbbbbbbbbbb", Some("b"));
        let mut op = key("sha256:cccccccccccccccccccc", None);
        op.expires_at = Some(123);
        for k in [&ka, &kb, &op] {
            db.add_key(k).unwrap();
        }
        let mut dup = ka.clone();
        dup.name = "renamed".into();
        db.add_key(&dup).unwrap();
        let keys = db.keys().unwrap();
        assert_eq!(keys.len(), 3);
        let stored = keys.iter().find(|k| k.id == ka.id).unwrap();
        assert_eq!(stored, &ka, "a key already stored is left as it is");
        let stored = keys.iter().find(|k| k.id == op.id).unwrap();
        assert_eq!(stored, &op);
        assert_eq!(stored.tenant, None);
        assert!(db.revoke_key(&ka.id, 7).unwrap());
        assert!(db.revoke_key(&ka.id, 8).unwrap());
        assert!(!db.revoke_key("key_nobody", 8).unwrap());
        let keys = db.keys().unwrap();
        let stored = keys.iter().find(|k| k.id == ka.id).unwrap();
        assert_eq!(stored.revoked_at, Some(7), "the first revocation stays");

        // Plugins.
        let plugin = |tenant: &str, name: &str, bytes: &[u8]| PluginRow {
            tenant: tenant.into(),
            name: name.into(),
            meta: format!(r#"{{"name":"{name}"}}"#),
            bytes: bytes.to_vec(),
        };
        assert!(db
            .add_plugin_version(&plugin("a", "v", b"\0one\xff"), "sha256:1", 20)
            .unwrap());
        assert!(db
            .add_plugin_version(&plugin("a", "v", b"two"), "sha256:2", 10)
            .unwrap());
        assert!(db
            .add_plugin_version(&plugin("a", "w", b"three"), "sha256:3", 10)
            .unwrap());
        assert!(db
            .add_plugin_version(&plugin("b", "v", b"four"), "sha256:1", 30)
            .unwrap());
        assert!(
            !db.add_plugin_version(&plugin("a", "v", b"other"), "sha256:1", 40)
                .unwrap(),
            "a version is stored once"
        );
        let rows = db.tenant_plugins(true).unwrap();
        assert_eq!(
            rows.iter()
                .map(|p| (p.tenant.as_str(), p.name.as_str(), p.bytes.as_slice()))
                .collect::<Vec<_>>(),
            [
                ("a", "v", b"two".as_slice()),
                ("a", "w", b"three".as_slice()),
                ("a", "v", b"\0one\xff".as_slice()),
                ("b", "v", b"four".as_slice())
            ],
            "oldest first, then in the order stored"
        );
        assert_eq!(rows[0].meta, r#"{"name":"v"}"#);
        assert_eq!(db.delete_plugin("a", "w").unwrap(), 1);
        assert_eq!(db.delete_plugin("a", "w").unwrap(), 0);

        // Pipelines.
        let pipeline = |tenant: &str, name: &str, at: i64| PipelineRow {
            tenant: tenant.into(),
            name: name.into(),
            updated_at: at,
            definition: format!(r#"{{"v":{at}}}"#),
        };
        db.put_pipeline(&pipeline("a", "p", 1)).unwrap();
        db.put_pipeline(&pipeline("a", "p", 2)).unwrap();
        db.put_pipeline(&pipeline("a", "q", 3)).unwrap();
        db.put_pipeline(&pipeline("b", "p", 4)).unwrap();
        let rows = db.tenant_pipelines().unwrap();
        assert_eq!(rows.len(), 3);
        let p = rows
            .iter()
            .find(|p| p.tenant == "a" && p.name == "p")
            .unwrap();
        assert_eq!((p.updated_at, p.definition.as_str()), (2, r#"{"v":2}"#));
        assert!(db.delete_pipeline("a", "q").unwrap());
        assert!(!db.delete_pipeline("a", "q").unwrap());

        // Deleting a tenant takes its tenant keys, plugins and pipelines, no one else's.
        assert!(db.delete_tenant("a").unwrap());
        assert!(!db.delete_tenant("a").unwrap());
        assert_eq!(
            db.tenants()
                .unwrap()
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        let mut ids: Vec<String> = db.keys().unwrap().into_iter().map(|k| k.id).collect();
        ids.sort();
        let mut expect = vec![kb.id.clone(), op.id.clone()];
        expect.sort();
        assert_eq!(ids, expect);
        let plugins = db.tenant_plugins(true).unwrap();
        assert!(plugins.iter().all(|p| p.tenant == "b") && plugins.len() == 1);
        let pipelines = db.tenant_pipelines().unwrap();
        assert!(pipelines.iter().all(|p| p.tenant == "b") && pipelines.len() == 1);
    }

    #[test]
    fn pruning_deletes_old_requests_with_their_attempts_and_feedback() {
        let Some(url) = fresh() else { return };
        let mut db = migrated(&url);
        // Seven old requests, then three new ones, then one old that finished late; one
        // of the old ones is another tenant's.
        let traces: Vec<RequestTrace> = (0..11)
            .map(|i| {
                let mut t = trace(&format!("r{i}"), if i == 3 { "b" } else { "a" });
                t.created_at = if (7..10).contains(&i) { 2_000 } else { 1_000 };
                t.attempts.truncate(1);
                t
            })
            .collect();
        let verdict = |id: &str| Feedback {
            request_id: id.into(),
            correct: Some(true),
            score: None,
            note: None,
        };
        let (f0, f8) = (verdict("r0"), verdict("r8"));
        let mut ops: Vec<WriteOp<'_>> = traces.iter().map(WriteOp::Trace).collect();
        for f in [&f0, &f8] {
            ops.push(WriteOp::Feedback {
                tenant: "a",
                feedback: f,
                at: 1,
            });
        }
        db.write_batch(&ops, &[]).unwrap();

        // Chunks of three, two per pass: six old ones go, more may be left.
        assert!(db.prune(1_500, 3, 2).unwrap());
        assert_eq!(count(&mut db, "requests"), 5);
        assert!(!db.prune(1_500, 3, 10).unwrap());
        assert_eq!(count(&mut db, "requests"), 3, "the new ones stay");
        assert_eq!(count(&mut db, "attempts"), 3);
        assert_eq!(count(&mut db, "feedback"), 1, "r0's feedback went with it");
        for (id, tenant, kept) in [
            ("r0", "a", false),
            ("r3", "b", false),
            ("r6", "a", false),
            ("r7", "a", true),
            ("r9", "a", true),
            ("r10", "a", false),
        ] {
            assert_eq!(db.trace(tenant, id).unwrap().is_some(), kept, "{id}");
        }
        assert!(!db.prune(1_500, 3, 10).unwrap(), "nothing left");
    }

    /// A connection the server dropped is opened again by the next call.
    #[test]
    fn a_lost_connection_is_reopened() {
        let Some(url) = fresh() else { return };
        let mut db = migrated(&url);
        db.write_batch(&[], &[usage_row("a", "2024-01-01", "m", 1.0)])
            .unwrap();
        let pid: i32 = db
            .client
            .query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .get(0);
        let mut other = Postgres::connect(&url).unwrap();
        other
            .client
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap();
        // The call that finds it gone fails; the next ones reconnect.
        let waited = std::time::Instant::now();
        while db.spent("a", "2024-01-01", "2024-01-01").is_ok() {
            assert!(waited.elapsed() < Duration::from_secs(10), "never noticed");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            db.spent("a", "2024-01-01", "2024-01-01").unwrap(),
            (1.0, 1.0)
        );
        db.write_batch(&[], &[usage_row("a", "2024-01-01", "m", 1.0)])
            .unwrap();
        assert_eq!(
            db.spent("a", "2024-01-01", "2024-01-01").unwrap(),
            (2.0, 2.0)
        );
    }
}
