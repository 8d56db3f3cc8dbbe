//! A plugin's log lines as events in the request's span, under the `plugin` target:
//! `ARBITER_LOG=warn,plugin=debug` shows them next to the request they belong to. Off by
//! default, since a plugin chooses how much it logs (up to its log budget per call).

use crate::runtime::types::{LogLevel, LogRecord};

pub(crate) fn emit_logs(plugin: &str, logs: &[LogRecord]) {
    if logs.is_empty() || !tracing::enabled!(target: "plugin", tracing::Level::ERROR) {
        return;
    }
    for line in logs {
        let fields: Vec<String> = line
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let (fields, message) = (fields.join(" "), &line.message);
        match line.level {
            LogLevel::Trace => tracing::trace!(target: "plugin", plugin, fields, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin, fields, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin, fields, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin, fields, "{message}"),
            LogLevel::Error => tracing::error!(target: "plugin", plugin, fields, "{message}"),
        }
    }
}
