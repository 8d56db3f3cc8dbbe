#!/usr/bin/env python3
"""Scores candidate-selection methods on HumanEval dev from the execution record that
`humaneval_exec.py` writes, and chooses among them by two-fold cross-validation.

Top-1 of a method on a task is the mean correctness over the candidates it ranks first
(its tied top group), so a seeded tie-break cannot swing it. Two-fold cross-validation
(even and odd tasks) chooses a method on one fold and reports it on the other. Labels are the dataset's
(HumanEval's own tests on the candidate as returned).

    python3 bench/selection/humaneval_select.py data/humaneval-dev.jsonl /tmp/he-exec.json
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from typing import Callable, Dict, List

Scores = List[float]


def versions(task, version):
    """Each sample's run in `version` when it loads, else None."""
    return [r[version] if r[version]["loads"] else None for r in task["runs"]]


def votes(task):
    """Each sample's behaviour as the shipped verifier counts it: as returned, or its
    function body alone when only that loads."""
    out = []
    for r in task["runs"]:
        v = r["full"] if r["full"]["loads"] else r["cut"]
        out.append(v if v["loads"] else None)
    return out


def codet(task, version="full") -> Scores:
    """CodeT dual agreement: group by the set of passed tests; |group| x |tests|."""
    runs = versions(task, version)
    keys = [frozenset(v["passed"]) if v else None for v in runs]
    groups = Counter(k for k in keys if k)
    return [float(groups[k] * len(k)) if k else 0.0 for k in keys]


def mbr(task, version="full") -> Scores:
    """Behavioural agreement (MBR-exec): samples grouped by their outputs on every test
    input; a sample scores its group's size."""
    runs = versions(task, version)
    sigs = [tuple(v["outputs"]) if v else None for v in runs]
    groups = Counter(s for s in sigs if s is not None)
    return [float(groups[s]) if s is not None else 0.0 for s in sigs]


def agreement(task, alpha=0.5, weighted=True, voters=votes) -> Scores:
    """Behaviour x tests: |samples behaving alike|^alpha x (tests passed, each weighing
    the samples that pass it, or 1). Only samples that load as returned can be chosen;
    every sample that runs votes. alpha = 1, unweighted, is CodeT's formula on
    behaviour groups."""
    vote = voters(task)
    alike = Counter(tuple(v["outputs"]) for v in vote if v)
    support = Counter(t for v in vote if v for t in v["passed"])
    out = []
    for v in versions(task, "full"):
        if v is None:
            out.append(0.0)
            continue
        same = alike[tuple(v["outputs"])]
        tests = sum(support[t] if weighted else 1 for t in v["passed"])
        out.append(math.sqrt(max(same, 1)) ** (2 * alpha) * tests + 1e-9 * same)
    return out


def top1(task, scores: Scores) -> float:
    """Mean correctness over the tied top group."""
    best = max(scores)
    top = [i for i, s in enumerate(scores) if s == best]
    return sum(task["labels"][i] for i in top) / len(top)


def first_index(task, scores: Scores) -> float:
    """The lowest sample index among the top group (the old tie-break)."""
    best = max(scores)
    return float(task["labels"][scores.index(best)])


def shortest(task, scores: Scores) -> float:
    """The shortest text among the top group (the shipped tie-break)."""
    best = max(scores)
    top = [i for i, s in enumerate(scores) if s == best]
    i = min(top, key=lambda i: (len(task["texts"][i].strip()), i))
    return float(task["labels"][i])


def full_only(task):
    return versions(task, "full")


METHODS: Dict[str, Callable] = {
    "codet on the function body (before)": lambda t: codet(t, "cut"),
    "codet": codet,
    "mbr-exec": mbr,
    "behaviour groups x tests (alpha 1)": lambda t: agreement(t, 1.0, False, full_only),
    "behaviour groups x tests, bodies vote": lambda t: agreement(t, 1.0, False),
    "sqrt(behaviour) x tests, bodies vote": lambda t: agreement(t, 0.5, False),
    "behaviour x weighted tests": lambda t: agreement(t, 1.0, True, full_only),
    "sqrt(behaviour) x weighted tests": lambda t: agreement(t, 0.5, True, full_only),
    "behaviour x weighted tests, bodies vote": lambda t: agreement(t, 1.0, True),
    "sqrt(behaviour) x weighted tests, bodies vote (shipped)": lambda t: agreement(t, 0.5, True),
    "behaviour^0.25 x weighted tests, bodies vote": lambda t: agreement(t, 0.25, True),
}


def load(dataset: str, record: str):
    rows = [json.loads(line) for line in open(dataset)]
    runs = json.load(open(record))
    return [
        {
            "id": r["id"],
            "labels": [c["correct"] for c in r["candidates"]],
            "texts": [c["text"] for c in r["candidates"]],
            "runs": runs[r["id"]],
        }
        for r in rows
    ]


def main():
    tasks = load(sys.argv[1], sys.argv[2])
    folds = [tasks[0::2], tasks[1::2]]
    table = {}
    for name, method in METHODS.items():
        per = [[top1(t, method(t)) for t in f] for f in folds]
        allv = [top1(t, method(t)) for t in tasks]
        idx = sum(first_index(t, method(t)) for t in tasks) / len(tasks)
        short = sum(shortest(t, method(t)) for t in tasks) / len(tasks)
        table[name] = (sum(allv) / len(allv), sum(per[0]) / len(per[0]), sum(per[1]) / len(per[1]), idx, short)
    print("top-1 on HumanEval dev: mean over the tied top group (all tasks, each fold), then")
    print("with ties broken by the lowest sample index and by the shortest text")
    print(f"{'method':56} {'all':>6} {'fold0':>6} {'fold1':>6} {'index':>6} {'short':>6}")
    for name, (a, f0, f1, idx, short) in table.items():
        print(f"{name:56} {a:6.3f} {f0:6.3f} {f1:6.3f} {idx:6.3f} {short:6.3f}")
    # Two-fold cross-validation: choose on one fold, report on the other.
    held = []
    for train, test in ((1, 2), (2, 1)):
        pick = max(table, key=lambda n: table[n][train])
        held.append((pick, table[pick][test], len(folds[test - 1])))
        print(f"chosen on fold{train - 1}: {pick!r}; held-out fold{test - 1}: {table[pick][test]:.3f}")
    total = sum(v * n for _, v, n in held) / sum(n for _, _, n in held)
    print(f"cross-validated top-1: {total:.3f}")
    n_tasks = len(tasks)
    oracle = sum(1 for t in tasks if any(t["labels"])) / n_tasks
    pass1 = sum(sum(t["labels"]) / len(t["labels"]) for t in tasks) / n_tasks
    print(f"pass@1 {pass1:.3f}  pass@100 {oracle:.3f}")


if __name__ == "__main__":
    main()
