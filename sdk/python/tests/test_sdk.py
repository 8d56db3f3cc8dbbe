"""Unit tests of the Python SDK and templates with plain CPython (no component build):
`python3 -m unittest discover -s sdk/python/tests` from the repository root.

The same plugins are exercised in the sandbox by `tests/python.rs`; these catch logic
errors in seconds instead of a 20-second componentize-py build.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import unittest
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List

SDK = Path(__file__).resolve().parents[1]
REPO = SDK.parents[1]
sys.path.insert(0, str(SDK))

from arbiter_sdk import (  # noqa: E402
    Candidate,
    Config,
    Decision,
    InvalidConfig,
    Judged,
    Message,
    ModelOption,
    PluginError,
    PluginInfo,
    PluginKind,
    Subresult,
    Task,
    TokenLogprob,
    Tool,
    ToolCall,
    Verdict,
    Verifier,
    __version__,
    CONTRACT_VERSION,
)


def load_template(kind: str) -> ModuleType:
    path = SDK / "templates" / kind / "plugin.py"
    spec = importlib.util.spec_from_file_location(f"template_{kind}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vectors(kind: str) -> List[Dict[str, Any]]:
    text = (REPO / "tests" / "vectors" / f"template-{kind}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip() and not line.startswith("//")]


def task_of(case: Dict[str, Any]) -> Task:
    return Task("t", [Message("user", case.get("prompt", ""))])


class ConfigTests(unittest.TestCase):
    def test_last_value_wins_and_parses(self) -> None:
        c = Config([("n", "1"), ("n", " 3 "), ("flag", "yes"), ("xs", "a, ,b")])
        self.assertEqual(c.get("n"), " 3 ")
        self.assertEqual(c.parse_or("n", 0), 3)
        self.assertEqual(c.parse_or("missing", 7), 7)
        self.assertTrue(c.parse_or("flag", False))
        self.assertEqual(c.list("xs"), ["a", "b"])
        with self.assertRaises(InvalidConfig) as e:
            Config([("n", "many")]).parse_or("n", 1)
        self.assertIn("`n`", e.exception.message)
        with self.assertRaises(InvalidConfig):
            Config([]).require("k")
        with self.assertRaises(InvalidConfig) as e:
            Config([("typo", "1")]).deny_unknown(["known"])
        self.assertIn("typo", e.exception.message)
        self.assertEqual(Config([("a", "1")]), Config([("a", "1")]))


class RecordTests(unittest.TestCase):
    def test_verdict_helpers_clamp(self) -> None:
        self.assertEqual(Verdict.accept(3.0, "r").score, 1.0)
        self.assertEqual(Verdict.reject(-1.0, "r").score, 0.0)
        self.assertEqual(Verdict.reject(float("nan"), "r").score, 0.0)
        a = Verdict.abstain("?")
        self.assertEqual((a.decision, a.score), (Decision.ABSTAIN, 0.5))
        v = Verdict.accept(0.5, "r").with_check("t", True).with_details({"k": [1]})
        self.assertEqual(v.checks[0].name, "t")
        self.assertEqual(v.details_json(), {"k": [1]})
        self.assertEqual(Judged(Candidate(0, "m", "x"), None).score(), 0.0)

    def test_task_helpers(self) -> None:
        t = Task("t", [Message("user", "q1"), Message("assistant", "a"), Message("user", "q2")],
                 ["code"], [("k", "v")])
        self.assertEqual(t.prompt(), "q2")
        self.assertEqual(t.meta("k"), "v")
        self.assertIsNone(t.meta("x"))
        self.assertTrue(t.has_tag("code"))

    def test_tools_and_logprobs(self) -> None:
        # 0.1.0-shaped construction still works: the new fields have defaults.
        m = Message("user", "hi")
        self.assertEqual((m.tool_calls, m.tool_call_id), ([], None))
        c = Candidate(0, "m", "x")
        self.assertEqual((c.tool_calls, c.logprobs, c.total_logprob()), ([], [], None))
        self.assertEqual(Task("t", [m]).tools, [])

        t = Task("t", [Message.user("weather?")],
                 tools=[Tool("get_weather", "Weather now", '{"type":"object"}')])
        self.assertEqual(t.tool("get_weather"), t.tools[0])
        self.assertIsNone(t.tool("nope"))
        self.assertEqual(t.tools[0].parameters_json(), {"type": "object"})
        self.assertEqual(Tool("f").parameters_json(), {})
        call = ToolCall("c1", "get_weather", '{"city": "Paris"}')
        self.assertEqual(call.arguments_json(), {"city": "Paris"})
        self.assertIsNone(ToolCall("c2", "f", "{not json").arguments_json())
        c = Candidate(0, "m", "", [call], [TokenLogprob("a", -0.5, [("b", -1.0)]),
                                           TokenLogprob("c", -0.25)])
        self.assertEqual(c.total_logprob(), -0.75)
        answer = Message("tool", '{"temp": 20}', tool_call_id="c1")
        self.assertEqual(answer.tool_call_id, "c1")
        self.assertEqual((__version__, CONTRACT_VERSION), ("0.2.0", "0.2.0"))

    def test_info_builder(self) -> None:
        info = PluginInfo.verifier("n", "1", "d", stateless=True).config_key("k", "kd", "1")
        self.assertEqual(info.kind, PluginKind.VERIFIER)
        self.assertTrue(info.stateless)
        self.assertEqual(info.config_keys[0].default, "1")

    def test_default_select_keeps_scores(self) -> None:
        class V(Verifier):
            pass

        judged = [Judged(Candidate(0, "m", "a"), Verdict.accept(0.7, "")),
                  Judged(Candidate(1, "m", "b"), None)]
        self.assertEqual(V(Config()).select(Task.from_prompt("t", "p"), judged).scores, [0.7, 0.0])


class TemplateTests(unittest.TestCase):
    """The templates against the shared vectors every language's template must pass."""

    def test_verifier(self) -> None:
        cls = load_template("verifier").NonEmpty
        for case in vectors("verifier"):
            with self.subTest(case["name"]):
                expect = case["expect"]
                config = Config(case.get("config", {}).items())
                if "error" in expect:
                    with self.assertRaises(PluginError) as e:
                        cls.new(config)
                    self.assertIn(expect.get("error_contains", ""), e.exception.message)
                    continue
                v = cls.new(config)
                texts = case.get("candidates", [case.get("candidate")])
                verdicts = [v.verify(task_of(case), Candidate(i, "m", t)) for i, t in enumerate(texts)]
                decisions = [d.decision.value for d in verdicts]
                want = expect.get("decision")
                if want is not None:
                    self.assertEqual(decisions, want if isinstance(want, list) else [want])
                if "selected" in expect:
                    judged = [Judged(Candidate(i, "m", t), d) for i, (t, d) in enumerate(zip(texts, verdicts))]
                    scores = v.select(task_of(case), judged).scores
                    self.assertEqual(scores.index(max(scores)), expect["selected"])

    def test_router(self) -> None:
        cls = load_template("router").CheapestFirst
        default = [ModelOption("small", 0.6, 0.6), ModelOption("large", 10, 30)]
        for case in vectors("router"):
            with self.subTest(case["name"]):
                expect = case["expect"]
                options = [ModelOption(o["name"], o["input_price"], o["output_price"])
                           for o in case["options"]] if "options" in case else default
                config = Config(case.get("config", {}).items())
                if "error" in expect:
                    with self.assertRaises(PluginError) as e:
                        cls.new(config).route(task_of(case), options)
                    self.assertIn(expect.get("error_contains", ""), e.exception.message)
                    continue
                d = cls.new(config).route(task_of(case), options)
                self.assertEqual([s.target for s in d.steps], expect["targets"])
                if "samples" in expect:
                    self.assertEqual([s.samples for s in d.steps], expect["samples"])

    def test_decomposer(self) -> None:
        cls = load_template("decomposer").Bullets
        for case in vectors("decomposer"):
            with self.subTest(case["name"]):
                expect = case["expect"]
                d = cls.new(Config())
                plan = d.decompose(task_of(case))
                if "subtasks" in expect:
                    self.assertEqual(len(plan.subtasks), expect["subtasks"])
                if "subtask_ids" in expect:
                    self.assertEqual([s.id for s in plan.subtasks], expect["subtask_ids"])
                if "subtask_prompts" in expect:
                    self.assertEqual([s.prompt for s in plan.subtasks], expect["subtask_prompts"])
                if "answer" in expect:
                    results = [Subresult(s.id, a, "m") for s, a in zip(plan.subtasks, case["answers"])]
                    self.assertEqual(d.compose(task_of(case), results), expect["answer"])


if __name__ == "__main__":
    unittest.main()
