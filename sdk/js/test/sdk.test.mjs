// Unit tests of the SDK in Node (`npm test`): the compiled `dist/` is what plugins get,
// so that is what is tested. The export glue is called as componentize-js's bindings
// call it: plain records in, `{ tag, val }` results out.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Config,
  Decomposer,
  Failed,
  InvalidConfig,
  InvalidInput,
  Judged,
  Message,
  PluginInfo,
  Router,
  Task,
  Verdict,
  Verifier,
  CONTRACT_VERSION,
  VERSION,
  Candidate,
  bindHost,
  exportDecomposer,
  exportRouter,
  exportVerifier,
  log,
  model,
  stats,
} from '../dist/index.js';

// Records as the bindings hand them over (contract 0.2.0: every field present).
const task = { id: 't', messages: [{ role: 'user', content: 'What is 2+2?', toolCalls: [] }], tags: ['math'], metadata: [['reference', '4']], tools: [] };
const candidate = (text, index = 0) => ({ index, model: 'm', text, toolCalls: [], logprobs: [] });

test('Config reads settings like the Rust SDK', () => {
  const c = new Config([
    ['a', '1'],
    ['b', ' 3 '],
    ['a', '2'],
    ['list', 'x, ,y ,z'],
    ['flag', 'Yes'],
    ['json', '{"k": [1]}'],
  ]);
  assert.equal(c.get('a'), '2', 'later settings override earlier ones');
  assert.equal(c.get('missing'), undefined);
  assert.equal(c.require('a'), '2');
  assert.throws(() => c.require('missing'), (e) => e instanceof InvalidConfig && /missing/.test(e.message));
  assert.equal(c.parseOr('b', 0, Config.uint), 3);
  assert.equal(c.parseOr('b', 0), 3, 'numbers by default');
  assert.equal(c.parseOr('missing', 7, Config.uint), 7);
  assert.equal(c.parseOr('flag', false), true);
  assert.deepEqual(c.list('list'), ['x', 'y', 'z']);
  assert.deepEqual(c.json('json'), { k: [1] });
  assert.throws(
    () => new Config([['n', '-1']]).parseOr('n', 1, Config.uint),
    (e) => e instanceof InvalidConfig && e.message.includes('`n`') && e.message.includes('"-1"'),
  );
  assert.throws(() => new Config([['n', '1.5']]).parseOr('n', 1, Config.int), InvalidConfig);
  assert.throws(() => new Config([['n', 'x']]).parseOr('n', 1), InvalidConfig);
  assert.throws(() => new Config([['j', '{']]).json('j'), InvalidConfig);
  assert.throws(
    () => c.denyUnknown(['a', 'b']),
    (e) => e instanceof InvalidConfig && e.message.includes('unknown setting `list`'),
  );
  assert.ok(c.equals(new Config(c.pairs())));
  assert.ok(!c.equals(new Config([['a', '1']])));
});

test('Verdict, PluginInfo, Task and Judged helpers', () => {
  const v = Verdict.accept(1.7, 'ok').withCheck('rule', true).withDetails({ n: 1 });
  assert.equal(v.score, 1, 'scores are clamped');
  assert.equal(Verdict.reject(Number.NaN, 'x').score, 0);
  assert.equal(Verdict.abstain('?').score, 0.5);
  assert.deepEqual(v.checks, [{ name: 'rule', passed: true }]);
  assert.equal(v.details, '{"n":1}');
  const info = PluginInfo.router('r', '1.0.0', 'd', { stateless: true }).configKey('k', 'desc', '1');
  assert.equal(info.kind, 'router');
  assert.equal(info.stateless, true);
  assert.deepEqual(info.configKeys, [{ name: 'k', description: 'desc', default: '1' }]);
  const t = new Task({ ...task, messages: [{ role: 'user', content: 'q1' }, { role: 'assistant', content: 'a' }] });
  assert.equal(t.prompt(), 'q1', 'the last user message');
  assert.equal(new Task(task).meta('reference'), '4');
  assert.ok(new Task(task).hasTag('math'));
  assert.equal(Task.fromPrompt('x', 'hi').prompt(), 'hi');
  assert.equal(new Judged(candidate('a')).score(), 0);
  assert.equal(new Judged(candidate('a'), { score: 0.4, decision: 'reject', reason: '', checks: [] }).score(), 0.4);
});

let constructed = 0;

class Length extends Verifier {
  static info() {
    return PluginInfo.verifier('length', '0.1.0', 'test', { stateless: true }).configKey('min', 'm', '1');
  }

  constructor(config) {
    super(config);
    constructed++;
    config.denyUnknown(['min', 'mode']);
    this.min = config.parseOr('min', 1, Config.uint);
    this.mode = config.get('mode');
  }

  static check(config) {
    if (config.get('min') === '13') throw new InvalidConfig('13 is unlucky');
  }

  verify(_task, c) {
    if (this.mode === 'input') throw new InvalidInput('no');
    if (this.mode === 'bug') return undefined.field;
    if (this.mode === 'shape') return { score: 1, decision: 'yes', reason: 'r', checks: [] };
    if (this.mode === 'promise') return Promise.resolve(Verdict.accept(1, 'x'));
    if (this.mode === 'checked') return Verdict.accept(1, 'r').withCheck('c', false, 'm');
    return c.text.length >= this.min ? Verdict.accept(1, 'long') : Verdict.reject(0, 'short');
  }
}

test('the verifier glue: results, caching, errors', () => {
  const logs = [];
  bindHost({ log: (level, message, fields) => logs.push([level, message, fields]) });
  const v = exportVerifier(Length);
  assert.deepEqual(v.info(), {
    name: 'length',
    version: '0.1.0',
    kind: 'verifier',
    description: 'test',
    stateless: true,
    configKeys: [{ name: 'min', description: 'm', default: '1' }],
  });
  constructed = 0;
  assert.equal(v.verify([], task, candidate('abc')).val.decision, 'accept');
  assert.equal(constructed, 0, 'built for the empty settings when exported (the snapshot)');
  const ok = v.verify([['min', '2']], task, candidate('abc'));
  assert.equal(ok.tag, 'ok');
  const { score, decision, reason, checks, details } = ok.val;
  assert.deepEqual({ score, decision, reason, checks, details }, { score: 1, decision: 'accept', reason: 'long', checks: [], details: undefined });
  assert.equal(v.verify([['min', '2']], task, candidate('a')).val.decision, 'reject');
  assert.equal(constructed, 1, 'the plugin is kept while the settings stay the same');
  v.verify([['min', '3']], task, candidate('a'));
  assert.equal(constructed, 2);
  const checked = v.verify([['mode', 'checked']], task, candidate('abc')).val;
  assert.deepEqual(checked, { score: 1, decision: 'accept', reason: 'r', checks: [{ name: 'c', passed: false, message: 'm' }] });

  assert.deepEqual(v.checkConfig([['min', '2']]), { tag: 'ok', val: undefined });
  assert.deepEqual(v.checkConfig([['min', '13']]), { tag: 'err', val: { tag: 'invalid-config', val: '13 is unlucky' } });
  const unknown = v.checkConfig([['nope', '1']]);
  assert.equal(unknown.val.tag, 'invalid-config');
  assert.match(unknown.val.val, /unknown setting `nope`/);
  assert.deepEqual(v.verify([['mode', 'input']], task, candidate('a')), { tag: 'err', val: { tag: 'invalid-input', val: 'no' } });

  const bug = v.verify([['mode', 'bug']], task, candidate('a'));
  assert.equal(bug.val.tag, 'failed');
  assert.match(bug.val.val, /^TypeError: /);
  assert.equal(logs.at(-1)[0], 'error', 'the stack goes to the log');
  assert.equal(logs.at(-1)[2][0][0], 'stack');

  const shape = v.verify([['mode', 'shape']], task, candidate('a'));
  assert.deepEqual(shape.val, { tag: 'failed', val: 'verify(): decision "yes" is not accept, reject or abstain' });
  assert.match(v.verify([['mode', 'promise']], task, candidate('a')).val.val, /synchronous/);

  const sel = v.select([], task, [
    { candidate: candidate('a'), verdict: { score: 0.25, decision: 'reject', reason: '', checks: [] } },
    { candidate: candidate('b', 1) },
  ]);
  assert.equal(sel.tag, 'ok');
  assert.deepEqual(Array.from(sel.val.scores), [0.25, 0]);
  assert.ok(sel.val.scores instanceof Float64Array);
});

class ToolCheck extends Verifier {
  static info() {
    return PluginInfo.verifier('tools', '0.1.0', 'test');
  }

  verify(t, c) {
    const unknown = c.toolCalls.filter((call) => t.tool(call.name) === undefined).map((call) => call.name);
    if (unknown.length > 0) return Verdict.reject(0, `unknown: ${unknown.join(',')}`);
    const answered = t.messages.filter((m) => m.toolCallId !== undefined).length;
    return Verdict.accept(Math.exp(c.totalLogprob() ?? 0), `${c.toolCalls.length} calls, ${answered} answered`);
  }
}

test('tools, tool calls and logprobs reach the plugin', () => {
  assert.equal(CONTRACT_VERSION, '0.2.0');
  assert.equal(VERSION, '0.2.0');
  const v = exportVerifier(ToolCheck);
  const weather = { name: 'get_weather', description: 'Weather', parameters: '{"type":"object"}' };
  const call = (name, id = 'c1') => ({ id, name, arguments: '{}' });
  const withTools = {
    ...task,
    messages: [
      ...task.messages,
      { role: 'assistant', content: '', toolCalls: [call('get_weather', 'c0')] },
      { role: 'tool', content: '{}', toolCalls: [], toolCallId: 'c0' },
    ],
    tools: [weather],
  };
  const cand = { ...candidate(''), toolCalls: [call('get_weather')], logprobs: [{ token: 'a', logprob: -0.5, top: [['b', -1]] }] };
  const ok = v.verify([], withTools, cand).val;
  assert.equal(ok.decision, 'accept');
  assert.equal(ok.reason, '1 calls, 1 answered');
  assert.equal(ok.score, Math.exp(-0.5));
  const bad = v.verify([], withTools, { ...cand, toolCalls: [call('get_weather'), call('launch', 'c2')] }).val;
  assert.deepEqual([bad.decision, bad.reason], ['reject', 'unknown: launch']);
  assert.equal(v.verify([], task, { ...cand, toolCalls: [call('get_weather')] }).val.decision, 'reject');

  // Helpers, and 0.1.0-shaped records written by plugin code still work.
  const t = new Task({ id: 't', messages: [{ role: 'user', content: 'q' }] });
  assert.deepEqual([t.tools, t.tags, t.metadata, t.messages[0].toolCalls], [[], [], [], []]);
  assert.equal(new Task(withTools).tool('get_weather'), weather);
  assert.equal(new Task(withTools).tool('nope'), undefined);
  assert.deepEqual(Message.user('hi'), { role: 'user', content: 'hi', toolCalls: [] });
  assert.deepEqual(Message.new('system', 's'), { role: 'system', content: 's', toolCalls: [] });
  const old = new Candidate({ index: 0, model: 'm', text: 'x' });
  assert.deepEqual([old.toolCalls, old.logprobs, old.totalLogprob()], [[], [], undefined]);
  assert.equal(new Candidate(cand).totalLogprob(), -0.5);
  assert.ok(new Judged({ index: 0, model: 'm', text: 'x' }).candidate instanceof Candidate);
});

test('a class of the wrong kind or an info() of the wrong kind fails at build time', () => {
  assert.throws(() => exportRouter(Length, 'src/index.ts'), /src\/index.ts must be a class extending Router/);
  assert.throws(() => exportVerifier(undefined, 'src/index.ts (export `default`)'), /not undefined/);
  class Liar extends Verifier {
    static info() {
      return PluginInfo.router('x', '1', 'd');
    }
    verify() {
      return Verdict.accept(1, '');
    }
  }
  assert.throws(() => exportVerifier(Liar), /says the plugin is a router, but arbiter.toml builds a verifier/);
});

class Cheap extends Router {
  static info() {
    return PluginInfo.router('cheap', '0.1.0', 'test');
  }

  route(_task, options) {
    if (options.length === 0) throw new InvalidInput('no options');
    const first = options[0];
    return {
      steps: [{ target: first.name, samples: first.stats ? first.stats.attempts : 1 }],
      reason: 'first',
    };
  }
}

test('the router glue converts statistics and checks steps', () => {
  const r = exportRouter(Cheap);
  const options = [
    { name: 'a', inputPrice: 1, outputPrice: 2, stats: { attempts: 3n, successRate: 1, latencyP50Ms: 1, latencyP95Ms: 2 } },
  ];
  assert.deepEqual(r.route([], task, options), { tag: 'ok', val: { steps: [{ target: 'a', samples: 3 }], reason: 'first' } });
  assert.equal(r.route([], task, []).val.tag, 'invalid-input');
  const none = [{ name: 'a', inputPrice: 1, outputPrice: 2 }];
  assert.equal(r.route([], task, none).val.steps[0].samples, 1, 'options without statistics');
  class Sloppy extends Cheap {
    route() {
      return { steps: [{ target: 'a', samples: 1.5 }], reason: '' };
    }
  }
  assert.deepEqual(exportRouter(Sloppy).route([], task, none).val, {
    tag: 'failed',
    val: 'route(): `steps[].samples` = 1.5 is not a whole number in [0, 2^32)',
  });
});

class Split extends Decomposer {
  static info() {
    return PluginInfo.decomposer('split', '0.1.0', 'test');
  }

  decompose(t) {
    return { subtasks: [{ id: 's1', prompt: t.prompt() }], reason: 'one' };
  }

  compose(_t, results) {
    return results.map((r) => r.answer).join('|');
  }
}

test('the decomposer glue fills in defaults', () => {
  const d = exportDecomposer(Split);
  assert.deepEqual(d.decompose([], task), {
    tag: 'ok',
    val: { subtasks: [{ id: 's1', prompt: 'What is 2+2?', dependsOn: [] }], reason: 'one' },
  });
  assert.deepEqual(d.compose([], task, [{ id: 's1', answer: 'x', model: 'm' }, { id: 's2', answer: 'y', model: 'm' }]), { tag: 'ok', val: 'x|y' });
});

test('model.complete sends complete messages', () => {
  const sent = [];
  bindHost({ complete: (request) => (sent.push(request), { text: 'ok', model: 'm', inputTokens: 1n, outputTokens: 1n }) });
  model.complete([{ role: 'user', content: 'hi' }, Message.new('tool', 'r')]);
  model.complete([{ role: 'tool', content: 'r', toolCallId: 'c1' }]);
  assert.deepEqual(sent[0].messages, [
    { role: 'user', content: 'hi', toolCalls: [] },
    { role: 'tool', content: 'r', toolCalls: [] },
  ]);
  assert.deepEqual(sent[1].messages, [{ role: 'tool', content: 'r', toolCalls: [], toolCallId: 'c1' }]);
});

test('capabilities say what to add when they are not in the manifest', () => {
  bindHost({ complete: undefined, query: undefined });
  assert.throws(() => model.complete([{ role: 'user', content: 'hi' }]), /capabilities = \["model"\]/);
  assert.throws(() => stats.query('m'), /capabilities = \["stats"\]/);
  bindHost({
    complete: () => {
      const e = new Error('denied');
      e.payload = { tag: 'over-budget', val: 'no money' };
      throw e;
    },
    query: () => ({ attempts: 5n, successRate: 0.5, latencyP50Ms: 1, latencyP95Ms: 2 }),
  });
  assert.throws(
    () => model.complete([{ role: 'user', content: 'hi' }], { maxTokens: 5 }),
    (e) => e instanceof model.ModelError && e.tag === 'over-budget' && e.message === 'over-budget: no money',
  );
  assert.deepEqual(stats.query('m', 'math'), { attempts: 5, successRate: 0.5, latencyP50Ms: 1, latencyP95Ms: 2 });
});

test('log falls back to stderr before the host is bound', () => {
  assert.equal(typeof log.info, 'function');
  assert.ok(new Failed('x') instanceof Error);
});
