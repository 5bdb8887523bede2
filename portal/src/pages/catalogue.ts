// Search the catalogue on the map, by area and time; a found raster is drawn from its quicklook.

import type { Feature, Geometry } from "geojson";
import L from "leaflet";

import { api, query } from "../api";
import { alertBox, announce, field, formatDateTime, h, uid } from "../dom";
import { addQuicklook, createMap, RectangleTool, type Bbox, type Overlay } from "../map";
import type { Cleanup } from "../router";

interface ProductFeature extends Feature<Geometry> {
  properties: {
    collection: string;
    identifier: string;
    productType: string;
    start: string;
    end: string;
    assets: Record<string, { href: string; type: string; title?: string }>;
    [key: string]: unknown;
  };
}

interface SearchPage {
  totalResults: number;
  features: ProductFeature[];
}

export async function cataloguePage(main: HTMLElement): Promise<Cleanup> {
  const collections = await api<{ collections: { id: string; product_count: number }[] }>("/v1/ccsi/collections");
  let bbox: Bbox | null = null;
  let overlay: Overlay | null = null;
  const collection = h("select", { id: uid("collection") }, h("option", { value: "" }, "every collection"), collections.collections.map((c) => h("option", { value: c.id }, `${c.id} (${c.product_count})`))) as HTMLSelectElement;
  const start = h("input", { type: "date", id: uid("start") }) as HTMLInputElement;
  const end = h("input", { type: "date", id: uid("end") }) as HTMLInputElement;
  const areaNote = h("span", { class: "hint" }, "Any area");
  const results = h("div", { "aria-live": "polite" });
  const mapBox = h("div", { class: "map-box" });
  const overlaySlot = h("div");
  const search = h(
    "form",
    { class: "filters card", "aria-label": "Search the catalogue" },
    h("div", { class: "filter-row" }, field("Collection", collection), field("From", start), field("To", end)),
    h("div", { class: "map-toolbar" }, h("span", {}, "Area:"), areaNote),
    mapBox,
    overlaySlot,
    h("button", { type: "submit" }, "Search"),
  ) as HTMLFormElement;
  main.append(h("h1", {}, "Catalogue"), h("p", {}, "Input products and CURE's products: the public ones, and your own when you are logged in."), search, results);
  const map = createMap(mapBox, "Map of the catalogue search");
  const footprints = L.featureGroup().addTo(map);
  const tool = new RectangleTool(map, (drawn) => {
    bbox = drawn;
    areaNote.textContent = `Area: ${drawn.join(", ")}`;
  });
  mapBox.previousElementSibling?.append(tool.button);

  const showProduct = async (feature: ProductFeature) => {
    const props = feature.properties;
    const raster = Object.entries(props.assets).find(([, asset]) => asset.type?.startsWith("image/tiff"));
    if (overlay) map.removeLayer(overlay.layer);
    overlaySlot.replaceChildren();
    overlay = null;
    if (!raster) {
      overlaySlot.append(alertBox("This product has no raster to draw.", "info"));
      return;
    }
    try {
      overlay = await addQuicklook(
        map,
        `/v1/ccsi/${encodeURIComponent(props.collection)}/products/${encodeURIComponent(props.identifier)}/assets/${encodeURIComponent(raster[0])}/quicklook`,
        props.identifier,
      );
      overlaySlot.append(overlay.controls);
      announce(`${props.identifier} drawn on the map`);
    } catch (error) {
      overlaySlot.append(alertBox(`It could not be drawn: ${(error as Error).message}`));
    }
  };

  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const page = await api<SearchPage>(
        `/v1/ccsi/search${query({
          format: "json",
          maxRecords: 50,
          collection: collection.value || undefined,
          bbox: bbox ? bbox.join(",") : undefined,
          timeStart: start.value ? `${start.value}T00:00:00Z` : undefined,
          timeEnd: end.value ? `${end.value}T23:59:59Z` : undefined,
        })}`,
        { headers: { Accept: "application/geo+json" } },
      );
      footprints.clearLayers();
      const list = h("ul", { class: "products" });
      for (const feature of page.features) {
        const props = feature.properties;
        L.geoJSON(feature as never, { style: { color: "#0b5394", weight: 1, fillOpacity: 0.05 } }).addTo(footprints);
        const draw = h("button", { type: "button", class: "secondary" }, "Draw on the map");
        draw.setAttribute("aria-label", `Draw ${props.identifier} on the map`);
        draw.addEventListener("click", () => void showProduct(feature));
        list.append(h("li", {}, h("strong", {}, props.identifier), h("span", { class: "hint" }, ` ${props.collection} · ${props.productType} · ${formatDateTime(props.start)}`), " ", draw));
      }
      if (page.features.length) map.fitBounds(footprints.getBounds(), { padding: [10, 10] });
      results.replaceChildren(h("h2", {}, `${page.totalResults} product(s)`), page.features.length ? list : alertBox("Nothing matches.", "info"));
      announce(`${page.totalResults} products found`);
    } catch (error) {
      results.replaceChildren(alertBox((error as Error).message));
    }
  });
  return () => map.remove();
}
