"""majority-vote: the Python SDK's complete example (see ../../README.md).

`verify` accepts a candidate whose final number matches the task's `reference`
metadata (within `tolerance`); `select` scores every candidate by the share of candidates
that reached the same final number (self-consistency), so it also works on tasks without
a reference.
"""

import re
from collections import Counter
from typing import List, Optional

from arbiter_sdk import (
    Candidate,
    Config,
    InvalidConfig,
    InvalidInput,
    Judged,
    PluginInfo,
    Selection,
    Task,
    Verdict,
    Verifier,
    log,
)

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def final_number(text: str) -> Optional[str]:
    """The last number in `text` (thousands separators ignored), as written."""
    found = NUMBER.findall(text.replace(",", ""))
    return found[-1] if found else None


class MajorityVote(Verifier):
    @classmethod
    def info(cls) -> PluginInfo:
        return PluginInfo.verifier(
            "majority-vote",
            "0.1.0",
            "Checks the final number against the reference; select votes by final number",
            stateless=True,
        ).config_key("tolerance", "Largest accepted difference from the reference", "0")

    def __init__(self, config: Config) -> None:
        config.deny_unknown(["tolerance"])
        self.tolerance = config.parse_or("tolerance", 0.0)
        if self.tolerance < 0:
            raise InvalidConfig(f"setting `tolerance` = {self.tolerance}: must not be negative")

    def verify(self, task: Task, candidate: Candidate) -> Verdict:
        answer = final_number(candidate.text)
        if answer is None:
            return Verdict.reject(0.0, "the answer has no number").with_check("has a number", False)
        reference = task.meta("reference")
        if reference is None:
            return Verdict.abstain("the task has no `reference` metadata")
        try:
            expected = float(reference.replace(",", ""))
        except ValueError:
            raise InvalidInput(f"metadata `reference` = {reference!r} is not a number") from None
        close = abs(float(answer) - expected) <= self.tolerance
        log.debug("compared", answer=answer, reference=reference)
        verdict = (
            Verdict.accept(1.0, f"{answer} matches the reference")
            if close
            else Verdict.reject(0.0, f"{answer} differs from the reference {reference}")
        )
        return verdict.with_check("matches the reference", close).with_details({"answer": answer})

    def select(self, task: Task, candidates: List[Judged]) -> Selection:
        answers = [final_number(j.candidate.text) if j.verdict is not None else None for j in candidates]
        votes = Counter(a for a in answers if a is not None)
        n = max(len(candidates), 1)
        scores = [votes[a] / n if a is not None else 0.0 for a in answers]
        # max() rather than Counter.most_common, which imports heapq lazily: a module first
        # imported during a call is not in the component (see the SDK README).
        if not votes:
            return Selection(scores, "no candidate gave a number")
        answer, count = max(votes.items(), key=lambda kv: kv[1])
        return Selection(scores, f"{count} of {n} candidates answer {answer}")
