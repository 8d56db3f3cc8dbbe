"""{{name}}: an Arbiter decomposer.

It starts with the example plan every `arbiter plugin new` template implements, so its
plans can be compared across languages: each line starting with "- " is a sub-task
(`s1`..`sN`); fewer than two is no split. `compose` joins the answers with newlines.
Replace both with your own and `cases.jsonl` with your own cases.
"""

from typing import List

from arbiter_sdk import Config, Decomposer, Plan, PluginInfo, Subresult, Subtask, Task


class Bullets(Decomposer):
    @classmethod
    def info(cls) -> PluginInfo:
        return PluginInfo.decomposer(
            "{{name}}",
            "0.1.0",
            "Splits a prompt's bullet points into sub-tasks and joins their answers",
            stateless=True,
        )

    def __init__(self, config: Config) -> None:
        config.deny_unknown([])

    def decompose(self, task: Task) -> Plan:
        bullets = [line[2:].strip() for line in task.prompt().splitlines() if line.startswith("- ")]
        if len(bullets) < 2:
            return Plan([], "fewer than two bullet points: answered directly")
        subtasks = [Subtask(f"s{i}", text) for i, text in enumerate(bullets, start=1)]
        return Plan(subtasks, f"{len(subtasks)} bullet points")

    def compose(self, task: Task, results: List[Subresult]) -> str:
        return "\n".join(r.answer for r in results)
