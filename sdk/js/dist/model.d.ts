import type * as M from 'arbiter:plugin/model@0.2.0';
import type { MessageInit } from './types.js';
export type Completion = M.Completion;
/** Why the host refused or failed a completion: `denied`, `over-budget` or `failed`. */
export declare class ModelError extends Error {
    readonly name = "ModelError";
    readonly tag: M.ModelError['tag'];
    constructor(error: M.ModelError);
}
export interface CompleteOptions {
    /** A model name the pipeline allows; absent lets the host choose. */
    model?: string;
    maxTokens?: number;
    temperature?: number;
}
/** Sends `messages` to the host's models; throws `ModelError` when the host says no.
 * Messages may leave out the tool fields (`{ role, content }`). */
export declare function complete(messages: MessageInit[], options?: CompleteOptions): Completion;
