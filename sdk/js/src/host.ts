// The host's imports, handed to the SDK by the entry module `arbiter plugin build`
// generates (`bindHost`). The SDK itself imports nothing from `arbiter:plugin/*`, so it
// also loads in Node (unit tests of plugin code), and a plugin imports a capability
// interface only when its `arbiter.toml` lists the capability.

import type * as L from 'arbiter:plugin/log@0.2.0';
import type * as M from 'arbiter:plugin/model@0.2.0';
import type * as S from 'arbiter:plugin/stats@0.2.0';

export interface HostImports {
  log?: typeof L.log;
  complete?: typeof M.complete;
  query?: typeof S.query;
}

export const host: HostImports = {};

/** Called once by the generated entry module, after the plugin's module has loaded. */
export function bindHost(imports: HostImports): void {
  Object.assign(host, imports);
}
