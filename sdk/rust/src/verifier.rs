use crate::bindings::exports::arbiter::plugin::verification::Guest;
use crate::types::*;
use crate::Config;

/// A verifier judges one candidate answer at a time, and optionally rescores all
/// candidates of a task together (`select`).
pub trait Verifier: Sized + 'static {
    /// Metadata shown by `arbiter plugin inspect` and checked by the host at load.
    fn info() -> PluginInfo;

    /// Builds the verifier from its pipeline settings. Do expensive preparation here
    /// (compile a schema, parse thresholds): the SDK keeps the result while the settings
    /// stay the same and the host reuses the instance. An error refuses the pipeline.
    fn new(config: &Config) -> Result<Self, PluginError>;

    fn verify(&self, task: &Task, candidate: &Candidate) -> Result<Verdict, PluginError>;

    /// Cross-candidate step. The default keeps each candidate's own verdict score.
    fn select(&self, _task: &Task, candidates: &[Judged]) -> Result<Selection, PluginError> {
        Ok(Selection {
            scores: candidates.iter().map(Judged::score).collect(),
            reason: "individual verdict scores".into(),
        })
    }
}

#[doc(hidden)]
pub struct Export<V>(std::marker::PhantomData<V>);

impl<V: Verifier> Guest for Export<V> {
    fn info() -> PluginInfo {
        V::info()
    }

    fn check_config(config: Vec<(String, String)>) -> Result<(), PluginError> {
        crate::__private::with_state::<V, _>(config, V::new, |_| Ok(()))
    }

    fn verify(
        config: Vec<(String, String)>,
        task: Task,
        candidate: Candidate,
    ) -> Result<Verdict, PluginError> {
        crate::__private::with_state(config, V::new, |v: &V| v.verify(&task, &candidate))
    }

    fn select(
        config: Vec<(String, String)>,
        task: Task,
        candidates: Vec<Judged>,
    ) -> Result<Selection, PluginError> {
        crate::__private::with_state(config, V::new, |v: &V| v.select(&task, &candidates))
    }
}

/// Exports a [`Verifier`] implementation as the plugin's `verification` interface.
#[macro_export]
macro_rules! export_verifier {
    ($ty:ty) => {
        #[allow(dead_code)]
        type __ArbiterExport = $crate::__private::VerifierExport<$ty>;
        // Exports exist only in the component; native builds (unit tests) skip them.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_arbiter_world!(__ArbiterExport with_types_in $crate::bindings);
    };
}
