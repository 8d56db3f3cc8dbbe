// Regenerates `wit-types/`: TypeScript declarations of the plugin contract, generated
// from the WIT (`wit/v<version>/`) with jco's guest type generator, one world per plugin
// kind and capability variant. Run `npm run gen-types` after a contract change; the
// output is committed and checked by `npm test` (and by `cargo test --test js`).
//
// jco's type generator is itself a WebAssembly component whose WASI shim grants no
// directory access by default (`jco types` fails with "failed to get path metadata (os
// error 44)"), so the shim's preopens are set to the contract folder before it runs.

import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
export const CONTRACT_VERSION = '0.2.0';
export const WORLDS = [
  'verifier',
  'model-verifier',
  'router',
  'stats-router',
  'decomposer',
  'model-decomposer',
];

/** The folder of package `name` as Node resolves it from `from` (nested or hoisted). */
function packageDir(from, name) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`${name} is not installed: run \`npm ci\` in sdk/js`);
  }
}

/** Generated declarations: { relative path -> text }. */
export async function generate(witDir = resolve(root, '../../wit', `v${CONTRACT_VERSION}`)) {
  const jco = packageDir(root, '@bytecodealliance/jco');
  const transpile = packageDir(jco, '@bytecodealliance/jco-transpile');
  const shim = await import(
    pathToFileURL(createRequire(join(transpile, 'package.json')).resolve(
      '@bytecodealliance/preview2-shim/filesystem',
    )).href
  );
  shim._setPreopens({ [witDir]: witDir });
  const { generateGuestTypes } = await import(
    pathToFileURL(join(transpile, 'dist', 'typegen.js')).href
  );
  const out = new Map();
  for (const world of WORLDS) {
    const files = await generateGuestTypes(witDir, { worldName: world });
    for (const [name, bytes] of Object.entries(files)) {
      const text = new TextDecoder().decode(bytes);
      const previous = out.get(name);
      if (previous !== undefined && previous !== text) {
        throw new Error(`${name} differs between worlds`);
      }
      out.set(name, text);
    }
  }
  const header = `// Generated from wit/v${CONTRACT_VERSION} by sdk/js/scripts/gen-types.mjs; do not edit.\n`;
  const files = new Map();
  for (const [name, text] of [...out].sort(([a], [b]) => a.localeCompare(b))) {
    files.set(name, header + text);
  }
  // One file that pulls in every interface, for the SDK's own declarations.
  const interfaces = [...files.keys()].filter((n) => n.startsWith('interfaces/'));
  files.set(
    'index.d.ts',
    header + interfaces.map((n) => `/// <reference path="./${n}" />\n`).join(''),
  );
  return files;
}

async function listing(dir, prefix = '') {
  const names = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const rel = prefix + entry.name;
    if (entry.isDirectory()) names.push(...(await listing(join(dir, entry.name), rel + '/')));
    else names.push(rel);
  }
  return names.sort();
}

/** Names of committed files that differ from a fresh generation (empty: up to date). */
export async function stale(outDir = join(root, 'wit-types')) {
  const files = await generate();
  const problems = [];
  for (const [name, text] of files) {
    const onDisk = await readFile(join(outDir, name), 'utf8').catch(() => null);
    if (onDisk !== text) problems.push(name);
  }
  for (const name of await listing(outDir)) {
    if (!files.has(name)) problems.push(`${name} (not generated)`);
  }
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = join(root, 'wit-types');
  if (process.argv.includes('--check')) {
    const problems = await stale(outDir);
    if (problems.length) {
      console.error(`wit-types/ is out of date (${problems.join(', ')}): run \`npm run gen-types\``);
      process.exit(1);
    }
    console.log('wit-types/ is up to date');
  } else {
    const files = await generate();
    await rm(outDir, { recursive: true, force: true });
    for (const [name, text] of files) {
      await mkdir(dirname(join(outDir, name)), { recursive: true });
      await writeFile(join(outDir, name), text);
    }
    console.log(`wrote ${files.size} files to wit-types/`);
  }
}
