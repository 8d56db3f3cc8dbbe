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

    def test_select_is_codet_agreement(self) -> None:
        bodies = ["    return a + b\n", "    return b + a\n", "    return a - b\n", "    return a * b\n",
                  "    return 0\n"]
        judged = [Judged(Candidate(i, "m", b), self.run_one(b)) for i, b in enumerate(bodies)]
        judged.append(Judged(Candidate(5, "m", "?"), None))
        scores = self.v.select(task(), judged).scores
        # Groups: {0,1,2} x 2 candidates = 6; {2} (a-b, a*b) x 2 = 2; {1,2} (`return 0`)
        # x 1 = 2; no verdict = 0. Normalised by the best group's 6.
        for got, want in zip(scores, [1.0, 1.0, 2 / 6, 2 / 6, 2 / 6, 0.0]):
            self.assertAlmostEqual(got, want)


if __name__ == "__main__":
    unittest.main()
