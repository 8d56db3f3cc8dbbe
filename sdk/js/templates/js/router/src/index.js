// {{name}}: an Arbiter router.
//
// It starts with the example policy every `arbiter plugin new` template implements, so
// its decisions can be compared across languages: try the cheapest model first (with
// `samples` candidates), then escalate to the priciest one.
// Replace `route` with your own policy and `cases.jsonl` with your own cases.

import { Config, InvalidConfig, InvalidInput, PluginInfo, Router } from '@arbiter/sdk';

export default class CheapestFirst extends Router {
  static info() {
    return PluginInfo.router(
      '{{name}}',
      '0.1.0',
      'Tries the cheapest model first, then escalates to the priciest',
      { stateless: true },
    ).configKey('samples', 'Candidates to sample from the cheapest model', '1');
  }

  /** Parses the settings once; the SDK keeps the result while they stay the same. */
  constructor(config) {
    super(config);
    this.samples = config.parseOr('samples', 1, Config.uint);
    if (this.samples === 0) {
      throw new InvalidConfig('setting `samples` must be at least 1');
    }
  }

  route(_task, options) {
    const price = (o) => o.inputPrice + o.outputPrice;
    if (options.length === 0) throw new InvalidInput('no models to route between');
    // The first option wins ties, both ways.
    let cheapest = 0;
    let priciest = 0;
    options.forEach((o, i) => {
      if (price(o) < price(options[cheapest])) cheapest = i;
      if (price(o) > price(options[priciest])) priciest = i;
    });
    // No `minScore`: escalate only when no candidate is accepted.
    const steps = [{ target: options[cheapest].name, samples: this.samples }];
    if (priciest !== cheapest) steps.push({ target: options[priciest].name, samples: 1 });
    return {
      steps,
      reason: `cheapest first: ${steps.map((s) => s.target).join(' -> ')}`,
    };
  }
}
