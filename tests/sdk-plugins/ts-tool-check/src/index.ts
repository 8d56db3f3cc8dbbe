// Accepts a candidate iff every tool it calls is one the task offers (the rule of
// `tests/vectors/tool-calls.jsonl`).

import { Candidate, PluginInfo, Task, Verdict, Verifier } from '@arbiter/sdk';

export default class ToolCheck extends Verifier {
  static override info(): PluginInfo {
    return PluginInfo.verifier('ts-tool-check', '0.1.0', 'Calls only offered tools', {
      stateless: true,
    });
  }

  verify(task: Task, candidate: Candidate): Verdict {
    const calls = candidate.toolCalls;
    if (calls.length === 0) return Verdict.abstain('no tool call');
    const unknown = calls.filter((c) => task.tool(c.name) === undefined).map((c) => c.name);
    let verdict: Verdict;
    if (unknown.length > 0) {
      verdict = Verdict.reject(0, `unknown tools: ${unknown.join(',')}`);
    } else {
      const total = candidate.totalLogprob();
      const asked = new Set<string>();
      for (const m of task.messages) {
        if (m.role === 'assistant') for (const c of m.toolCalls) asked.add(c.id);
      }
      const answered = task.messages.filter(
        (m) => m.role === 'tool' && m.toolCallId !== undefined && asked.has(m.toolCallId),
      ).length;
      const alternatives = candidate.logprobs.reduce((n, t) => n + t.top.length, 0);
      verdict = Verdict.accept(
        total === undefined ? 1 : Math.exp(total),
        `calls ${calls.map((c) => c.name).join(',')}; ${answered} answered before; ` +
          `${candidate.logprobs.length} tokens, ${alternatives} alternatives`,
      );
    }
    for (const c of calls) verdict.withCheck(c.name, task.tool(c.name) !== undefined);
    return verdict;
  }
}
