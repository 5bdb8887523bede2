// A visitor opens the portal: the storylines are listed and the first one opens with its map
// (the demonstration product's raster, legend, opacity) and charts drawn; the layout holds at
// desktop and phone widths; the catalogue draws a product found on the map.

import {
  BASE, DESKTOP, PHONE, canvasDrawn, check, checkLayout, noProblems, open, overlayLoaded, scenario, screenshot, step,
} from "./lib.mjs";

await scenario("storyline", async (browser) => {
  const { page, problems } = await open(browser, DESKTOP);
  await page.goto(`${BASE}/portal/`);
  const article = page.locator("article.storyline[data-ready=true]");
  await article.waitFor({ timeout: 30000 });
  step("the landing page lists the storylines and opens the first");
  const links = page.getByRole("navigation", { name: "Storylines" }).getByRole("link");
  check((await links.count()) >= 3, "at least three storylines are listed");
  check((await links.first().getAttribute("aria-current")) === "page", "the first storyline is open");
  const title = await page.locator("article h1").textContent();
  check(title.length > 10, "the storyline has a title");

  step("its map shows the product's raster with a legend and an opacity control");
  const overlay = page.locator(".map-box[data-loaded=true] img.leaflet-image-layer.quicklook").first();
  await overlay.waitFor();
  check(await overlayLoaded(overlay), "the quicklook image is loaded on the map");
  check(await page.locator(".legend-bar").first().isVisible(), "the legend is shown");
  const slider = page.getByLabel(/Opacity of the/).first();
  await slider.focus();
  await page.keyboard.press("Home"); // keyboard: the slider to 0
  const opacity = await overlay.evaluate((img) => getComputedStyle(img).opacity);
  check(Number(opacity) === 0, `the opacity control works from the keyboard (opacity ${opacity})`);
  await slider.fill("80");

  step("its charts are drawn and its table filled");
  const charts = page.locator("figure.chart canvas");
  check((await charts.count()) >= 2, "a histogram and a statistics chart");
  for (let i = 0; i < (await charts.count()); i += 1) check(await canvasDrawn(charts.nth(i)), `chart ${i} is drawn`);
  check((await page.locator("article table tbody tr").count()) > 4, "the statistics table has rows");
  await checkLayout(page, "storyline at desktop width");
  await screenshot(page, "storyline-desktop");
  await screenshot(page, "storyline-desktop-full", true);

  step("another storyline combines two apps: two maps");
  const second = await links.nth(1).getAttribute("href");
  await links.nth(1).click();
  // The new page's own navigation marks it current (the old page's article was ready too).
  const nav = page.getByRole("navigation", { name: "Storylines" });
  await nav.locator(`a[aria-current="page"][href="${second}"]`).waitFor();
  await page.locator("article.storyline[data-ready=true]").waitFor();
  check((await page.locator(".map-box[data-loaded=true]").count()) === 2, "both maps drawn");

  step("the catalogue finds products over an area and draws one");
  await page.getByRole("link", { name: "Catalogue" }).click();
  await page.getByLabel("Collection").selectOption({ value: "cure-suhi" });
  await page.getByRole("button", { name: "Search" }).click();
  const draw = page.getByRole("button", { name: /^Draw suhi-/ }).first();
  await draw.click();
  await page.locator("img.leaflet-image-layer.quicklook").waitFor();
  check(await overlayLoaded(page.locator("img.leaflet-image-layer.quicklook")), "the product is drawn");
  await checkLayout(page, "catalogue at desktop width");
  await screenshot(page, "catalogue-desktop");
  noProblems(problems);

  step("at a phone's width: one column, the menu behind a button, nothing wider than the screen");
  const phone = await open(browser, PHONE);
  await phone.page.goto(`${BASE}/portal/`);
  await phone.page.locator("article.storyline[data-ready=true]").waitFor({ timeout: 30000 });
  await checkLayout(phone.page, "storyline at phone width");
  const menu = phone.page.getByRole("button", { name: "Menu" });
  check(await menu.isVisible(), "the menu button is shown");
  check(!(await phone.page.getByRole("link", { name: "Catalogue" }).isVisible()), "the menu starts closed");
  await menu.focus();
  await phone.page.keyboard.press("Enter");
  check(await phone.page.getByRole("link", { name: "Catalogue" }).isVisible(), "Enter opens the menu");
  await phone.page.keyboard.press("Enter");
  check(await overlayLoaded(phone.page.locator("img.leaflet-image-layer.quicklook").first()), "the map is drawn");
  await screenshot(phone.page, "storyline-phone");
  await screenshot(phone.page, "storyline-phone-full", true);

  step("the skip link takes the keyboard to the content");
  await phone.page.reload();
  await phone.page.locator("article.storyline[data-ready=true]").waitFor({ timeout: 30000 });
  await phone.page.keyboard.press("Tab");
  check(await phone.page.evaluate(() => document.activeElement?.classList.contains("skip-link")), "the skip link comes first");
  await phone.page.keyboard.press("Enter");
  check(await phone.page.evaluate(() => document.activeElement?.id === "main"), "focus is on the content");
  check(phone.page.url().includes("/portal/"), "the route stays");
  noProblems(phone.problems);
});
