//! A tenant's spend this UTC day and month, against its limits. Each model call reserves
//! its estimate here before it starts (with the request's own budget, `Budget::reserve`)
//! and settles to its actual cost when it ends, so concurrent requests together overshoot
//! a limit by at most one call's underestimate.
//!
//! One replica counts in memory. Replicas sharing a database count in it instead, through
//! a [`SpendLedger`]: each reservation is one atomic check-and-add there, so the limit
//! holds for the sum over all replicas.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use time::{Date, OffsetDateTime, Time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Month,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the tenant's {} spend limit of ${limit:.2} is reached (${spent:.4} spent or reserved, ${estimate:.4} more asked); it resets at {resets_at} (unix seconds)", match .period { Period::Day => "daily", Period::Month => "monthly" })]
pub struct SpendError {
    pub period: Period,
    pub limit: f64,
    pub spent: f64,
    pub estimate: f64,
    /// Unix seconds when the period ends.
    pub resets_at: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpendLimits {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
}

#[derive(Debug)]
struct State {
    limits: SpendLimits,
    day: Date,
    day_usd: f64,
    /// The first day of the month counted.
    month: Date,
    month_usd: f64,
}

/// What the shared counters answered to a reservation: refused by which period, and
/// the counters (spent and reserved) as the reservation left them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LedgerReply {
    pub refused: Option<Period>,
    pub day_usd: f64,
    pub month_usd: f64,
}

/// Spend counters shared by the replicas of one store (PostgreSQL).
#[async_trait::async_trait]
pub trait SpendLedger: Send + Sync {
    /// Checks `estimate` against both limits and adds it to both counters of `tenant`
    /// (the day `on` and its month) in one atomic step, or adds nothing and says which
    /// limit refuses it. An error: the counters cannot be reached.
    async fn reserve(
        &self,
        tenant: &str,
        on: Date,
        estimate: f64,
        limits: SpendLimits,
    ) -> Result<LedgerReply, String>;

    /// Moves both counters by `delta` (a settled or released reservation), soon: queued,
    /// so dropping a reservation never waits on the database.
    fn adjust(&self, tenant: &str, on: Date, delta: f64);

    /// The counters of `tenant` for the day `on` and its month, as stored (0 for a period
    /// nothing was reserved in yet).
    async fn spent(&self, tenant: &str, on: Date) -> Result<(f64, f64), String>;
}

/// Why a reservation was not made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReserveError {
    #[error("{0}")]
    Limit(SpendError),
    /// Replicas share the counters, and this one cannot reach them: nothing is spent
    /// that the tenant's limits could not account for.
    #[error("the tenant's spend limits cannot be checked: {0}")]
    Unavailable(String),
}

pub struct TenantSpend {
    state: Mutex<State>,
    /// The tenant's name and the shared counters, when replicas share them; `state` then
    /// mirrors what the last reply said, for the admin API.
    shared: Option<(String, Arc<dyn SpendLedger>)>,
}

impl std::fmt::Debug for TenantSpend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantSpend")
            .field("state", &self.state)
            .field("shared", &self.shared.as_ref().map(|(t, _)| t))
            .finish()
    }
}

fn first_of_month(d: Date) -> Date {
    d.replace_day(1).unwrap_or(d)
}

fn next_month(d: Date) -> Date {
    let first = first_of_month(d);
    let (y, m) = (first.year(), first.month());
    let (y, m) = if m == time::Month::December {
        (y + 1, time::Month::January)
    } else {
        (y, m.next())
    };
    Date::from_calendar_date(y, m, 1).unwrap_or(first)
}

fn unix(d: Date) -> i64 {
    d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp()
}

pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

impl TenantSpend {
    /// Counters starting from what the store says was spent today and this month.
    pub fn new(limits: SpendLimits, day_usd: f64, month_usd: f64) -> TenantSpend {
        let day = today();
        TenantSpend {
            state: Mutex::new(State {
                limits,
                day,
                day_usd,
                month: first_of_month(day),
                month_usd,
            }),
            shared: None,
        }
    }

    /// Counters kept in `ledger`, shared with the other replicas.
    pub fn shared(limits: SpendLimits, tenant: &str, ledger: Arc<dyn SpendLedger>) -> TenantSpend {
        TenantSpend {
            shared: Some((tenant.to_string(), ledger)),
            ..TenantSpend::new(limits, 0.0, 0.0)
        }
    }

    pub fn set_limits(&self, limits: SpendLimits) {
        self.lock(today()).limits = limits;
    }

    fn lock(&self, now: Date) -> std::sync::MutexGuard<'_, State> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.day != now {
            s.day = now;
            s.day_usd = 0.0;
        }
        if s.month != first_of_month(now) {
            s.month = first_of_month(now);
            s.month_usd = 0.0;
        }
        s
    }

    /// Holds `estimate` against both limits, or says which one refuses it. True when it
    /// was counted, and so must be settled with [`TenantSpend::adjust`]: shared counters
    /// count only for a tenant with a limit, so a tenant without one never waits on the
    /// database.
    pub async fn reserve(&self, estimate: f64) -> Result<bool, ReserveError> {
        let now = today();
        let Some((tenant, ledger)) = &self.shared else {
            return self
                .reserve_on(now, estimate)
                .map(|()| true)
                .map_err(ReserveError::Limit);
        };
        let limits = self.lock(now).limits;
        if limits.daily_usd.is_none() && limits.monthly_usd.is_none() {
            return Ok(false);
        }
        let reply = ledger
            .reserve(tenant, now, estimate, limits)
            .await
            .map_err(ReserveError::Unavailable)?;
        let mut s = self.lock(now);
        s.day_usd = reply.day_usd;
        s.month_usd = reply.month_usd;
        match reply.refused {
            None => Ok(true),
            Some(period) => Err(ReserveError::Limit(refusal(
                now,
                period,
                &limits,
                (reply.day_usd, reply.month_usd),
                estimate,
            ))),
        }
    }

    fn reserve_on(&self, now: Date, estimate: f64) -> Result<(), SpendError> {
        let mut s = self.lock(now);
        for (period, limit, spent) in [
            (Period::Day, s.limits.daily_usd, s.day_usd),
            (Period::Month, s.limits.monthly_usd, s.month_usd),
        ] {
            if limit.is_some_and(|limit| spent + estimate > limit + 1e-12) {
                return Err(refusal(
                    now,
                    period,
                    &s.limits,
                    (s.day_usd, s.month_usd),
                    estimate,
                ));
            }
        }
        s.day_usd += estimate;
        s.month_usd += estimate;
        Ok(())
    }

    /// Moves the counters by `delta` (actual minus estimate when a call settles, minus
    /// the estimate when it is released); never below zero.
    pub fn adjust(&self, delta: f64) {
        let now = today();
        let mut s = self.lock(now);
        s.day_usd = (s.day_usd + delta).max(0.0);
        s.month_usd = (s.month_usd + delta).max(0.0);
        if let Some((tenant, ledger)) = &self.shared {
            ledger.adjust(tenant, now, delta);
        }
    }

    /// With shared counters, reads them into what [`TenantSpend::spent`] shows (which is
    /// otherwise what this replica's last reservation found); kept as it was if the
    /// database does not answer.
    pub async fn refresh(&self) {
        let Some((tenant, ledger)) = &self.shared else {
            return;
        };
        let now = today();
        if let Ok((day, month)) = ledger.spent(tenant, now).await {
            let mut s = self.lock(now);
            s.day_usd = day;
            s.month_usd = month;
        }
    }

    /// Spent (and reserved) today and this month; with shared counters, as this
    /// replica last read them (see [`TenantSpend::refresh`]).
    pub fn spent(&self) -> (f64, f64) {
        let s = self.lock(today());
        (s.day_usd, s.month_usd)
    }
}

/// The refusal of `estimate` by `period`'s limit, which resets at the period's end.
fn refusal(
    now: Date,
    period: Period,
    limits: &SpendLimits,
    (day_usd, month_usd): (f64, f64),
    estimate: f64,
) -> SpendError {
    let (limit, spent, resets_at) = match period {
        Period::Day => (
            limits.daily_usd,
            day_usd,
            unix(now.next_day().unwrap_or(now)),
        ),
        Period::Month => (limits.monthly_usd, month_usd, unix(next_month(now))),
    };
    SpendError {
        period,
        limit: limit.unwrap_or(0.0),
        spent,
        estimate,
        resets_at,
    }
}

/// The first day of `d`'s month.
pub fn month_of(d: Date) -> Date {
    first_of_month(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_reset_with_the_period() {
        let limits = SpendLimits {
            daily_usd: Some(1.0),
            monthly_usd: Some(1.5),
        };
        let s = TenantSpend::new(limits, 0.0, 0.0);
        let d = Date::from_calendar_date(2026, time::Month::December, 31).unwrap();
        s.reserve_on(d, 0.6).unwrap();
        let e = s.reserve_on(d, 0.6).unwrap_err();
        assert_eq!(e.period, Period::Day);
        assert_eq!(
            e.resets_at,
            unix(Date::from_calendar_date(2027, time::Month::January, 1).unwrap())
        );
        // A new day, same month: the month's limit is what refuses.
        let s = TenantSpend::new(limits, 0.0, 0.0);
        let a = Date::from_calendar_date(2026, time::Month::March, 3).unwrap();
        s.reserve_on(a, 0.9).unwrap();
        let b = a.next_day().unwrap();
        let e = s.reserve_on(b, 0.9).unwrap_err();
        assert_eq!(e.period, Period::Month);
        // A new month starts from zero.
        let c = Date::from_calendar_date(2026, time::Month::April, 1).unwrap();
        s.reserve_on(c, 0.9).unwrap();
    }
}
