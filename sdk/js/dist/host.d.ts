import type * as L from 'arbiter:plugin/log@0.2.0';
import type * as M from 'arbiter:plugin/model@0.2.0';
import type * as S from 'arbiter:plugin/stats@0.2.0';
export interface HostImports {
    log?: typeof L.log;
    complete?: typeof M.complete;
    query?: typeof S.query;
}
export declare const host: HostImports;
/** Called once by the generated entry module, after the plugin's module has loaded. */
export declare function bindHost(imports: HostImports): void;
