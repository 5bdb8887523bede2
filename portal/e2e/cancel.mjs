// A customer orders an app that runs for long (the test probe app, sleeping), with the region
// typed from the keyboard, sees it RUNNING and cancels it.

import {
  BASE, DESKTOP, check, logInByForm, noProblems, open, registerByApi, scenario, screenshot, step,
} from "./lib.mjs";

await scenario("cancel", async (browser) => {
  const { page, problems } = await open(browser, DESKTOP);
  await logInByForm(page, await registerByApi("cancel"));
  await page.goto(`${BASE}/portal/#/order?app=probe`);
  await page.getByRole("heading", { name: "Order a product" }).waitFor();
  step("the probe's parameters from its schema; a region typed corner by corner");
  await page.getByLabel("mode").fill("sleep");
  await page.getByText("Type the corners (WGS84 degrees)").click();
  for (const [corner, value] of [["West", "16.3"], ["South", "48.2"], ["East", "16.4"], ["North", "48.25"]]) {
    await page.getByLabel(corner, { exact: true }).fill(value);
    await page.getByLabel(corner, { exact: true }).press("Tab");
  }
  await page.getByText(/^Region \(typed\)/).waitFor();
  await page.getByText("any day will do").waitFor();
  await page.getByLabel("Start date", { exact: true }).fill("2024-07-15");
  await page.getByRole("button", { name: "Submit the order" }).click();
  await page.waitForURL(/#\/orders\//);

  step("it runs; cancel it");
  const state = page.locator(".order-state");
  await page.locator('.order-state[data-status="RUNNING"]').waitFor({ timeout: 60000 });
  await page.getByRole("button", { name: "Cancel the order" }).click();
  await page.locator('.order-state[data-status="CANCELLED"]').waitFor({ timeout: 30000 });
  check(!(await page.getByRole("button", { name: "Cancel the order" }).isVisible()), "no cancel once final");
  check((await state.textContent()).includes("cancelled on request"), "the reason is shown");
  check((await page.locator("ol.steps").textContent()).includes("CANCELLED"), "the steps end CANCELLED");
  await screenshot(page, "order-cancelled");
  noProblems(problems);
});
