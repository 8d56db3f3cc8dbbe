// {{name}}: an Arbiter verifier.
//
// It starts with the example check every `arbiter plugin new` template implements, so
// its verdicts can be compared across languages: reject an answer that has fewer than
// `min-length` characters once trimmed, accept anything longer with score 1.
// Replace `verify` with your own check and `cases.jsonl` with your own cases.

import { Candidate, Config, PluginInfo, Task, Verdict, Verifier } from '@arbiter/sdk';

export default class NonEmpty extends Verifier {
  static override info(): PluginInfo {
    return PluginInfo.verifier(
      '{{name}}',
      '0.1.0',
      'Rejects answers shorter than `min-length` characters',
      { stateless: true },
    ).configKey('min-length', 'Fewest characters an answer must have once trimmed', '1');
  }

  readonly minLength: number;

  /** Parses the settings once; the SDK keeps the result while they stay the same. */
  constructor(config: Config) {
    super(config);
    this.minLength = config.parseOr('min-length', 1, Config.uint);
  }

  verify(_task: Task, candidate: Candidate): Verdict {
    // Characters are code points, as Rust's `chars()` counts them.
    const length = [...candidate.text.trim()].length;
    if (length < this.minLength) {
      return Verdict.reject(
        0,
        `the answer has ${length} characters; at least ${this.minLength} are required`,
      );
    }
    return Verdict.accept(1, `the answer has ${length} characters`);
  }
}
