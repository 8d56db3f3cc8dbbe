// The host's imports, handed to the SDK by the entry module `arbiter plugin build`
// generates (`bindHost`). The SDK itself imports nothing from `arbiter:plugin/*`, so it
// also loads in Node (unit tests of plugin code), and a plugin imports a capability
// interface only when its `arbiter.toml` lists the capability.
export const host = {};
/** Called once by the generated entry module, after the plugin's module has loaded. */
export function bindHost(imports) {
    Object.assign(host, imports);
}
