//! Spend counters in PostgreSQL, shared by every replica of the store: the tenancy's
//! [`SpendLedger`]. A reservation is one call of `arbiter_reserve_spend` (migration 2),
//! which locks the tenant's day row, then its month row, checks both limits and adds the
//! estimate to both, in one transaction: replicas reserving at once wait on each other's
//! rows, so together they overshoot a limit by at most one call's underestimate.
//!
//! Settling moves the counters later: deltas are summed per tenant and day in memory and
//! written by one task, so a request never waits on the database to let go of a call.
//! What a process has not yet written when it dies is lost: mostly released estimates
//! (the counters then stay high, refusing early, never late), and the part of a call's
//! cost above its estimate.
//!
//! The async client (`tokio-postgres`) keeps one connection, opened on first use and
//! again after it is lost; concurrent reservations are pipelined on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::Date;
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::tenancy::spend::{month_of, LedgerReply, SpendLedger, SpendLimits};
use crate::tenancy::Period;

/// How long a reservation waits for the database before the call is refused.
const RESERVE_TIMEOUT: Duration = Duration::from_secs(5);

struct Connection {
    client: Client,
    reserve: Statement,
    adjust: Statement,
}

pub(crate) struct PgLedger {
    config: Config,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    /// Deltas not yet written: (tenant, day) → USD.
    pending: Mutex<HashMap<(String, Date), f64>>,
    wake: Arc<tokio::sync::Notify>,
    writer: std::sync::OnceLock<()>,
}

/// The writer task: holds the ledger only while writing, so it ends with it.
async fn write_pending(ledger: std::sync::Weak<PgLedger>, wake: Arc<tokio::sync::Notify>) {
    loop {
        wake.notified().await;
        // Let the deltas of calls settling together sum up.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let Some(ledger) = ledger.upgrade() else {
            return;
        };
        if !ledger.write_pending().await {
            tokio::time::sleep(Duration::from_secs(1)).await;
            wake.notify_one();
        }
    }
}

impl PgLedger {
    pub(crate) fn new(url: &str) -> Result<Arc<PgLedger>, tokio_postgres::Error> {
        let mut config: Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("arbiter-spend");
        }
        // A reservation holds its tenant's counter rows until it commits, so with
        // synchronous commits one tenant's calls queue behind each other's WAL flush
        // (about 2,600 reservations a second here). Without, a crash of the database
        // server (not of a replica) can lose the last few hundred milliseconds of
        // reservations: counters that low by at most those calls' estimates.
        let options = match config.get_options() {
            Some(given) => format!("{given} -c synchronous_commit=off"),
            None => "-c synchronous_commit=off".to_string(),
        };
        config.options(options);
        Ok(Arc::new(PgLedger {
            config,
            conn: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            wake: Arc::new(tokio::sync::Notify::new()),
            writer: std::sync::OnceLock::new(),
        }))
    }

    /// The open connection, or a new one.
    async fn connection(&self) -> Result<Arc<Connection>, String> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = conn.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(c.clone());
        }
        *conn = None;
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the spend counters' connection failed");
            }
        });
        let reserve = client
            .prepare("SELECT refused, day_usd, month_usd FROM arbiter_reserve_spend($1, $2, $3, $4, $5, $6)")
            .await
            .map_err(|e| e.to_string())?;
        let adjust = client
            .prepare("SELECT arbiter_adjust_spend($1, $2, $3, $4)")
            .await
            .map_err(|e| e.to_string())?;
        let c = Arc::new(Connection {
            client,
            reserve,
            adjust,
        });
        *conn = Some(c.clone());
        Ok(c)
    }

    /// Writes the pending deltas, one tenant and day at a time; a failed one goes back
    /// to be tried again. False if one failed.
    async fn write_pending(&self) -> bool {
        let batch: Vec<((String, Date), f64)> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        let mut ok = true;
        for ((tenant, day), delta) in batch {
            let written = match self.connection().await {
                Ok(c) => c
                    .client
                    .execute(
                        &c.adjust,
                        &[
                            &tenant,
                            &day.to_string(),
                            &month_of(day).to_string(),
                            &delta,
                        ],
                    )
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                tracing::warn!(error = %e, tenant, "settling spend failed; retrying");
                *self
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry((tenant, day))
                    .or_default() += delta;
                ok = false;
            }
        }
        ok
    }
}

/// A handle that starts the writer task on first use (a reservation is settled on a
/// runtime thread; the ledger is made before there may be one).
pub(crate) struct Ledger(pub(crate) Arc<PgLedger>);

#[async_trait::async_trait]
impl SpendLedger for Ledger {
    async fn reserve(
        &self,
        tenant: &str,
        on: Date,
        estimate: f64,
        limits: SpendLimits,
    ) -> Result<LedgerReply, String> {
        let call = async {
            let c = self.0.connection().await?;
            let row = c
                .client
                .query_one(
                    &c.reserve,
                    &[
                        &tenant,
                        &on.to_string(),
                        &month_of(on).to_string(),
                        &estimate,
                        &limits.daily_usd,
                        &limits.monthly_usd,
                    ],
                )
                .await
                .map_err(|e| e.to_string())?;
            let refused: Option<String> = row.get(0);
            Ok(LedgerReply {
                refused: refused.map(|p| {
                    if p == "month" {
                        Period::Month
                    } else {
                        Period::Day
                    }
                }),
                day_usd: row.get(1),
                month_usd: row.get(2),
            })
        };
        tokio::time::timeout(RESERVE_TIMEOUT, call)
            .await
            .map_err(|_| format!("no answer from the database in {RESERVE_TIMEOUT:?}"))?
    }

    async fn spent(&self, tenant: &str, on: Date) -> Result<(f64, f64), String> {
        let read = async {
            let c = self.0.connection().await?;
            let row = c
                .client
                .query_one(
                    "SELECT COALESCE(max(usd) FILTER (WHERE period = 'day'), 0),
                            COALESCE(max(usd) FILTER (WHERE period = 'month'), 0)
                     FROM spend WHERE tenant = $1
                       AND ((period = 'day' AND start = $2) OR (period = 'month' AND start = $3))",
                    &[&tenant, &on.to_string(), &month_of(on).to_string()],
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok((row.get(0), row.get(1)))
        };
        tokio::time::timeout(RESERVE_TIMEOUT, read)
            .await
            .map_err(|_| format!("no answer from the database in {RESERVE_TIMEOUT:?}"))?
    }

    fn adjust(&self, tenant: &str, on: Date, delta: f64) {
        if delta == 0.0 || !delta.is_finite() {
            return;
        }
        *self
            .0
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((tenant.to_string(), on))
            .or_default() += delta;
        if self.0.writer.get().is_none() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                if self.0.writer.set(()).is_ok() {
                    rt.spawn(write_pending(Arc::downgrade(&self.0), self.0.wake.clone()));
                }
            }
        }
        self.0.wake.notify_one();
    }
}
