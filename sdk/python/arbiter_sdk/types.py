"""The contract's records (`wit/v0.2.0/types.wit` and the exported interfaces' records),
as plain typed Python classes.

These are the SDK's own classes, not the bindings componentize-py generates: editors and
type checkers see them without a build, plugin code can be unit-tested with any CPython,
and the export glue (`arbiter_sdk._export`) converts them to and from the generated
bindings at the component boundary. Field names follow the WIT names in snake case, as
the Rust SDK's do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import List, Optional, Tuple

__all__ = [
    "Tool",
    "ToolCall",
    "TokenLogprob",
    "Message",
    "Task",
    "Candidate",
    "Decision",
    "Check",
    "Verdict",
    "Judged",
    "Selection",
    "ModelStats",
    "PluginKind",
    "ConfigKey",
    "PluginInfo",
    "PluginError",
    "InvalidConfig",
    "InvalidInput",
    "Failed",
    "ModelOption",
    "RouteStep",
    "RouteDecision",
    "Subtask",
    "Plan",
    "Subresult",
]


@dataclass
class Tool:
    """A function the request lets the model call (OpenAI `tools`, type `function`)."""

    name: str
    #: Empty when the request gave none.
    description: str = ""
    #: The JSON Schema of the arguments, as JSON text (`{}` when the request gave none).
    parameters: str = "{}"

    def parameters_json(self) -> object:
        """The parameters' JSON Schema parsed (`None` when it is not valid JSON)."""
        try:
            return json.loads(self.parameters)
        except ValueError:
            return None


@dataclass
class ToolCall:
    """A call of a tool, as the model made it."""

    #: The id the model gave the call; `tool` messages answer it by this id.
    id: str
    name: str
    #: The arguments as JSON text, exactly as the model wrote them: they may not be valid
    #: JSON, let alone valid against the tool's schema. Checking is the point.
    arguments: str = "{}"

    def arguments_json(self) -> object:
        """The arguments parsed (`None` when they are not valid JSON)."""
        try:
            return json.loads(self.arguments)
        except ValueError:
            return None


@dataclass
class TokenLogprob:
    """One generated token and its log-probability, with the likeliest alternatives when
    the request asked for `top_logprobs`."""

    token: str
    logprob: float
    top: List[Tuple[str, float]] = field(default_factory=list)


@dataclass
class Message:
    """One chat message of a task, as in the OpenAI chat API.

    `Message(role, content)` is a text message; an assistant message that only calls
    tools has empty content and its calls in `tool_calls`, and a `tool` message names
    the call it answers in `tool_call_id`."""

    role: str
    #: Empty for an assistant message that only calls tools.
    content: str = ""
    #: The tools an assistant message called.
    tool_calls: List[ToolCall] = field(default_factory=list)
    #: The call a `tool` message answers.
    tool_call_id: Optional[str] = None

    @staticmethod
    def user(content: str) -> Message:
        """A user message."""
        return Message("user", content)


@dataclass
class Task:
    """The request a model is asked to answer."""

    id: str
    messages: List[Message]
    #: Attributes and tags the tenant or the pipeline attached (e.g. "math", "code").
    tags: List[str] = field(default_factory=list)
    #: Tenant-provided metadata, e.g. `reference`, `tests` (JSON array), `entry-point`.
    metadata: List[Tuple[str, str]] = field(default_factory=list)
    #: The functions the request lets the model call; empty when it offers none.
    tools: List[Tool] = field(default_factory=list)

    @staticmethod
    def from_prompt(id: str, prompt: str) -> Task:
        """A single-turn task asking `prompt` (handy in unit tests)."""
        return Task(id=id, messages=[Message.user(prompt)])

    def prompt(self) -> str:
        """The content of the last user message: the question in single-turn tasks."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return self.messages[-1].content if self.messages else ""

    def meta(self, key: str) -> Optional[str]:
        """A metadata value by key (the first one given)."""
        for k, v in self.metadata:
            if k == key:
                return v
        return None

    def has_tag(self, tag: str) -> bool:
        return tag in self.tags

    def tool(self, name: str) -> Optional[Tool]:
        """A tool the request offers, by name."""
        for t in self.tools:
            if t.name == name:
                return t
        return None


@dataclass
class Candidate:
    """One answer produced by a model for a task."""

    #: Position of this candidate among the task's candidates (stable, 0-based).
    index: int
    model: str
    #: Empty when the model only called tools.
    text: str = ""
    #: The tools the model called instead of (or besides) answering in text.
    tool_calls: List[ToolCall] = field(default_factory=list)
    #: Per-token log-probabilities of `text`, when the request asked for `logprobs` and
    #: the upstream sent them; empty otherwise.
    logprobs: List[TokenLogprob] = field(default_factory=list)

    def total_logprob(self) -> Optional[float]:
        """Log-probability of the whole text (the sum over its tokens), when the request
        asked for `logprobs`; `None` otherwise."""
        if not self.logprobs:
            return None
        return sum(t.logprob for t in self.logprobs)


class Decision(Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    #: The verifier cannot judge this candidate; the host looks at other signals.
    ABSTAIN = "abstain"


@dataclass
class Check:
    """One named check a verifier ran, e.g. a unit test or a schema rule."""

    name: str
    passed: bool
    message: Optional[str] = None


def _clamp_score(score: float) -> float:
    # NaN would be refused by the host as an invalid result; "no confidence" is 0.
    if math.isnan(score):
        return 0.0
    return min(1.0, max(0.0, float(score)))


@dataclass
class Verdict:
    """A verifier's judgement of one candidate.

    Build one with `Verdict.accept`, `Verdict.reject` or `Verdict.abstain`: they keep the
    score inside [0, 1], which the host enforces (an out-of-range or NaN score fails the
    call).
    """

    #: Confidence that the candidate is right, in [0, 1].
    score: float
    decision: Decision
    #: Short human-readable reason (the host truncates long reasons).
    reason: str
    checks: List[Check] = field(default_factory=list)
    #: Optional extra structure as JSON text, passed through to traces.
    details: Optional[str] = None

    @staticmethod
    def new(decision: Decision, score: float, reason: str) -> Verdict:
        """A verdict with `score` clamped into [0, 1] (NaN becomes 0)."""
        return Verdict(score=_clamp_score(score), decision=decision, reason=reason)

    @staticmethod
    def accept(score: float, reason: str) -> Verdict:
        """An accepting verdict; `score` is clamped into [0, 1]."""
        return Verdict.new(Decision.ACCEPT, score, reason)

    @staticmethod
    def reject(score: float, reason: str) -> Verdict:
        """A rejecting verdict; `score` is clamped into [0, 1]."""
        return Verdict.new(Decision.REJECT, score, reason)

    @staticmethod
    def abstain(reason: str) -> Verdict:
        """The verifier cannot judge this candidate (score 0.5: no information)."""
        return Verdict.new(Decision.ABSTAIN, 0.5, reason)

    def with_check(self, name: str, passed: bool, message: Optional[str] = None) -> Verdict:
        """Adds a named check (a test, a rule) to the verdict; returns the verdict."""
        self.checks.append(Check(name, passed, message))
        return self

    def with_checks(self, checks: List[Check]) -> Verdict:
        self.checks.extend(checks)
        return self

    def with_details(self, details: object) -> Verdict:
        """Attaches JSON the host stores with the trace: JSON text as is, any other value
        is serialised with `json.dumps`."""
        self.details = details if isinstance(details, str) else json.dumps(details)
        return self

    def details_json(self) -> object:
        """The details parsed as JSON (`None` when absent or not valid JSON)."""
        if self.details is None:
            return None
        try:
            return json.loads(self.details)
        except ValueError:
            return None


@dataclass
class Judged:
    """A candidate with the verdict it got; `verdict` is `None` when its own verification
    failed (trap, deadline, error), so one broken candidate never hides the others."""

    candidate: Candidate
    verdict: Optional[Verdict]

    def score(self) -> float:
        """The verdict's score, or 0 when verification of this candidate failed."""
        return self.verdict.score if self.verdict is not None else 0.0


@dataclass
class Selection:
    """Result of the cross-candidate step: one score per judged candidate, same order."""

    scores: List[float]
    reason: str


@dataclass
class ModelStats:
    """Observed outcomes of a model, from the host's trace store (this tenant's requests
    only). `attempts` counts the attempts whose outcome is known (verified, failed or
    judged by feedback), the ones `success_rate` is over; latencies cover the recent timed
    attempts, judged or not."""

    attempts: int
    success_rate: float
    latency_p50_ms: float
    latency_p95_ms: float


class PluginKind(Enum):
    VERIFIER = "verifier"
    ROUTER = "router"
    DECOMPOSER = "decomposer"


@dataclass
class ConfigKey:
    """A setting the plugin understands, for `arbiter plugin inspect` and config checks."""

    name: str
    description: str
    default: Optional[str] = None


@dataclass
class PluginInfo:
    """What `arbiter plugin inspect` shows and the host checks at load.

    Build one with `PluginInfo.verifier(...)`, `.router(...)` or `.decomposer(...)` and
    chain `.config_key(...)`. `stateless=True` (the Rust SDK's `.stateless()`) declares
    that calls keep no state, so the host may reuse a warm instance instead of a fresh
    one per call; leave it off when plugin code runs untrusted input that could leave
    state behind.
    """

    name: str
    version: str
    kind: PluginKind
    description: str
    stateless: bool = False
    config_keys: List[ConfigKey] = field(default_factory=list)

    @staticmethod
    def verifier(name: str, version: str, description: str, *, stateless: bool = False) -> PluginInfo:
        return PluginInfo(name, version, PluginKind.VERIFIER, description, stateless)

    @staticmethod
    def router(name: str, version: str, description: str, *, stateless: bool = False) -> PluginInfo:
        return PluginInfo(name, version, PluginKind.ROUTER, description, stateless)

    @staticmethod
    def decomposer(name: str, version: str, description: str, *, stateless: bool = False) -> PluginInfo:
        return PluginInfo(name, version, PluginKind.DECOMPOSER, description, stateless)

    def config_key(self, name: str, description: str, default: Optional[str] = None) -> PluginInfo:
        """Documents a setting (shown by `arbiter plugin inspect`); returns the info."""
        self.config_keys.append(ConfigKey(name, description, default))
        return self


class PluginError(Exception):
    """The contract's `plugin-error`. Raise one of its subclasses from plugin code:

    * `InvalidConfig`: the settings are unusable (refuses the pipeline at load time);
    * `InvalidInput`: this input cannot be handled (e.g. missing task metadata);
    * `Failed`: any other failure.

    Any other exception escaping plugin code is reported as `Failed`, with its type and
    message, rather than as a trap.
    """

    #: The WIT case name, e.g. "invalid-config".
    case: str = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidConfig(PluginError):
    case = "invalid-config"


class InvalidInput(PluginError):
    case = "invalid-input"


class Failed(PluginError):
    case = "failed"


# ------------------------------------------------------------------ routing records


@dataclass
class ModelOption:
    """A model (or pipeline branch) the host can run, with what it costs and how it did."""

    name: str
    #: USD per million input tokens.
    input_price: float
    #: USD per million output tokens.
    output_price: float
    stats: Optional[ModelStats] = None


@dataclass
class RouteStep:
    #: A `ModelOption` name.
    target: str
    #: Candidates to sample from it (at least 1).
    samples: int = 1
    #: Escalate to the next step unless the best verified score reaches this; `None`
    #: escalates only when no candidate is accepted.
    min_score: Optional[float] = None


@dataclass
class RouteDecision:
    """Steps in order: the host runs the first, and escalates down the list."""

    steps: List[RouteStep]
    reason: str


# ------------------------------------------------------------ decomposition records


@dataclass
class Subtask:
    #: Unique within the plan.
    id: str
    #: The sub-task's prompt; `{{id}}` is replaced by the answer of dependency `id`.
    prompt: str
    depends_on: List[str] = field(default_factory=list)
    #: Optional hint naming the pipeline or model to use for this step.
    route: Optional[str] = None
    #: Optional hint naming the verifier to use for this step.
    verify: Optional[str] = None


@dataclass
class Plan:
    """An empty plan means "do not decompose": the host answers the task directly."""

    subtasks: List[Subtask]
    reason: str


@dataclass
class Subresult:
    id: str
    answer: str
    model: str
    #: Best verifier score of the accepted answer, when it was verified.
    score: Optional[float] = None
