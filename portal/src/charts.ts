// Charts of a product's numbers (Chart.js, only the parts used). Each canvas says what it shows
// to screen readers, and holds the numbers as text for those that read fallback content.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
} from "chart.js";

import type { Quicklook } from "./api";
import { formatNumber, h } from "./dom";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);
Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
Chart.defaults.color = "#1f2933";

const BAR = "#0b5394";
const PALETTE = ["#0b5394", "#b45309", "#38761d", "#741b47"];

function canvasFor(label: string, text: string): HTMLCanvasElement {
  const canvas = h("canvas", { role: "img", "aria-label": label }, text) as HTMLCanvasElement;
  return canvas;
}

export function histogramChart(quicklook: Quicklook, caption: string): HTMLElement {
  const { edges, counts } = quicklook.histogram;
  const labels = counts.map((_, i) => formatNumber((edges[i] + edges[i + 1]) / 2));
  const unit = quicklook.unit ? ` (${quicklook.unit})` : "";
  const summary = counts.map((count, i) => `${labels[i]}: ${count}`).join(", ");
  const canvas = canvasFor(`Histogram of ${quicklook.label}${unit}`, `Pixels per value: ${summary}`);
  const figure = h("figure", { class: "chart" }, h("div", { class: "chart-box" }, canvas), h("figcaption", {}, caption));
  new Chart(canvas, {
    type: "bar",
    data: { labels, datasets: [{ label: "pixels", data: counts, backgroundColor: BAR, barPercentage: 1, categoryPercentage: 0.95 }] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: {
        x: { title: { display: true, text: `${quicklook.label}${unit}` }, ticks: { maxRotation: 0, autoSkipPadding: 8 } },
        y: { title: { display: true, text: "pixels" }, beginAtZero: true },
      },
    },
  });
  return figure;
}

const FIELD_NAMES: Record<string, string> = {
  mean_urban_lst_k: "Urban mean LST (K)",
  mean_rural_lst_k: "Rural mean LST (K)",
  mean_urban_intensity_k: "Mean urban intensity (K)",
  max_urban_intensity_k: "Max urban intensity (K)",
  mean_ndvi: "Mean NDVI",
  green_share: "Share of green pixels",
  urban_pixels: "Urban pixels",
  rural_pixels: "Rural pixels",
  valid_pixels: "Valid pixels",
  green_pixels: "Green pixels",
};

export function fieldName(name: string): string {
  return FIELD_NAMES[name] ?? name.replace(/_/g, " ");
}

export function statisticsChart(statistics: Record<string, unknown>, fields: string[], caption: string): HTMLElement {
  const values = fields.map((name) => (typeof statistics[name] === "number" ? (statistics[name] as number) : 0));
  const labels = fields.map(fieldName);
  const summary = labels.map((label, i) => `${label}: ${formatNumber(values[i])}`).join(", ");
  const canvas = canvasFor(caption, summary);
  const figure = h("figure", { class: "chart" }, h("div", { class: "chart-box" }, canvas), h("figcaption", {}, caption));
  const low = Math.min(...values);
  const high = Math.max(...values);
  // Temperatures in kelvin all sit near 300: start the axis near the values so they differ.
  const suggestedMin = low > 100 ? Math.floor(low - (high - low) - 1) : Math.min(0, low);
  new Chart(canvas, {
    type: "bar",
    data: { labels, datasets: [{ label: caption, data: values, backgroundColor: fields.map((_, i) => PALETTE[i % PALETTE.length]) }] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: { y: { suggestedMin, beginAtZero: low <= 100 } },
    },
  });
  return figure;
}
