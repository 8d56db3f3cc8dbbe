import type * as M from 'arbiter:plugin/model@0.1.0';
import type { Message } from './types.js';
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
/** Sends `messages` to the host's models; throws `ModelError` when the host says no. */
export declare function complete(messages: Message[], options?: CompleteOptions): Completion;
