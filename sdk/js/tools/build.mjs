// The JavaScript/TypeScript plugin builder `arbiter plugin build` runs with Node.js:
// type-check (TypeScript projects), bundle the entry module with its dependencies and
// the SDK into one ES module (esbuild), and turn it into a component (componentize-js)
// that imports nothing the Arbiter runtime refuses (no `wasi:http`).
//
// Embedded in the `arbiter` binary and written next to the build's other work files;
// the Rust side (`host/src/authoring/js.rs`) decides everything else (tools, world,
// entry module, freshness). Usage: node build.mjs <request.json>

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

const request = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { tools, project, entry, main, typescript, sdk, wit, world, work, bundle, output } = request;

/** Loads package `name` from the tools' node_modules through its `exports`/`main`. */
async function load(name) {
  const dir = join(tools, 'node_modules', name);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  let target = pkg.exports?.['.'] ?? pkg.exports ?? pkg.module ?? pkg.main ?? 'index.js';
  while (target !== null && typeof target === 'object') {
    target = target.import ?? target.node ?? target.default ?? target.require;
  }
  if (typeof target !== 'string') throw new Error(`cannot find the entry of ${name}`);
  const mod = await import(pathToFileURL(join(dir, target)).href);
  return { ...(typeof mod.default === 'object' && mod.default !== null ? mod.default : {}), ...mod };
}

function fail(stage, message) {
  process.stderr.write(`${stage}:\n${message.trim()}\n`);
  process.exit(1);
}

async function typecheck() {
  const ts = await load('typescript');
  const config = join(project, 'tsconfig.json');
  let options;
  let roots;
  if (existsSync(config)) {
    const parsed = ts.getParsedCommandLineOfConfigFile(config, { noEmit: true }, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => fail('tsconfig.json', ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    });
    if (parsed.errors.length) {
      fail('tsconfig.json', ts.formatDiagnostics(parsed.errors, formatHost(ts)));
    }
    options = parsed.options;
    roots = parsed.fileNames;
  } else {
    // No tsconfig.json: strict checking against ECMAScript plus the engine's few globals.
    const converted = ts.convertCompilerOptionsFromJson(
      {
        target: 'ES2022',
        module: 'ES2022',
        moduleResolution: 'Bundler',
        lib: ['ES2022'],
        types: [],
        strict: true,
        skipLibCheck: true,
        noEmit: true,
      },
      project,
    );
    options = converted.options;
    roots = [join(sdk, 'globals.d.ts')];
  }
  options.noEmit = true;
  if (!roots.includes(entry)) roots = [...roots, entry];
  const program = ts.createProgram(roots, options);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const errors = diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length) {
    fail(`TypeScript found ${errors.length} error(s)`, ts.formatDiagnostics(errors, formatHost(ts)));
  }
}

function formatHost(ts) {
  return {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => project,
    getNewLine: () => '\n',
  };
}

async function bundleModule() {
  const esbuild = await load('esbuild');
  try {
    await esbuild.build({
      entryPoints: [main],
      outfile: bundle,
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      target: 'es2022',
      mainFields: ['module', 'main'],
      conditions: ['import', 'module', 'default'],
      // The host's interfaces are the component's imports, resolved by componentize-js.
      external: ['arbiter:*'],
      alias: { '@arbiter/sdk': join(sdk, 'dist', 'index.js') },
      nodePaths: [join(project, 'node_modules')],
      absWorkingDir: project,
      // Readable stack traces in plugin errors; the size of the source barely matters
      // (it is compiled once, when the component is pre-initialised).
      minify: false,
      keepNames: true,
      legalComments: 'none',
      logLevel: 'silent',
    });
  } catch (e) {
    const messages = e.errors ?? [];
    const text = messages.length
      ? (await esbuild.formatMessages(messages, { kind: 'error', color: false })).join('')
      : String(e);
    const hint = /Could not resolve "(node:)?(fs|path|os|child_process|net|http|https|crypto|process)"/.test(text)
      ? '\nPlugins run in a sandbox without Node.js APIs (no files, network or processes).'
      : '';
    fail('bundling failed', text + hint);
  }
}

async function componentizeBundle() {
  const { componentize } = await load('@bytecodealliance/componentize-js');
  // componentize-js reads the WIT from inside a WebAssembly component (its splicer)
  // through jco's WASI shim, whose recent versions grant no directory by default.
  const shimPath = createRequire(
    join(tools, 'node_modules', '@bytecodealliance/componentize-js', 'package.json'),
  ).resolve('@bytecodealliance/preview2-shim/filesystem');
  const shim = await import(pathToFileURL(shimPath).href);
  shim._setPreopens?.({ '/': '/' });
  // componentize-js maps the current directory into the engine while pre-initialising
  // and shortens paths under it: run from the bundle's own folder, which holds nothing
  // else (the WIT stays outside it, with its absolute path).
  process.chdir(dirname(bundle));
  try {
    const { component } = await componentize({
      sourcePath: bundle,
      witPath: wit,
      worldName: world,
      // `fetch()` would make the component import wasi:http, which plugins may not use.
      disableFeatures: ['http', 'fetch-event'],
      // Libraries probe `self.location` at load; without a location the engine throws
      // while pre-initialising. Plugins have no origin: a reserved, unresolvable one.
      runtimeArgs: '--init-location https://plugin.arbiter.invalid/',
    });
    writeFileSync(output, component);
  } catch (e) {
    const message = String(e?.message ?? e).replaceAll(work + '/', '');
    fail(`componentize-js failed (the bundle is ${relative(project, bundle)})`, message);
  }
}

if (typescript) await typecheck();
await bundleModule();
await componentizeBundle();
process.exit(0);
