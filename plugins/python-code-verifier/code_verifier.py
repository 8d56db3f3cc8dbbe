"""python-code-verifier: runs a code candidate against the task's tests, in the sandbox.

`verify` executes one candidate as returned (HumanEval style: the task's prompt code
followed by the candidate's text) and then each of the task's `assert` tests in its own
copy of the candidate's globals; it also calls the entry point on each test's input and
keeps a digest of what it returned. The verdict lists every test as a check, its score
is the fraction passed, and `details` carries the passed tests and the outputs. A
candidate that fails to load as returned (models often keep writing after the function:
stray imports, asserts, prose) is rejected, but its function body alone is run too, so
its behaviour still counts as evidence for the others.

`select` ranks by agreement between the samples and the tests (default `agreement`):
each test weighs as many samples as pass it, and a candidate scores
sqrt(samples that behave exactly as it does on every test input) x (the weights of the
tests it passes), normalised so the best scores 1. Ties go to the shorter candidate.
On HumanEval dev (100 CodeGen-16B samples per task) it picks a correct program for
45.2% of tasks, against 41.2% for CodeT's dual agreement (`select-method = codet`:
samples grouped by the exact set of tests they pass, scoring group size x tests
passed) and 30.9% for behaviour alone (`mbr-exec`); BENCHMARKS.md has every variant
and their cross-validation.

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
import ast
import hashlib
import io
import json
import math
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

# Standard modules that correct HumanEval dev candidates import (measured over the
# dataset): without them in the snapshot, such a candidate fails to load in the sandbox
# although it is right. They give no access the sandbox does not grant.
import abc  # noqa: F401
import array  # noqa: F401
import dataclasses  # noqa: F401
import enum  # noqa: F401
import os  # noqa: F401
import pathlib  # noqa: F401
import threading  # noqa: F401

try:  # not every build of the interpreter has sockets
    import socket  # noqa: F401
except ImportError:
    pass

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

VERSION = "0.2.0"

#: Steps (trace events) per test. Tracing makes a step cost ~1-2 µs of wasm execution
#: (~3.7k instructions), so a looping test stops after ~50-100 ms. On HumanEval dev
#: candidates a passing test needs 11 steps at the median, 1.5k at the 99.9th
#: percentile and 22k at most.
DEFAULT_TEST_STEPS = 50_000
#: After this many timed-out tests, a candidate's remaining tests fail as not run: a
#: looping candidate would otherwise spend every test's budget. The budget is per test,
#: not shared by the candidate's tests, so a slow but right candidate is not cut off
#: half-way through a long test list (which would split it from its equals).
DEFAULT_MAX_TIMEOUTS = 3
#: A backstop over all of a candidate's tests (~2-4 s of wasm; give the plugin a
#: deadline above that when tasks have hundreds of tests).
DEFAULT_MAX_STEPS = 2_000_000

SELECT_METHODS = ("agreement", "codet", "mbr-exec")

SETTINGS = (
    "mode",
    "body-only",
    "test-steps",
    "max-steps",
    "max-timeouts",
    "max-tests",
    "max-output",
    "max-depth",
    "accept-fraction",
    "select-method",
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


def input_call(tree: ast.Module, entry: Optional[str]) -> Optional[CodeType]:
    """The first call of the entry point inside a parsed test, as an expression to
    evaluate: `assert f(2) == 4` gives `f(2)`. None when the test calls no entry point."""
    if not entry:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry:
            try:
                return compile(ast.Expression(node), "<input>", "eval")
            except (SyntaxError, ValueError):
                return None
    return None


def canonical(value: Any, depth: int = 0) -> str:
    """A text of `value` that does not depend on set or dict order, for comparing what
    candidates return."""
    if depth > 20:
        return "..."
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(canonical(v, depth + 1) for v in value)) + "}"
    if isinstance(value, dict):
        items = sorted((canonical(k, depth + 1), canonical(v, depth + 1)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(v, depth + 1) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ",".join(canonical(v, depth + 1) for v in value) + ")"
    if isinstance(value, float):
        return repr(round(value, 9))
    return repr(value)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


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
        #: Per test, a digest of what the entry point returned on the test's input
        #: (`!Error` when it raised), or None when the test has no such call.
        self.outputs: List[Optional[str]] = []
        self.error: Optional[str] = None
        #: The program compiled, ran and defined the entry point.
        self.loaded = False
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
                "select ranks them by agreement between samples and tests",
            )
            .config_key(
                "mode",
                "`completion`: the candidate completes the task's prompt code (HumanEval); "
                "`program`: the candidate is a whole program (a fenced block is extracted)",
                "completion",
            )
            .config_key(
                "body-only",
                "In completion mode, run only the function body (the candidate up to its "
                "first non-indented line). Off by default: the verdict is on the text as "
                "returned, which is what the caller gets",
                "false",
            )
            .config_key(
                "test-steps",
                "Python steps (traced calls and lines) one test, or the program itself, may "
                "take before it fails as timed out",
                str(DEFAULT_TEST_STEPS),
            )
            .config_key(
                "max-steps",
                "Steps all of a candidate's tests may take together, a backstop; later tests "
                "fail as not run",
                str(DEFAULT_MAX_STEPS),
            )
            .config_key(
                "max-timeouts",
                "Timed-out tests after which a candidate's remaining tests fail as not run",
                str(DEFAULT_MAX_TIMEOUTS),
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
            .config_key(
                "select-method",
                "How `select` ranks: `agreement` (tests weighted by the samples passing "
                "them x sqrt of the samples behaving alike), `codet` (CodeT dual "
                "agreement), `mbr-exec` (samples behaving alike)",
                "agreement",
            )
        )

    def __init__(self, config: Config) -> None:
        config.deny_unknown(SETTINGS)
        self.mode = config.get("mode") or "completion"
        if self.mode not in ("completion", "program"):
            raise InvalidConfig(f"setting `mode` = {self.mode!r}: expected completion or program")
        self.body_only = config.parse_or("body-only", False)
        self.test_steps = self._positive(config, "test-steps", DEFAULT_TEST_STEPS)
        self.max_steps = self._positive(config, "max-steps", DEFAULT_MAX_STEPS)
        self.max_timeouts = self._positive(config, "max-timeouts", DEFAULT_MAX_TIMEOUTS)
        self.max_tests = self._positive(config, "max-tests", 300)
        self.max_output = self._positive(config, "max-output", 1000)
        self.max_depth = self._positive(config, "max-depth", 150)
        self.accept_fraction = config.parse_or("accept-fraction", 1.0)
        if not 0.0 < self.accept_fraction <= 1.0:
            raise InvalidConfig(
                f"setting `accept-fraction` = {self.accept_fraction}: must be in (0, 1]"
            )
        self.select_method = config.get("select-method") or "agreement"
        if self.select_method not in SELECT_METHODS:
            raise InvalidConfig(
                f"setting `select-method` = {self.select_method!r}: expected one of "
                + ", ".join(SELECT_METHODS)
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
        entry = task.meta("entry-point")
        program = self._program(task, candidate)
        run = self._run(program, entry, tests)

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
        details: Dict[str, Any] = {
            "tests": total,
            "passed": run.passed,
            "loads": run.loaded,
            "outputs": run.outputs,
        }
        # A candidate that does not load as returned may still hold a working function
        # followed by junk; how that function behaves is evidence for `select` (it votes),
        # though this candidate cannot be chosen.
        if not run.loaded and self.mode == "completion" and not self.body_only:
            body = self._program(task, candidate, body_only=True)
            if body != program:
                alone = self._run(body, entry, tests)
                if alone.loaded:
                    details["body_alone"] = {"passed": alone.passed, "outputs": alone.outputs}
        if run.output:
            details["output"] = run.output
        if run.output_dropped:
            details["output_dropped_chars"] = run.output_dropped
        return verdict.with_details(details)

    def _program(self, task: Task, candidate: Candidate, body_only: Optional[bool] = None) -> str:
        if self.mode == "program":
            return strip_fences(candidate.text)
        prompt = task.meta("code-prompt")
        if prompt is None:
            prompt = task.prompt()
        cut = self.body_only if body_only is None else body_only
        text = function_body(candidate.text) if cut else candidate.text
        return prompt + text

    def _run(self, program: str, entry: Optional[str], tests: List[Tuple[int, str]]) -> Run:
        run = Run()
        run.outputs = [None] * len(tests)
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
        run.loaded = True
        left = self.max_steps
        timeouts = 0
        for k, (i, test) in enumerate(tests):
            name = f"test {i}"
            if left <= 0:
                run.checks.append(Check(name, False, "not run: the step budget is spent"))
                continue
            if timeouts >= self.max_timeouts:
                run.checks.append(Check(name, False, f"not run: {timeouts} tests timed out"))
                run.outputs[k] = "!timeout"
                continue
            # Parsed once: the tree gives both the test's code and its input's call.
            try:
                tree = ast.parse(test, f"<test {i}>")
                test_code = compile(tree, f"<test {i}>", "exec")
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
            if failure == "timed out":
                # Calling it again on the same input would time out too.
                timeouts += 1
                run.outputs[k] = "!timeout"
                continue
            call = input_call(tree, entry)
            if call is not None and left > 0:
                output = self._output(call, scope, min(self.test_steps, left))
                left -= self.watchdog.used
                timeouts += output == "!timeout"
                run.outputs[k] = output

    def _output(self, call: CodeType, scope: Dict[str, Any], steps: int) -> str:
        """What the entry point returns on one test's input, as a digest (`!Error` for
        an exception, `!timeout` past the budget)."""
        self.watchdog.arm(steps)
        sys.settrace(self.watchdog.trace)
        try:
            value = eval(call, dict(scope))
        except BudgetExceeded:
            return "!timeout"
        except BaseException as e:  # noqa: BLE001 - the candidate's failure is its output
            return "!" + type(e).__name__
        finally:
            sys.settrace(None)
        try:
            return digest(canonical(value))
        except BaseException as e:  # noqa: BLE001 - a value whose repr fails
            return "!" + type(e).__name__

    # ------------------------------------------------------------------ select

    def select(self, task: Task, candidates: List[Judged]) -> Selection:
        if self.select_method == "codet":
            return self._codet(candidates)
        runs = [behaviour(j) for j in candidates]
        # Every sample that ran votes with its behaviour: as returned, or its function
        # body alone when only that loads.
        votes = [r.vote for r in runs if r.vote is not None]
        alike = Counter(v[1] for v in votes)
        support = Counter(t for v in votes for t in v[0])
        raw = []
        for r in runs:
            if not r.chosen:
                raw.append(0.0)
                continue
            same = alike[r.outputs]
            if self.select_method == "mbr-exec":
                raw.append(float(same))
            else:
                # The share of the cluster size only separates candidates that pass no
                # test, so that the commonest behaviour still wins among them.
                tests = sum(support[t] for t in r.passed)
                raw.append(math.sqrt(max(same, 1)) * tests + 1e-9 * same)
        best = max(raw, default=0.0)
        if best <= 0.0:
            return Selection(
                [j.score() for j in candidates],
                "no candidate ran as returned: individual verdict scores",
            )
        scores = shorter_first([r / best for r in raw], candidates)
        if self.select_method == "mbr-exec":
            reason = f"execution agreement over {len(alike)} behaviours of {len(votes)} samples"
        else:
            reason = (
                f"agreement of {len(votes)} samples ({len(alike)} behaviours) and "
                f"{len(support)} tests passed by any"
            )
        return Selection(scores, reason)

    def _codet(self, candidates: List[Judged]) -> Selection:
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
            shorter_first([r / best for r in raw], candidates),
            f"CodeT dual agreement over {len(groups)} groups; the best: "
            f"{groups[top]} candidates x {len(top)} tests",
        )


class Behaviour:
    """What `select` reads from one candidate's verdict details."""

    def __init__(self) -> None:
        #: It ran as returned, so it can be chosen.
        self.chosen = False
        self.passed: FrozenSet[int] = frozenset()
        self.outputs: Tuple[Optional[str], ...] = ()
        #: (passed tests, outputs) of whatever version ran: its vote.
        self.vote: Optional[Tuple[FrozenSet[int], Tuple[Optional[str], ...]]] = None


def behaviour(judged: Judged) -> Behaviour:
    b = Behaviour()
    v = judged.verdict
    if v is None or v.decision == Decision.ABSTAIN:
        return b
    details = v.details_json()
    if not isinstance(details, dict):
        return b

    def read(d: Any) -> Optional[Tuple[FrozenSet[int], Tuple[Optional[str], ...]]]:
        if not isinstance(d, dict):
            return None
        passed, outputs = d.get("passed"), d.get("outputs")
        if not isinstance(passed, list) or not isinstance(outputs, list):
            return None
        return (
            frozenset(i for i in passed if isinstance(i, int)),
            tuple(o if isinstance(o, str) else None for o in outputs),
        )

    own = read(details)
    if own is not None and details.get("loads") is True:
        b.chosen = True
        b.passed, b.outputs = own
        b.vote = own
    else:
        b.vote = read(details.get("body_alone"))
    return b


def shorter_first(scores: List[float], candidates: List[Judged]) -> List[float]:
    """Breaks ties between equal scores by the shorter candidate text (a documented rule
    that does not depend on sampling order), by lowering each tied score a hair."""
    out = list(scores)
    ties: Dict[float, List[int]] = {}
    for i, s in enumerate(scores):
        if s > 0:
            ties.setdefault(s, []).append(i)
    for s, group in ties.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda i: (len(candidates[i].candidate.text.strip()), i))
        for rank, i in enumerate(group):
            out[i] = s * (1.0 - 1e-9 * rank)
    return out


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
