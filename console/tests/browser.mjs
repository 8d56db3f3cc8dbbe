// Drives the console in headless Chromium against a running gateway (started, seeded
// and checked by tests/all/console.rs, which sets the environment below). Exits non-zero
// on the first failed check; writes a screenshot of each page to ARBITER_SHOTS.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const url = env("ARBITER_URL");
const keyA = env("ARBITER_KEY_A");
const operatorKey = env("ARBITER_OPERATOR_KEY");
const raceId = env("ARBITER_RACE_TRACE");
const cascadeId = env("ARBITER_CASCADE_TRACE");
const otherId = env("ARBITER_OTHER_TRACE");
const otherPipeline = env("ARBITER_OTHER_PIPELINE");
const shots = env("ARBITER_SHOTS");
const pluginPath = env("ARBITER_PLUGIN");
const configPath = env("ARBITER_CONFIG");
mkdirSync(shots, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), "arbiter-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
  ],
  viewport: { width: 1280, height: 900 },
});
const problems = [];
const requested = [];
const failed = [];
try {
  // Console errors (CSP violations among them) and uncaught exceptions, on any page,
  // fail the test.
  const watch = (p) => {
    p.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
    p.on("pageerror", (e) => problems.push(`exception: ${e.message}`));
    p.on("request", (r) => requested.push(r.url()));
    p.on("response", (r) => r.status() >= 400 && failed.push(`${r.status()} ${new URL(r.url()).pathname}`));
    return p;
  };
  const page = watch(context.pages()[0] ?? (await context.newPage()));
  const shot = (name, p = page) => p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const step = (what) => console.log(`- ${what}`);

  step("sign-in page");
  await page.goto(`${url}/console`);
  await page.getByLabel("API key").waitFor();
  await shot("sign-in");

  step("an operator signs in, picks tenant b and reads its traces, without feedback");
  await page.getByLabel("API key").fill(operatorKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("combobox", { name: "Tenant", exact: true }).selectOption("b");
  await page.getByRole("heading", { name: "Traces of b" }).waitFor();
  await page.locator(`tr[data-trace="${otherId}"]`).waitFor();
  assert.equal(await page.locator(`tr[data-trace="${raceId}"]`).count(), 0, "tenant a's race is not b's");
  await shot("operator-traces");
  await page.locator(`tr[data-trace="${otherId}"] a`).click();
  await page.getByRole("heading", { name: "Timeline" }).waitFor();
  assert.equal(await page.getByRole("form", { name: "Feedback" }).count(), 0, "an operator gives no feedback");
  await page.getByRole("link", { name: "Usage" }).click();
  await page.getByRole("heading", { name: "Usage of b" }).waitFor();
  await page.locator("table.usage").filter({ hasText: otherPipeline }).waitFor();
  assert.ok(!(await page.locator("table.usage").innerText()).includes("race"), "only b's usage");
  await page.getByRole("link", { name: "Pipelines" }).click();
  await page.getByRole("heading", { name: "Pipelines of b" }).waitFor();
  await page.locator(`article[data-pipeline="${otherPipeline}"]`).getByRole("img", { name: /Outcomes:/ }).waitFor();
  assert.equal(await page.locator('article[data-pipeline="race"]').count(), 0, "only b's pipelines");
  assert.ok((await page.locator(`article[data-pipeline="${otherPipeline}"]`).innerText()).includes("model: right"), "b's tree");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.goto(`${url}/console#/traces`);

  step("sign in with tenant a's key");
  await page.getByLabel("API key").fill(keyA);
  await page.getByRole("button", { name: "Sign in" }).click();
  const rows = page.locator("table.traces tbody tr");
  await rows.first().waitFor();
  assert.ok((await rows.count()) >= 3, "tenant a's traces are listed");
  const listed = await page.locator("table.traces").innerText();
  assert.ok(listed.includes("race"), "the race pipeline is listed");
  assert.ok(!listed.includes(otherPipeline), "another tenant's pipeline is not listed");
  assert.equal(await page.locator(`tr[data-trace="${otherId}"]`).count(), 0, "another tenant's trace is not listed");
  await shot("traces");

  step("filter by pipeline on the server, then open the race");
  await page.getByLabel("Pipeline").fill("race");
  await page.getByRole("button", { name: "Search" }).click();
  await page.locator(`tr[data-trace="${raceId}"]`).waitFor();
  for (const text of await page.locator("table.traces tbody tr td:nth-child(2)").allInnerTexts()) {
    assert.equal(text, "race", "only the race pipeline's traces after filtering");
  }
  assert.ok(requested.some((u) => u.includes("/v1/traces?") && u.includes("pipeline=race")), "filtered by the API");
  await page.locator(`tr[data-trace="${raceId}"] a`).click();

  step("the race's timeline shows the cancelled loser");
  await page.getByRole("heading", { name: "Timeline" }).waitFor();
  const loser = page.locator('table.attempts tr[data-outcome="cancelled"]');
  await loser.first().waitFor();
  assert.ok((await loser.first().innerText()).includes("slow"), "the slow branch lost");
  const budget = await page.getByRole("table", { name: "Budget" }).innerText();
  assert.match(budget, /Model calls\s+2\s+128/, "the default budget's call limit, against the calls made");
  const chart = page.getByRole("img", { name: /Timeline of/ });
  assert.match(await chart.getAttribute("aria-label"), /cancelled/);
  const chosen = page.locator("table.attempts tr[data-chosen]");
  assert.equal(await chosen.count(), 1, "one answer returned");
  assert.match(await chosen.innerText(), /fast[\s\S]*answer returned/, "the fast branch's answer was returned");
  assert.match(await chart.getAttribute("aria-label"), /fast[^;]*: unverified \(chosen answer\)/, "marked on the timeline");
  await page.waitForTimeout(200); // lets Chart.js finish its first layout for the picture
  await shot("trace-race");

  step("the cascade's escalation, its verdicts and reasons; feedback");
  await page.goto(`${url}/console#/traces/${cascadeId}`);
  await page.locator('table.attempts tr[data-outcome="rejected"]').first().waitFor();
  const attempts = await page.locator("table.attempts").innerText();
  assert.ok(attempts.includes("math"), "the verifier's verdict is shown");
  await page.locator('table.attempts tr[data-outcome="rejected"] ul.checks li.failed').first().waitFor();
  await page.getByRole("radio", { name: "Wrong" }).check();
  await page.getByRole("textbox", { name: "Note" }).fill("checked by hand");
  await page.getByRole("button", { name: "Send feedback" }).click();
  await page.getByRole("status").filter({ hasText: "recorded" }).waitFor();
  await shot("trace-cascade");

  step("usage: the tenant's own pipelines, by day and in total");
  await page.getByRole("link", { name: "Usage" }).click();
  await page.getByRole("heading", { name: "Usage", exact: true }).waitFor();
  const usage = await page.locator("table.usage").innerText();
  for (const p of ["race", "cascade", "plain"]) assert.ok(usage.includes(p), `usage lists ${p}`);
  assert.ok(!usage.includes(otherPipeline), "another tenant's usage is not shown");
  // Its limits (`GET /v1/tenant`): the daily cap with how much of it is spent.
  const caps = await page.getByRole("table", { name: "Limits" }).innerText();
  assert.ok(caps.includes("Spend today") && caps.includes("5.0000"), caps);
  await page.getByRole("progressbar", { name: /Spend today \(UTC\): \d+% used/ }).waitFor();
  await page.getByRole("img", { name: /Cost per day/ }).waitFor();
  await page.waitForTimeout(200);
  await shot("usage");

  step("catalog: what the key may call, and its own pipeline as a tree");
  await page.getByRole("link", { name: "Catalog" }).click();
  await page.locator('article[data-pipeline="mine"]').waitFor();
  assert.ok((await page.locator("table.models").innerText()).includes("race"));
  const tree = await page.locator('article[data-pipeline="mine"]').innerText();
  for (const part of ["cascade", "model: wrong", "race", "model: slow"]) assert.ok(tree.includes(part), `the tree shows ${part}`);
  await shot("catalog");

  step("pipelines: every pipeline the key may call as a tree, with its outcome mix and percentiles");
  await page.getByRole("link", { name: "Pipelines" }).click();
  const race = page.locator('article[data-pipeline="race"]');
  await race.getByRole("img", { name: /Outcomes: unverified 1/ }).waitFor();
  const raceText = await race.innerText();
  for (const part of ["shared", "race", "model: slow", "model: fast", "Latency p50 / p95 / p99"])
    assert.ok(raceText.includes(part), `the race shows ${part}`);
  assert.match(raceText, /Latency p50 \/ p95 \/ p99\s+[\d.]+ m?s \/ [\d.]+ m?s \/ [\d.]+ m?s/, "latency percentiles");
  const cascadeCard = page.locator('article[data-pipeline="cascade"]');
  assert.ok((await cascadeCard.innerText()).includes("verify: math"), "the cascade's verifier");
  await cascadeCard.getByRole("img", { name: /Outcomes: accepted 1/ }).waitFor();
  assert.ok((await page.locator('article[data-pipeline="mine"]').innerText()).includes("own"), "its own pipeline too");
  assert.equal(await page.locator(`article[data-pipeline="${otherPipeline}"]`).count(), 0, "not another tenant's");
  assert.ok(requested.some((u) => u.includes("/v1/stats/pipelines?since=")), "read from the API");
  await shot("pipelines");

  step("models: the routers' figures with cost, and plugin calls");
  await page.getByRole("link", { name: "Models" }).click();
  await page.locator('table.model-stats tr[data-model="wrong"]').waitFor();
  const wrong = await page.locator('table.model-stats tr[data-model="wrong"]').innerText();
  assert.match(wrong, /0\.0%/, "the cheap model's answers were rejected");
  await page.locator('table.plugin-stats tr[data-plugin="math"]').waitFor();
  assert.match(await page.locator('table.plugin-stats tr[data-plugin="math"]').innerText(), /verifier\s+2\s/, "two verdicts");
  await shot("models");

  step("another tenant's trace does not exist for this key");
  await page.goto(`${url}/console#/traces/${otherId}`);
  await page.getByRole("alert").filter({ hasText: "no trace" }).waitFor();

  step("the key is in no URL; signing out forgets it");
  assert.ok(!requested.some((u) => u.includes(keyA)), "the key never appears in a URL");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API key").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);

  step("operator: the tenants with their policies; a typed error; a new tenant");
  await page.getByLabel("API key").fill(operatorKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  // The tenant picker chooses the first tenant on signing in.
  await page.getByRole("heading", { name: "Traces of a" }).waitFor();
  await page.getByRole("link", { name: "Tenants", exact: true }).click();
  await page.getByRole("heading", { name: "Tenants", exact: true }).waitFor();
  await page.locator('tr[data-tenant="a"]').filter({ hasText: "configuration file" }).waitFor();
  await page.locator('tr[data-tenant="b"]').waitFor();
  const create = page.getByRole("form", { name: "New tenant" });
  await create.getByLabel("Name").fill("a");
  await create.getByRole("button", { name: "Create tenant" }).click();
  await create.getByRole("alert").filter({ hasText: "tenant_exists" }).waitFor();
  await create.getByLabel("Name").fill("ops-demo");
  await create.getByLabel("Requests per second").fill("50");
  await create.getByLabel("Spend per UTC day (USD)").fill("1.5");
  await create.getByLabel("Requests at once").fill("4");
  await create.getByRole("button", { name: "Create tenant" }).click();
  await create.getByRole("status").filter({ hasText: "Created ops-demo" }).waitFor();
  const demo = page.locator('tr[data-tenant="ops-demo"]');
  await demo.filter({ hasText: "4 at once" }).waitFor();

  step("operator: edits its policy, which is still there after reloading the page");
  await demo.getByRole("button", { name: "Edit policy" }).click();
  const edit = page.getByRole("form", { name: "Policy of ops-demo" });
  assert.equal(await edit.getByLabel("Requests per second").inputValue(), "50", "the form starts from the policy");
  await edit.getByLabel("Requests at once").fill("3");
  await edit.getByLabel("Spend per UTC month (USD)").fill("20");
  await edit.getByRole("button", { name: "Save policy" }).click();
  await demo.filter({ hasText: "3 at once" }).waitFor();
  await page.reload();
  await demo.waitFor();
  const limits = await demo.locator("td.limits").innerText();
  for (const part of ["50/s", "3 at once", "$1.5000/day", "$20.0000/month"]) {
    assert.ok(limits.includes(part), `the stored policy has ${part}: ${limits}`);
  }
  await shot("ops-tenants");

  step("operator: a key for the new tenant, shown once");
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: url });
  await demo.getByRole("button", { name: "Keys" }).click();
  await page.getByRole("heading", { name: "Keys of ops-demo" }).waitFor();
  await page.getByText("No keys yet.").waitFor();
  await page.getByLabel("Key name").fill("console test");
  await page.getByRole("button", { name: "Create key" }).click();
  const fresh = page.getByRole("article", { name: "New key" });
  await fresh.getByText("it will not be shown again").waitFor();
  const secret = await fresh.getByLabel("The new key").inputValue();
  assert.match(secret, /^sk-arbiter-[0-9a-f]{32}$/);
  await fresh.getByRole("button", { name: "Copy" }).click();
  await fresh.getByRole("status").filter({ hasText: "Copied." }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, "the copy button copies the key");
  const keyRow = page.locator("table.keys tbody tr").filter({ hasText: "console test" });
  await keyRow.waitFor();
  const keyId = await keyRow.getAttribute("data-key");
  assert.ok(!(await page.locator("table.keys").innerText()).includes(secret), "the list never shows the key");
  await shot("ops-keys");
  await page.goto(`${url}/console#/tenants`);
  await page.goto(`${url}/console#/tenants/ops-demo/keys`);
  await page.locator(`tr[data-key="${keyId}"]`).waitFor();
  assert.ok(!(await page.locator("main").innerText()).includes(secret), "the key is not shown again");

  step("the new tenant signs in with it in a fresh tab and sees no one else's data");
  const tenantPage = watch(await context.newPage());
  await tenantPage.goto(`${url}/console`);
  await tenantPage.getByLabel("API key").fill(secret);
  await tenantPage.getByRole("button", { name: "Sign in" }).click();
  await tenantPage.getByText("No traces match.").waitFor();
  assert.equal(await tenantPage.locator("table.traces tbody tr").count(), 0, "no one else's traces");
  assert.equal(await tenantPage.getByRole("combobox", { name: "Tenant" }).count(), 0, "no tenant picker");
  await tenantPage.getByRole("link", { name: "Usage" }).click();
  await tenantPage.getByText("No usage in these days.").waitFor();

  step("the tenant uploads a plugin from the Plugins page (a typed refusal first), then deletes it");
  await tenantPage.getByRole("link", { name: "Plugins" }).click();
  await tenantPage.getByRole("heading", { name: "Plugins", exact: true }).waitFor();
  await tenantPage.getByText("No plugins uploaded yet.").waitFor();
  const upload = tenantPage.getByRole("form", { name: "Upload a plugin" });
  await upload.getByLabel("Component (.wasm)").setInputFiles(pluginPath);
  assert.notEqual(await upload.getByLabel("Name").inputValue(), "", "named after its file");
  await upload.getByLabel("Name").fill("checker");
  await upload.getByLabel("Fuel (instructions)").fill("99999999999");
  await upload.getByRole("button", { name: "Upload" }).click();
  await upload.getByRole("alert").filter({ hasText: "limit_above_ceiling" }).waitFor();
  await upload.getByLabel("Fuel (instructions)").fill("");
  await upload.getByRole("button", { name: "Upload" }).click();
  await upload.getByRole("status").filter({ hasText: "Uploaded checker@sha256:" }).waitFor();
  const digest = `sha256:${createHash("sha256").update(readFileSync(pluginPath)).digest("hex")}`;
  const plugin = tenantPage.locator('tr[data-plugin="checker"]');
  await plugin.waitFor();
  assert.equal(await plugin.locator("code.digest").getAttribute("title"), digest, "the version is the bytes' digest");
  const listedPlugin = await plugin.innerText();
  for (const part of ["verifier", "1000 ms", "256 MiB", "none"]) assert.ok(listedPlugin.includes(part), `${part}: ${listedPlugin}`);
  await shot("plugins", tenantPage);
  await plugin.getByRole("button", { name: "Delete" }).click();
  await plugin.getByRole("button", { name: "Yes, delete checker" }).click();
  await tenantPage.getByText("No plugins uploaded yet.").waitFor();
  assert.equal(await plugin.count(), 0);

  step("the operator revokes the key; the key then gets 401");
  await page.locator(`tr[data-key="${keyId}"]`).getByRole("button", { name: "Revoke" }).click();
  await page.locator(`tr[data-key="${keyId}"]`).getByRole("button", { name: "Yes, revoke" }).click();
  await page.locator(`tr[data-key="${keyId}"] .revoked`).waitFor();
  const direct = await fetch(`${url}/v1/traces`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(direct.status, 401, "a revoked key is refused");
  await tenantPage.reload();
  await tenantPage.getByLabel("API key").waitFor();
  await tenantPage.getByLabel("API key").fill(secret);
  await tenantPage.getByRole("button", { name: "Sign in" }).click();
  await tenantPage.getByRole("alert").filter({ hasText: "unknown, revoked or expired" }).waitFor();
  await tenantPage.close();

  step("operator: reload the configuration; a broken file's typed error; the pipelines served");
  await page.getByRole("link", { name: "Reload" }).click();
  await page.getByRole("heading", { name: "Reload the configuration" }).waitFor();
  const config = readFileSync(configPath);
  writeFileSync(configPath, "[server\n");
  try {
    await page.getByRole("button", { name: "Reload configuration" }).click();
    await page.getByRole("alert").filter({ hasText: "invalid_config" }).waitFor();
  } finally {
    writeFileSync(configPath, config);
  }
  await page.getByRole("button", { name: "Reload configuration" }).click();
  const served = page.getByRole("status", { name: "Reloaded" });
  await served.waitFor();
  for (const p of ["race", "cascade", "plain", "b-private"]) {
    assert.ok((await served.innerText()).includes(p), `${p} is served after the reload`);
  }
  assert.equal(await page.getByRole("alert").count(), 0, "the error is gone");
  await shot("ops-reload");

  step("operator: deletes the tenant, after a confirm");
  await page.getByRole("link", { name: "Tenants", exact: true }).click();
  await demo.getByRole("button", { name: "Delete" }).click();
  await demo.getByRole("button", { name: "Yes, delete ops-demo" }).click();
  await page.locator('tr[data-tenant="b"]').waitFor();
  await demo.waitFor({ state: "detached" });

  // The operator key's 403s (sign-in probes), the other tenant's 404, and the typed
  // errors and revoked key above are answers the pages handle; Chromium logs every
  // failed load as an error, so those, and only those, are expected.
  assert.deepEqual(
    [...failed].sort(),
    [
      "400 /admin/v1/reload",
      "401 /v1/plugins",
      "401 /v1/stats/plugins",
      "401 /v1/traces",
      "403 /v1/plugins",
      "403 /v1/traces",
      "403 /v1/traces",
      `404 /v1/traces/${otherId}`,
      "409 /admin/v1/tenants",
    ],
    "failed loads",
  );
  const loads = problems.filter((p) => p.startsWith("console: Failed to load resource"));
  assert.equal(loads.length, failed.length, `${problems}`);
  assert.deepEqual(problems.filter((p) => !loads.includes(p)), [], "no console errors");
  console.log("all console checks passed");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
