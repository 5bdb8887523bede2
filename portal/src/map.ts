// Leaflet maps: the configured tiles (OpenStreetMap's by default) or, where they fail or are
// off, CURE's own light basemap; quicklook overlays with a legend and an opacity control; a
// rectangle tool for regions.

import L from "leaflet";
import type { FeatureCollection } from "geojson";

import { api, imageUrl, type Quicklook } from "./api";
import { field, formatNumber, h, uid } from "./dom";

export interface PortalConfig {
  tile_url: string | null;
  tile_attribution: string | null;
  tile_attribution_url: string | null;
  basemap_url: string;
  basemap_attribution: string;
  basemap_attribution_url: string;
  client_id: string;
}

let config: PortalConfig = {
  tile_url: null,
  tile_attribution: null,
  tile_attribution_url: null,
  basemap_url: "/v1/portal/basemap",
  basemap_attribution: "Shorelines, lakes, rivers and borders: GSHHG and WDBII (LGPL-3.0)",
  basemap_attribution_url: "https://www.soest.hawaii.edu/pwessel/gshhg/",
  client_id: "cure-portal",
};

export function configureMaps(loaded: PortalConfig): void {
  config = loaded;
}

export type Bbox = [number, number, number, number]; // west, south, east, north

export function boundsOf(bbox: Bbox): L.LatLngBounds {
  return L.latLngBounds([bbox[1], bbox[0]], [bbox[3], bbox[2]]);
}

export function bboxOf(bounds: L.LatLngBounds): Bbox {
  const round = (value: number) => Math.round(value * 1e5) / 1e5;
  return [
    round(bounds.getWest()),
    round(bounds.getSouth()),
    round(bounds.getEast()),
    round(bounds.getNorth()),
  ];
}

/** A credit for the map's corner: the text, as a link when there is a page to link to. */
function credit(text: string, url: string | null): string {
  const element = url ? h("a", { href: url, rel: "noreferrer" }, text) : h("span", {}, text);
  return element.outerHTML; // Leaflet takes HTML: built from text, so nothing in it is markup
}

// Once the tiles failed on this page, later maps draw CURE's basemap at once.
let tilesFailed = false;
const TILE_FAILURES = 3; // tile errors in a row that mean the tile server does not answer
const TILE_WAIT_MS = 8000; // no tile loaded in this long: the server is unreachable or too slow

/** The configured tiles; ``onFailure`` once they fail (errors in a row, or none loaded in time). */
function addTiles(map: L.Map, container: HTMLElement, url: string, onFailure: () => void): void {
  const tiles = L.tileLayer(url, {
    attribution: credit(config.tile_attribution ?? "", config.tile_attribution_url),
    maxZoom: 19,
    crossOrigin: false,
    // The page sends no referrer; tile servers (OpenStreetMap's usage policy) want to know the
    // site, so the tiles send its origin, never a page's address.
    referrerPolicy: "strict-origin-when-cross-origin",
  });
  let loaded = 0;
  let failures = 0;
  const fail = () => {
    window.clearTimeout(timer);
    if (!map.hasLayer(tiles)) return;
    tilesFailed = true;
    map.removeLayer(tiles);
    onFailure();
  };
  const timer = window.setTimeout(() => loaded === 0 && fail(), TILE_WAIT_MS);
  map.on("unload", () => window.clearTimeout(timer));
  tiles.on("tileload", () => {
    loaded += 1;
    failures = 0;
    container.classList.remove("map-plain");
    container.dataset.basemap = "tiles";
  });
  tiles.on("tileerror", () => {
    failures += 1;
    if (failures >= TILE_FAILURES) fail();
  });
  tiles.addTo(map);
}

const BASEMAP_STYLES: Record<string, L.PathOptions> = {
  sea: { className: "basemap-sea", stroke: false, fillColor: "#c8dbe9", fillOpacity: 1 },
  lake: { className: "basemap-lake", stroke: false, fillColor: "#c8dbe9", fillOpacity: 1 },
  land: { className: "basemap-land", stroke: false, fillColor: "#f0ede5", fillOpacity: 1 },
  river: { className: "basemap-river", color: "#8fb6d3", weight: 1.4, fill: false },
  border: { className: "basemap-border", color: "#9d8fae", weight: 1.2, dashArray: "5 4", fill: false },
};

/** CURE's own basemap (/v1/portal/basemap): the box around the view, fetched again when the
 * view leaves it or zooms well into it. Boxes lie on a grid so that maps share them. */
class Basemap {
  private readonly layer: L.GeoJSON;
  private shown: L.LatLngBounds | null = null;
  private shownSpan = 0;
  private pending: AbortController | null = null;

  constructor(
    private readonly map: L.Map,
    private readonly container: HTMLElement,
  ) {
    const pane = map.getPane("basemap") ?? map.createPane("basemap");
    pane.style.zIndex = "150"; // under the tiles' pane (200) and every overlay
    pane.style.pointerEvents = "none";
    this.layer = L.geoJSON(undefined, {
      pane: "basemap",
      interactive: false,
      attribution: credit(config.basemap_attribution, config.basemap_attribution_url),
      style: (feature) => BASEMAP_STYLES[String(feature?.properties?.kind)] ?? {},
    }).addTo(map);
    map.on("moveend", () => void this.refresh());
    map.on("unload", () => this.pending?.abort());
    map.whenReady(() => void this.refresh());
  }

  private async refresh(): Promise<void> {
    const view = clampToWorld(this.map.getBounds());
    const span = spanOf(view);
    if (this.shown?.contains(view) && this.shownSpan <= span * 4) return;
    const box = gridBox(clampToWorld(view.pad(0.5)));
    this.pending?.abort();
    const pending = new AbortController();
    this.pending = pending;
    try {
      const response = await fetch(`${config.basemap_url}?bbox=${box.join(",")}`, {
        signal: pending.signal,
        credentials: "same-origin",
      });
      if (!response.ok) return; // the plain background stays
      const data = (await response.json()) as FeatureCollection;
      if (pending.signal.aborted) return;
      this.layer.clearLayers();
      this.layer.addData(data);
      this.shown = boundsOf(box);
      this.shownSpan = spanOf(this.shown);
      this.container.classList.remove("map-plain");
      this.container.dataset.basemap = "cure";
    } catch {
      /* aborted by a newer view, or the API is unreachable: the plain background stays */
    }
  }
}

function spanOf(bounds: L.LatLngBounds): number {
  return Math.max(bounds.getEast() - bounds.getWest(), bounds.getNorth() - bounds.getSouth());
}

function clampToWorld(bounds: L.LatLngBounds): L.LatLngBounds {
  const clamp = (value: number, limit: number) => Math.min(limit, Math.max(-limit, value));
  return L.latLngBounds(
    [clamp(bounds.getSouth(), 90), clamp(bounds.getWest(), 180)],
    [clamp(bounds.getNorth(), 90), clamp(bounds.getEast(), 180)],
  );
}

/** The bounds grown to a grid of a power of two degrees, about a quarter of their span. */
function gridBox(bounds: L.LatLngBounds): Bbox {
  const step = 2 ** Math.floor(Math.log2(Math.max(spanOf(bounds), 1e-4) / 4));
  const down = (value: number, limit: number) => Math.max(-limit, Math.floor(value / step) * step);
  const up = (value: number, limit: number) => Math.min(limit, Math.ceil(value / step) * step);
  const box: Bbox = [
    down(bounds.getWest(), 180),
    down(bounds.getSouth(), 90),
    up(bounds.getEast(), 180),
    up(bounds.getNorth(), 90),
  ];
  return box.map((value) => Number(value.toFixed(6))) as Bbox;
}

/** A map in ``container``: on the configured tiles, or CURE's own basemap where they fail or are
 * off (a plain background until it arrives). */
export function createMap(container: HTMLElement, label: string, bbox?: Bbox): L.Map {
  container.classList.add("map", "map-plain");
  container.setAttribute("role", "region");
  container.setAttribute("aria-label", label);
  // No zoom animation: a page may remove its maps at any moment (Leaflet then throws mid-animation).
  const map = L.map(container, { zoomSnap: 0.1, zoomAnimation: false, attributionControl: true });
  map.attributionControl.setPrefix(false);
  const drawBasemap = () => new Basemap(map, container);
  if (config.tile_url && !tilesFailed) addTiles(map, container, config.tile_url, drawBasemap);
  else drawBasemap();
  map.fitBounds(bbox ? boundsOf(bbox) : L.latLngBounds([35, -10], [60, 25]));
  return map;
}

/** The colormap as a CSS gradient, with the range's ends and middle written under it. */
export function legend(quicklook: Quicklook): HTMLElement {
  const bar = h("div", { class: "legend-bar", role: "img" });
  const stops = quicklook.colormap.stops.map((s) => `${s.color} ${Math.round(s.at * 100)}%`);
  bar.style.backgroundImage = `linear-gradient(to right, ${stops.join(", ")})`;
  const [low, high] = quicklook.range;
  const unit = quicklook.unit ? ` ${quicklook.unit}` : "";
  bar.setAttribute(
    "aria-label",
    `Colour scale of ${quicklook.label}: from ${formatNumber(low)}${unit} to ${formatNumber(high)}${unit}`,
  );
  return h(
    "figure",
    { class: "legend" },
    h("figcaption", {}, `${quicklook.label}${quicklook.unit ? ` (${quicklook.unit})` : ""}`),
    bar,
    h(
      "div",
      { class: "legend-scale", "aria-hidden": "true" },
      h("span", {}, formatNumber(low)),
      h("span", {}, formatNumber((low + high) / 2)),
      h("span", {}, formatNumber(high)),
    ),
  );
}

export interface Overlay {
  layer: L.ImageOverlay;
  controls: HTMLElement;
  quicklook: Quicklook;
}

/** Fetch a quicklook (description and image, with the token) and lay it over the map, with
 * its legend and an opacity slider in ``controls``. */
export async function addQuicklook(map: L.Map, path: string, title: string): Promise<Overlay> {
  const response = await api<Quicklook>(path);
  const url = await imageUrl(response.png);
  const [west, south, east, north] = response.bounds;
  const layer = L.imageOverlay(url, L.latLngBounds([south, west], [north, east]), {
    opacity: 0.8,
    alt: `${title}: ${response.label}`,
    className: "quicklook",
  }).addTo(map);
  map.fitBounds(layer.getBounds(), { padding: [8, 8] });
  const slider = h("input", {
    type: "range",
    min: 0,
    max: 100,
    step: 5,
    value: 80,
    id: uid("opacity"),
  }) as HTMLInputElement;
  slider.addEventListener("input", () => layer.setOpacity(Number(slider.value) / 100));
  const controls = h(
    "div",
    { class: "map-controls" },
    legend(response),
    field(`Opacity of the ${response.label} layer`, slider),
  );
  return { layer, controls, quicklook: response };
}

/** A tool to draw a rectangle with the mouse or a finger; ``onDrawn`` gets its bbox. */
export class RectangleTool {
  private rectangle: L.Rectangle | null = null;
  private start: L.LatLng | null = null;
  private active = false;
  readonly button: HTMLButtonElement;

  constructor(
    private readonly map: L.Map,
    private readonly onDrawn: (bbox: Bbox) => void,
  ) {
    this.button = h(
      "button",
      { type: "button", class: "secondary", "aria-pressed": "false" },
      "Draw a rectangle",
    ) as HTMLButtonElement;
    this.button.addEventListener("click", () => (this.active ? this.stop() : this.begin()));
    const container = map.getContainer();
    container.addEventListener("pointerdown", (event) => this.down(event));
    container.addEventListener("pointermove", (event) => this.move(event));
    container.addEventListener("pointerup", (event) => this.up(event));
  }

  show(bbox: Bbox | null): void {
    if (this.rectangle) this.map.removeLayer(this.rectangle);
    this.rectangle = bbox
      ? L.rectangle(boundsOf(bbox), { color: "#b45309", weight: 2, fillOpacity: 0.15 }).addTo(this.map)
      : null;
  }

  private begin(): void {
    this.active = true;
    this.map.dragging.disable();
    this.map.getContainer().classList.add("drawing");
    this.button.setAttribute("aria-pressed", "true");
    this.button.textContent = "Drag on the map… (click to stop)";
  }

  private stop(): void {
    this.active = false;
    this.start = null;
    this.map.dragging.enable();
    this.map.getContainer().classList.remove("drawing");
    this.button.setAttribute("aria-pressed", "false");
    this.button.textContent = "Draw a rectangle";
  }

  private down(event: PointerEvent): void {
    if (!this.active || event.button !== 0) return;
    if ((event.target as Element).closest(".leaflet-control")) return;
    event.preventDefault();
    this.start = this.map.mouseEventToLatLng(event);
    this.map.getContainer().setPointerCapture(event.pointerId);
  }

  private move(event: PointerEvent): void {
    if (!this.active || !this.start) return;
    const bounds = L.latLngBounds(this.start, this.map.mouseEventToLatLng(event));
    if (this.rectangle) this.rectangle.setBounds(bounds);
    else this.rectangle = L.rectangle(bounds, { color: "#b45309", weight: 2, fillOpacity: 0.15 }).addTo(this.map);
  }

  private up(event: PointerEvent): void {
    if (!this.active || !this.start) return;
    const bounds = L.latLngBounds(this.start, this.map.mouseEventToLatLng(event));
    this.stop();
    if (bounds.getNorth() - bounds.getSouth() > 1e-4 && bounds.getEast() - bounds.getWest() > 1e-4) {
      const bbox = bboxOf(bounds);
      this.show(bbox);
      this.onDrawn(bbox);
    }
  }
}
