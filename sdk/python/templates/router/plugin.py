"""{{name}}: an Arbiter router.

It starts with the example policy every `arbiter plugin new` template implements, so its
decisions can be compared across languages: try the cheapest model first (sampling
`samples` candidates), then escalate to the priciest. Replace `route` with your own
policy and `cases.jsonl` with your own cases.
"""

from typing import List

from arbiter_sdk import (
    Config,
    InvalidConfig,
    InvalidInput,
    ModelOption,
    PluginInfo,
    RouteDecision,
    RouteStep,
    Router,
    Task,
)


class CheapestFirst(Router):
    @classmethod
    def info(cls) -> PluginInfo:
        return PluginInfo.router(
            "{{name}}",
            "0.1.0",
            "Tries the cheapest model first, then escalates to the priciest",
            stateless=True,
        ).config_key("samples", "Candidates to sample from the cheapest model", "1")

    def __init__(self, config: Config) -> None:
        self.samples = config.parse_or("samples", 1)
        if self.samples < 1:
            raise InvalidConfig(f"setting `samples` = {self.samples}: must be at least 1")

    def route(self, task: Task, options: List[ModelOption]) -> RouteDecision:
        if not options:
            raise InvalidInput("no model options to route between")

        def price(o: ModelOption) -> float:
            return o.input_price + o.output_price

        # min/max return the first of equal options, as the other languages' templates do.
        cheapest = min(options, key=price)
        priciest = max(options, key=price)
        steps = [RouteStep(cheapest.name, self.samples)]
        if priciest is not cheapest and price(priciest) != price(cheapest):
            steps.append(RouteStep(priciest.name, 1))
        return RouteDecision(steps, f"cheapest first ({cheapest.name}), then {priciest.name}")
