import type { ModelStats } from './types.js';
/** Observed outcomes of `model` (for tasks tagged `tag` when given). */
export declare function query(model: string, tag?: string): ModelStats | undefined;
