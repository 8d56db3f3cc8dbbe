// Drives the console in headless Chromium against a running gateway (started, seeded
// and checked by tests/all/console.rs, which sets the environment below). Exits non-zero
// on the first failed check; writes a screenshot of each page to ARBITER_SHOTS.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
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
  const page = context.pages()[0] ?? (await context.newPage());
  // Console errors (CSP violations among them) and uncaught exceptions fail the test.
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`exception: ${e.message}`));
  page.on("request", (r) => requested.push(r.url()));
  page.on("response", (r) => r.status() >= 400 && failed.push(`${r.status()} ${new URL(r.url()).pathname}`));
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
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

  // The operator key's 403 and the other tenant's 404 are answers the pages handle;
  // Chromium logs every failed load as an error, so those two, and only those, are
  // expected.
  assert.deepEqual(failed, ["403 /v1/traces", `404 /v1/traces/${otherId}`], "failed loads");
  const loads = problems.filter((p) => p.startsWith("console: Failed to load resource"));
  assert.equal(loads.length, failed.length, `${problems}`);
  assert.deepEqual(problems.filter((p) => !loads.includes(p)), [], "no console errors");
  console.log("all console checks passed");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
