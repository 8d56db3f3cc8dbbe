"""python-code-verifier: runs a code candidate against the task's tests, in the sandbox.

`verify` executes one candidate (HumanEval style: the task's prompt code followed by the
candidate's function body) and then each of the task's `assert` tests in its own copy
of the candidate's globals. The verdict lists every test as a check, its score is the
fraction passed, and `details` carries the indices of the passed tests.

`select` implements CodeT's dual execution agreement (Chen et al., 2022): candidates
are grouped by the exact set of tests they pass, and a candidate scores
(candidates in its group) x (tests that group passes), normalised so the best group
scores 1. Agreement between many independently sampled programs and many generated
tests outweighs a lone program passing a few tests, which is what makes the ranking
robust to wrong generated tests.

Task metadata: `tests` (JSON array of test statements, required; without it the
verifier abstains), `entry-point` (the function the tests call; checked when given),
`code-prompt` (the code the candidate completes; default: the task's prompt).

Hostile candidates lose only their own verdict. The host gives every call a fresh
instance (this plugin is deliberately not `stateless`: candidate code runs in the
plugin's interpreter and could leave state behind), a deadline and a memory cap, and has
no files, network or environment to offer. Inside, a per-test step budget enforced with
`sys.settrace` stops a looping test so the remaining tests still run (steps, not wall
time, so verdicts do not depend on machine load), a low recursion
limit turns runaway recursion into `RecursionError` before the wasm stack overflows,
and output is written to a bounded buffer instead of the call's log. A loop inside a
single C call (e.g. `sum(range(10**15))`) is not traced; the host deadline ends it, and
that candidate alone gets no verdict.
"""

from __future__ import annotations

import builtins
import io
import json
import sys
from collections import Counter
from types import CodeType, FrameType
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

# Candidate code may import these: componentize-py bundles only modules imported while
# it pre-initialises the plugin, so anything first imported during a call would fail
# with ModuleNotFoundError. Importing them here puts them in the snapshot too.
import bisect  # noqa: F401
import collections  # noqa: F401
import copy  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
import itertools  # noqa: F401
import math  # noqa: F401
import operator  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import time  # noqa: F401
import typing  # noqa: F401

from arbiter_sdk import (
    Candidate,
    Check,
    Config,
    Decision,
    InvalidConfig,
    InvalidInput,
    Judged,
    PluginInfo,
    Selection,
    Task,
    Verdict,
    Verifier,
)

VERSION = "0.1.0"

#: Steps (trace events) per test and per candidate. Tracing makes a step cost ~1-2 µs
#: of wasm execution (~3.7k instructions), so a looping test stops after ~50-100 ms and
#: a whole candidate within ~0.2-0.4 s, inside the host's default 1 s deadline. On
#: HumanEval dev candidates a passing test needs 11 steps at the median, 1.5k at the
#: 99.9th percentile and 22k at most; a whole candidate 6.4k at the 90th percentile.
DEFAULT_TEST_STEPS = 50_000
DEFAULT_MAX_STEPS = 200_000

SETTINGS = (
    "mode",
    "body-only",
    "test-steps",
    "max-steps",
    "max-tests",
    "max-output",
    "max-depth",
    "accept-fraction",
)

#: Longest failure message (and echoed test) kept per check: the host bounds a reply.
MESSAGE_CHARS = 160


class BudgetExceeded(BaseException):
    """Raised into candidate code when its time is up. A `BaseException`, so the usual
    `except Exception:` in candidate code does not swallow it."""


class BoundedOutput(io.TextIOBase):
    """Stands in for stdout/stderr while candidate code runs: keeps the first `limit`
    characters and counts the rest, so printing cannot exhaust the call's log budget."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.parts: List[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        text = str(s)
        room = self.limit - self.kept
        if room > 0:
            head = text[:room]
            self.parts.append(head)
            self.kept += len(head)
            self.dropped += len(text) - len(head)
        else:
            self.dropped += len(text)
        return len(text)

    def text(self) -> str:
        return "".join(self.parts)


class Watchdog:
    """A `sys.settrace` function that raises `BudgetExceeded` once the current stretch
    of candidate code has used its steps (trace events: calls, lines, returns).

    Steps rather than wall time: a verdict must not depend on how loaded the machine
    is or how many calls the host interleaves on a thread, and the same candidate must
    get the same verdict every time. The host's deadline remains the wall-clock
    backstop (for work inside single C calls, which is not traced)."""

    def __init__(self) -> None:
        self.left = 0
        self.used = 0

    def arm(self, steps: int) -> None:
        self.left = steps
        self.used = 0

    def trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        self.used += 1
        if self.used > self.left:
            raise BudgetExceeded()
        return self.trace


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def _describe(e: BaseException) -> str:
    if isinstance(e, BudgetExceeded):
        return "timed out"
    message = str(e)
    return _short(f"{type(e).__name__}: {message}" if message else type(e).__name__)


def strip_fences(text: str) -> str:
    """The first fenced code block of a chat-style answer, or the text as is."""
    if "```" not in text:
        return text
    after = text.split("```", 1)[1]
    first_line, _, rest = after.partition("\n")
    body = rest if first_line.strip().isidentifier() or not first_line.strip() else after
    return body.split("```", 1)[0]


def function_body(text: str) -> str:
    """`text` up to its first non-empty line that is not indented: the rest of a
    completion (a new top-level statement, a stray docstring) is not the function body.
    This generalises HumanEval's stop sequences ("\\ndef", "\\nclass", "\\nif", ...)."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.strip() and not line[0].isspace():
            return "".join(lines[:i])
    return text


def parse_tests(raw: str) -> List[str]:
    try:
        tests = json.loads(raw)
    except ValueError as e:
        raise InvalidInput(f"metadata `tests` is not JSON: {e}") from None
    if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
        raise InvalidInput("metadata `tests` must be a JSON array of strings")
    return tests


class Run:
    """The outcome of running one candidate."""

    def __init__(self) -> None:
        self.checks: List[Check] = []
        self.passed: List[int] = []
        self.error: Optional[str] = None
        self.output = ""
        self.output_dropped = 0


class CodeVerifier(Verifier):
    @classmethod
    def info(cls) -> PluginInfo:
        return (
            PluginInfo.verifier(
                "python-code-verifier",
                VERSION,
                "Runs Python candidates against the task's assert tests in the sandbox; "
                "select ranks them by CodeT dual execution agreement",
            )
            .config_key(
                "mode",
                "`completion`: the candidate completes the task's prompt code (HumanEval); "
                "`program`: the candidate is a whole program (a fenced block is extracted)",
                "completion",
            )
            .config_key(
                "body-only",
                "In completion mode, keep only the function body: the candidate ends at its "
                "first non-indented line (models often keep writing unrelated code)",
                "true",
            )
            .config_key(
                "test-steps",
                "Python steps (traced calls and lines) one test, or the program itself, may "
                "take before it fails as timed out",
                str(DEFAULT_TEST_STEPS),
            )
            .config_key(
                "max-steps",
                "Steps all of a candidate's tests may take together; later tests fail as not "
                "run (the default fits the host's default 1 s deadline)",
                str(DEFAULT_MAX_STEPS),
            )
            .config_key("max-tests", "Tests run per candidate (distinct tests, in order)", "300")
            .config_key("max-output", "Characters of the candidate's output kept in details", "1000")
            .config_key("max-depth", "Recursion limit for candidate code", "150")
            .config_key(
                "accept-fraction",
                "Share of the tests a candidate must pass to be accepted: 1 for tests you "
                "trust; lower (e.g. 0.5, a majority) for model-generated tests, which are "
                "often wrong, so even a correct program fails some",
                "1",
            )
        )

    def __init__(self, config: Config) -> None:
        config.deny_unknown(SETTINGS)
        self.mode = config.get("mode") or "completion"
        if self.mode not in ("completion", "program"):
            raise InvalidConfig(f"setting `mode` = {self.mode!r}: expected completion or program")
        self.body_only = config.parse_or("body-only", True)
        self.test_steps = self._positive(config, "test-steps", DEFAULT_TEST_STEPS)
        self.max_steps = self._positive(config, "max-steps", DEFAULT_MAX_STEPS)
        self.max_tests = self._positive(config, "max-tests", 300)
        self.max_output = self._positive(config, "max-output", 1000)
        self.max_depth = self._positive(config, "max-depth", 150)
        self.accept_fraction = config.parse_or("accept-fraction", 1.0)
        if not 0.0 < self.accept_fraction <= 1.0:
            raise InvalidConfig(
                f"setting `accept-fraction` = {self.accept_fraction}: must be in (0, 1]"
            )
        self.watchdog = Watchdog()

    @staticmethod
    def _positive(config: Config, key: str, default: int) -> int:
        value = config.parse_or(key, default)
        if value < 1:
            raise InvalidConfig(f"setting `{key}` = {value}: must be at least 1")
        return value

    # ------------------------------------------------------------------ verify

    def verify(self, task: Task, candidate: Candidate) -> Verdict:
        raw = task.meta("tests")
        if raw is None:
            return Verdict.abstain("the task has no `tests` metadata to run")
        seen: Dict[str, int] = {}
        for i, t in enumerate(parse_tests(raw)):
            if t.strip() and t not in seen and len(seen) < self.max_tests:
                seen[t] = i
        if not seen:
            return Verdict.abstain("the task's `tests` metadata is empty")
        tests = [(i, t) for t, i in seen.items()]
        program = self._program(task, candidate)
        run = self._run(program, task.meta("entry-point"), tests)

        total = len(tests)
        score = len(run.passed) / total
        if run.error is not None:
            reason = run.error
        else:
            reason = f"{len(run.passed)} of {total} tests passed"
        verdict = (
            Verdict.accept(score, reason)
            if run.error is None and len(run.passed) >= self.accept_fraction * total
            else Verdict.reject(score, reason)
        )
        verdict.with_checks(run.checks)
        details: Dict[str, Any] = {"tests": total, "passed": run.passed}
        if run.output:
            details["output"] = run.output
        if run.output_dropped:
            details["output_dropped_chars"] = run.output_dropped
        return verdict.with_details(details)

    def _program(self, task: Task, candidate: Candidate) -> str:
        if self.mode == "program":
            return strip_fences(candidate.text)
        prompt = task.meta("code-prompt")
        if prompt is None:
            prompt = task.prompt()
        text = function_body(candidate.text) if self.body_only else candidate.text
        return prompt + text

    def _run(self, program: str, entry: Optional[str], tests: List[Tuple[int, str]]) -> Run:
        run = Run()
        not_run = lambda why: [Check(f"test {i}", False, why) for i, _ in tests]  # noqa: E731
        try:
            code = compile(program, "<candidate>", "exec")
        except (SyntaxError, ValueError) as e:
            run.error = f"the candidate does not compile: {_describe(e)}"
            run.checks = [Check("compiles", False, run.error)] + not_run("not run")
            return run

        out = BoundedOutput(self.max_output)
        saved = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__, sys.getrecursionlimit())
        sys.stdout = sys.stderr = sys.__stdout__ = sys.__stderr__ = out  # type: ignore[misc]
        # Frames already on the stack count against the limit.
        sys.setrecursionlimit(self.max_depth + 50)
        try:
            self._execute(code, entry, tests, run)
        finally:
            sys.settrace(None)
            sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__ = saved[:4]  # type: ignore[misc]
            sys.setrecursionlimit(saved[4])
        run.output = out.text()
        run.output_dropped = out.dropped
        return run

    def _traced(self, code: CodeType, scope: Dict[str, Any], steps: int) -> Optional[str]:
        """Runs `code` in `scope` with at most `steps` steps; the failure, or None."""
        self.watchdog.arm(steps)
        sys.settrace(self.watchdog.trace)
        try:
            exec(code, scope)
            return None
        except BaseException as e:  # noqa: BLE001 - whatever the candidate raises is its failure
            return _describe(e)
        finally:
            sys.settrace(None)

    def _execute(
        self, code: CodeType, entry: Optional[str], tests: List[Tuple[int, str]], run: Run
    ) -> None:
        scope: Dict[str, Any] = {"__name__": "__candidate__", "__builtins__": builtins}
        failure = self._traced(code, scope, self.test_steps)
        if failure is None and entry and not callable(scope.get(entry)):
            failure = f"the candidate does not define `{entry}`"
        if failure is not None:
            run.error = f"the candidate failed before its tests: {failure}"
            run.checks.append(Check("runs", False, run.error))
            run.checks.extend(Check(f"test {i}", False, "not run") for i, _ in tests)
            return
        left = self.max_steps
        for i, test in tests:
            name = f"test {i}"
            if left <= 0:
                run.checks.append(Check(name, False, "not run: the step budget is spent"))
                continue
            try:
                test_code = compile(test, f"<test {i}>", "exec")
            except (SyntaxError, ValueError) as e:
                run.checks.append(Check(name, False, f"the test does not compile: {_describe(e)}"))
                continue
            failure = self._traced(test_code, dict(scope), min(self.test_steps, left))
            left -= self.watchdog.used
            if failure is None:
                run.passed.append(i)
                run.checks.append(Check(name, True))
            else:
                run.checks.append(Check(name, False, f"{failure} | {_short(test)}"))

    # ------------------------------------------------------------------ select

    def select(self, task: Task, candidates: List[Judged]) -> Selection:
        keys = [passed_tests(j) for j in candidates]
        groups = Counter(k for k in keys if k)
        raw = [groups[k] * len(k) if k else 0 for k in keys]
        best = max(raw, default=0)
        if best == 0:
            return Selection(
                [j.score() for j in candidates],
                "no candidate passed a test: individual verdict scores",
            )
        top = max(groups, key=lambda k: groups[k] * len(k))
        return Selection(
            [r / best for r in raw],
            f"CodeT dual agreement over {len(groups)} groups; the best: "
            f"{groups[top]} candidates x {len(top)} tests",
        )


def passed_tests(judged: Judged) -> FrozenSet[int]:
    """The tests a candidate passed, from its verdict's details (or, for verdicts from
    elsewhere, its passed `test N` checks); empty without a usable verdict."""
    v = judged.verdict
    if v is None or v.decision == Decision.ABSTAIN:
        return frozenset()
    details = v.details_json()
    if isinstance(details, dict) and isinstance(details.get("passed"), list):
        return frozenset(i for i in details["passed"] if isinstance(i, int))
    out = set()
    for c in v.checks:
        if c.passed and c.name.startswith("test "):
            try:
                out.add(int(c.name[5:]))
            except ValueError:
                continue
    return frozenset(out)
