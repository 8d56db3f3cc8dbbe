//! `log`: structured logging, linked for every plugin. Its per-instance state is the
//! call's [`LogSink`], which also captures the guest's stdout and stderr: one byte budget
//! for all three.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use super::Capability;
use crate::runtime::contract;
use crate::runtime::state::CallState;
use crate::runtime::types::{LogLevel, LogRecord};

pub(super) const CAPABILITY: Capability = Capability {
    name: "log",
    add_to_linker,
};

fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    contract::v0_1_0::add_log(linker)?;
    contract::v0_2_0::add_log(linker)
}

/// What `log` sees of a call's store: its sink.
pub(crate) struct LogView<'a>(&'a LogSink);

pub(crate) struct Log;

impl HasData for Log {
    type Data<'a> = LogView<'a>;
}

pub(crate) fn view(state: &mut CallState) -> LogView<'_> {
    LogView(&state.logs)
}

impl LogView<'_> {
    /// Over budget the caller traps, so a plugin logging in a loop stops instead of
    /// filling memory.
    pub(crate) fn log(&self, record: LogRecord) -> Result<(), LogLimitHit> {
        self.0.record(record)
    }
}

/// Raised (as a trap) when a call logs past its byte budget.
#[derive(Debug, thiserror::Error)]
#[error("log budget of {0} bytes exceeded")]
pub(crate) struct LogLimitHit(pub usize);

/// What one record costs against the log budget besides its text: about the host's
/// memory for it (the record, its strings' headers, the buffer's slot).
const RECORD_OVERHEAD: usize = 64;
/// The same for each field.
const FIELD_OVERHEAD: usize = 48;

/// Collects a call's log records and guest stdout/stderr under one byte budget.
#[derive(Clone)]
pub(crate) struct LogSink {
    inner: Arc<Mutex<LogBuffer>>,
}

struct LogBuffer {
    records: Vec<LogRecord>,
    used: usize,
    limit: usize,
    exceeded: bool,
    /// Partial lines of stdout (0) and stderr (1) not yet turned into records.
    partial: [Vec<u8>; 2],
}

impl LogSink {
    pub(crate) fn new(limit: usize) -> LogSink {
        LogSink {
            inner: Arc::new(Mutex::new(LogBuffer {
                records: Vec::new(),
                used: 0,
                limit,
                exceeded: false,
                partial: [Vec::new(), Vec::new()],
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogBuffer> {
        // A poisoned lock only means another thread panicked mid-push; the buffer is
        // still a valid Vec, so keep going rather than propagate the panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Charges `bytes` against the budget; false once the budget is exhausted.
    fn charge(buf: &mut LogBuffer, bytes: usize) -> bool {
        if buf.exceeded || buf.used.saturating_add(bytes) > buf.limit {
            buf.exceeded = true;
            return false;
        }
        buf.used += bytes;
        true
    }

    pub(crate) fn record(&self, record: LogRecord) -> Result<(), LogLimitHit> {
        let mut buf = self.lock();
        // What a record costs the host, not only its text: empty messages in a loop
        // would otherwise be free and grow the buffer without bound.
        let size = RECORD_OVERHEAD
            + record.message.len()
            + record
                .fields
                .iter()
                .map(|(k, v)| FIELD_OVERHEAD + k.len() + v.len())
                .sum::<usize>();
        if !Self::charge(&mut buf, size) {
            return Err(LogLimitHit(buf.limit));
        }
        buf.records.push(record);
        Ok(())
    }

    fn write_stream(&self, stream: usize, bytes: &[u8]) -> Result<(), LogLimitHit> {
        let mut buf = self.lock();
        // Each line becomes a record: `\n` alone must not be nearly free.
        let lines = bytes.iter().filter(|b| **b == b'\n').count();
        let size = bytes
            .len()
            .saturating_add(lines.saturating_mul(RECORD_OVERHEAD));
        if !Self::charge(&mut buf, size) {
            return Err(LogLimitHit(buf.limit));
        }
        buf.partial[stream].extend_from_slice(bytes);
        while let Some(pos) = buf.partial[stream].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.partial[stream].drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            buf.records.push(stream_record(stream, text));
        }
        Ok(())
    }

    pub(crate) fn exceeded(&self) -> bool {
        self.lock().exceeded
    }

    /// Takes the records (flushing partial stdout/stderr lines) and resets the budget
    /// for the next call on a reused instance.
    pub(crate) fn take(&self) -> Vec<LogRecord> {
        let mut buf = self.lock();
        for stream in 0..2 {
            if !buf.partial[stream].is_empty() {
                let text =
                    String::from_utf8_lossy(&std::mem::take(&mut buf.partial[stream])).into_owned();
                buf.records.push(stream_record(stream, text));
            }
        }
        buf.used = 0;
        buf.exceeded = false;
        std::mem::take(&mut buf.records)
    }

    /// The last lines the guest wrote to stderr: a Rust panic message, a Python traceback.
    pub(crate) fn stderr_tail(&self, max_lines: usize) -> Option<String> {
        let buf = self.lock();
        let mut lines: Vec<&str> = buf
            .records
            .iter()
            .filter(|r| r.fields.iter().any(|(k, v)| k == "stream" && v == "stderr"))
            .map(|r| r.message.as_str())
            .collect();
        let partial = String::from_utf8_lossy(&buf.partial[1]).into_owned();
        if !partial.is_empty() {
            lines.push(&partial);
        }
        if lines.is_empty() {
            return None;
        }
        let start = lines.len().saturating_sub(max_lines);
        Some(lines[start..].join("\n"))
    }
}

fn stream_record(stream: usize, message: String) -> LogRecord {
    let (level, name) = if stream == 0 {
        (LogLevel::Info, "stdout")
    } else {
        (LogLevel::Warn, "stderr")
    };
    LogRecord {
        level,
        message,
        fields: vec![("stream".into(), name.into())],
    }
}

/// Guest stdout or stderr, captured into the [`LogSink`].
pub(crate) struct CapturedStream {
    sink: LogSink,
    stream: usize,
}

impl CapturedStream {
    pub(crate) fn stdout(sink: &LogSink) -> Self {
        CapturedStream {
            sink: sink.clone(),
            stream: 0,
        }
    }

    pub(crate) fn stderr(sink: &LogSink) -> Self {
        CapturedStream {
            sink: sink.clone(),
            stream: 1,
        }
    }
}

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(CapturedStream {
            sink: self.sink.clone(),
            stream: self.stream,
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(CapturedStream {
            sink: self.sink.clone(),
            stream: self.stream,
        })
    }
}

#[async_trait::async_trait]
impl Pollable for CapturedStream {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.sink
            .write_stream(self.stream, &bytes)
            .map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for CapturedStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let result = self
            .sink
            .write_stream(self.stream, buf)
            .map(|()| buf.len())
            .map_err(std::io::Error::other);
        std::task::Poll::Ready(result)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::LogLevel;

    fn empty() -> LogRecord {
        LogRecord {
            level: LogLevel::Info,
            message: String::new(),
            fields: vec![],
        }
    }

    #[test]
    fn empty_records_and_lines_are_not_free() {
        let sink = LogSink::new(64 * 1024);
        let mut kept = 0;
        while sink.record(empty()).is_ok() {
            kept += 1;
        }
        assert_eq!(kept, 64 * 1024 / RECORD_OVERHEAD);
        assert!(sink.exceeded());

        let sink = LogSink::new(64 * 1024);
        let newlines = vec![b'\n'; 4096];
        let mut written = 0;
        while sink.write_stream(0, &newlines).is_ok() {
            written += newlines.len();
        }
        assert!(written * RECORD_OVERHEAD <= 64 * 1024, "{written} lines");

        // Fields count per field.
        let sink = LogSink::new(1024);
        let many = LogRecord {
            fields: vec![(String::new(), String::new()); 100],
            ..empty()
        };
        assert!(sink.record(many).is_err());
    }
}
