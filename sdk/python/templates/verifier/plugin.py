"""{{name}}: an Arbiter verifier.

It starts with the example check every `arbiter plugin new` template implements, so its
verdicts can be compared across languages: reject an answer that has fewer than
`min-length` characters once trimmed, accept anything longer with score 1. Replace
`verify` with your own check and `cases.jsonl` with your own cases.
"""

from arbiter_sdk import Candidate, Config, InvalidConfig, PluginInfo, Task, Verdict, Verifier


class NonEmpty(Verifier):
    @classmethod
    def info(cls) -> PluginInfo:
        return PluginInfo.verifier(
            "{{name}}",
            "0.1.0",
            "Rejects answers shorter than `min-length` characters",
            stateless=True,
        ).config_key("min-length", "Fewest characters an answer must have once trimmed", "1")

    def __init__(self, config: Config) -> None:
        # Parsed once; the SDK keeps this object while the settings stay the same.
        self.min_length = config.parse_or("min-length", 1)
        if self.min_length < 0:
            raise InvalidConfig(f"setting `min-length` = {self.min_length}: must be at least 0")

    def verify(self, task: Task, candidate: Candidate) -> Verdict:
        length = len(candidate.text.strip())
        if length < self.min_length:
            return Verdict.reject(
                0.0,
                f"the answer has {length} characters; at least {self.min_length} are required",
            )
        return Verdict.accept(1.0, f"the answer has {length} characters")
