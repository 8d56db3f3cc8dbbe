use crate::runtime::bindings::arbiter::plugin::log::{Host, Level};
use crate::runtime::state::CallState;
use crate::runtime::types::{LogLevel, LogRecord};

impl Host for CallState {
    fn log(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        // Over budget: trap, so a plugin logging in a loop stops instead of filling memory.
        self.logs
            .record(LogRecord {
                level,
                message,
                fields,
            })
            .map_err(wasmtime::Error::new)
    }
}
