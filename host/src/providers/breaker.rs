//! A circuit breaker around a provider: after `failures` calls in a row fail in a way
//! that says the upstream itself is failing (no connection, timeouts, 5xx), it is not
//! called for `cooldown_ms`; requests get `upstream_circuit_open` at once instead of
//! each waiting out its own timeouts and retries against it. After the cooldown one
//! call goes through as a probe: its success closes the circuit, its failure opens it
//! again. A timeout at the caller's own budget does not count: a tenant asking for
//! little time must not close the provider to every other tenant.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ChatRequest, ChatResponse, EventStream, Provider, ProviderError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerPolicy {
    /// Failures in a row that open the circuit (0: never).
    pub failures: u32,
    /// How long it stays open before a probe.
    pub cooldown_ms: u64,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failures: 5,
            cooldown_ms: 10_000,
        }
    }
}

#[derive(Debug)]
enum State {
    /// Calls go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// No calls until `until`.
    Open { until: Instant },
    /// One probe is out; everyone else is refused until it returns.
    Probing,
}

pub struct Breaker<P> {
    inner: P,
    policy: BreakerPolicy,
    state: Mutex<State>,
}

impl<P: Provider + 'static> Breaker<P> {
    /// `inner` behind a breaker, or as it is when the policy never opens.
    pub fn wrap(inner: P, policy: &BreakerPolicy) -> Arc<dyn Provider> {
        if policy.failures == 0 {
            return Arc::new(inner);
        }
        Arc::new(Breaker {
            inner,
            policy: policy.clone(),
            state: Mutex::new(State::Closed { failures: 0 }),
        })
    }
}

impl<P> Breaker<P> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a call go out now?
    fn admit(&self) -> Result<(), ProviderError> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    return Err(ProviderError::CircuitOpen(until - now));
                }
                *state = State::Probing;
                Ok(())
            }
            State::Probing => Err(ProviderError::CircuitOpen(Duration::ZERO)),
        }
    }

    /// `caller_ran_out`: the call stopped at the caller's own time budget. A timeout then
    /// says the tenant asked for little time, not that the upstream is failing; counting
    /// it would let one tenant's tight deadlines open the circuit for every tenant.
    fn record<T>(&self, result: &Result<T, ProviderError>, caller_ran_out: bool) {
        let mut state = self.lock();
        let failed = match result {
            Err(ProviderError::Timeout(_)) => !caller_ran_out,
            Err(e) => e.is_upstream_failure(),
            Ok(_) => false,
        };
        let cooldown = Duration::from_millis(self.policy.cooldown_ms);
        *state = match (&*state, failed) {
            (_, false) => State::Closed { failures: 0 },
            (State::Closed { failures }, true) if failures + 1 < self.policy.failures => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            // A call admitted before the circuit opened: its failure changes nothing (the
            // cooldown is not pushed back, and the opening is logged once).
            (State::Open { until }, true) => State::Open { until: *until },
            (_, true) => {
                tracing::warn!(?cooldown, "upstream keeps failing; circuit opened");
                State::Open {
                    until: Instant::now() + cooldown,
                }
            }
        };
    }

    /// `timeout`: the caller's time for this call, if it set one.
    async fn call<T>(
        &self,
        timeout: Option<Duration>,
        call: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        self.admit()?;
        // A call dropped mid-way (its request cancelled) counts as nothing; a dropped
        // probe must not leave the circuit waiting for it forever.
        let mut guard = ProbeGuard(Some(self));
        let started = Instant::now();
        let result = call.await;
        guard.0 = None;
        // Within a millisecond of the caller's budget: the budget is what ended it.
        let caller_ran_out =
            timeout.is_some_and(|t| started.elapsed() + Duration::from_millis(1) >= t);
        self.record(&result, caller_ran_out);
        result
    }
}

/// Reopens the circuit if a probe is dropped before it reports.
struct ProbeGuard<'a, P>(Option<&'a Breaker<P>>);

impl<P> Drop for ProbeGuard<'_, P> {
    fn drop(&mut self) {
        if let Some(b) = self.0 {
            let mut state = b.lock();
            if matches!(*state, State::Probing) {
                *state = State::Open {
                    until: Instant::now(),
                };
            }
        }
    }
}

#[async_trait::async_trait]
impl<P: Provider> Provider for Breaker<P> {
    fn unknown_fields(&self) -> super::UnknownFields {
        self.inner.unknown_fields()
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.call(request.timeout, self.inner.chat(request)).await
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        // Only opening the stream counts: a stream that breaks later is the request's.
        self.call(request.timeout, self.inner.chat_stream(request))
            .await
    }

    fn embeds(&self) -> bool {
        self.inner.embeds()
    }

    // Embeddings share the upstream, so their failures count toward the same circuit.
    async fn embed(
        &self,
        request: &super::EmbeddingRequest,
    ) -> Result<super::EmbeddingResponse, ProviderError> {
        self.call(request.timeout, self.inner.embed(request)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::providers::Usage;

    /// Fails with `error` while `failing` is set; counts calls.
    struct Upstream {
        calls: AtomicUsize,
        failing: Mutex<Option<ProviderError>>,
    }

    #[async_trait::async_trait]
    impl Provider for Arc<Upstream> {
        async fn chat(&self, _: &ChatRequest) -> Result<ChatResponse, ProviderError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match self.failing.lock().unwrap().clone() {
                Some(e) => Err(e),
                None => Ok(ChatResponse {
                    model: "m".into(),
                    choices: vec![],
                    usage: Usage::default(),
                }),
            }
        }
    }

    #[test]
    fn failures_of_calls_already_out_do_not_extend_an_open_circuit() {
        let breaker = Breaker {
            inner: (),
            policy: BreakerPolicy {
                failures: 1,
                cooldown_ms: 10_000,
            },
            state: Mutex::new(State::Closed { failures: 0 }),
        };
        let failed: Result<(), _> = Err(http(500));
        breaker.record(&failed, false);
        let State::Open { until } = *breaker.lock() else {
            panic!("not open")
        };
        std::thread::sleep(Duration::from_millis(5));
        breaker.record(&failed, false);
        assert!(matches!(*breaker.lock(), State::Open { until: u } if u == until));
    }

    fn http(status: u16) -> ProviderError {
        ProviderError::Http {
            status,
            body: String::new(),
            retry_after: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_failures_in_a_row_and_probes_after_the_cooldown() {
        let upstream = Arc::new(Upstream {
            calls: AtomicUsize::new(0),
            failing: Mutex::new(Some(http(500))),
        });
        let policy = BreakerPolicy {
            failures: 3,
            cooldown_ms: 1_000,
        };
        let p = Breaker::wrap(upstream.clone(), &policy);
        let req = ChatRequest::default();
        for _ in 0..3 {
            assert!(matches!(
                p.chat(&req).await,
                Err(ProviderError::Http { .. })
            ));
        }
        // Open: refused without calling the upstream.
        for _ in 0..10 {
            let e = p.chat(&req).await.unwrap_err();
            assert_eq!(e.code(), "upstream_circuit_open");
        }
        assert_eq!(upstream.calls.load(Ordering::SeqCst), 3);
        // After the cooldown one probe goes out; it fails, so the circuit opens again.
        tokio::time::advance(Duration::from_millis(1_001)).await;
        assert!(matches!(
            p.chat(&req).await,
            Err(ProviderError::Http { .. })
        ));
        assert_eq!(
            p.chat(&req).await.unwrap_err().code(),
            "upstream_circuit_open"
        );
        assert_eq!(upstream.calls.load(Ordering::SeqCst), 4);
        // The upstream recovers: the next probe closes the circuit.
        *upstream.failing.lock().unwrap() = None;
        tokio::time::advance(Duration::from_millis(1_001)).await;
        assert!(p.chat(&req).await.is_ok());
        assert!(p.chat(&req).await.is_ok());
        assert_eq!(upstream.calls.load(Ordering::SeqCst), 6);
    }

    /// Times out after `after`, like a provider whose call ran out of time.
    struct Slow {
        after: Duration,
        calls: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Provider for Arc<Slow> {
        async fn chat(&self, _: &ChatRequest) -> Result<ChatResponse, ProviderError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.after).await;
            Err(ProviderError::Timeout(self.after))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_tenants_tight_deadlines_do_not_open_it_for_everyone() {
        let slow = Arc::new(Slow {
            after: Duration::from_millis(100),
            calls: AtomicUsize::new(0),
        });
        let p = Breaker::wrap(slow.clone(), &BreakerPolicy::default());
        // The caller gave 100 ms and the call used them: the caller's budget, not a
        // failing upstream.
        let tight = ChatRequest {
            timeout: Some(Duration::from_millis(100)),
            ..ChatRequest::default()
        };
        for _ in 0..20 {
            assert_eq!(p.chat(&tight).await.unwrap_err().code(), "upstream_timeout");
        }
        assert_eq!(slow.calls.load(Ordering::SeqCst), 20);
        // The provider's own timeout, with time left in the caller's budget, counts.
        let roomy = ChatRequest {
            timeout: Some(Duration::from_secs(60)),
            ..ChatRequest::default()
        };
        for _ in 0..5 {
            assert_eq!(p.chat(&roomy).await.unwrap_err().code(), "upstream_timeout");
        }
        assert_eq!(
            p.chat(&roomy).await.unwrap_err().code(),
            "upstream_circuit_open"
        );
        assert_eq!(slow.calls.load(Ordering::SeqCst), 25);
    }

    #[tokio::test(start_paused = true)]
    async fn only_upstream_failures_count_and_successes_reset() {
        let upstream = Arc::new(Upstream {
            calls: AtomicUsize::new(0),
            failing: Mutex::new(Some(http(400))),
        });
        let p = Breaker::wrap(upstream.clone(), &BreakerPolicy::default());
        let req = ChatRequest::default();
        // The caller's own mistakes (400s) never open it.
        for _ in 0..20 {
            assert_eq!(p.chat(&req).await.unwrap_err().code(), "upstream_error");
        }
        // Four failures, a success, four more: never five in a row.
        for round in 0..2 {
            *upstream.failing.lock().unwrap() = Some(ProviderError::Timeout(Duration::ZERO));
            for _ in 0..4 {
                assert_eq!(
                    p.chat(&req).await.unwrap_err().code(),
                    "upstream_timeout",
                    "{round}"
                );
            }
            *upstream.failing.lock().unwrap() = None;
            assert!(p.chat(&req).await.is_ok());
        }
    }
}
