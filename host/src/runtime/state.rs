//! What a store carries during one call: an empty WASI context, the resource limiter,
//! the bounded log sink and the context the caller handed the call. Each capability sees
//! only its own part of it (see `capability`).

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::capability::log::{CapturedStream, LogSink};
use super::capability::CallContext;
use super::limits::{CallLimiter, Limits};

/// Bytes one `get-random-bytes` call may ask for. The host allocates the answer before the
/// guest's memory cap sees it (wasmtime-wasi's own cap is 64 MiB a call); interpreters ask
/// for a few dozen bytes to seed their hashes.
pub(crate) const MAX_RANDOM_BYTES: u64 = 1 << 20;
/// Live WASI handles (streams, pollables) one call may hold in the host's table. Each costs
/// host memory outside the guest's cap (wasmtime's default allows a million); guests in every
/// SDK language hold fewer than a hundred.
pub(crate) const MAX_RESOURCES: usize = 16_384;

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
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        CallState {
            wasi,
            table,
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
