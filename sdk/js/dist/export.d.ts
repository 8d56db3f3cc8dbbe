import type * as W from 'arbiter:plugin/types@0.2.0';
import type * as R from 'arbiter:plugin/routing@0.2.0';
import type * as D from 'arbiter:plugin/decomposition@0.2.0';
import { Config } from './config.js';
import { Decomposer, Router, Verifier } from './plugin.js';
import type { PluginInfo } from './types.js';
type Pairs = Array<[string, string]>;
type Result<T> = {
    tag: 'ok';
    val: T;
} | {
    tag: 'err';
    val: W.PluginError;
};
/** A plugin class: static `info()` and `new(config)` (the base classes provide `new`). */
export interface PluginClass<P> {
    info(): PluginInfo;
    new: (config: Config) => P;
    check?: (config: Config) => void;
    readonly name: string;
    readonly prototype: P;
}
/** The `verification` interface of a `Verifier` subclass. */
export declare function exportVerifier<V extends Verifier>(cls: PluginClass<V>, source?: string): {
    info: () => W.PluginInfo;
    checkConfig: (config: Pairs) => Result<undefined>;
    verify: (config: Pairs, task: W.Task, candidate: W.Candidate) => Result<W.Verdict>;
    select: (config: Pairs, task: W.Task, candidates: W.Judged[]) => Result<W.Selection>;
};
/** The `routing` interface of a `Router` subclass. */
export declare function exportRouter<P extends Router>(cls: PluginClass<P>, source?: string): {
    info: () => W.PluginInfo;
    checkConfig: (config: Pairs) => Result<undefined>;
    route: (config: Pairs, task: W.Task, options: R.ModelOption[]) => Result<R.RouteDecision>;
};
/** The `decomposition` interface of a `Decomposer` subclass. */
export declare function exportDecomposer<P extends Decomposer>(cls: PluginClass<P>, source?: string): {
    info: () => W.PluginInfo;
    checkConfig: (config: Pairs) => Result<undefined>;
    decompose: (config: Pairs, task: W.Task) => Result<D.Plan>;
    compose: (config: Pairs, task: W.Task, results: D.Subresult[]) => Result<string>;
};
export {};
