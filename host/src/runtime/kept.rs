//! An instance taken out of a plugin's warm pool to read its state: the build-time
//! snapshot (`authoring::snapshot`) runs a stateless plugin's example calls on one warm
//! instance, then reads that instance's memory and globals through the getters
//! `component-init-transform` added to the component.

use async_trait::async_trait;
use wasmtime::component::{ComponentNamedList, Instance, Lift};
use wasmtime::Store;

use super::state::CallState;

pub struct KeptInstance {
    pub(crate) store: Store<CallState>,
    pub(crate) instance: Instance,
    /// Its getters run guest code: deadlines at the fast tick while it exists.
    pub(crate) _busy: super::engine::Busy,
}

impl KeptInstance {
    /// Calls an exported function without parameters that returns one value.
    async fn get<R>(&mut self, name: &str) -> anyhow::Result<R>
    where
        R: Lift + Send + Sync + 'static,
        (R,): ComponentNamedList + Lift,
    {
        let func = self
            .instance
            .get_typed_func::<(), (R,)>(&mut self.store, name)
            .map_err(|e| anyhow::anyhow!("`{name}`: {e:#}"))?;
        let (value,) = func
            .call_async(&mut self.store, ())
            .await
            .map_err(|e| anyhow::anyhow!("`{name}`: {e:#}"))?;
        Ok(value)
    }
}

#[async_trait]
impl component_init_transform::Invoker for KeptInstance {
    async fn call_s32(&mut self, function: &str) -> anyhow::Result<i32> {
        self.get(function).await
    }
    async fn call_s64(&mut self, function: &str) -> anyhow::Result<i64> {
        self.get(function).await
    }
    async fn call_f32(&mut self, function: &str) -> anyhow::Result<f32> {
        self.get(function).await
    }
    async fn call_f64(&mut self, function: &str) -> anyhow::Result<f64> {
        self.get(function).await
    }
    async fn call_list_u8(&mut self, function: &str) -> anyhow::Result<Vec<u8>> {
        self.get(function).await
    }
}
