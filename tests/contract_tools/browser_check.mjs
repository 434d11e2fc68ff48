// Open a page in headless Debian Chromium (playwright-core drives /usr/bin/chromium; no browser
// download) and print one JSON document: every request URL the page made, and the visible
// text, headings, element ids and links after each in-page route (hash) it was asked to visit.
//
//   node browser_check.mjs URL VISITS_JSON
//
// VISITS_JSON is a list of {"route": "#/tasks/listtasks" or "", "expect": "text", "inHeading":
// bool}: each visit sets the location hash, then waits (up to 30 s) until the page's visible
// text contains `expect` (or, with inHeading, an h1-h3 reads exactly `expect`), so client-side
// rendering has finished before the snapshot is taken.
//
// Requests that would leave the page's own origin (file: for a file) are recorded and aborted,
// so a faulty page is caught without any traffic leaving the machine. Used by
// test_docs_browser.py.
import { createRequire } from "node:module";

// playwright-core lives in tools/node_modules (npm ci --prefix tools).
const require = createRequire(new URL("../../tools/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [url, visitsJson] = process.argv.slice(2);
const visits = JSON.parse(visitsJson);
const own = new URL(url);
const isOwn = (target) => {
  const parsed = new URL(target);
  if (["data:", "blob:", "about:"].includes(parsed.protocol)) return true;
  return own.protocol === "file:" ? parsed.protocol === "file:" : parsed.origin === own.origin;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
  ],
});
try {
  const context = await browser.newContext();
  const requests = [];
  const errors = [];
  context.on("request", (request) => requests.push(request.url()));
  await context.route("**/*", (route) =>
    isOwn(route.request().url()) ? route.continue() : route.abort("blockedbyclient"),
  );
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(String(error)));
  const settle = () => page.waitForLoadState("networkidle", { timeout: 15_000 }).catch(() => {});

  await page.goto(url, { waitUntil: "load", timeout: 60_000 });
  const pages = [];
  for (const { route, expect, inHeading = false } of visits) {
    if (route) {
      await page.evaluate((hash) => { window.location.hash = hash; }, route);
    }
    const rendered = await page
      .waitForFunction(
        ([text, heading]) =>
          heading
            ? [...document.querySelectorAll("h1, h2, h3")].some((h) => h.innerText.trim() === text)
            : document.body.innerText.includes(text),
        [expect, inHeading],
        { timeout: 30_000 },
      )
      .then(() => true, () => false);
    await settle();
    pages.push({
      route,
      expect,
      rendered,
      ids: await page.$$eval("[id]", (nodes) => nodes.map((node) => node.id)),
      hrefs: await page.$$eval("a[href]", (nodes) => nodes.map((node) => node.getAttribute("href"))),
      text: await page.evaluate(() => document.body.innerText),
      headings: await page.$$eval("h1, h2, h3", (nodes) => nodes.map((node) => node.innerText.trim())),
    });
  }
  const foreign = requests.filter((target) => !isOwn(target));
  console.log(JSON.stringify({ url, requests, foreign, errors, pages }));
} finally {
  await browser.close();
}
