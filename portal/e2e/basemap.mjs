// The maps' base layer. `node e2e/basemap.mjs tiles`: the configured tile server (one the test
// runs on 127.0.0.1) answers, and its tiles are drawn with their attribution. `node
// e2e/basemap.mjs fallback`: the same URL no longer answers (its port is closed), and the maps
// draw CURE's own basemap instead, with its attribution: the catalogue's map of Europe, and a
// storyline's map of Vienna with the Danube.

import { BASE, DESKTOP, check, noProblems, open, scenario, screenshot, step } from "./lib.mjs";

const mode = process.argv[2];
check(mode === "tiles" || mode === "fallback", `mode is tiles or fallback, not ${mode}`);

/** Every request the page makes, and those that failed. */
/** The basemap's shapes of a kind that lie in the view (Leaflet leaves the others empty). */
function drawn(map, kind) {
  return map.locator(`path.basemap-${kind}:not([d="M0 0"])`);
}

function watchRequests(page) {
  const seen = { requested: [], failed: [] };
  page.on("request", (request) => seen.requested.push(request.url()));
  page.on("requestfailed", (request) => seen.failed.push(request.url()));
  return seen;
}

await scenario(`basemap-${mode}`, async (browser) => {
  const { page, problems } = await open(browser, DESKTOP);
  const seen = watchRequests(page);
  const config = await (await fetch(`${BASE}/v1/portal/config`)).json();
  check(config.tile_url?.startsWith("http://127.0.0.1:"), `the tiles are the test's own (${config.tile_url})`);
  const tileOrigin = new URL(config.tile_url.replace(/[{}]/g, "")).origin;
  const basemapRequests = () => seen.requested.filter((url) => url.startsWith(`${BASE}${config.basemap_url}?bbox=`));
  const tileRequests = (list) => list.filter((url) => url.startsWith(`${tileOrigin}/`));

  await page.goto(`${BASE}/portal/#/catalogue`);
  const map = page.locator(".map-box").first();
  const attribution = map.locator(".leaflet-control-attribution");

  if (mode === "tiles") {
    step("the catalogue's map draws the configured tiles");
    await map.locator("img.leaflet-tile-loaded").first().waitFor();
    await page.waitForLoadState("networkidle");
    check((await map.getAttribute("data-basemap")) === "tiles", "the map says it shows tiles");
    const tiles = await map.locator("img.leaflet-tile-loaded").evaluateAll((imgs) =>
      imgs.map((img) => ({ src: img.src, width: img.naturalWidth, referrer: img.referrerPolicy })),
    );
    check(tiles.length >= 4, `several tiles are drawn (${tiles.length})`);
    for (const tile of tiles) {
      check(tile.src.startsWith(`${tileOrigin}/`) && tile.width === 256, `a tile of the configured server: ${tile.src}`);
      check(tile.referrer === "strict-origin-when-cross-origin", "tiles tell the server the site, not the page");
    }
    check(tileRequests(seen.failed).length === 0, `no tile failed: ${tileRequests(seen.failed)}`);
    const credit = attribution.getByRole("link", { name: config.tile_attribution });
    check((await credit.getAttribute("href")) === config.tile_attribution_url, "the tiles' attribution links to its page");
    check(basemapRequests().length === 0, "CURE's basemap is not fetched while the tiles work");
    check((await map.locator("path.basemap-land").count()) === 0, "no basemap drawn under the tiles");
    await screenshot(page, "map-tiles-desktop");
  } else {
    step("the tiles fail: the catalogue's map draws CURE's basemap of Europe");
    await drawn(map, "land").first().waitFor();
    check((await map.getAttribute("data-basemap")) === "cure", "the map says it shows CURE's basemap");
    check(tileRequests(seen.failed).length >= 3, "the configured tiles were asked for, and failed");
    check((await map.locator("img.leaflet-tile").count()) === 0, "the failed tiles are gone");
    check(basemapRequests().length >= 1, "CURE's basemap endpoint was asked");
    for (const kind of ["sea", "land", "border", "river"]) {
      check((await drawn(map, kind).count()) > 0, `Europe's ${kind} is drawn`);
    }
    const credit = attribution.getByRole("link", { name: config.basemap_attribution });
    check((await credit.getAttribute("href")) === config.basemap_attribution_url, "the basemap's attribution is shown");
    check(!(await attribution.textContent()).includes(config.tile_attribution ?? "\u0000"), "the tiles' credit went with them");
    await screenshot(page, "map-fallback-catalogue-desktop");

    step("a storyline's map of Vienna: CURE's basemap at once, with the Danube");
    const failedBefore = tileRequests(seen.failed).length;
    await page.goto(`${BASE}/portal/#/storylines/vienna-heat`);
    await page.locator("article.storyline[data-ready=true]").waitFor({ timeout: 30000 });
    const vienna = page.locator(".map-box[data-loaded=true]").first();
    await drawn(vienna, "river").first().waitFor();
    check((await drawn(vienna, "land").count()) > 0, "Vienna's land is drawn");
    check(tileRequests(seen.failed).length === failedBefore, "known-failed tiles are not asked for again");
    const boxes = basemapRequests().map((url) => new URL(url).searchParams.get("bbox").split(",").map(Number));
    const aroundVienna = ([w, s, e, n]) => w < 16.37 && 16.37 < e && s < 48.21 && 48.21 < n && e - w < 2;
    check(boxes.some(aroundVienna), `the basemap of a box around Vienna was asked: ${JSON.stringify(boxes)}`);
    await screenshot(page, "map-fallback-storyline-desktop");
  }
  noProblems(problems);
});
