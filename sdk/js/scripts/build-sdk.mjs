// Compiles the SDK (`src/*.ts`) into `dist/` (JavaScript + declarations). `dist/` is
// committed: the `arbiter` binary embeds it, so building the host needs no Node.js.
// `--check` compiles into a temporary folder and fails when `dist/` differs (stale).
//
// tsc drops the `/// <reference>` to the generated WIT declarations from its output, so
// it is put back at the top of `dist/index.d.ts`: importing `@arbiter/sdk` then brings
// the contract's ambient `arbiter:plugin/*` modules along.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REFERENCE = '/// <reference path="../wit-types/index.d.ts" />\n';

function compile(outDir) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', root, '--outDir', outDir], {
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    process.stderr.write(r.stdout + r.stderr);
    process.exit(1);
  }
  const index = join(outDir, 'index.d.ts');
  writeFileSync(index, REFERENCE + readFileSync(index, 'utf8'));
}

const dist = join(root, 'dist');
if (process.argv.includes('--check')) {
  const tmp = mkdtempSync(join(tmpdir(), 'arbiter-sdk-'));
  try {
    compile(tmp);
    const fresh = readdirSync(tmp).sort();
    const committed = readdirSync(dist).sort();
    const stale = [...new Set([...fresh, ...committed])].filter(
      (f) =>
        !fresh.includes(f) ||
        !committed.includes(f) ||
        readFileSync(join(tmp, f), 'utf8') !== readFileSync(join(dist, f), 'utf8'),
    );
    if (stale.length) {
      console.error(`dist/ is out of date (${stale.join(', ')}): run \`npm run build\``);
      process.exit(1);
    }
    console.log('dist/ is up to date');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
} else {
  rmSync(dist, { recursive: true, force: true });
  compile(dist);
  console.log('built dist/');
}
