// Builds the console into host/assets/console/, which the binary embeds. The output is
// deterministic (no hashes, timestamps or source maps), so CI can rebuild it and compare
// it with what is committed: `node build.mjs --check` fails when they differ.
import { build } from "esbuild";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const committed = join(here, "..", "host", "assets", "console");
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "arbiter-console-")) : committed;
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { app: join(here, "src", "main.tsx"), style: join(here, "src", "style.css") },
  outdir: out,
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  logLevel: "warning",
});
copyFileSync(join(here, "src", "index.html"), join(out, "index.html"));

if (check) {
  const names = (dir) => readdirSync(dir).sort();
  const fresh = names(out);
  let stale = JSON.stringify(fresh) !== JSON.stringify(names(committed));
  for (const name of fresh) {
    if (stale) break;
    stale = !readFileSync(join(out, name)).equals(readFileSync(join(committed, name)));
  }
  rmSync(out, { recursive: true, force: true });
  if (stale) {
    console.error("host/assets/console is stale: run `npm run build` in console/ and commit the result");
    process.exit(1);
  }
  console.log("host/assets/console matches a fresh build");
}
