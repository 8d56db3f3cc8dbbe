"""Write Arbiter plugins in Python.

A plugin is one of three kinds. Subclass `Verifier`, `Router` or `Decomposer`, describe
it in `info()`, build it from its settings in the constructor, and name its module in
the project's `arbiter.toml`; `arbiter plugin build` turns the project into a sandboxed
WebAssembly component (componentize-py), with no binding code in the plugin::

    from arbiter_sdk import Candidate, Config, PluginInfo, Task, Verdict, Verifier

    class NonEmpty(Verifier):
        @classmethod
        def info(cls) -> PluginInfo:
            return PluginInfo.verifier("non-empty", "0.1.0", "Rejects short answers",
                                       stateless=True).config_key(
                "min-length", "Shortest acceptable answer, in characters", "1")

        def __init__(self, config: Config) -> None:
            self.min_length = config.parse_or("min-length", 1)

        def verify(self, task: Task, candidate: Candidate) -> Verdict:
            n = len(candidate.text.strip())
            if n < self.min_length:
                return Verdict.reject(0.0, f"{n} < {self.min_length} characters")
            return Verdict.accept(1.0, "long enough")

The concepts and names are the Rust SDK's (`arbiter-sdk` crate): the same records, the
same three base classes, `Config`, `Verdict.accept/reject/abstain`, `log`, and the
`model` / `stats` capabilities.
"""

from . import log
from .config import Config
from .plugin import Decomposer, Router, Verifier
from .types import (
    Candidate,
    Check,
    ConfigKey,
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
    RouteStep,
    Selection,
    Subresult,
    Subtask,
    Task,
    TokenLogprob,
    Tool,
    ToolCall,
    Verdict,
)

#: The SDK version; plugins built with it target contract `arbiter:plugin@0.2.0`.
__version__ = "0.2.0"
CONTRACT_VERSION = "0.2.0"

__all__ = [
    "log",
    "Config",
    "Verifier",
    "Router",
    "Decomposer",
    "Candidate",
    "Check",
    "ConfigKey",
    "Decision",
    "Failed",
    "InvalidConfig",
    "InvalidInput",
    "Judged",
    "Message",
    "ModelOption",
    "ModelStats",
    "Plan",
    "PluginError",
    "PluginInfo",
    "PluginKind",
    "RouteDecision",
    "RouteStep",
    "Selection",
    "Subresult",
    "Subtask",
    "Task",
    "TokenLogprob",
    "Tool",
    "ToolCall",
    "Verdict",
]
