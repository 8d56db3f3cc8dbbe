//! Per-request budgets: deadline, cost, model calls, decomposition depth. Nothing is
//! started that the remaining budget cannot pay for.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::tenancy::spend::ReserveError;
use crate::tenancy::{SpendError, TenantSpend};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Limits as configured (per pipeline) or sent as request headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetLimits {
    pub deadline_ms: Option<u64>,
    #[serde(deserialize_with = "cost_limit")]
    pub max_cost_usd: Option<f64>,
    pub max_calls: Option<u32>,
    pub max_depth: Option<u32>,
}

/// A cost limit must be a real amount: NaN compares false with everything, so it would
/// lift the limit without a word, and a negative one refuses every call.
pub fn valid_cost(usd: f64) -> bool {
    usd.is_finite() && usd >= 0.0
}

fn cost_limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        Some(usd) if !valid_cost(usd) => Err(serde::de::Error::custom(format!(
            "max_cost_usd must be a finite amount >= 0, not {usd}"
        ))),
        limit => Ok(limit),
    }
}

impl BudgetLimits {
    /// What a request may spend where its pipeline sets no limit, and all a raw model
    /// call may spend: finite, so no request runs, pays or fans out without end.
    /// `[default_budget]` changes it.
    pub const DEFAULT: BudgetLimits = BudgetLimits {
        deadline_ms: Some(300_000),
        max_cost_usd: Some(2.0),
        max_calls: Some(128),
        max_depth: Some(8),
    };

    /// These limits, with `defaults` where these set none.
    pub fn or(self, defaults: BudgetLimits) -> BudgetLimits {
        BudgetLimits {
            deadline_ms: self.deadline_ms.or(defaults.deadline_ms),
            max_cost_usd: self.max_cost_usd.or(defaults.max_cost_usd),
            max_calls: self.max_calls.or(defaults.max_calls),
            max_depth: self.max_depth.or(defaults.max_depth),
        }
    }

    /// `self` with every limit `other` sets replacing ours, tightened never loosened
    /// beyond what the operator configured.
    pub fn tightened_by(self, other: BudgetLimits) -> BudgetLimits {
        fn min_opt<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(if b < a { b } else { a }),
                (a, b) => a.or(b),
            }
        }
        BudgetLimits {
            deadline_ms: min_opt(self.deadline_ms, other.deadline_ms),
            max_cost_usd: min_opt(self.max_cost_usd, other.max_cost_usd),
            max_calls: min_opt(self.max_calls, other.max_calls),
            max_depth: min_opt(self.max_depth, other.max_depth),
        }
    }
}

/// What happens when a budget runs out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBudget {
    /// Return the best accepted answer found so far, or the error if there is none.
    #[default]
    Best,
    /// Always fail with the budget error.
    Error,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    #[error("the request's deadline has passed")]
    Deadline,
    #[error("a call estimated at ${estimate:.6} would exceed the cost budget (${spent:.6} of ${limit:.6} spent)")]
    Cost {
        estimate: f64,
        spent: f64,
        limit: f64,
    },
    #[error("the budget of {0} model calls is used up")]
    Calls(u32),
    /// The tenant's daily or monthly spend limit, across its requests.
    #[error("{0}")]
    Tenant(SpendError),
    /// The tenant has spend limits kept in the shared store, which cannot be reached.
    #[error("{0}")]
    SpendUnavailable(String),
}

struct Spend {
    cost: f64,
    calls: u32,
}

pub struct Budget {
    pub limits: BudgetLimits,
    started: Instant,
    spend: Mutex<Spend>,
    tenant: Option<Arc<TenantSpend>>,
}

/// A reserved call: its estimated cost is held until `settle` (or released on drop).
pub struct Reservation<'a> {
    budget: &'a Budget,
    estimate: f64,
    settled: bool,
    /// Whether the tenant's counters hold the estimate too.
    tenant: bool,
}

impl Reservation<'_> {
    /// Replaces the estimate with the actual cost.
    pub fn settle(mut self, actual: f64) {
        let mut s = self.budget.spend.lock().unwrap_or_else(|p| p.into_inner());
        s.cost += actual - self.estimate;
        self.settled = true;
        if let Some(t) = self.budget.tenant.as_ref().filter(|_| self.tenant) {
            t.adjust(actual - self.estimate);
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            let mut s = self.budget.spend.lock().unwrap_or_else(|p| p.into_inner());
            s.cost -= self.estimate;
            if let Some(t) = self.budget.tenant.as_ref().filter(|_| self.tenant) {
                t.adjust(-self.estimate);
            }
        }
    }
}

impl Budget {
    pub fn new(limits: BudgetLimits) -> Budget {
        Budget {
            limits,
            started: Instant::now(),
            spend: Mutex::new(Spend {
                cost: 0.0,
                calls: 0,
            }),
            tenant: None,
        }
    }

    /// A budget whose calls also count against a tenant's spend limits.
    pub fn with_tenant(limits: BudgetLimits, tenant: Option<Arc<TenantSpend>>) -> Budget {
        Budget {
            tenant,
            ..Budget::new(limits)
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Time left before the deadline (`None`: no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.limits
            .deadline_ms
            .map(|ms| Duration::from_millis(ms).saturating_sub(self.started.elapsed()))
    }

    pub fn check_deadline(&self) -> Result<(), BudgetError> {
        match self.remaining() {
            Some(r) if r.is_zero() => Err(BudgetError::Deadline),
            _ => Ok(()),
        }
    }

    /// Reserves a model call costing about `estimate` USD, or says which limit forbids it.
    pub async fn reserve(&self, estimate: f64) -> Result<Reservation<'_>, BudgetError> {
        self.check_deadline()?;
        {
            let mut s = self.spend.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(max) = self.limits.max_calls {
                if s.calls >= max {
                    return Err(BudgetError::Calls(max));
                }
            }
            if let Some(limit) = self.limits.max_cost_usd {
                if s.cost + estimate > limit + 1e-12 {
                    return Err(BudgetError::Cost {
                        estimate,
                        spent: s.cost,
                        limit,
                    });
                }
            }
            // Held before the tenant's counters are asked (which may take a round trip to
            // the shared store), so parallel calls of this request cannot all pass.
            s.calls += 1;
            s.cost += estimate;
        }
        let mut reservation = Reservation {
            budget: self,
            estimate,
            settled: false,
            tenant: false,
        };
        if let Some(t) = &self.tenant {
            match t.reserve(estimate).await {
                Ok(counted) => reservation.tenant = counted,
                Err(e) => {
                    // Refused: the request's own counters are as they were, and the call
                    // was never made.
                    let mut s = self.spend.lock().unwrap_or_else(|p| p.into_inner());
                    s.calls -= 1;
                    s.cost -= estimate;
                    reservation.settled = true;
                    return Err(match e {
                        ReserveError::Limit(e) => BudgetError::Tenant(e),
                        ReserveError::Unavailable(e) => BudgetError::SpendUnavailable(e),
                    });
                }
            }
        }
        Ok(reservation)
    }

    pub fn spent(&self) -> f64 {
        self.spend.lock().unwrap_or_else(|p| p.into_inner()).cost
    }

    pub fn calls(&self) -> u32 {
        self.spend.lock().unwrap_or_else(|p| p.into_inner()).calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cost_and_call_limits() {
        let b = Budget::new(BudgetLimits {
            max_cost_usd: Some(1.0),
            max_calls: Some(3),
            ..Default::default()
        });
        let r = b.reserve(0.6).await.unwrap();
        assert!(
            matches!(b.reserve(0.6).await, Err(BudgetError::Cost { .. })),
            "reserved cost counts"
        );
        r.settle(0.2);
        let r2 = b.reserve(0.6).await.unwrap();
        drop(r2); // released: never settled
        assert!((b.spent() - 0.2).abs() < 1e-9);
        b.reserve(0.1).await.unwrap().settle(0.1);
        assert!(matches!(b.reserve(0.0).await, Err(BudgetError::Calls(3))));
    }

    #[tokio::test(start_paused = true)]
    async fn deadline() {
        let b = Budget::new(BudgetLimits {
            deadline_ms: Some(100),
            ..Default::default()
        });
        assert!(b.reserve(0.0).await.is_ok());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(matches!(b.reserve(0.0).await, Err(BudgetError::Deadline)));
        let tight = BudgetLimits {
            deadline_ms: Some(500),
            ..Default::default()
        }
        .tightened_by(BudgetLimits {
            deadline_ms: Some(50),
            max_calls: Some(2),
            ..Default::default()
        });
        assert_eq!(tight.deadline_ms, Some(50));
        assert_eq!(tight.max_calls, Some(2));
        let loose = BudgetLimits {
            deadline_ms: Some(500),
            ..Default::default()
        }
        .tightened_by(BudgetLimits {
            deadline_ms: Some(5_000),
            ..Default::default()
        });
        assert_eq!(
            loose.deadline_ms,
            Some(500),
            "a request cannot loosen the operator's limit"
        );
    }

    #[test]
    fn cost_limits_are_real_amounts() {
        let parse = |json: &str| serde_json::from_str::<BudgetLimits>(json);
        assert_eq!(
            parse(r#"{"max_cost_usd": 0.5}"#).unwrap().max_cost_usd,
            Some(0.5)
        );
        assert_eq!(
            parse(r#"{"max_cost_usd": 0}"#).unwrap().max_cost_usd,
            Some(0.0)
        );
        assert_eq!(parse("{}").unwrap().max_cost_usd, None);
        let negative = parse(r#"{"max_cost_usd": -1}"#).unwrap_err().to_string();
        assert!(negative.contains("finite amount >= 0"), "{negative}");
        // TOML, the configuration's language, can spell NaN and infinity.
        for bad in ["nan", "inf", "-0.01"] {
            let toml = format!("max_cost_usd = {bad}");
            assert!(toml::from_str::<BudgetLimits>(&toml).is_err(), "{toml}");
        }
    }
}
