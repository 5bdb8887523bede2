// Storylines: the landing page lists them and opens the first; each mixes text with maps of
// its demonstration products, charts of their numbers and tables.

import type L from "leaflet";

import { api, type Quicklook } from "../api";
import { fieldName, histogramChart, statisticsChart } from "../charts";
import { alertBox, formatNumber, h } from "../dom";
import { addQuicklook, boundsOf, createMap, type Bbox } from "../map";
import type { Cleanup } from "../router";

interface StorylineSummary {
  slug: string;
  title: string;
  summary: string;
  city: string;
  apps: string[];
}

interface StorylineProduct {
  name: string;
  app: string;
  title: string;
  date: string;
  region: Bbox;
  available: boolean;
  collection: string;
  identifier: string | null;
  quicklook: string | null;
  statistics: Record<string, unknown> | null;
}

interface Block {
  type: "html" | "map" | "chart" | "table";
  html?: string;
  product?: string;
  products?: string[];
  kind?: "histogram" | "statistics";
  fields?: string[];
  caption?: string;
}

interface Storyline extends StorylineSummary {
  blocks: Block[];
  products: Record<string, StorylineProduct>;
}

const NOT_PREPARED =
  "This demonstration product is not in the catalogue yet. An operator makes it with `cure portal prepare` (scripts/run does it at start).";

function tableOf(story: Storyline, names: string[], caption: string | undefined): HTMLElement {
  const products = names.map((name) => story.products[name]);
  const fields = [
    ...new Set(
      products.flatMap((p) =>
        Object.entries(p.statistics ?? {})
          .filter(([, value]) => typeof value === "number")
          .map(([key]) => key),
      ),
    ),
  ];
  return h(
    "div",
    { class: "table-scroll", tabindex: 0, role: "region", "aria-label": caption ?? "Statistics" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Statistic"), products.map((p) => h("th", { scope: "col" }, p.title)))),
      h(
        "tbody",
        {},
        h("tr", {}, h("th", { scope: "row" }, "Date"), products.map((p) => h("td", {}, p.date))),
        h("tr", {}, h("th", { scope: "row" }, "App"), products.map((p) => h("td", {}, p.app))),
        fields.map((key) =>
          h("tr", {}, h("th", { scope: "row" }, fieldName(key)), products.map((p) => h("td", { class: "number" }, formatNumber(p.statistics?.[key], 3)))),
        ),
      ),
    ),
  );
}

export async function storylinePage(main: HTMLElement, params: Record<string, string>): Promise<Cleanup> {
  const maps: L.Map[] = [];
  const cleanup = () => maps.forEach((map) => map.remove());
  const list = await api<StorylineSummary[]>("/v1/portal/storylines", { auth: false });
  if (!list.length) {
    main.append(h("h1", {}, "Storylines"), alertBox("No storylines yet.", "info"));
    return cleanup;
  }
  const slug = params.slug ?? list[0].slug;
  const story = await api<Storyline>(`/v1/portal/storylines/${encodeURIComponent(slug)}`, { auth: false });
  const article = h("article", { class: "storyline" }, h("p", { class: "eyebrow" }, story.city), h("h1", {}, story.title), h("p", { class: "lede" }, story.summary));
  const aside = h(
    "nav",
    { class: "storyline-list", "aria-label": "Storylines" },
    h("h2", {}, "Storylines"),
    h(
      "ul",
      {},
      list.map((item) =>
        h(
          "li",
          {},
          h("a", { href: `#/storylines/${item.slug}`, "aria-current": item.slug === story.slug ? "page" : null }, h("strong", {}, item.title), h("span", {}, `${item.city} · ${item.apps.join(", ")}`)),
        ),
      ),
    ),
  );
  main.append(h("div", { class: "storyline-layout" }, aside, article));

  // One quicklook per product, shared by its map and its histogram.
  const quicklooks = new Map<string, Promise<Quicklook>>();
  const pending: Promise<unknown>[] = [];
  for (const block of story.blocks) {
    if (block.type === "html") {
      const section = h("div", { class: "prose" });
      section.innerHTML = block.html ?? ""; // Markdown from the repository, rendered without raw HTML
      article.append(section);
      continue;
    }
    const product = block.product ? story.products[block.product] : undefined;
    if (block.type === "table") {
      article.append(tableOf(story, block.products ?? [], block.caption));
      continue;
    }
    if (!product || !product.available || !product.quicklook) {
      article.append(alertBox(NOT_PREPARED, "info"));
      continue;
    }
    if (block.type === "map") {
      const container = h("div", { class: "map-box" });
      const figure = h("figure", { class: "map-figure" }, h("h2", { class: "map-title" }, product.title), container, h("figcaption", {}, block.caption ?? ""));
      article.append(figure);
      const map = createMap(container, `Map: ${product.title}`, product.region);
      maps.push(map);
      const done = addQuicklook(map, product.quicklook, product.title).then((overlay) => {
        map.fitBounds(boundsOf(product.region), { padding: [4, 4] });
        figure.insertBefore(overlay.controls, figure.querySelector("figcaption"));
        container.dataset.loaded = "true";
        return overlay.quicklook;
      });
      quicklooks.set(product.name, done);
      pending.push(done.catch((error: Error) => figure.append(alertBox(`The map could not be drawn: ${error.message}`))));
    } else if (block.type === "chart") {
      const slot = h("div", { class: "chart-slot" });
      article.append(slot);
      if (block.kind === "statistics") {
        slot.append(product.statistics ? statisticsChart(product.statistics, block.fields ?? [], block.caption ?? "") : alertBox(NOT_PREPARED, "info"));
      } else {
        const quicklook = quicklooks.get(product.name) ?? api<Quicklook>(product.quicklook);
        quicklooks.set(product.name, quicklook);
        pending.push(
          quicklook
            .then((q) => slot.append(histogramChart(q, block.caption ?? "")))
            .catch((error: Error) => slot.append(alertBox(`The chart could not be drawn: ${error.message}`))),
        );
      }
    }
  }
  await Promise.all(pending);
  article.dataset.ready = "true";
  return cleanup;
}
