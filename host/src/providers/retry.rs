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
    /// Also retry failures after which the upstream may have processed (and billed) the
    /// request: 5xx other than 503, timeouts, connections broken mid-request. Off by
    /// default: only calls the upstream certainly did not process are sent again.
    pub retry_processed: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            base_delay_ms: 200,
            max_delay_ms: 5_000,
            retry_processed: false,
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

    fn may_retry(&self, e: &ProviderError) -> bool {
        e.is_retryable() && (e.never_processed() || self.retry_processed)
    }

    /// Runs `call` until it succeeds, fails with an error not to retry, retries run out,
    /// or `within` has passed: all attempts and the waits between them share it. Each
    /// attempt is given what is left of it; a retry whose wait would end past it is not
    /// made.
    pub async fn run<T, F, Fut>(&self, within: Duration, mut call: F) -> Result<T, ProviderError>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let deadline = tokio::time::Instant::now() + within;
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match call(left).await {
                Ok(v) => return Ok(v),
                Err(e) if self.may_retry(&e) && attempt < self.max_retries => {
                    attempt += 1;
                    let delay = self.delay(attempt, &e);
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if delay >= left {
                        return Err(e);
                    }
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
            retry_processed: false,
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

    /// Runs `p` over a call that always fails with `error`; returns the calls made.
    async fn calls_until_given_up(
        p: &RetryPolicy,
        within: Duration,
        error: ProviderError,
    ) -> usize {
        let mut calls = 0;
        let r: Result<(), _> = p
            .run(within, |_| {
                calls += 1;
                let e = error.clone();
                async move { Err(e) }
            })
            .await;
        assert!(r.is_err());
        calls
    }

    fn http(status: u16) -> ProviderError {
        ProviderError::Http {
            status,
            body: String::new(),
            retry_after: None,
        }
    }

    #[tokio::test]
    async fn retries_only_what_the_upstream_did_not_process() {
        let p = RetryPolicy {
            max_retries: 2,
            base_delay_ms: 1,
            max_delay_ms: 1,
            retry_processed: false,
        };
        let long = Duration::from_secs(60);
        // Refused before any work, or never sent: retried.
        for e in [
            http(429),
            http(503),
            http(408),
            ProviderError::Connect("refused".into()),
        ] {
            assert_eq!(calls_until_given_up(&p, long, e.clone()).await, 3, "{e}");
        }
        // May have been processed (and billed): not sent again.
        for e in [
            http(500),
            http(502),
            ProviderError::Timeout(long),
            ProviderError::Interrupted("reset".into()),
        ] {
            assert_eq!(calls_until_given_up(&p, long, e.clone()).await, 1, "{e}");
        }
        // Unless the provider says its upstream is safe to call again.
        let unsafe_ok = RetryPolicy {
            retry_processed: true,
            ..p.clone()
        };
        assert_eq!(calls_until_given_up(&unsafe_ok, long, http(500)).await, 3);
        // The caller's own mistakes never are.
        assert_eq!(calls_until_given_up(&unsafe_ok, long, http(400)).await, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stay_within_the_deadline() {
        let p = RetryPolicy {
            max_retries: 5,
            base_delay_ms: 1,
            max_delay_ms: 60_000,
            retry_processed: false,
        };
        // The upstream asks for 10 s; 3 s are left: no retry is made.
        let slow_down = ProviderError::Http {
            status: 429,
            body: String::new(),
            retry_after: Some(Duration::from_secs(10)),
        };
        let started = tokio::time::Instant::now();
        assert_eq!(
            calls_until_given_up(&p, Duration::from_secs(3), slow_down).await,
            1
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        // Each attempt is given what is left, never the whole again.
        let mut given = Vec::new();
        let _: Result<(), _> = p
            .run(Duration::from_secs(3), |left| {
                given.push(left);
                async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Err(http(503))
                }
            })
            .await;
        assert!(given.len() >= 2, "{given:?}");
        assert!(given.windows(2).all(|w| w[1] < w[0]), "{given:?}");
        assert!(given.iter().all(|g| *g <= Duration::from_secs(3)));
    }
}
