//! Marks an attempt cancelled if its future is dropped before the call returns (a race
//! was won elsewhere, the deadline passed, the client went away), billed for what the
//! upstream already processed: the prompt, and any part of the answer streamed.

use super::budget::Reservation;
use super::context::RequestCtx;
use super::trace::AttemptOutcome;
use crate::providers::{estimate_tokens, Price, Usage};

pub(crate) struct InFlight<'a> {
    pub(crate) ctx: &'a RequestCtx,
    pub(crate) seq: u32,
    pub(crate) started: f64,
    pub(crate) price: Price,
    pub(crate) input_tokens: u32,
    /// The answer as streamed so far (empty unless streaming).
    pub(crate) streamed: String,
    /// Held while the call runs; taken when it returns.
    pub(crate) reservation: Option<Reservation<'a>>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let Some(reservation) = self.reservation.take() else {
            return;
        };
        let output_tokens = if self.streamed.is_empty() {
            0
        } else {
            estimate_tokens(&self.streamed)
        };
        let cost = self.price.cost(Usage {
            input_tokens: self.input_tokens,
            output_tokens,
        });
        reservation.settle(cost);
        let (now, started) = (self.ctx.ms(), self.started);
        let text = std::mem::take(&mut self.streamed);
        self.ctx.update(self.seq, |r| {
            r.outcome = AttemptOutcome::Cancelled;
            r.latency_ms = now - started;
            r.cost_usd = cost;
            r.output_tokens = output_tokens;
            if !text.is_empty() {
                r.text = Some(text);
            }
        });
    }
}
