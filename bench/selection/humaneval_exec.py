#!/usr/bin/env python3
"""Runs every HumanEval dev candidate natively against its task's generated tests, once,
and writes what selection methods need (no labels are used here):

* whether the program loads as returned (prompt + full candidate text) and when cut at
  its first unindented line (what `body-only` runs);
* the generated tests each version passes;
* each version's output on every generated test's *input* (the call of the entry point
  inside the assert), as a short digest, for behavioural clustering.

Each candidate runs in a forked child with a step budget per test (`sys.settrace`, as
the sandboxed verifier does), a memory cap and a wall-clock backstop. This executes
model-written code natively, like CodeT's and HumanEval's own harnesses do: run it in a
throwaway environment.

    python3 bench/selection/humaneval_exec.py data/humaneval-dev.jsonl /tmp/he-exec.json
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import io
import json
import os
import resource
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

TEST_STEPS = 50_000
#: After this many timed-out tests, a candidate's remaining tests count as timed out
#: without running: a looping candidate would otherwise cost every test's full budget.
MAX_TIMEOUTS = 3
WALL_SECONDS = 30
#: Wall-clock budget per test, for slow work the step budget does not see.
TEST_SECONDS = 2.0
MEMORY_BYTES = 1 << 30


class Budget(BaseException):
    pass


def body_only(text: str) -> str:
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.strip() and not line[0].isspace():
            return "".join(lines[:i])
    return text


def input_call(test: str, entry: str):
    """The first call of `entry` in the test's assert, as an evaluable expression."""
    try:
        tree = ast.parse(test)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry:
            return compile(ast.Expression(node), "<input>", "eval")
    return None


def canonical(value, depth=0):
    """A repr that does not depend on set order or hash seeds."""
    if depth > 20:
        return "..."
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(canonical(v, depth + 1) for v in value)) + "}"
    if isinstance(value, dict):
        items = sorted((canonical(k, depth + 1), canonical(v, depth + 1)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        inner = ",".join(canonical(v, depth + 1) for v in value)
        return ("[" if isinstance(value, list) else "(") + inner + ("]" if isinstance(value, list) else ")")
    if isinstance(value, float):
        return repr(round(value, 9))
    return repr(value)


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def run_version(name: str, program: str, entry: str, tests, calls, emit) -> None:
    """Runs one version and emits its results as they come, so a child killed by the
    wall-clock backstop keeps what it finished."""
    steps = [0]

    def trace(frame, event, arg):
        steps[0] += 1
        if steps[0] > TEST_STEPS:
            raise Budget()
        return trace

    def traced(fn):
        steps[0] = 0
        signal.setitimer(signal.ITIMER_REAL, TEST_SECONDS)
        sys.settrace(trace)
        try:
            return fn()
        finally:
            sys.settrace(None)
            signal.setitimer(signal.ITIMER_REAL, 0)

    scope = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        code = compile(program, "<candidate>", "exec")
        traced(lambda: exec(code, scope))
        if not callable(scope.get(entry)):
            raise NameError(entry)
    except BaseException:  # noqa: BLE001
        emit([name, "loads", False])
        return
    emit([name, "loads", True])
    timeouts = 0
    for i, test in enumerate(tests):
        if timeouts >= MAX_TIMEOUTS:
            break
        ok = False
        try:
            tcode = compile(test, "<test>", "exec")
            traced(lambda: exec(tcode, dict(scope)))
            ok = True
        except Budget:
            timeouts += 1
        except BaseException:  # noqa: BLE001
            pass
        output = None
        if calls[i] is not None:
            try:
                value = traced(lambda: eval(calls[i], dict(scope)))
                output = digest(canonical(value))
            except Budget:
                timeouts += 1
                output = "!timeout"
            except BaseException as e:  # noqa: BLE001
                output = "!" + type(e).__name__
        emit([name, i, ok, output])


def on_timer(signum, frame):
    raise Budget()


def candidate_child(prompt, text, entry, tests, calls, fd):
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    signal.signal(signal.SIGALRM, on_timer)
    # The backstop for work inside one C call, which neither the step budget nor the
    # per-test timer can interrupt.
    signal.signal(signal.SIGVTALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_VIRTUAL, WALL_SECONDS)
    sys.setrecursionlimit(500)
    sys.stdout = sys.stderr = io.StringIO()

    def emit(item):
        os.write(fd, (json.dumps(item) + "\n").encode())

    for name, program in (("full", prompt + text), ("cut", prompt + body_only(text))):
        run_version(name, program, entry, tests, calls, emit)
    os._exit(0)


def run_candidate(prompt, text, entry, tests, calls):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            candidate_child(prompt, text, entry, tests, calls, w)
        finally:
            os._exit(1)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    os.waitpid(pid, 0)
    # Tests a killed child did not reach count as timed out.
    result = {}
    for name in ("full", "cut"):
        result[name] = {"loads": False, "passed": [], "outputs": [None] * len(tests)}
        for i, call in enumerate(calls):
            if call is not None:
                result[name]["outputs"][i] = "!timeout"
    for line in b"".join(chunks).decode(errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        v = result[item[0]]
        if item[1] == "loads":
            v["loads"] = item[2]
        else:
            _, i, ok, output = item
            if ok:
                v["passed"].append(i)
            v["outputs"][i] = output
    return result


def run_task(row):
    tests = row["generated_tests"]
    entry = row["entry_point"]
    calls = [input_call(t, entry) for t in tests]
    os.chdir(os.environ.get("TMPDIR", "/tmp"))
    results = [run_candidate(row["prompt"], c["text"], entry, tests, calls) for c in row["candidates"]]
    return row["id"], results


def main():
    src, dst = sys.argv[1], sys.argv[2]
    rows = [json.loads(line) for line in open(src)]
    out = {}
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        for n, (tid, results) in enumerate(pool.map(run_task, rows), 1):
            out[tid] = results
            print(f"{n}/{len(rows)} {tid}", file=sys.stderr, flush=True)
    with open(dst, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
