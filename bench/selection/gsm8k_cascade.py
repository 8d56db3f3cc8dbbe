#!/usr/bin/env python3
"""Fits the GSM8K verifier's learned acceptance score (logistic regression over the
features `gsm8k-verifier`'s `features` example prints) with two-fold cross-validation on
the dev split, and reports the Mixtral -> GPT-4 cascade's accuracy against cost as the
acceptance threshold sweeps.

    (cd plugins/gsm8k-verifier && cargo run -q --example features -- ../../data/gsm8k-dev.jsonl) > /tmp/gsm-features.jsonl
    python3 bench/selection/gsm8k_cascade.py /tmp/gsm-features.jsonl [data/gsm8k-dev.jsonl]

With the dataset as a second argument it also tries a bag of words (tf-idf of question
and answer, uni- and bigrams) next to the features, the same way, as a bound on what the
text alone can tell.

Needs numpy and scikit-learn. Folds: even and odd positions in the file. Cost follows
data/README.md (tokens = ceil(chars / 4); USD per 1M tokens in/out). Prints, per fold,
the curve on the held-out half, the threshold chosen on the training half (the most
accurate within 40% of GPT-4's cost there), and the weights to ship (fitted on all of
dev) as the plugin's `weights` setting.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

CHEAP, STRONG = "mixtral-8x7b-instruct", "gpt-4-1106-preview"
PRICE = {CHEAP: (0.60, 0.60), STRONG: (10.00, 30.00)}
#: The cost budget the threshold is chosen under, as a share of GPT-4's cost.
MAX_COST = 0.40
C = 1.0


def cost(model, prompt_chars, text_chars):
    pin, pout = PRICE[model]
    return (math.ceil(prompt_chars / 4) * pin + math.ceil(text_chars / 4) * pout) / 1e6


def load(path):
    rows = {}
    names = None
    for line in open(path):
        r = json.loads(line)
        names = names or r["names"]
        q = rows.setdefault(r["id"], {"id": r["id"]})
        q[r["model"]] = r
    ids = list(rows)
    X = np.array([rows[i][CHEAP]["features"] for i in ids])
    cheap_ok = np.array([rows[i][CHEAP]["correct"] for i in ids], dtype=float)
    strong_ok = np.array([rows[i][STRONG]["correct"] for i in ids], dtype=float)
    cheap_cost = np.array([cost(CHEAP, rows[i][CHEAP]["prompt_chars"], rows[i][CHEAP]["text_chars"]) for i in ids])
    strong_cost = np.array([cost(STRONG, rows[i][STRONG]["prompt_chars"], rows[i][STRONG]["text_chars"]) for i in ids])
    return names, X, cheap_ok, strong_ok, cheap_cost, strong_cost


def fit(X, y):
    m = LogisticRegression(C=C, max_iter=5000)
    m.fit(X, y)
    return m


def curve(p, thresholds, cheap_ok, strong_ok, cheap_cost, strong_cost):
    """(threshold, accuracy, cost share of GPT-4 alone) for each threshold: accept the
    cheap answer when p >= threshold, else escalate."""
    out = []
    for t in thresholds:
        keep = p >= t
        acc = np.where(keep, cheap_ok, strong_ok).mean()
        c = (cheap_cost.sum() + strong_cost[~keep].sum()) / strong_cost.sum()
        out.append((t, acc, c))
    return out


def bag_of_words(dataset, X, cheap_ok, strong_ok, cheap_cost, strong_cost, folds, thresholds):
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    rows = [json.loads(line) for line in open(dataset)]
    text = [r["prompt"] + " || " + next(c["text"] for c in r["candidates"] if c["model"] == CHEAP) for r in rows]
    held = []
    for train, test in ((folds[0], folds[1]), (folds[1], folds[0])):
        v = TfidfVectorizer(min_df=3, ngram_range=(1, 2))
        a = hstack([v.fit_transform([text[i] for i in train]), csr_matrix(X[train])])
        b = hstack([v.transform([text[i] for i in test]), csr_matrix(X[test])])
        m = LogisticRegression(C=C, max_iter=5000).fit(a, cheap_ok[train])
        tr = curve(m.predict_proba(a)[:, 1], thresholds, cheap_ok[train], strong_ok[train], cheap_cost[train], strong_cost[train])
        te = curve(m.predict_proba(b)[:, 1], thresholds, cheap_ok[test], strong_ok[test], cheap_cost[test], strong_cost[test])
        ok = [(acc, -c, t) for t, acc, c in tr if c <= MAX_COST]
        chosen = max(ok)[2] if ok else thresholds[0]
        held.append((next(r for r in te if r[0] == chosen), len(test)))
    n = sum(w for _, w in held)
    acc = sum(r[1] * w for r, w in held) / n
    c = sum(r[2] * w for r, w in held) / n
    print(f"bag of words + features, cross-validated: accuracy {acc:.3f} at {c:.3f} of GPT-4's cost")


def main():
    names, X, cheap_ok, strong_ok, cheap_cost, strong_cost = load(sys.argv[1])
    n = len(X)
    idx = np.arange(n)
    folds = [idx[0::2], idx[1::2]]
    thresholds = np.round(np.arange(0.30, 0.96, 0.01), 2)
    print(f"questions {n}; Mixtral {cheap_ok.mean():.3f}, GPT-4 {strong_ok.mean():.3f}, "
          f"oracle {np.maximum(cheap_ok, strong_ok).mean():.3f}")
    held = []
    for k, (train, test) in enumerate(((folds[0], folds[1]), (folds[1], folds[0]))):
        m = fit(X[train], cheap_ok[train])
        p_train = m.predict_proba(X[train])[:, 1]
        p_test = m.predict_proba(X[test])[:, 1]
        tr = curve(p_train, thresholds, cheap_ok[train], strong_ok[train], cheap_cost[train], strong_cost[train])
        te = curve(p_test, thresholds, cheap_ok[test], strong_ok[test], cheap_cost[test], strong_cost[test])
        # The most accurate threshold on the training half within the cost budget.
        ok = [(a, -c, t) for t, a, c in tr if c <= MAX_COST]
        chosen = max(ok)[2] if ok else thresholds[0]
        row = next(r for r in te if r[0] == chosen)
        held.append((row, len(test)))
        print(f"\nfold {k}: trained on {len(train)}, held out {len(test)}; chosen threshold {chosen}")
        print("  threshold  held-out accuracy  cost / GPT-4")
        for t, a, c in te[::5]:
            print(f"  {t:9.2f}  {a:17.3f}  {c:12.3f}")
        print(f"  chosen:   {row[1]:17.3f}  {row[2]:12.3f}")
    acc = sum(r[1] * w for r, w in held) / n
    c = sum(r[2] * w for r, w in held) / n
    print(f"\ncross-validated (held-out halves pooled): accuracy {acc:.3f} at {c:.3f} of GPT-4's cost")
    if len(sys.argv) > 2:
        bag_of_words(sys.argv[2], X, cheap_ok, strong_ok, cheap_cost, strong_cost, folds, thresholds)
    m = fit(X, cheap_ok)
    weights = [m.intercept_[0]] + list(m.coef_[0])
    print("weights (intercept, then " + ", ".join(names) + "):")
    print(",".join(f"{w:.4f}" for w in weights))


if __name__ == "__main__":
    main()
