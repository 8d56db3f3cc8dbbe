// Structured-output verifier in TypeScript: the answer must contain a JSON value valid
// against the JSON Schema in the `schema` setting, and/or its text must match the
// regular expression in `pattern`.
//
// The schema part is the same check as the Rust `json-schema-verifier` (same settings,
// same JSON extraction, same draft rules, same verdicts), so both run against the shared
// vectors in `tests/vectors/json-schema.jsonl` and must decide alike.

import {
  Candidate,
  Check,
  Config,
  InvalidConfig,
  PluginInfo,
  Task,
  Verdict,
  Verifier,
} from '@arbiter/sdk';
import { extractJson, parseWhole, rustTrim } from './extract.js';
import { CompiledSchema, checkSchema } from './schema.js';

const SETTINGS = ['schema', 'pattern', 'extract', 'max-errors'];

export default class StructuredVerifier extends Verifier {
  static override info(): PluginInfo {
    return PluginInfo.verifier(
      'js-structured-verifier',
      '0.1.0',
      'Accepts answers containing JSON valid against a JSON Schema and/or text matching a pattern',
      { stateless: true },
    )
      .configKey('schema', 'The JSON Schema (JSON text); `schema` or `pattern` is required')
      .configKey(
        'pattern',
        'A regular expression (ECMAScript, Unicode) the trimmed answer must match; anchor it with ^...$ for a full match',
      )
      .configKey('extract', '`lenient` (find JSON in prose/code fences) or `strict`', 'lenient')
      .configKey('max-errors', 'Validation errors reported per candidate', '10');
  }

  /** At load only: the schema must be valid against its draft's meta-schema. */
  static override check(config: Config): void {
    const text = config.get('schema');
    const schema = text === undefined ? undefined : parseWhole(text);
    if (schema === undefined) return; // the constructor refused it already
    try {
      checkSchema(schema);
    } catch (e) {
      throw new InvalidConfig(`\`schema\` is not a valid JSON Schema: ${(e as Error).message}`);
    }
  }

  readonly schema: CompiledSchema | undefined;
  readonly pattern: RegExp | undefined;
  readonly lenient: boolean;
  readonly maxErrors: number;

  constructor(config: Config) {
    super(config);
    config.denyUnknown(SETTINGS);
    const schemaText = config.get('schema');
    const patternText = config.get('pattern');
    if (schemaText === undefined && patternText === undefined) {
      throw new InvalidConfig('missing required setting `schema` (or `pattern`)');
    }
    if (schemaText !== undefined) {
      const schema = parseWhole(schemaText);
      if (schema === undefined) throw new InvalidConfig('`schema` is not JSON');
      try {
        this.schema = new CompiledSchema(schema);
      } catch (e) {
        throw new InvalidConfig(`\`schema\` is not a valid JSON Schema: ${(e as Error).message}`);
      }
    }
    if (patternText !== undefined) {
      try {
        this.pattern = new RegExp(patternText, 'u');
      } catch (e) {
        throw new InvalidConfig(
          `\`pattern\` is not a valid regular expression: ${(e as Error).message}`,
        );
      }
    }
    const extract = config.get('extract') ?? 'lenient';
    if (extract !== 'lenient' && extract !== 'strict') {
      throw new InvalidConfig(`\`extract\` must be \`lenient\` or \`strict\`, not \`${extract}\``);
    }
    this.lenient = extract === 'lenient';
    this.maxErrors = config.parseOr('max-errors', 10, Config.uint);
  }

  verify(_task: Task, candidate: Candidate): Verdict {
    const failed: Check[] = [];
    const passed: Check[] = [];
    if (this.pattern !== undefined) {
      // `lastIndex` is never used: the expression has no `g` or `y` flag.
      if (this.pattern.test(rustTrim(candidate.text))) {
        passed.push({ name: 'pattern', passed: true });
      } else {
        failed.push({
          name: 'pattern',
          passed: false,
          message: `the answer does not match ${String(this.pattern)}`,
        });
      }
    }
    if (this.schema !== undefined) {
      const value = extractJson(candidate.text, this.lenient);
      if (value === undefined) {
        return Verdict.reject(0, 'no JSON value found in the answer').withChecks(failed);
      }
      const violations = this.schema.violations(value, this.maxErrors);
      if (violations.length === 0) {
        passed.push({ name: 'schema', passed: true });
      }
      for (const v of violations) {
        failed.push({ name: `at \`${v.path}\``, passed: false, message: v.message });
      }
    }
    if (failed.length === 0) {
      return Verdict.accept(1, this.schema ? 'valid against the schema' : 'matches the pattern')
        .withChecks(passed);
    }
    const first = failed[0]?.message ?? '';
    const schemaFailures = failed.filter((c) => c.name !== 'pattern').length;
    if (schemaFailures === 0) {
      // The text has the wrong form altogether.
      return Verdict.reject(0, first).withChecks(failed);
    }
    // The JSON is there but breaks rules: as the Rust verifier, 0.3 shared by the failures.
    return Verdict.reject(
      0.3 / failed.length,
      `${failed.length} ${this.pattern ? 'check failure(s)' : 'schema violation(s)'}: ${first}`,
    ).withChecks(failed);
  }
}
