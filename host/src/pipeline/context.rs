//! Per-request state shared by every node of the tree, and where in the tree a node
//! runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::budget::Budget;
use super::catalog::TenantCatalog;
use super::engine::Engine;
use super::request::Answer;
use super::trace::AttemptRecord;
use crate::providers::Sampling;
use crate::runtime::types::Task;
use crate::runtime::CallContext;

pub struct RequestCtx {
    pub budget: Budget,
    pub(crate) tenant: String,
    /// The pipeline or model the request named (what its judges may call follows it).
    pub(crate) target: String,
    pub(crate) sampling: Sampling,
    /// Answers the request wants (`n`); above 1 only for a root that can give them.
    pub(crate) n: u32,
    /// The tenant's own plugins and pipelines, as of the request's start.
    pub(crate) catalog: Option<Arc<TenantCatalog>>,
    attempts: Mutex<Vec<AttemptRecord>>,
    samples: Mutex<HashMap<String, u32>>,
    best: Mutex<Option<Answer>>,
    /// The answer began streaming to the client.
    streamed: AtomicBool,
}

impl RequestCtx {
    pub(crate) fn new(
        budget: Budget,
        tenant: String,
        target: String,
        sampling: Sampling,
        catalog: Option<Arc<TenantCatalog>>,
    ) -> RequestCtx {
        RequestCtx {
            budget,
            tenant,
            target,
            sampling,
            n: 1,
            catalog,
            attempts: Mutex::new(Vec::new()),
            samples: Mutex::new(HashMap::new()),
            best: Mutex::new(None),
            streamed: AtomicBool::new(false),
        }
    }

    pub(crate) fn next_sample(&self, model: &str) -> u32 {
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let n = s.entry(model.to_string()).or_insert(0);
        *n += 1;
        *n - 1
    }

    pub(crate) fn push(&self, record: AttemptRecord) -> u32 {
        let mut a = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let seq = a.len() as u32;
        a.push(AttemptRecord { seq, ..record });
        seq
    }

    pub(crate) fn update(&self, seq: u32, f: impl FnOnce(&mut AttemptRecord)) {
        let mut a = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = a.get_mut(seq as usize) {
            f(r);
        }
    }

    pub(crate) fn take_attempts(&self) -> Vec<AttemptRecord> {
        std::mem::take(&mut *self.attempts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn ms(&self) -> f64 {
        self.budget.elapsed().as_secs_f64() * 1e3
    }

    /// Remembers the best accepted answer, returned if the budget runs out later.
    pub(crate) fn offer(&self, answer: &Answer) {
        if !answer.accepted || !answer.verified {
            return;
        }
        let mut best = self.best.lock().unwrap_or_else(|p| p.into_inner());
        if best.as_ref().is_none_or(|b| answer.better_than(b)) {
            *best = Some(answer.clone());
        }
    }

    pub(crate) fn best(&self) -> Option<Answer> {
        self.best.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn mark_streamed(&self) {
        self.streamed.store(true, Ordering::Relaxed);
    }

    pub(crate) fn streamed(&self) -> bool {
        self.streamed.load(Ordering::Relaxed)
    }

    pub(crate) fn call_context(&self) -> CallContext {
        CallContext {
            deadline: self.budget.remaining(),
            ..CallContext::default()
        }
    }
}

/// Where a node runs: the engine, the request, the task it answers, and its place in
/// the tree (`path` names it in the trace; `depth` counts decompositions above it).
#[derive(Clone)]
pub struct Step<'a> {
    pub(crate) engine: &'a Arc<Engine>,
    pub(crate) ctx: &'a Arc<RequestCtx>,
    pub(crate) task: &'a Task,
    pub(crate) path: String,
    pub(crate) depth: u32,
}

impl<'a> Step<'a> {
    /// A child node at `path`, same task and depth.
    pub(crate) fn at(&self, path: String) -> Step<'a> {
        Step {
            engine: self.engine,
            ctx: self.ctx,
            task: self.task,
            path,
            depth: self.depth,
        }
    }
}
