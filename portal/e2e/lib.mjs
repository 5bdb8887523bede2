// Shared set-up of the browser tests: Debian's Chromium (never a downloaded one) driven by
// playwright-core, headless; every request that leaves 127.0.0.1 is refused and reported, as
// are CSP violations and uncaught errors; screenshots go to the run's output folder.

import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

export const BASE = (process.env.CURE_URL ?? "http://127.0.0.1:8000").replace(/\/$/, "");
export const OUTPUT = process.env.CURE_OUTPUT ?? "var/test-output/portal";
export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };
mkdirSync(OUTPUT, { recursive: true });

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

export function step(text) {
  console.log(`- ${text}`);
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CURE_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A browser context (its own cookies) and page at a viewport, watched for problems. */
export async function open(browser, viewport = DESKTOP, options = {}) {
  const context = await browser.newContext({
    viewport,
    isMobile: viewport.width < 600,
    hasTouch: viewport.width < 600,
    acceptDownloads: true,
    ...options,
  });
  const problems = [];
  const local = new URL(BASE).hostname;
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === local || url.hostname === "127.0.0.1") return route.continue();
    problems.push(`a request left the machine: ${url.href}`);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    const text = message.text();
    if (/Content Security Policy|Refused to/i.test(text)) problems.push(`CSP: ${text}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return { context, page, problems };
}

export function noProblems(problems) {
  check(problems.length === 0, `the page had problems:\n  ${problems.join("\n  ")}`);
}

export async function screenshot(page, name, fullPage = false) {
  const path = join(OUTPUT, `${name}.png`);
  await page.screenshot({ path, fullPage });
  step(`screenshot ${path}`);
  return path;
}

/** Nothing wider than the viewport (no sideways scrolling), and every control labelled. */
export async function checkLayout(page, where) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `${where}: the page is ${overflow}px wider than the viewport`);
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("main input, main select, main textarea")]
      .filter((el) => el.type !== "hidden" && el.type !== "file" || el.type === "file")
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.closest("label"))
      .map((el) => el.outerHTML.slice(0, 80)),
  );
  check(unlabelled.length === 0, `${where}: controls without a label: ${unlabelled.join(", ")}`);
}

/** A canvas that has something drawn on it (not a single colour). */
export async function canvasDrawn(locator) {
  return locator.evaluate((canvas) => {
    const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    const colours = new Set();
    for (let i = 0; i < data.length; i += 4 * 97) colours.add(`${data[i]},${data[i + 1]},${data[i + 2]},${data[i + 3]}`);
    return colours.size > 2;
  });
}

/** An image overlay on a map that has loaded a picture. */
export async function overlayLoaded(locator) {
  return locator.evaluate((img) => img.complete && img.naturalWidth > 0 && img.src.startsWith("blob:"));
}

export async function registerByApi(prefix = "e2e") {
  const email = `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.org`;
  const password = "a long enough passphrase";
  const response = await fetch(`${BASE}/v1/crm/customers`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "Browser Tester", email, password }),
  });
  check(response.status === 201, `registration answered ${response.status}`);
  return { email, password };
}

export async function logInByForm(page, { email, password }) {
  await page.goto(`${BASE}/portal/#/login`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("link", { name: "Account" }).waitFor();
}

/** Run a scenario: report its time, close the browser, exit non-zero on failure. */
export async function scenario(name, body) {
  const started = Date.now();
  const browser = await launch();
  try {
    await body(browser);
    console.log(`ok: ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (error) {
    console.error(`FAILED: ${name}: ${error.stack ?? error}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
