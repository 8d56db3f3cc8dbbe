// {{name}}: an Arbiter decomposer.
//
// It starts with the example split every `arbiter plugin new` template implements, so
// its plans can be compared across languages: each line starting with "- " becomes a
// sub-task (`s1`, `s2`, ...), unless there are fewer than two; the answers are joined
// with newlines. Replace `decompose`/`compose` and `cases.jsonl` with your own.

import { Decomposer, PluginInfo } from '@arbiter/sdk';

/** The text of each line that starts with "- ", trimmed. */
function bullets(prompt) {
  return prompt
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.startsWith('- '))
    .map((line) => line.slice(2).trim());
}

export default class Bullets extends Decomposer {
  static info() {
    return PluginInfo.decomposer(
      '{{name}}',
      '0.1.0',
      'One sub-task per bullet point; answers joined in order',
      { stateless: true },
    );
  }

  decompose(task) {
    const items = bullets(task.prompt());
    if (items.length < 2) {
      // An empty plan: the host answers the task directly.
      return { subtasks: [], reason: `${items.length} bullet point(s): answer directly` };
    }
    return {
      subtasks: items.map((prompt, i) => ({ id: `s${i + 1}`, prompt, dependsOn: [] })),
      reason: `${items.length} bullet points`,
    };
  }

  compose(_task, results) {
    return results.map((r) => r.answer).join('\n');
  }
}
