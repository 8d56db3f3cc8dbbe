//! What a store carries during one call: an empty WASI context, the resource limiter,
//! the bounded log sink and the context the caller handed the call. Each capability sees
//! only its own part of it (see `capability`).

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::capability::log::{CapturedStream, LogSink};
use super::capability::CallContext;
use super::limits::{CallLimiter, Limits};

pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    pub(crate) logs: LogSink,
    pub(crate) ctx: CallContext,
}

impl CallState {
    pub(crate) fn new(limits: &Limits, ctx: CallContext) -> CallState {
        let logs = LogSink::new(limits.log_bytes);
        // No preopens, no environment, no arguments, no network, no stdin: plugins see
        // nothing of the host unless a later version grants it explicitly.
        let wasi = WasiCtx::builder()
            .stdout(CapturedStream::stdout(&logs))
            .stderr(CapturedStream::stderr(&logs))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        CallState {
            wasi,
            table: ResourceTable::new(),
            limiter: CallLimiter::new(limits),
            logs,
            ctx,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
