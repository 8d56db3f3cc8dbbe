"""The three plugin kinds. Subclass one, and name the module in `arbiter.toml`: the SDK
exports it (no componentize-py code in the plugin).

Each mirrors the Rust SDK's trait: a class-level `info()`, construction from the
pipeline's settings (`new(config)`, by default the constructor), and the kind's calls.
The SDK keeps the object built from a configuration while the configuration stays the
same and the host reuses the instance, so expensive preparation belongs in the
constructor.
"""

from __future__ import annotations

from typing import List, TypeVar

from .config import Config
from .types import (
    Candidate,
    Judged,
    ModelOption,
    Plan,
    PluginInfo,
    RouteDecision,
    Selection,
    Subresult,
    Task,
    Verdict,
)

__all__ = ["Verifier", "Router", "Decomposer"]

V = TypeVar("V", bound="Verifier")
R = TypeVar("R", bound="Router")
D = TypeVar("D", bound="Decomposer")


class Verifier:
    """A verifier judges one candidate answer at a time (`verify`), and optionally
    rescores all candidates of a task together (`select`)."""

    def __init__(self, config: Config) -> None:
        """Builds the verifier from its pipeline settings. Parse and validate settings
        here (raise `InvalidConfig`): the result is kept while the settings stay the
        same."""

    @classmethod
    def info(cls) -> PluginInfo:
        """Metadata shown by `arbiter plugin inspect` and checked by the host at load."""
        raise NotImplementedError(f"{cls.__name__} must define info()")

    @classmethod
    def new(cls: type[V], config: Config) -> V:
        """Builds the plugin from its settings; override for custom construction."""
        return cls(config)

    def verify(self, task: Task, candidate: Candidate) -> Verdict:
        raise NotImplementedError(f"{type(self).__name__} must define verify()")

    def select(self, task: Task, candidates: List[Judged]) -> Selection:
        """Cross-candidate step. The default keeps each candidate's own verdict score
        (0 for candidates whose verification failed)."""
        return Selection([j.score() for j in candidates], "individual verdict scores")


class Router:
    """A router decides which models to try for a task, in what order, with how many
    samples."""

    def __init__(self, config: Config) -> None:
        """Builds the router from its pipeline settings (kept while they do not change)."""

    @classmethod
    def info(cls) -> PluginInfo:
        raise NotImplementedError(f"{cls.__name__} must define info()")

    @classmethod
    def new(cls: type[R], config: Config) -> R:
        return cls(config)

    def route(self, task: Task, options: List[ModelOption]) -> RouteDecision:
        raise NotImplementedError(f"{type(self).__name__} must define route()")


class Decomposer:
    """A decomposer splits a task into a DAG of sub-tasks and composes their answers."""

    def __init__(self, config: Config) -> None:
        """Builds the decomposer from its pipeline settings (kept while they do not
        change)."""

    @classmethod
    def info(cls) -> PluginInfo:
        raise NotImplementedError(f"{cls.__name__} must define info()")

    @classmethod
    def new(cls: type[D], config: Config) -> D:
        return cls(config)

    def decompose(self, task: Task) -> Plan:
        """An empty plan means the task is answered directly."""
        raise NotImplementedError(f"{type(self).__name__} must define decompose()")

    def compose(self, task: Task, results: List[Subresult]) -> str:
        raise NotImplementedError(f"{type(self).__name__} must define compose()")
