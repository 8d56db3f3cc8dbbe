// One contract version's host interfaces, each served by its capability's
// version-neutral view. The same for every version (the interfaces have not changed);
// `include!`d by each `v<version>/mod.rs`, it implements that version's traits.

use wasmtime::component::Linker;

use super::arbiter::plugin::{log, model, stats, types};
use super::convert;
use crate::runtime::capability::log::{self as log_cap, Log, LogView};
use crate::runtime::capability::model::{self as model_cap, Model, ModelView};
use crate::runtime::capability::stats::{self as stats_cap, Stats, StatsView};
use crate::runtime::capability::types::Types;
use crate::runtime::state::CallState;
use crate::runtime::types::LogRecord;

pub(crate) fn add_types(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    types::add_to_linker::<_, Types>(linker, |_| Types)
}

pub(crate) fn add_log(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    log::add_to_linker::<_, Log>(linker, log_cap::view)
}

pub(crate) fn add_model(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    model::add_to_linker::<_, Model>(linker, model_cap::view)
}

pub(crate) fn add_stats(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    stats::add_to_linker::<_, Stats>(linker, stats_cap::view)
}

impl types::Host for Types {}

impl log::Host for LogView<'_> {
    fn log(
        &mut self,
        level: log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let record = LogRecord {
            level: convert::level_from(level),
            message,
            fields,
        };
        LogView::log(self, record).map_err(wasmtime::Error::new)
    }
}

impl model::Host for ModelView<'_> {
    async fn complete(
        &mut self,
        request: model::CompletionRequest,
    ) -> Result<model::Completion, model::ModelError> {
        ModelView::complete(self, convert::request_from(request))
            .await
            .map(convert::completion_to)
            .map_err(convert::model_error_to)
    }
}

impl stats::Host for StatsView<'_> {
    fn query(&mut self, model: String, tag: Option<String>) -> Option<types::ModelStats> {
        StatsView::query(self, &model, tag.as_deref()).map(|s| convert::stats_to(&s))
    }
}
