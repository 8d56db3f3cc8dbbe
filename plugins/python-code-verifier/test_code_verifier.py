"""Native unit tests of the verifier's logic (plain CPython, no component):
`python3 -m unittest discover -s plugins/python-code-verifier` with `sdk/python` on
PYTHONPATH. The sandboxed behaviour is tested by `tests/python.rs` and `cases.jsonl`."""

import json
import unittest

from arbiter_sdk import (
    Candidate, Config, Decision, InvalidConfig, InvalidInput, Judged, Message, Task, Verdict,
)

from code_verifier import BoundedOutput, CodeVerifier, function_body, passed_tests, strip_fences

TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(0, 0) == 0"]


def task(tests=TESTS) -> Task:
    return Task("t", [Message("user", "def add(a, b):\n")], [],
                [("tests", json.dumps(tests)), ("entry-point", "add")])


class Helpers(unittest.TestCase):
    def test_function_body_stops_at_top_level_code(self) -> None:
        text = "    return 1\n\n    # still the body\n\"\"\"\nDjango settings\n"
        self.assertEqual(function_body(text), "    return 1\n\n    # still the body\n")
        self.assertEqual(function_body("    return 1\n"), "    return 1\n")

    def test_fences(self) -> None:
        self.assertEqual(strip_fences("x\n```python\nprint(1)\n```\ny"), "print(1)\n")
        self.assertEqual(strip_fences("print(2)"), "print(2)")

    def test_bounded_output(self) -> None:
        out = BoundedOutput(5)
        out.write("abc")
        out.write("defgh")
        self.assertEqual((out.text(), out.dropped), ("abcde", 3))

    def test_passed_tests_from_details_or_checks(self) -> None:
        v = Verdict.reject(0.5, "").with_details({"passed": [0, 2]})
        self.assertEqual(passed_tests(Judged(Candidate(0, "m", ""), v)), frozenset({0, 2}))
        v = Verdict.reject(0.5, "").with_check("test 3", True).with_check("test 4", False)
        self.assertEqual(passed_tests(Judged(Candidate(0, "m", ""), v)), frozenset({3}))
        self.assertEqual(passed_tests(Judged(Candidate(0, "m", ""), None)), frozenset())


class Verify(unittest.TestCase):
    def setUp(self) -> None:
        self.v = CodeVerifier(Config([("test-steps", "20000")]))

    def run_one(self, body: str) -> Verdict:
        return self.v.verify(task(), Candidate(0, "m", body))

    def test_scores_are_the_passed_fraction(self) -> None:
        self.assertEqual(self.run_one("    return a + b\n").decision, Decision.ACCEPT)
        wrong = self.run_one("    return a - b\n")
        self.assertEqual(wrong.decision, Decision.REJECT)
        self.assertAlmostEqual(wrong.score, 1 / 3)
        self.assertEqual(wrong.details_json()["passed"], [2])

    def test_a_looping_test_does_not_stop_the_others(self) -> None:
        v = self.run_one("    while a == 1:\n        pass\n    return a + b\n")
        self.assertEqual([c.passed for c in v.checks], [False, True, True])
        self.assertIn("timed out", v.checks[0].message or "")

    def test_output_is_bounded_and_restored(self) -> None:
        import sys

        before = sys.stdout
        v = self.run_one("    print('x' * 5000)\n    return a + b\n")
        self.assertIs(sys.stdout, before)
        self.assertEqual(len(v.details_json()["output"]), 1000)

    def test_inputs_and_settings(self) -> None:
        self.assertEqual(self.v.verify(Task.from_prompt("t", "x"), Candidate(0, "m", "")).decision,
                         Decision.ABSTAIN)
        bad = Task("t", [], [], [("tests", "assert x")])
        with self.assertRaises(InvalidInput):
            self.v.verify(bad, Candidate(0, "m", ""))
        for config in ([("mode", "repl")], [("max-tests", "0")], [("nope", "1")]):
            with self.assertRaises(InvalidConfig):
                CodeVerifier(Config(config))

    def judged(self, verifier: CodeVerifier, bodies) -> list:
        return [Judged(Candidate(i, "m", b), verifier.verify(task(), Candidate(i, "m", b)))
                for i, b in enumerate(bodies)]

    def test_select_codet_agreement(self) -> None:
        v = CodeVerifier(Config([("test-steps", "20000"), ("select-method", "codet")]))
        bodies = ["    return a + b\n", "    return b + a\n", "    return a - b\n", "    return a * b\n",
                  "    return 0\n"]
        judged = self.judged(v, bodies)
        judged.append(Judged(Candidate(5, "m", "?"), None))
        scores = v.select(task(), judged).scores
        # Groups: {0,1,2} x 2 candidates = 6; {2} (a-b, a*b) x 2 = 2; {1,2} (`return 0`)
        # x 1 = 2; no verdict = 0. Normalised by the best group's 6; ties go to the
        # shorter text, a hair ahead.
        for got, want in zip(scores, [1.0, 1.0, 2 / 6, 2 / 6, 2 / 6, 0.0]):
            self.assertAlmostEqual(got, want)
        self.assertGreater(scores[0], scores[1] - 1e-12)

    def test_outputs_on_the_tests_inputs(self) -> None:
        d = self.run_one("    return a - b\n").details_json()
        self.assertTrue(d["loads"])
        self.assertEqual(len(d["outputs"]), 3)
        # Another program returning the same values has the same digests.
        same = self.run_one("    return -(b - a)\n").details_json()
        self.assertEqual(d["outputs"], same["outputs"])
        raising = self.run_one("    raise ValueError()\n").details_json()
        self.assertEqual(raising["outputs"], ["!ValueError"] * 3)

    def test_select_agreement_weighs_tests_by_the_samples_passing_them(self) -> None:
        bodies = [
            "    return a + b\n",        # passes 0, 1, 2
            "    return b + a\n",        # the same behaviour
            "    return (a + b) * 1\n",  # the same behaviour, longer
            "    return a - b\n",        # passes 2 only
            "    return a - b\n",
            "    return a - b\n",
            "    return 0\n",            # passes 1, 2
        ]
        scores = self.v.select(task(), self.judged(self.v, bodies)).scores
        # Support: test 0 by 3 samples, test 1 by 4, test 2 by all 7.
        # a+b: sqrt(3) x 14; a-b: sqrt(3) x 7; 0: sqrt(1) x 11.
        best = 3 ** 0.5 * 14
        for got, want in zip(scores, [1, 1, 1, 0.5, 0.5, 0.5, 11 / best]):
            self.assertAlmostEqual(got, want, places=6)
        # Ties go to the shorter text.
        self.assertGreater(scores[0], scores[2])
        self.assertGreater(scores[1], scores[2])

    def test_a_candidate_that_does_not_load_as_returned_votes_but_is_not_chosen(self) -> None:
        junk = "    return a + b\nimport no_such_module\n"
        verdict = self.run_one(junk)
        self.assertEqual(verdict.decision, Decision.REJECT)
        d = verdict.details_json()
        self.assertFalse(d["loads"])
        self.assertEqual(d["body_alone"]["passed"], [0, 1, 2])
        bodies = [junk, junk, "    return b + a\n", "    return 0\n", "    return 0\n"]
        scores = self.v.select(task(), self.judged(self.v, bodies)).scores
        self.assertEqual(scores[:2], [0.0, 0.0])
        # `b + a` has the two junk samples' votes: behaviour shared by 3, tests weighed
        # 3 + 5 + 5; `0` by 2, tests 5 + 5.
        self.assertEqual(scores[2], 1.0)
        self.assertAlmostEqual(scores[3] + scores[4], 2 * (2 ** 0.5 * 10) / (3 ** 0.5 * 13), places=6)

    def test_select_method_is_checked(self) -> None:
        with self.assertRaises(InvalidConfig):
            CodeVerifier(Config([("select-method", "vote")]))

    def test_a_looping_candidate_stops_after_a_few_timeouts(self) -> None:
        v = CodeVerifier(Config([("test-steps", "2000"), ("max-timeouts", "2")]))
        verdict = v.verify(task(), Candidate(0, "m", "    while True:\n        pass\n"))
        messages = [c.message or "" for c in verdict.checks]
        self.assertIn("timed out", messages[0])
        self.assertEqual(messages[2], "not run: 2 tests timed out")


if __name__ == "__main__":
    unittest.main()
