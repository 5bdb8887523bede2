// Order an app: its parameters (a form generated from its JSON Schema), a region (drawn, a city
// or a GeoJSON file), a date from a calendar of the days that have input data; then follow it.

import type { Geometry } from "geojson";
import type L from "leaflet";

import { api, query, type App, type Order, type Place } from "../api";
import { Calendar } from "../calendar";
import { alertBox, announce, field, h, uid } from "../dom";
import { boundsOf, createMap, RectangleTool, type Bbox } from "../map";
import { navigate, type Cleanup } from "../router";
import { schemaForm, type SchemaForm } from "../schemaForm";
import { session } from "../session";

function polygonOf(bbox: Bbox): Geometry {
  const [w, s, e, n] = bbox;
  return { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] };
}

/** The one Polygon or MultiPolygon of a GeoJSON file (a geometry, a Feature, or a collection
 * of one feature). */
export function geometryOfGeoJson(text: string): Geometry {
  const data = JSON.parse(text) as { type?: string; geometry?: Geometry; features?: { geometry: Geometry }[] };
  let geometry: Geometry | undefined;
  if (data.type === "FeatureCollection") {
    if (data.features?.length !== 1) throw new Error("the file must hold exactly one feature");
    geometry = data.features[0].geometry;
  } else if (data.type === "Feature") geometry = data.geometry;
  else geometry = data as Geometry;
  if (!geometry || (geometry.type !== "Polygon" && geometry.type !== "MultiPolygon")) {
    throw new Error("the region must be a Polygon or a MultiPolygon");
  }
  return geometry;
}

function bboxOfGeometry(geometry: Geometry): Bbox {
  const points = (geometry.type === "Polygon" ? [geometry.coordinates] : geometry.type === "MultiPolygon" ? geometry.coordinates : []).flat(2) as number[][];
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

export async function orderPage(main: HTMLElement, _: Record<string, string>, params: URLSearchParams): Promise<Cleanup | void> {
  if (!session.loggedIn()) return navigate("/login?next=/order");
  const [apps, places] = await Promise.all([api<App[]>("/v1/apps"), api<Place[]>("/v1/portal/places", { auth: false })]);
  let app = apps.find((a) => a.id === params.get("app")) ?? apps.find((a) => a.id === "suhi") ?? apps[0];
  let region: Geometry | null = null;
  let form: SchemaForm = schemaForm(app.parameters, "Parameters");

  const appSelect = h("select", { id: uid("app"), name: "app" }, apps.map((a) => h("option", { value: a.id, selected: a.id === app.id }, `${a.title} (${a.id})`))) as HTMLSelectElement;
  const description = h("p", { class: "hint app-description" }, app.description);
  const formSlot = h("div", {}, form.element);
  const placeSelect = h("select", { id: uid("place"), name: "place" }, h("option", { value: "" }, "— choose a city —"), places.map((p) => h("option", { value: p.name }, p.name))) as HTMLSelectElement;
  const fileInput = h("input", { type: "file", id: uid("geojson"), accept: ".geojson,.json,application/geo+json,application/json" }) as HTMLInputElement;
  const corners = (["West", "South", "East", "North"] as const).map((name) => h("input", { type: "number", step: "any", name: name.toLowerCase(), id: uid(name.toLowerCase()), inputmode: "decimal" }) as HTMLInputElement);
  const regionNote = h("p", { class: "hint", "aria-live": "polite" }, "No region yet: draw one, choose a city or upload a GeoJSON file.");
  const startInput = h("input", { type: "date", id: uid("start"), name: "start_date", required: true }) as HTMLInputElement;
  const endInput = h("input", { type: "date", id: uid("end"), name: "end_date" }) as HTMLInputElement;
  const calendar = new Calendar((day) => {
    startInput.value = day;
    announce(`Start date ${day}`);
  });
  const status = h("div", { class: "form-status" });
  const submit = h("button", { type: "submit" }, "Submit the order") as HTMLButtonElement;
  const mapBox = h("div", { class: "map-box map-order" });

  const section = (title: string, ...content: (Node | string)[]) => h("fieldset", { class: "card" }, h("legend", {}, title), ...content);
  const orderForm = h(
    "form",
    { class: "order-form", "aria-label": "Order a product" },
    section("App", field("App", appSelect), description, formSlot),
    section(
      "Region",
      h("div", { class: "region-tools" }, field("City", placeSelect), field("Or a GeoJSON file (one Polygon or MultiPolygon)", fileInput)),
      h("div", { class: "map-toolbar" }, h("span", {}, "Or draw on the map:")),
      mapBox,
      h("details", {}, h("summary", {}, "Type the corners (WGS84 degrees)"), h("div", { class: "corners" }, corners.map((input, i) => field(["West", "South", "East", "North"][i], input)))),
      regionNote,
    ),
    section("Dates", h("div", { class: "dates" }, field("Start date", startInput), field("End date (optional, default: the start date)", endInput)), calendar.element),
    status,
    submit,
  ) as HTMLFormElement;
  main.append(h("h1", {}, "Order a product"), orderForm);

  const map: L.Map = createMap(mapBox, "Map for the order's region");
  const tool = new RectangleTool(map, (bbox) => setRegion(polygonOf(bbox), "drawn"));
  mapBox.previousElementSibling?.append(tool.button);

  const refreshDates = async () => {
    const bbox = region ? bboxOfGeometry(region).join(",") : undefined;
    try {
      const found = await api<{ needs_inputs: boolean; dates: string[] }>(`/v1/portal/apps/${app.id}/dates${query({ bbox })}`, { auth: false });
      calendar.setAvailable(found.dates, !found.needs_inputs);
    } catch {
      calendar.setAvailable([], false);
    }
  };

  const setRegion = (geometry: Geometry, how: string) => {
    region = geometry;
    const bbox = bboxOfGeometry(geometry);
    corners.forEach((input, i) => (input.value = String(bbox[i])));
    tool.show(bbox);
    map.fitBounds(boundsOf(bbox), { padding: [20, 20] });
    regionNote.textContent = `Region (${how}): ${bbox.map((v) => v.toFixed(4)).join(", ")}`;
    void refreshDates();
  };

  appSelect.addEventListener("change", () => {
    app = apps.find((a) => a.id === appSelect.value) ?? app;
    description.textContent = app.description;
    form = schemaForm(app.parameters, "Parameters");
    formSlot.replaceChildren(form.element);
    void refreshDates();
  });
  placeSelect.addEventListener("change", () => {
    const place = places.find((p) => p.name === placeSelect.value);
    if (!place) return;
    // The city's middle, a little inside its data, so that every input covers it.
    const [w, s, e, n] = place.bbox;
    const dx = (e - w) * 0.15;
    const dy = (n - s) * 0.15;
    setRegion(polygonOf([w + dx, s + dy, e - dx, n - dy].map((v) => Math.round(v * 1e5) / 1e5) as Bbox), place.name);
  });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files?.[0];
    if (!file) return;
    try {
      setRegion(geometryOfGeoJson(await file.text()), file.name);
    } catch (error) {
      regionNote.textContent = `The file was not used: ${(error as Error).message}`;
    }
  });
  corners.forEach((input) =>
    input.addEventListener("change", () => {
      const values = corners.map((c) => Number(c.value));
      if (corners.every((c) => c.value !== "") && values[0] < values[2] && values[1] < values[3]) {
        setRegion(polygonOf(values as Bbox), "typed");
      }
    }),
  );

  orderForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    const values = form.values();
    if (values === null) return;
    if (!region) {
      status.replaceChildren(alertBox("Choose a region first."));
      return;
    }
    if (!startInput.reportValidity()) return;
    submit.disabled = true;
    try {
      const order = await api<Order>(`/v1/apps/${app.id}/orders`, {
        method: "POST",
        headers: { "Idempotency-Key": crypto.randomUUID() },
        body: { roi: region, start_date: startInput.value, end_date: endInput.value || undefined, params: values },
      });
      announce("Order submitted");
      navigate(`/orders/${order.order_id}`);
    } catch (error) {
      status.replaceChildren(alertBox((error as Error).message));
      announce((error as Error).message);
    } finally {
      submit.disabled = false;
    }
  });

  await refreshDates();
  if (params.get("bbox")) setRegion(polygonOf(params.get("bbox")!.split(",").map(Number) as Bbox), "from the link");
  return () => map.remove();
}
