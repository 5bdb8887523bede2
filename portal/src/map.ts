// Leaflet maps: a base layer when one is configured and reachable, else a plain background;
// quicklook overlays with a legend and an opacity control; a rectangle tool for regions.

import L from "leaflet";

import { api, imageUrl, type Quicklook } from "./api";
import { field, formatNumber, h, uid } from "./dom";

export interface PortalConfig {
  tile_url: string | null;
  tile_attribution: string | null;
  client_id: string;
}

let config: PortalConfig = { tile_url: null, tile_attribution: null, client_id: "cure-portal" };

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

/** A map in ``container``, on the configured base layer or a plain background. */
export function createMap(container: HTMLElement, label: string, bbox?: Bbox): L.Map {
  container.classList.add("map", "map-plain");
  container.setAttribute("role", "region");
  container.setAttribute("aria-label", label);
  // No zoom animation: a page may remove its maps at any moment (Leaflet then throws mid-animation).
  const map = L.map(container, { zoomSnap: 0.1, zoomAnimation: false, attributionControl: true });
  map.attributionControl.setPrefix(false);
  if (config.tile_url) {
    const tiles = L.tileLayer(config.tile_url, {
      attribution: config.tile_attribution ?? "",
      maxZoom: 18,
      crossOrigin: false,
    });
    let failures = 0;
    tiles.on("tileload", () => container.classList.remove("map-plain"));
    tiles.on("tileerror", () => {
      failures += 1;
      if (failures >= 4) {
        map.removeLayer(tiles); // unreachable: a plain background rather than grey holes
        container.classList.add("map-plain");
      }
    });
    tiles.addTo(map);
  }
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
