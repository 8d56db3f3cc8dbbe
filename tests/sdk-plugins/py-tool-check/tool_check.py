"""Accepts a candidate iff every tool it calls is one the task offers (the rule of
`tests/vectors/tool-calls.jsonl`)."""

import math

from arbiter_sdk import Candidate, PluginInfo, Task, Verdict, Verifier


class ToolCheck(Verifier):
    @classmethod
    def info(cls) -> PluginInfo:
        return PluginInfo.verifier(
            "py-tool-check", "0.1.0", "Calls only offered tools", stateless=True
        )

    def verify(self, task: Task, candidate: Candidate) -> Verdict:
        if not candidate.tool_calls:
            return Verdict.abstain("no tool call")
        unknown = [c.name for c in candidate.tool_calls if task.tool(c.name) is None]
        if unknown:
            verdict = Verdict.reject(0.0, "unknown tools: " + ",".join(unknown))
        else:
            total = candidate.total_logprob()
            score = 1.0 if total is None else math.exp(total)
            asked = {c.id for m in task.messages if m.role == "assistant" for c in m.tool_calls}
            answered = sum(
                1 for m in task.messages if m.role == "tool" and m.tool_call_id in asked
            )
            alternatives = sum(len(t.top) for t in candidate.logprobs)
            names = ",".join(c.name for c in candidate.tool_calls)
            verdict = Verdict.accept(
                score,
                f"calls {names}; {answered} answered before; "
                f"{len(candidate.logprobs)} tokens, {alternatives} alternatives",
            )
        for c in candidate.tool_calls:
            verdict.with_check(c.name, task.tool(c.name) is not None)
        return verdict
