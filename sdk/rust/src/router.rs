use crate::bindings::exports::arbiter::plugin::routing::{Guest, ModelOption, RouteDecision};
use crate::types::*;
use crate::Config;

/// A router decides which models to try for a task, in what order, with how many samples.
pub trait Router: Sized + 'static {
    fn info() -> PluginInfo;

    /// Builds the router from its pipeline settings (kept while they do not change).
    fn new(config: &Config) -> Result<Self, PluginError>;

    fn route(&self, task: &Task, options: &[ModelOption]) -> Result<RouteDecision, PluginError>;
}

#[doc(hidden)]
pub struct Export<R>(std::marker::PhantomData<R>);

impl<R: Router> Guest for Export<R> {
    fn info() -> PluginInfo {
        R::info()
    }

    fn check_config(config: Vec<(String, String)>) -> Result<(), PluginError> {
        crate::__private::with_state::<R, _>(config, R::new, |_| Ok(()))
    }

    fn route(
        config: Vec<(String, String)>,
        task: Task,
        options: Vec<ModelOption>,
    ) -> Result<RouteDecision, PluginError> {
        crate::__private::with_state(config, R::new, |r: &R| r.route(&task, &options))
    }
}

/// Exports a [`Router`] implementation as the plugin's `routing` interface.
#[macro_export]
macro_rules! export_router {
    ($ty:ty) => {
        #[allow(dead_code)]
        type __ArbiterExport = $crate::__private::RouterExport<$ty>;
        // Exports exist only in the component; native builds (unit tests) skip them.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_arbiter_world!(__ArbiterExport with_types_in $crate::bindings);
    };
}
