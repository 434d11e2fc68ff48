// Drives the reference web client (examples/web) in headless Debian Chromium through
// playwright-core, as two people would: each user has a browser profile of their own (a fresh
// user-data dir), signs up through Better Auth, and manages tasks on the API, which is served
// from another origin. Prints one JSON document of what it saw; tools/e2e.py starts the servers
// and tests/frontend/test_e2e.py checks the document.
//
//   E2E_CONFIG='{"pageUrl": ..., "apiUrl": ..., "foreignUrl": ..., "shots": DIR, "chromium": PATH,
//                "profiles": DIR}' node e2e.mjs
//
// A step that fails stops the run: the document then has `error` and the steps so far, and a
// screenshot of every open page is saved as failure-*.png.
import { mkdirSync, mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

// playwright-core lives in tools/node_modules (npm ci --prefix tools).
const require = createRequire(new URL("../../tools/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const config = JSON.parse(process.env.E2E_CONFIG);
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const api = new URL(config.apiUrl);
const isApi = (url) => url.startsWith(api.origin);
mkdirSync(config.shots, { recursive: true });

const report = { steps: {}, exchanges: [], preflights: [], consoleErrors: [], screenshots: [] };
const contexts = [];

/** A user's own browser: a persistent context on a fresh profile, API traffic recorded. */
async function openBrowser(name) {
  const profile = mkdtempSync(join(config.profiles, `${name}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: config.chromium,
    headless: true,
    args: FLAGS,
    viewport: { width: 900, height: 900 },
  });
  contexts.push(context);
  return context;
}

/** A tab whose CORS preflights (which Playwright does not report as requests) are recorded via CDP. */
async function openTab(context, who, url = config.pageUrl) {
  const page = await context.newPage();
  page.on("console", (message) => {
    // A failed fetch is logged by Chromium itself ("Failed to load resource"); page errors are not.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      report.consoleErrors.push({ who, text: message.text() });
    }
  });
  page.on("pageerror", (error) => report.consoleErrors.push({ who, text: String(error) }));
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  // Every API and Better Auth exchange, and every CORS preflight, as Chromium's network stack saw
  // it (Playwright's own events miss preflights and some fetches made from inside a fetch).
  const pending = new Map();
  cdp.on("Network.requestWillBeSent", (event) => {
    const { url, method, headers } = event.request;
    if (event.type === "Preflight" || method === "OPTIONS") {
      const entry = { who, url, method, headers };
      pending.set(event.requestId, entry);
      report.preflights.push(entry);
    } else if (isApi(url) || url.includes("/api/auth/")) {
      pending.set(event.requestId, { who, method, url });
    }
  });
  cdp.on("Network.responseReceived", (event) => {
    const entry = pending.get(event.requestId);
    if (!entry) return;
    pending.delete(event.requestId);
    entry.status = event.response.status;
    if (entry.headers) {
      entry.responseHeaders = Object.fromEntries(
        Object.entries(event.response.headers).map(([name, value]) => [name.toLowerCase(), value]),
      );
    } else {
      report.exchanges.push(entry);
    }
  });
  await page.goto(url, { waitUntil: "load" });
  return page;
}

async function shot(page, name) {
  const path = join(config.shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  report.screenshots.push(path);
}

/** A fresh Better Auth token of the user signed in on `page`, and its subject. */
const tokenOf = (page) => page.evaluate(async () => (await (await fetch("/api/auth/token")).json()).token);
const subject = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString()).sub;

const summary = (page) => page.locator("#summary").innerText();
const titles = (page) => page.locator("#tasks li .title").allInnerTexts();
const banner = async (page) => ((await page.locator("#banner").isVisible()) ? page.locator("#banner").innerText() : "");

async function signUp(page, name, email) {
  const form = page.locator("#sign-up");
  await form.locator("[name=name]").fill(name);
  await form.locator("[name=email]").fill(email);
  await form.locator("[name=password]").fill("correct horse battery");
  await form.locator("button[type=submit]").click();
  await page.locator("#app").waitFor({ state: "visible" });
  await page.locator("#summary").filter({ hasText: "task" }).waitFor();
}

/** Waits until the list's summary reads `text` (the list has been reloaded from the API). */
async function expectSummary(page, text) {
  await page.locator("#summary").filter({ hasText: text }).waitFor({ timeout: 15_000 });
}

async function addTask(page, fields, expectAfter) {
  const form = page.locator("#create");
  await form.locator("[name=title]").fill(fields.title);
  await form.locator("[name=tags]").fill(fields.tags ?? "");
  if (fields.priority) await form.locator("[name=priority]").selectOption(fields.priority);
  await form.locator("button[type=submit]").click();
  if (expectAfter) await expectSummary(page, expectAfter);
}

async function run() {
  const stamp = Date.now().toString(36);
  const alice = await openBrowser("alice");
  const a1 = await openTab(alice, "alice");
  await a1.locator("body[data-ready=true]").waitFor();
  await shot(a1, "01-signed-out");
  await signUp(a1, "Alice", `alice-${stamp}@example.com`);
  report.steps.aliceSignedUp = { summary: await summary(a1), who: await a1.locator("#who").innerText() };

  // Pagination: 4 tasks, pages of 3 (the page asks with ?pageSize=3).
  await addTask(a1, { title: "Alice: buy milk", tags: "home" }, "1 task,");
  await addTask(a1, { title: "Alice: write report", tags: "work", priority: "high" }, "2 tasks");
  await addTask(a1, { title: "Alice: call the bank" }, "3 tasks");
  await addTask(a1, { title: "Alice: water plants", tags: "home" }, "4 tasks");
  const firstPage = { summary: await summary(a1), titles: await titles(a1), next: await a1.locator("#next").isEnabled() };
  await a1.locator("#next").click();
  await expectSummary(a1, "showing 4-4");
  const secondPage = { summary: await summary(a1), titles: await titles(a1), prev: await a1.locator("#prev").isEnabled() };
  await shot(a1, "02-alice-page-2");
  await a1.locator("#prev").click();
  await expectSummary(a1, "showing 1-3");
  report.steps.pagination = { firstPage, secondPage };
  report.steps.visibleHeaders = await a1.evaluate(() => window.todoDebug.visibleHeaders);

  // 422: each field's message beside the field.
  await a1.locator("#create [name=title]").fill("   ");
  await a1.locator("#create [name=tags]").fill("ok, " + "x".repeat(40));
  await a1.locator("#create button[type=submit]").click();
  await a1.locator('#create [data-error-for="title"]').filter({ hasText: /./ }).waitFor();
  report.steps.validation = {
    title: await a1.locator('#create [data-error-for="title"]').innerText(),
    tags: await a1.locator('#create [data-error-for="tags"]').innerText(),
    description: await a1.locator('#create [data-error-for="description"]').innerText(),
    summary: await summary(a1),
  };
  await shot(a1, "03-validation-errors");

  // Complete one, delete one.
  const bank = a1.locator("#tasks li", { hasText: "Alice: call the bank" });
  await bank.locator("input.done").check();
  await a1.locator("#tasks li.done", { hasText: "Alice: call the bank" }).waitFor();
  const milk = a1.locator("#tasks li", { hasText: "Alice: buy milk" });
  if ((await milk.count()) === 0) await a1.locator("#next").click();
  await a1.locator("#tasks li", { hasText: "Alice: buy milk" }).locator("button.delete").click();
  await expectSummary(a1, "3 tasks");
  report.steps.completeAndDelete = {
    summary: await summary(a1),
    titles: await titles(a1),
    done: await a1.locator("#tasks li.done .title").allInnerTexts(),
  };

  // A second user, in a browser of their own, sees none of Alice's tasks.
  const bob = await openBrowser("bob");
  const b1 = await openTab(bob, "bob");
  await b1.locator("body[data-ready=true]").waitFor();
  await signUp(b1, "Bob", `bob-${stamp}@example.com`);
  const bobBefore = { summary: await summary(b1), titles: await titles(b1) };
  await addTask(b1, { title: "Bob: fix the bike" }, "1 task,");
  report.steps.bob = { before: bobBefore, after: { summary: await summary(b1), titles: await titles(b1) } };
  await shot(b1, "04-bob-own-tasks");
  await a1.locator("#reload").click();
  await expectSummary(a1, "3 tasks");
  report.steps.aliceAfterBob = { summary: await summary(a1), titles: await titles(a1) };

  // Bob's own token on Alice's path (403) and on Alice's task under his path (404, as if missing).
  const aliceTask = await a1.locator("#tasks li").first().getAttribute("data-id");
  const aliceSub = subject(await tokenOf(a1));
  report.steps.crossUser = await b1.evaluate(
    async ({ apiUrl, aliceSub, aliceTask }) => {
      const { token } = await (await fetch("/api/auth/token")).json();
      const bobSub = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;
      const get = async (path) => {
        const response = await fetch(apiUrl + path, { headers: { Authorization: `Bearer ${token}` } });
        return { status: response.status, type: (await response.json()).type };
      };
      return {
        alicePath: await get(`/api/${aliceSub}/tasks`),
        aliceTaskUnderBob: await get(`/api/${bobSub}/tasks/${aliceTask}`),
      };
    },
    { apiUrl: config.apiUrl, aliceSub, aliceTask },
  );

  // The same task edited in two tabs: the second save gets the 412 path.
  const a2 = await openTab(alice, "alice-tab2");
  await a2.locator("body[data-ready=true]").waitFor();
  await expectSummary(a2, "3 tasks");
  const target = "Alice: write report";
  for (const tab of [a1, a2]) {
    await tab.locator("#tasks li", { hasText: target }).locator("button.edit").click();
    await tab.locator("#edit").waitFor({ state: "visible" });
  }
  await a1.locator("#edit [name=title]").fill("Report: edited in tab 1");
  await a1.locator("#edit button[type=submit]").click();
  await a1.locator("#edit").waitFor({ state: "hidden" });
  await a2.locator("#edit [name=title]").fill("Report: edited in tab 2");
  await a2.locator("#edit [name=priority]").selectOption("low");
  await a2.locator("#edit button[type=submit]").click();
  await a2.locator("#conflict").waitFor({ state: "visible" });
  const conflict = {
    notice: await a2.locator("#conflict").innerText(),
    keptInput: await a2.locator("#edit [name=title]").inputValue(),
  };
  await shot(a2, "05-conflict-in-second-tab");
  await a2.locator("#edit button[type=submit]").click();
  await a2.locator("#edit").waitFor({ state: "hidden" });
  await a2.locator("#tasks li .title", { hasText: "Report: edited in tab 2" }).waitFor();
  await a1.locator("#reload").click();
  await a1.locator("#tasks li .title", { hasText: "Report: edited in tab 2" }).waitFor();
  conflict.after = { tab1: await titles(a1), tab2: await titles(a2), tab2Banner: await banner(a2) };
  report.steps.conflict = conflict;
  await shot(a1, "06-first-tab-after-reload");

  // The cached token expires; the next call gets a 401, a fresh token, and succeeds unseen.
  const expiresAt = await a1.evaluate(() => window.todoDebug.tokenExpiresAt);
  const fetchesBefore = await a1.evaluate(() => window.todoDebug.tokenFetches);
  const loadsBefore = await a1.evaluate(() => window.todoDebug.loads);
  const wait = expiresAt - Date.now() + 1500;
  if (wait > 0) await a1.waitForTimeout(wait);
  const mark = report.exchanges.length;
  await a1.locator("#reload").click();
  await a1.waitForFunction((n) => window.todoDebug.loads > n, loadsBefore);
  await expectSummary(a1, "3 tasks");
  // The retried call's response event may trail the page's own rendering by a moment.
  for (let i = 0; i < 50 && !report.exchanges.slice(mark).some((e) => e.status === 200 && isApi(e.url)); i++) {
    await a1.waitForTimeout(100);
  }
  report.steps.renewal = {
    waitedMs: Math.max(0, wait),
    exchanges: report.exchanges.slice(mark).filter((e) => e.who === "alice"),
    tokenFetches: [fetchesBefore, await a1.evaluate(() => window.todoDebug.tokenFetches)],
    banner: await banner(a1),
    summary: await summary(a1),
  };
  await shot(a1, "07-after-token-renewal");

  // CORS as a browser enforces it: the same calls from an origin the API does not allow fail
  // in the browser, while they succeed from the page's own origin.
  const probe = async (page, token) =>
    page.evaluate(
      async ({ apiUrl, userPath, token }) => {
        const attempt = async (init, path) => {
          try {
            const response = await fetch(apiUrl + path, init);
            return { ok: true, status: response.status, total: response.headers.get("X-Total-Count") };
          } catch (error) {
            return { ok: false, error: String(error) };
          }
        };
        return {
          simple: await attempt({}, "/api/health"),
          withToken: await attempt({ headers: { Authorization: `Bearer ${token}` } }, userPath),
        };
      },
      { apiUrl: config.apiUrl, userPath: `/api/${token.sub}/tasks`, token: token.jwt },
    );
  const jwt = await tokenOf(a1);
  const sub = subject(jwt);
  const outsider = await openTab(alice, "outsider", config.foreignUrl);
  report.steps.cors = {
    allowedOrigin: await probe(a1, { jwt, sub }),
    foreignOrigin: await probe(outsider, { jwt, sub }),
    foreignUrl: config.foreignUrl,
  };

  // Sign out: the page forgets the token and shows the sign-in forms again.
  await a1.locator("#sign-out").click();
  await a1.locator("#auth").waitFor({ state: "visible" });
  report.steps.signedOut = await a1.locator("#app").isHidden();
}

try {
  await run();
} catch (error) {
  report.error = String(error && error.stack ? error.stack : error);
  for (const [i, context] of contexts.entries()) {
    for (const [j, page] of context.pages().entries()) {
      await shot(page, `failure-${i}-${j}`).catch(() => {});
    }
  }
} finally {
  for (const context of contexts) await context.close().catch(() => {});
}
console.log(JSON.stringify(report));
process.exit(report.error ? 1 : 0);
