//! Why a request (or one node of its pipeline) has no answer.

use super::budget::BudgetError;
use crate::providers::ProviderError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ExecError {
    #[error("over budget: {0}")]
    OverBudget(BudgetError),
    #[error("model `{model}` failed: {error}")]
    Provider { model: String, error: ProviderError },
    #[error("plugin `{plugin}` failed ({code}): {message}")]
    Plugin {
        plugin: String,
        code: String,
        message: String,
    },
    #[error("unknown pipeline or model `{0}`")]
    UnknownTarget(String),
    #[error("no answer: {0}")]
    NoAnswer(String),
    #[error("invalid pipeline: {0}")]
    Invalid(String),
    #[error("the client went away before an answer")]
    Cancelled,
    /// A bug: the request's task panicked. The request fails alone, with its trace.
    #[error("the gateway failed on this request: {0}")]
    Internal(String),
}

impl ExecError {
    pub fn code(&self) -> &'static str {
        match self {
            ExecError::OverBudget(BudgetError::Deadline) => "deadline_exceeded",
            ExecError::OverBudget(BudgetError::Tenant(e)) => match e.period {
                crate::tenancy::Period::Day => "daily_spend_limit",
                crate::tenancy::Period::Month => "monthly_spend_limit",
            },
            ExecError::OverBudget(BudgetError::SpendUnavailable(_)) => "spend_limits_unavailable",
            ExecError::OverBudget(_) => "over_budget",
            ExecError::Provider { error, .. } => error.code(),
            ExecError::Plugin { .. } => "plugin_error",
            ExecError::UnknownTarget(_) => "model_not_found",
            ExecError::NoAnswer(_) => "no_answer",
            ExecError::Invalid(_) => "invalid_pipeline",
            ExecError::Cancelled => "client_disconnected",
            ExecError::Internal(_) => "internal_error",
        }
    }

    pub(crate) fn plugin(plugin: &str, e: &crate::runtime::Error) -> ExecError {
        ExecError::Plugin {
            plugin: plugin.into(),
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

/// What a panic says, for the log and the trace.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
