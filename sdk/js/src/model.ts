// Capability `model`: ask the host's models for a completion (LLM-as-judge, model-made
// plans). Needs `capabilities = ["model"]` in `arbiter.toml` (a verifier or decomposer);
// the operator must grant it where the plugin is loaded.

import type * as M from 'arbiter:plugin/model@0.2.0';
import { host } from './host.js';
import { Message } from './types.js';
import type { MessageInit } from './types.js';

export type Completion = M.Completion;

/** Why the host refused or failed a completion: `denied`, `over-budget` or `failed`. */
export class ModelError extends Error {
  override readonly name = 'ModelError';
  readonly tag: M.ModelError['tag'];

  constructor(error: M.ModelError) {
    super(`${error.tag}: ${error.val}`);
    this.tag = error.tag;
  }
}

export interface CompleteOptions {
  /** A model name the pipeline allows; absent lets the host choose. */
  model?: string;
  maxTokens?: number;
  temperature?: number;
}

/** Sends `messages` to the host's models; throws `ModelError` when the host says no.
 * Messages may leave out the tool fields (`{ role, content }`). */
export function complete(messages: MessageInit[], options: CompleteOptions = {}): Completion {
  if (host.complete === undefined) {
    throw new Error(
      'the `model` capability is not available: add capabilities = ["model"] to arbiter.toml',
    );
  }
  const request: M.CompletionRequest = { messages: messages.map(Message.from) };
  if (options.model !== undefined) request.model = options.model;
  if (options.maxTokens !== undefined) request.maxTokens = options.maxTokens;
  if (options.temperature !== undefined) request.temperature = options.temperature;
  try {
    return host.complete(request);
  } catch (e) {
    const payload = (e as { payload?: M.ModelError } | null)?.payload;
    if (payload !== undefined && typeof payload === 'object' && 'tag' in payload) {
      throw new ModelError(payload);
    }
    throw e;
  }
}
