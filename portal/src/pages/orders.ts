// The customer's orders (with the API's filters) and one order followed live: its steps,
// progress and log, cancel, and once it succeeded its raster on the map and every file.

import L from "leaflet";

import { api, ApiError, FINAL_STATES, query, type App, type Order, type OrderSummary } from "../api";
import { alertBox, announce, field, formatBytes, formatDateTime, h, uid } from "../dom";
import { addQuicklook, createMap, RectangleTool, type Bbox } from "../map";
import { navigate, type Cleanup } from "../router";
import { session } from "../session";

const STATES = ["RECEIVED", "QUEUED", "RUNNING", "SUCCESS", "FAILED", "INVALID", "CANCELLED"];

function badge(status: string): HTMLElement {
  return h("span", { class: `badge badge-${status.toLowerCase()}` }, status);
}

export async function ordersPage(main: HTMLElement, _: Record<string, string>, params: URLSearchParams): Promise<Cleanup | void> {
  if (!session.loggedIn()) return navigate("/login?next=/orders");
  const apps = await api<App[]>("/v1/apps");
  const statusBoxes = STATES.map((state) => h("input", { type: "checkbox", name: "status", value: state, id: uid("status"), checked: params.getAll("status").includes(state) }) as HTMLInputElement);
  const appSelect = h("select", { id: uid("app"), name: "app_id" }, h("option", { value: "" }, "any app"), apps.map((a) => h("option", { value: a.id, selected: params.get("app_id") === a.id }, a.title))) as HTMLSelectElement;
  const after = h("input", { type: "date", id: uid("after"), name: "created_after", value: params.get("created_after") ?? "" }) as HTMLInputElement;
  const before = h("input", { type: "date", id: uid("before"), name: "created_before", value: params.get("created_before") ?? "" }) as HTMLInputElement;
  let bbox: Bbox | null = params.get("bbox") ? (params.get("bbox")!.split(",").map(Number) as Bbox) : null;
  const bboxNote = h("span", { class: "hint" }, bbox ? `Area: ${bbox.join(", ")}` : "Any area");
  const clearArea = h("button", { type: "button", class: "secondary" }, "Any area");
  const results = h("div", { "aria-live": "polite" });
  const mapBox = h("div", { class: "map-box map-small" });
  const filters = h(
    "form",
    { class: "filters card", "aria-label": "Filter your orders" },
    h("fieldset", { class: "checks" }, h("legend", {}, "State"), statusBoxes.map((box) => h("label", { class: "check", for: box.id }, box, box.value))),
    h("div", { class: "filter-row" }, field("App", appSelect), field("Created on or after", after), field("Created before", before)),
    h("div", { class: "map-toolbar" }, h("span", {}, "Area:"), bboxNote, clearArea),
    mapBox,
    h("button", { type: "submit" }, "Show the orders"),
  ) as HTMLFormElement;
  main.append(h("h1", {}, "Your orders"), filters, results);
  const map = createMap(mapBox, "Map to choose the area of the orders", bbox ?? undefined);
  const tool = new RectangleTool(map, (drawn) => {
    bbox = drawn;
    bboxNote.textContent = `Area: ${drawn.join(", ")}`;
  });
  tool.show(bbox);
  mapBox.previousElementSibling?.append(tool.button);
  clearArea.addEventListener("click", () => {
    bbox = null;
    tool.show(null);
    bboxNote.textContent = "Any area";
  });

  const filterQuery = (cursor?: string) =>
    query({
      status: statusBoxes.filter((b) => b.checked).map((b) => b.value),
      app_id: appSelect.value || undefined,
      created_after: after.value ? `${after.value}T00:00:00Z` : undefined,
      created_before: before.value ? `${before.value}T00:00:00Z` : undefined,
      bbox: bbox ? bbox.join(",") : undefined,
      cursor,
      limit: 20,
    });

  const tbody = h("tbody");
  const load = async (cursor?: string) => {
    try {
      const page = await api<{ items: OrderSummary[]; next_cursor: string | null }>(`/v1/orders${filterQuery(cursor)}`);
      if (!cursor) {
        tbody.replaceChildren();
        results.replaceChildren(
          h("div", { class: "table-scroll", tabindex: 0, role: "region", "aria-label": "Orders" },
            h("table", { class: "orders-table" },
              h("caption", {}, "Orders, newest first"),
              h("thead", {}, h("tr", {}, ["Order", "App", "State", "Dates", "Created", "Step"].map((t) => h("th", { scope: "col" }, t)))),
              tbody,
            ),
          ),
        );
      }
      for (const order of page.items) {
        tbody.append(
          h("tr", {},
            h("td", {}, h("a", { href: `#/orders/${order.order_id}` }, order.order_id.slice(0, 8))),
            h("td", {}, order.app_id),
            h("td", {}, badge(order.status)),
            h("td", {}, order.start_date === order.end_date ? order.start_date : `${order.start_date} – ${order.end_date}`),
            h("td", {}, formatDateTime(order.created_at)),
            h("td", {}, order.message ?? ""),
          ),
        );
      }
      results.querySelector(".more")?.remove();
      if (!page.items.length && !cursor) results.replaceChildren(alertBox("No orders match.", "info"));
      if (page.next_cursor) {
        const more = h("button", { type: "button", class: "secondary more" }, "More orders");
        more.addEventListener("click", () => void load(page.next_cursor!));
        results.append(more);
      }
      announce(`${tbody.children.length} orders shown`);
    } catch (error) {
      results.replaceChildren(alertBox((error as Error).message));
    }
  };
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    void load();
  });
  await load();
  return () => map.remove();
}

export async function orderDetailPage(main: HTMLElement, params: Record<string, string>): Promise<Cleanup | void> {
  if (!session.loggedIn()) return navigate(`/login?next=/orders/${params.id}`);
  let stopped = false;
  let timer: number | undefined;
  let map: L.Map | null = null;
  let logAfter = 0;
  let logAvailable = true;
  const path = `/v1/orders/${encodeURIComponent(params.id)}`;

  const title = h("h1", {}, "Order");
  const state = h("p", { class: "order-state", role: "status", "aria-live": "polite" });
  const progress = h("progress", { max: 100, value: 0, id: uid("progress") }) as HTMLProgressElement;
  const progressLabel = h("label", { for: progress.id }, "Progress");
  const cancel = h("button", { type: "button", class: "danger" }, "Cancel the order") as HTMLButtonElement;
  const facts = h("dl", { class: "facts" });
  const steps = h("ol", { class: "steps" });
  const logBox = h("pre", { class: "log", tabindex: 0, "aria-label": "The order's log" });
  const logSection = h("section", { class: "card" }, h("h2", {}, "Log"), logBox);
  const resultSection = h("section", { class: "card result", hidden: true });
  const message = h("div");
  main.append(
    title,
    h("section", { class: "card" }, state, h("div", { class: "progress-row" }, progressLabel, progress), cancel, message, facts),
    resultSection,
    h("section", { class: "card" }, h("h2", {}, "Steps"), steps),
    logSection,
  );

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      const order = await api<Order>(`${path}/cancel`, { method: "POST" });
      announce(`The order is ${order.status}`);
      show(order);
    } catch (error) {
      message.replaceChildren(alertBox((error as Error).message));
      cancel.disabled = false;
    }
  });

  const showResult = async (order: Order) => {
    resultSection.hidden = false;
    const mapBox = h("div", { class: "map-box" });
    const assets = h("ul", { class: "assets" });
    resultSection.replaceChildren(h("h2", {}, "Result"), mapBox, assets);
    for (const asset of order.assets) {
      const download = h("button", { type: "button", class: "secondary", "data-role": asset.role }, `Download ${asset.title ?? asset.role}`) as HTMLButtonElement;
      download.addEventListener("click", async () => {
        try {
          const link = await api<{ href: string; filename: string }>(`${path}/assets/${asset.role}/download`);
          const anchor = h("a", { href: link.href, download: link.filename, hidden: true });
          document.body.append(anchor);
          anchor.click();
          anchor.remove();
        } catch (error) {
          message.replaceChildren(alertBox((error as Error).message));
        }
      });
      assets.append(h("li", {}, download, " ", h("span", { class: "hint" }, `${asset.media_type.split(";")[0]}, ${formatBytes(asset.size)}`)));
    }
    map = createMap(mapBox, `Map of the result of order ${order.order_id}`);
    const region = L.geoJSON(order.roi as never, { style: { color: "#b45309", weight: 2, fill: false } }).addTo(map);
    map.fitBounds(region.getBounds(), { padding: [10, 10] });
    const raster = order.assets.find((a) => a.media_type.startsWith("image/tiff"));
    if (raster) {
      try {
        const overlay = await addQuicklook(map, `${path}/assets/${raster.role}/quicklook`, raster.title ?? raster.role);
        resultSection.insertBefore(overlay.controls, assets);
        mapBox.dataset.loaded = "true";
      } catch (error) {
        resultSection.append(alertBox(`The map could not be drawn: ${(error as Error).message}`));
      }
    }
  };

  const show = (order: Order) => {
    title.textContent = `Order ${order.order_id.slice(0, 8)}: ${order.app_id}`;
    state.replaceChildren(badge(order.status), " ", order.message ?? "");
    state.dataset.status = order.status;
    progress.value = order.status === "SUCCESS" ? 100 : order.progress ?? 0;
    progress.textContent = `${progress.value}%`;
    cancel.hidden = FINAL_STATES.includes(order.status);
    facts.replaceChildren(
      h("dt", {}, "Order id"), h("dd", {}, h("code", {}, order.order_id)),
      h("dt", {}, "App"), h("dd", {}, `${order.app_id} ${order.app_version}`),
      h("dt", {}, "Dates"), h("dd", {}, order.start_date === order.end_date ? order.start_date : `${order.start_date} – ${order.end_date}`),
      h("dt", {}, "Parameters"), h("dd", {}, h("code", {}, JSON.stringify(order.params))),
      h("dt", {}, "Attempt"), h("dd", {}, String(order.attempt)),
    );
    steps.replaceChildren(
      ...order.history.map((event) =>
        h("li", {}, h("time", { datetime: event.at }, formatDateTime(event.at)), " ", badge(event.status), " ", event.message ?? "", event.progress !== null ? ` (${event.progress}%)` : ""),
      ),
    );
  };

  const readLog = async (): Promise<boolean> => {
    if (!logAvailable) return true;
    try {
      const page = await api<{ records: { seq: number; message: string; time: string; level: string }[]; next_after: number; finished: boolean }>(
        `${path}/logs${query({ after: logAfter })}`,
      );
      for (const record of page.records) {
        const at = new Date(record.time).toLocaleTimeString();
        logBox.append(`${at} ${record.level.padEnd(7)} ${record.message}\n`);
      }
      if (page.records.length) logBox.scrollTop = logBox.scrollHeight;
      logAfter = page.next_after ?? logAfter;
      return page.finished;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404 && error.error === "NotFound") {
        logAvailable = false; // this API has no per-order log: the steps say what happened
        logSection.hidden = true;
      }
    }
    return false;
  };

  // The log's last lines may be saved a moment after the final state: read until it is complete.
  const finishLog = async (rounds: number) => {
    if (stopped || rounds <= 0 || (await readLog())) return;
    timer = window.setTimeout(() => void finishLog(rounds - 1), 1000);
  };

  const poll = async () => {
    if (stopped) return;
    try {
      const order = await api<Order>(path);
      show(order);
      await readLog();
      if (FINAL_STATES.includes(order.status)) {
        announce(`The order ended ${order.status}`);
        if (order.status === "SUCCESS") await showResult(order);
        await finishLog(10);
        return;
      }
    } catch (error) {
      message.replaceChildren(alertBox((error as Error).message));
      if (error instanceof ApiError && error.status === 404) return;
    }
    if (!stopped) timer = window.setTimeout(() => void poll(), 1000);
  };
  await poll();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    map?.remove();
  };
}
