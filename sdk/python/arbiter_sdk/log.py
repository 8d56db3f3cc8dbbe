"""Structured logs the host keeps with the call.

The host bounds the bytes one call may log (`log`, stdout and stderr together; 64 KiB
by default): past the bound the call fails, so log summaries rather than whole inputs.
Field values are converted with `str`.

Outside a component (plain CPython, e.g. the plugin's own unit tests) records go to
stderr, so plugin code runs unchanged.
"""

from __future__ import annotations

import sys
from typing import List, Tuple

try:  # Present only inside a component built by `arbiter plugin build`.
    from wit_world.imports import log as _wit_log
except ImportError:  # pragma: no cover - depends on the environment
    _wit_log = None  # type: ignore[assignment]

__all__ = ["trace", "debug", "info", "warn", "error"]

_NAMES = ("trace", "debug", "info", "warn", "error")


def _emit(level: int, message: str, fields: dict[str, object]) -> None:
    pairs: List[Tuple[str, str]] = [(k, str(v)) for k, v in fields.items()]
    if _wit_log is not None:
        _wit_log.log(_wit_log.Level(level), message, pairs)
    else:
        extra = "".join(f" {k}={v}" for k, v in pairs)
        print(f"[{_NAMES[level]}] {message}{extra}", file=sys.stderr)


def trace(message: str, **fields: object) -> None:
    _emit(0, message, fields)


def debug(message: str, **fields: object) -> None:
    _emit(1, message, fields)


def info(message: str, **fields: object) -> None:
    _emit(2, message, fields)


def warn(message: str, **fields: object) -> None:
    _emit(3, message, fields)


def error(message: str, **fields: object) -> None:
    _emit(4, message, fields)
