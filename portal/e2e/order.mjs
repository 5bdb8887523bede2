// A customer registers and logs in, orders SUHI over a demo city by drawing a rectangle on the
// map, picks a day the calendar marks as having data, follows the order live until SUCCESS,
// sees the raster on the map, downloads the GeoTIFF, and finds the order in the orders list.

import { readFileSync } from "node:fs";
import { join } from "node:path";

import {
  BASE, DESKTOP, OUTPUT, PHONE, check, checkLayout, noProblems, open, overlayLoaded, scenario, screenshot, step,
} from "./lib.mjs";

await scenario("order", async (browser) => {
  const { context, page, problems } = await open(browser, DESKTOP);
  await page.goto(`${BASE}/portal/#/register`);
  step("register through the form: logged in at once, the first API client shown once");
  const email = `order-${Date.now()}@example.org`;
  await page.getByLabel("Name").fill("Olga Orderer");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("a long enough passphrase");
  await page.getByRole("button", { name: "Create the account" }).click();
  await page.locator(".client-secret").waitFor();
  check((await page.locator(".client-secret").textContent()).length > 20, "the client secret is shown");
  check(await page.getByRole("link", { name: "Account" }).isVisible(), "logged in");

  step("log out and in again with the login form");
  await page.getByRole("link", { name: "Account" }).click();
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("button", { name: "Log in" }).waitFor();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("a long enough passphrase");
  await page.getByRole("button", { name: "Log in" }).click();

  step("the order form: the app's parameters from its JSON Schema");
  await page.getByRole("heading", { name: "Order a product" }).waitFor();
  await page.getByLabel("App", { exact: true }).selectOption("suhi");
  const urban = page.getByLabel("urban threshold");
  check((await urban.getAttribute("min")) === "0" && (await urban.getAttribute("max")) === "100", "the limits");
  check((await urban.inputValue()) === "50", "the default");

  step("pick the city, then draw a rectangle inside it on the map");
  await page.getByLabel("City").selectOption("Vienna");
  const map = page.locator(".map-order");
  await page.getByRole("button", { name: "Draw a rectangle" }).click();
  await map.scrollIntoViewIfNeeded();
  const box = await map.boundingBox();
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.25);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.75, { steps: 5 });
  await page.mouse.up();
  await page.getByText(/^Region \(drawn\)/).waitFor();
  check((await page.locator("path.leaflet-interactive").count()) >= 1, "the rectangle is on the map");

  step("the calendar marks the days with data; choose 15 July 2024");
  const day = page.locator('.calendar-day[data-date="2024-07-15"]');
  for (let i = 0; i < 24 && !(await day.count()); i += 1) await page.getByRole("button", { name: "Previous month" }).click();
  check(await day.evaluate((b) => b.classList.contains("has-data")), "15 July 2024 has data");
  check(!(await page.locator('.calendar-day[data-date="2024-07-14"]').evaluate((b) => b.classList.contains("has-data"))), "14 July has none");
  await day.click();
  check((await page.getByLabel("Start date", { exact: true }).inputValue()) === "2024-07-15", "the date is filled in");
  await checkLayout(page, "order form at desktop width");
  await screenshot(page, "order-form-desktop", true);
  await page.locator(".map-order").scrollIntoViewIfNeeded();
  await screenshot(page, "order-form-map");

  step("submit and follow the order live until SUCCESS");
  await page.getByRole("button", { name: "Submit the order" }).click();
  await page.waitForURL(/#\/orders\/[0-9a-f-]{36}$/);
  const orderId = page.url().split("/").pop();
  const seen = new Set();
  const state = page.locator(".order-state");
  const deadline = Date.now() + 90000;
  while (Date.now() < deadline) {
    const status = await state.getAttribute("data-status");
    if (status) seen.add(status);
    if (["SUCCESS", "FAILED", "INVALID", "CANCELLED"].includes(status)) break;
    await page.waitForTimeout(200);
  }
  check(seen.has("SUCCESS"), `the order succeeded (seen: ${[...seen].join(", ")}; ${await state.textContent()})`);
  const steps = await page.locator("ol.steps").textContent();
  check(steps.includes("running the app") && steps.includes("registering the product"), "the steps are listed");
  check((await page.locator("progress").getAttribute("value")) === "100", "progress at 100");
  await page.waitForFunction(() => (document.querySelector("pre.log")?.textContent ?? "").length > 0, null, { timeout: 15000 });
  const log = await page.locator("pre.log").textContent();
  check(/INFO|WARNING/.test(log), `the order's log lines are shown: ${log.slice(0, 200)}`);

  step("the raster is on the map, with its legend");
  const overlay = page.locator(".result img.leaflet-image-layer.quicklook");
  await overlay.waitFor();
  check(await overlayLoaded(overlay), "the result's quicklook is drawn");
  // The order page from its title to the end of the result: state, progress, map and files.
  const bottom = await page.locator(".result").evaluate((el) => el.getBoundingClientRect().bottom + window.scrollY);
  await page.screenshot({ path: join(OUTPUT, "order-result-desktop.png"), fullPage: true, clip: { x: 0, y: 0, width: DESKTOP.width, height: Math.ceil(bottom) + 16 } });
  step(`screenshot ${join(OUTPUT, "order-result-desktop.png")}`);

  step("download the GeoTIFF");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: /^Download SUHI intensity/ }).click(),
  ]);
  const saved = join(OUTPUT, `suhi-${orderId}.tif`);
  await download.saveAs(saved);
  const bytes = readFileSync(saved);
  const magic = bytes.subarray(0, 4).toString("hex");
  check(bytes.length > 1000 && ["49492a00", "4d4d002a", "49492b00"].includes(magic), `a GeoTIFF (${bytes.length} bytes, ${magic})`);
  check(download.suggestedFilename().endsWith(".tif"), `named ${download.suggestedFilename()}`);

  step("the orders list finds it with the API's filters");
  await page.getByRole("link", { name: "Orders", exact: true }).click();
  await page.getByLabel("SUCCESS").check();
  await page.getByLabel("App").selectOption("suhi");
  await page.getByRole("button", { name: "Show the orders" }).click();
  await page.getByRole("link", { name: orderId.slice(0, 8) }).waitFor();
  await checkLayout(page, "orders at desktop width");
  await screenshot(page, "orders-desktop");
  noProblems(problems);

  step("the order page at a phone's width (the same login, from the refresh cookie)");
  const phone = await context.newPage();
  await phone.setViewportSize(PHONE);
  await phone.goto(`${BASE}/portal/#/orders/${orderId}`);
  await phone.locator(".result img.leaflet-image-layer.quicklook").waitFor();
  await checkLayout(phone, "order at phone width");
  await screenshot(phone, "order-result-phone", true);
  await phone.goto(`${BASE}/portal/#/order`);
  await phone.getByRole("heading", { name: "Order a product" }).waitFor();
  await checkLayout(phone, "order form at phone width");
  await screenshot(phone, "order-form-phone", true);
});
