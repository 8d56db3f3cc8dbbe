"""Export glue between a plugin class and the bindings componentize-py generates.

`arbiter plugin build` writes a tiny app module that calls `export(...)` and binds the
result to the name componentize-py looks for (`Verification`, `Routing` or
`Decomposition`). The app module is imported when componentize-py pre-initialises the
interpreter, so the plugin's module, this SDK and everything they import are already in
the component's snapshot: a call pays for none of it.

Here the SDK's records are converted to and from the generated ones, the plugin object
is cached per configuration (as the Rust SDK does), and errors become the contract's
`plugin-error`: `PluginError` subclasses keep their case, any other exception becomes
`failed` with its type and message (and its traceback in the call's log).
"""

from __future__ import annotations

import importlib
import traceback
from typing import Any, Callable, List, Optional, Tuple, TypeVar

from componentize_py_types import Err
from wit_world.imports import types as w

from . import log
from .config import Config
from .plugin import Decomposer, Router, Verifier
from .types import (
    Candidate,
    Check,
    Decision,
    Failed,
    InvalidConfig,
    InvalidInput,
    Judged,
    Message,
    ModelOption,
    ModelStats,
    Plan,
    PluginError,
    PluginInfo,
    PluginKind,
    RouteDecision,
    Selection,
    Subresult,
    Task,
    TokenLogprob,
    Tool,
    ToolCall,
    Verdict,
)

__all__ = ["export"]

T = TypeVar("T")
Pairs = List[Tuple[str, str]]

_BASES: dict[str, type] = {"verifier": Verifier, "router": Router, "decomposer": Decomposer}

#: The plugin object built from the last configuration seen. A fresh instance per call
#: starts empty; a warm (reused) instance skips construction while the settings match.
_state: Optional[Tuple[Pairs, Any]] = None

#: Longest traceback written to the call's log (the host's log budget is small).
_TRACEBACK_CHARS = 4000


def _plugin(cls: Any, pairs: Pairs) -> Any:
    global _state
    if _state is not None and _state[0] == pairs:
        return _state[1]
    obj = cls.new(Config(pairs))
    _state = (list(pairs), obj)
    return obj


def _wit_error(e: PluginError) -> Any:
    if isinstance(e, InvalidConfig):
        return w.PluginError_InvalidConfig(e.message)
    if isinstance(e, InvalidInput):
        return w.PluginError_InvalidInput(e.message)
    return w.PluginError_Failed(e.message)


def _guard(f: Callable[[], T]) -> T:
    """Runs plugin code, turning every failure into the contract's `plugin-error`."""
    try:
        return f()
    except PluginError as e:
        raise Err(_wit_error(e)) from None
    except Err:
        raise
    except BaseException as e:  # noqa: BLE001 - the contract has no other way out
        # SystemExit and MemoryError included: a plugin bug is a failed call, not a
        # trap that hides the message.
        tb = traceback.format_exc()
        if len(tb) > _TRACEBACK_CHARS:
            tb = "..." + tb[-_TRACEBACK_CHARS:]
        try:
            log.error("uncaught exception in plugin code", traceback=tb)
        except BaseException:  # noqa: BLE001 - the log budget may be spent already
            pass
        raise Err(w.PluginError_Failed(f"{type(e).__name__}: {e}")) from None


# ----------------------------------------------------------------- records in


def _tool_call(c: Any) -> ToolCall:
    return ToolCall(c.id, c.name, c.arguments)


def _message(m: Any) -> Message:
    return Message(m.role, m.content, [_tool_call(c) for c in m.tool_calls], m.tool_call_id)


def _task(t: Any) -> Task:
    return Task(
        id=t.id,
        messages=[_message(m) for m in t.messages],
        tags=list(t.tags),
        metadata=[(k, v) for k, v in t.metadata],
        tools=[Tool(x.name, x.description, x.parameters) for x in t.tools],
    )


def _candidate(c: Any) -> Candidate:
    return Candidate(
        c.index,
        c.model,
        c.text,
        [_tool_call(x) for x in c.tool_calls],
        [TokenLogprob(x.token, x.logprob, [(t, p) for t, p in x.top]) for x in c.logprobs],
    )


def _verdict_in(v: Any) -> Optional[Verdict]:
    if v is None:
        return None
    return Verdict(
        score=v.score,
        decision=Decision[v.decision.name],
        reason=v.reason,
        checks=[Check(c.name, c.passed, c.message) for c in v.checks],
        details=v.details,
    )


def _judged(j: Any) -> Judged:
    return Judged(_candidate(j.candidate), _verdict_in(j.verdict))


def _stats(s: Any) -> Optional[ModelStats]:
    if s is None:
        return None
    return ModelStats(s.attempts, s.success_rate, s.latency_p50_ms, s.latency_p95_ms)


# ---------------------------------------------------------------- records out


def _expect(value: object, cls: type, call: str) -> None:
    if not isinstance(value, cls):
        raise Failed(f"{call}() returned {type(value).__name__}, expected {cls.__name__}")


def _info_out(info: PluginInfo) -> Any:
    return w.PluginInfo(
        name=info.name,
        version=info.version,
        kind=w.PluginKind[info.kind.name],
        description=info.description,
        stateless=bool(info.stateless),
        config_keys=[w.ConfigKey(k.name, k.description, k.default) for k in info.config_keys],
    )


def _verdict_out(v: object) -> Any:
    _expect(v, Verdict, "verify")
    assert isinstance(v, Verdict)
    return w.Verdict(
        score=float(v.score),
        decision=w.Decision[v.decision.name],
        reason=str(v.reason),
        checks=[w.Check(str(c.name), bool(c.passed), c.message) for c in v.checks],
        details=v.details,
    )


def _selection_out(s: object) -> Any:
    _expect(s, Selection, "select")
    assert isinstance(s, Selection)
    return w.Selection([float(x) for x in s.scores], str(s.reason))


# ------------------------------------------------------------------- exports


def _resolve(kind: str, module: str, class_name: Optional[str]) -> Any:
    base = _BASES[kind]
    mod = importlib.import_module(module)
    if class_name:
        cls = getattr(mod, class_name, None)
        if cls is None:
            raise TypeError(f"module `{module}` has no class `{class_name}` (arbiter.toml `entry`)")
    else:
        found = [
            obj
            for obj in vars(mod).values()
            if isinstance(obj, type) and issubclass(obj, base) and obj is not base
            and obj.__module__ == mod.__name__
        ]
        if len(found) != 1:
            names = ", ".join(c.__name__ for c in found) or "none"
            raise TypeError(
                f"module `{module}` must define exactly one subclass of arbiter_sdk.{base.__name__} "
                f"(found: {names}); name it in arbiter.toml as entry = \"{module}:ClassName\""
            )
        cls = found[0]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"`{module}:{class_name}` is not a subclass of arbiter_sdk.{base.__name__}")
    return cls


def _checked_info(cls: Any, kind: str) -> Any:
    info = cls.info()
    if not isinstance(info, PluginInfo):
        raise TypeError(f"{cls.__name__}.info() returned {type(info).__name__}, expected PluginInfo")
    if info.kind != PluginKind(kind):
        raise TypeError(
            f"{cls.__name__}.info() says the plugin is a {info.kind.value}, "
            f"but arbiter.toml builds a {kind}"
        )
    return _info_out(info)


def export(kind: str, module: str, class_name: Optional[str] = None) -> type:
    """The class componentize-py exports for a plugin of `kind` whose implementation is
    `module[:class_name]` (the one subclass of the kind's base class when unnamed).

    Runs at build time: a wrong entry or an `info()` of the wrong kind fails the build
    with a message, instead of every call failing later."""
    cls = _resolve(kind, module, class_name)
    # `info()` is static metadata: converted once, into the snapshot.
    info = _checked_info(cls, kind)
    if kind == "verifier":
        return _verification(cls, info)
    if kind == "router":
        return _routing(cls, info)
    return _decomposition(cls, info)


def _verification(cls: Any, info: Any) -> type:
    from wit_world import exports

    class Verification(exports.Verification):
        def info(self) -> Any:
            return info

        def check_config(self, config: Pairs) -> None:
            _guard(lambda: _plugin(cls, config))

        def verify(self, config: Pairs, task: Any, candidate: Any) -> Any:
            return _guard(
                lambda: _verdict_out(_plugin(cls, config).verify(_task(task), _candidate(candidate)))
            )

        def select(self, config: Pairs, task: Any, candidates: List[Any]) -> Any:
            return _guard(
                lambda: _selection_out(
                    _plugin(cls, config).select(_task(task), [_judged(j) for j in candidates])
                )
            )

    return Verification


def _routing(cls: Any, info: Any) -> type:
    from wit_world import exports
    from wit_world.exports import routing as r

    def decision_out(d: object) -> Any:
        _expect(d, RouteDecision, "route")
        assert isinstance(d, RouteDecision)
        return r.RouteDecision(
            steps=[
                r.RouteStep(
                    str(s.target),
                    int(s.samples),
                    None if s.min_score is None else float(s.min_score),
                )
                for s in d.steps
            ],
            reason=str(d.reason),
        )

    def option_in(o: Any) -> ModelOption:
        return ModelOption(o.name, o.input_price, o.output_price, _stats(o.stats))

    class Routing(exports.Routing):
        def info(self) -> Any:
            return info

        def check_config(self, config: Pairs) -> None:
            _guard(lambda: _plugin(cls, config))

        def route(self, config: Pairs, task: Any, options: List[Any]) -> Any:
            return _guard(
                lambda: decision_out(
                    _plugin(cls, config).route(_task(task), [option_in(o) for o in options])
                )
            )

    return Routing


def _decomposition(cls: Any, info: Any) -> type:
    from wit_world import exports
    from wit_world.exports import decomposition as d

    def plan_out(p: object) -> Any:
        _expect(p, Plan, "decompose")
        assert isinstance(p, Plan)
        return d.Plan(
            subtasks=[
                d.Subtask(str(s.id), str(s.prompt), [str(x) for x in s.depends_on], s.route, s.verify)
                for s in p.subtasks
            ],
            reason=str(p.reason),
        )

    def text_out(t: object) -> str:
        _expect(t, str, "compose")
        assert isinstance(t, str)
        return t

    class Decomposition(exports.Decomposition):
        def info(self) -> Any:
            return info

        def check_config(self, config: Pairs) -> None:
            _guard(lambda: _plugin(cls, config))

        def decompose(self, config: Pairs, task: Any) -> Any:
            return _guard(lambda: plan_out(_plugin(cls, config).decompose(_task(task))))

        def compose(self, config: Pairs, task: Any, results: List[Any]) -> str:
            return _guard(
                lambda: text_out(
                    _plugin(cls, config).compose(
                        _task(task),
                        [Subresult(x.id, x.answer, x.model, x.score) for x in results],
                    )
                )
            )

    return Decomposition
