//! A tenant's spend this UTC day and month, against its limits. Each model call reserves
//! its estimate here before it starts (with the request's own budget, `Budget::reserve`)
//! and settles to its actual cost when it ends, so concurrent requests together overshoot
//! a limit by at most one call's underestimate.

use std::sync::Mutex;

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

#[derive(Debug)]
pub struct TenantSpend {
    state: Mutex<State>,
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

    /// Holds `estimate` against both limits, or says which one refuses it.
    pub fn reserve(&self, estimate: f64) -> Result<(), SpendError> {
        self.reserve_on(today(), estimate)
    }

    fn reserve_on(&self, now: Date, estimate: f64) -> Result<(), SpendError> {
        let mut s = self.lock(now);
        let checks = [
            (
                Period::Day,
                s.limits.daily_usd,
                s.day_usd,
                unix(now.next_day().unwrap_or(now)),
            ),
            (
                Period::Month,
                s.limits.monthly_usd,
                s.month_usd,
                unix(next_month(now)),
            ),
        ];
        for (period, limit, spent, resets_at) in checks {
            if let Some(limit) = limit {
                if spent + estimate > limit + 1e-12 {
                    return Err(SpendError {
                        period,
                        limit,
                        spent,
                        estimate,
                        resets_at,
                    });
                }
            }
        }
        s.day_usd += estimate;
        s.month_usd += estimate;
        Ok(())
    }

    /// Moves the counters by `delta` (actual minus estimate when a call settles, minus
    /// the estimate when it is released); never below zero.
    pub fn adjust(&self, delta: f64) {
        let mut s = self.lock(today());
        s.day_usd = (s.day_usd + delta).max(0.0);
        s.month_usd = (s.month_usd + delta).max(0.0);
    }

    /// Spent (and reserved) today and this month.
    pub fn spent(&self) -> (f64, f64) {
        let s = self.lock(today());
        (s.day_usd, s.month_usd)
    }
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
