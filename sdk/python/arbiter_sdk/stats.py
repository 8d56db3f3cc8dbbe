"""Capability `stats`: per-model outcome statistics recorded by the host.

Declare `capabilities = ["stats"]` in a router's `arbiter.toml`: the plugin is then built
for the `stats-router` world, and the host loads it only where the operator granted the
`stats` capability.
"""

from __future__ import annotations

from typing import Optional

from .types import ModelStats

try:  # Present only in routers built with the `stats` capability.
    from wit_world.imports import stats as _wit_stats
except ImportError:  # pragma: no cover - depends on the world built for
    _wit_stats = None  # type: ignore[assignment]

__all__ = ["query"]


def query(model: str, tag: Optional[str] = None) -> Optional[ModelStats]:
    """Observed outcomes of `model` (for tasks tagged `tag` when given); `None` when
    nothing has been recorded yet. Raises `RuntimeError` when the plugin was not built
    with the `stats` capability."""
    if _wit_stats is None:
        raise RuntimeError(
            'the `stats` capability is not enabled: add capabilities = ["stats"] to the '
            "[plugin] table of arbiter.toml and rebuild"
        )
    s = _wit_stats.query(model, tag)
    if s is None:
        return None
    return ModelStats(s.attempts, s.success_rate, s.latency_p50_ms, s.latency_p95_ms)
