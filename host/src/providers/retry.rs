//! Retries with exponential backoff and full jitter, honouring `Retry-After`.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::ProviderError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retries).
    pub max_retries: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            base_delay_ms: 200,
            max_delay_ms: 5_000,
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (1-based): `Retry-After` when the upstream gave
    /// one (capped), else a random delay in [0, min(max, base * 2^attempt)].
    pub fn delay(&self, attempt: u32, error: &ProviderError) -> Duration {
        let cap = Duration::from_millis(self.max_delay_ms);
        if let Some(after) = error.retry_after() {
            return after.min(cap);
        }
        let exp = self
            .base_delay_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.max_delay_ms);
        Duration::from_millis(rand::rng().random_range(0..=exp))
    }

    /// Runs `call` until it succeeds, fails with a non-retryable error, or retries run out.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.max_retries => {
                    attempt += 1;
                    let delay = self.delay(attempt, &e);
                    tracing::debug!(attempt, ?delay, error = %e, "retrying upstream call");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Parses `Retry-After` (seconds, or an HTTP date which we treat as "soon").
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        // `from_secs_f64` panics past `Duration::MAX`; an upstream's absurd value is a
        // very long wait, which the retry policy caps anyway.
        return match Duration::try_from_secs_f64(secs) {
            Ok(d) => Some(d),
            Err(_) if secs.is_finite() && secs > 0.0 => Some(Duration::MAX),
            Err(_) => None,
        };
    }
    (!v.is_empty()).then(|| Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 3,
            base_delay_ms: 100,
            max_delay_ms: 2_000,
        };
        let e = ProviderError::Http {
            status: 429,
            body: String::new(),
            retry_after: Some(Duration::from_millis(700)),
        };
        assert_eq!(p.delay(1, &e), Duration::from_millis(700));
        let e = ProviderError::Http {
            status: 429,
            body: String::new(),
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(p.delay(1, &e), Duration::from_secs(2));
        let e = ProviderError::Http {
            status: 503,
            body: String::new(),
            retry_after: None,
        };
        for attempt in 1..6 {
            assert!(p.delay(attempt, &e) <= Duration::from_millis((100u64 << attempt).min(2000)));
        }
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        // Absurd values an upstream may send never panic; the policy caps what they ask.
        assert_eq!(parse_retry_after("1e300"), Some(Duration::MAX));
        assert_eq!(
            parse_retry_after("18446744073709551616"),
            Some(Duration::MAX)
        );
        for v in ["NaN", "inf", "-inf", "-0.5", "-1e300"] {
            assert_eq!(parse_retry_after(v), None, "{v}");
        }
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::from_secs(1))
        );
        let e = ProviderError::Http {
            status: 429,
            body: String::new(),
            retry_after: parse_retry_after("1e300"),
        };
        assert_eq!(p.delay(1, &e), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn retries_only_retryable_errors() {
        let p = RetryPolicy {
            max_retries: 2,
            base_delay_ms: 1,
            max_delay_ms: 1,
        };
        let mut calls = 0;
        let r: Result<(), _> = p
            .run(|| {
                calls += 1;
                async {
                    Err(ProviderError::Http {
                        status: 500,
                        body: String::new(),
                        retry_after: None,
                    })
                }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 3);
        let mut calls = 0;
        let r: Result<(), _> = p
            .run(|| {
                calls += 1;
                async {
                    Err(ProviderError::Http {
                        status: 400,
                        body: String::new(),
                        retry_after: None,
                    })
                }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }
}
