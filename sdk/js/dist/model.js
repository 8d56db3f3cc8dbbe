// Capability `model`: ask the host's models for a completion (LLM-as-judge, model-made
// plans). Needs `capabilities = ["model"]` in `arbiter.toml` (a verifier or decomposer);
// the operator must grant it where the plugin is loaded.
import { host } from './host.js';
import { Message } from './types.js';
/** Why the host refused or failed a completion: `denied`, `over-budget` or `failed`. */
export class ModelError extends Error {
    name = 'ModelError';
    tag;
    constructor(error) {
        super(`${error.tag}: ${error.val}`);
        this.tag = error.tag;
    }
}
/** Sends `messages` to the host's models; throws `ModelError` when the host says no.
 * Messages may leave out the tool fields (`{ role, content }`). */
export function complete(messages, options = {}) {
    if (host.complete === undefined) {
        throw new Error('the `model` capability is not available: add capabilities = ["model"] to arbiter.toml');
    }
    const request = { messages: messages.map(Message.from) };
    if (options.model !== undefined)
        request.model = options.model;
    if (options.maxTokens !== undefined)
        request.maxTokens = options.maxTokens;
    if (options.temperature !== undefined)
        request.temperature = options.temperature;
    try {
        return host.complete(request);
    }
    catch (e) {
        const payload = e?.payload;
        if (payload !== undefined && typeof payload === 'object' && 'tag' in payload) {
            throw new ModelError(payload);
        }
        throw e;
    }
}
