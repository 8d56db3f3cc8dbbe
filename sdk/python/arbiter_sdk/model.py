"""Capability `model`: ask the host's models for a completion (LLM-as-judge, model-made
plans).

Declare `capabilities = ["model"]` in `arbiter.toml`: the plugin is then built for the
`model-verifier` / `model-decomposer` world and imports `arbiter:plugin/model`, and the
host loads it only where the operator granted the `model` capability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from .types import Message

try:  # Present only in components built with the `model` capability.
    from wit_world.imports import model as _wit_model
    from wit_world.imports import types as _wit_types
    from componentize_py_types import Err as _Err
except ImportError:  # pragma: no cover - depends on the world built for
    _wit_model = None  # type: ignore[assignment]

__all__ = ["Completion", "ModelError", "Denied", "OverBudget", "ModelFailed", "complete"]


@dataclass
class Completion:
    text: str
    model: str
    input_tokens: int
    output_tokens: int


class ModelError(Exception):
    """The contract's `model-error`; one of its subclasses is raised by `complete`."""


class Denied(ModelError):
    """The model is not allowed for this plugin or pipeline."""


class OverBudget(ModelError):
    """The request's deadline, cost or call budget cannot pay for this call."""


class ModelFailed(ModelError):
    """The provider failed (after the host's retries)."""


def complete(
    messages: List[Message],
    model: Optional[str] = None,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
) -> Completion:
    """Sends `messages` to the host's models. `model=None` lets the pipeline choose.

    Raises `Denied`, `OverBudget` or `ModelFailed`; raises `RuntimeError` when the
    plugin was not built with the `model` capability."""
    if _wit_model is None:
        raise RuntimeError(
            'the `model` capability is not enabled: add capabilities = ["model"] to the '
            "[plugin] table of arbiter.toml and rebuild"
        )
    request = _wit_model.CompletionRequest(
        messages=[
            _wit_types.Message(
                str(m.role),
                str(m.content),
                [_wit_types.ToolCall(str(c.id), str(c.name), str(c.arguments)) for c in m.tool_calls],
                m.tool_call_id,
            )
            for m in messages
        ],
        model=model,
        max_tokens=max_tokens,
        temperature=temperature,
    )
    try:
        c = _wit_model.complete(request)
    except _Err as e:
        err = e.value
        if isinstance(err, _wit_model.ModelError_Denied):
            raise Denied(err.value) from None
        if isinstance(err, _wit_model.ModelError_OverBudget):
            raise OverBudget(err.value) from None
        raise ModelFailed(getattr(err, "value", str(err))) from None
    return Completion(c.text, c.model, c.input_tokens, c.output_tokens)
