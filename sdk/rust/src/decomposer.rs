use crate::bindings::exports::arbiter::plugin::decomposition::{Guest, Plan, Subresult};
use crate::types::*;
use crate::Config;

/// A decomposer splits a task into a DAG of sub-tasks and composes their answers.
pub trait Decomposer: Sized + 'static {
    fn info() -> PluginInfo;

    /// Builds the decomposer from its pipeline settings (kept while they do not change).
    fn new(config: &Config) -> Result<Self, PluginError>;

    /// An empty plan means the task is answered directly.
    fn decompose(&self, task: &Task) -> Result<Plan, PluginError>;

    fn compose(&self, task: &Task, results: &[Subresult]) -> Result<String, PluginError>;
}

#[doc(hidden)]
pub struct Export<D>(std::marker::PhantomData<D>);

impl<D: Decomposer> Guest for Export<D> {
    fn info() -> PluginInfo {
        D::info()
    }

    fn check_config(config: Vec<(String, String)>) -> Result<(), PluginError> {
        crate::__private::with_state::<D, _>(config, D::new, |_| Ok(()))
    }

    fn decompose(config: Vec<(String, String)>, task: Task) -> Result<Plan, PluginError> {
        crate::__private::with_state(config, D::new, |d: &D| d.decompose(&task))
    }

    fn compose(
        config: Vec<(String, String)>,
        task: Task,
        results: Vec<Subresult>,
    ) -> Result<String, PluginError> {
        crate::__private::with_state(config, D::new, |d: &D| d.compose(&task, &results))
    }
}

/// Exports a [`Decomposer`] implementation as the plugin's `decomposition` interface.
#[macro_export]
macro_rules! export_decomposer {
    ($ty:ty) => {
        #[allow(dead_code)]
        type __ArbiterExport = $crate::__private::DecomposerExport<$ty>;
        // Exports exist only in the component; native builds (unit tests) skip them.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_arbiter_world!(__ArbiterExport with_types_in $crate::bindings);
    };
}
