// A month calendar that marks the days with input data; choosing a day fills the date field.
// Days are buttons (Tab reaches the grid, arrow keys move between days, Enter chooses).

import { h } from "./dom";

const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

function iso(year: number, month: number, day: number): string {
  return `${year}-${String(month + 1).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

export class Calendar {
  readonly element: HTMLElement;
  private year: number;
  private month: number; // 0-11
  private available = new Set<string>();
  private anyDay = false;
  private selected: string | null = null;
  private readonly grid: HTMLElement;
  private readonly heading: HTMLElement;
  private readonly note: HTMLElement;

  constructor(private readonly onChoose: (day: string) => void) {
    const today = new Date();
    this.year = today.getFullYear();
    this.month = today.getMonth();
    this.heading = h("h3", { class: "calendar-month", "aria-live": "polite" });
    this.grid = h("div", { class: "calendar-grid" });
    this.note = h("p", { class: "hint" });
    const previous = h("button", { type: "button", class: "secondary", "aria-label": "Previous month" }, "‹");
    const next = h("button", { type: "button", class: "secondary", "aria-label": "Next month" }, "›");
    previous.addEventListener("click", () => this.shift(-1));
    next.addEventListener("click", () => this.shift(1));
    this.element = h(
      "div",
      { class: "calendar", role: "group", "aria-label": "Calendar of days with input data" },
      h("div", { class: "calendar-head" }, previous, this.heading, next),
      this.grid,
      h("p", { class: "hint" }, h("span", { class: "calendar-key", "aria-hidden": "true" }), " days with input data over the region"),
      this.note,
    );
    this.grid.addEventListener("keydown", (event) => this.key(event));
    this.draw();
  }

  /** The days that have data (or any day, for apps without inputs); shows the latest's month. */
  setAvailable(days: string[], anyDay: boolean): void {
    this.available = new Set(days);
    this.anyDay = anyDay;
    const latest = days[days.length - 1];
    if (latest && !this.selected) {
      this.year = Number(latest.slice(0, 4));
      this.month = Number(latest.slice(5, 7)) - 1;
    }
    this.note.textContent = anyDay
      ? "This app reads no input data: any day will do."
      : days.length
        ? `${days.length} day(s) with data; the latest is ${latest}.`
        : "No input data over this region yet: pick another region.";
    this.draw();
  }

  select(day: string | null): void {
    this.selected = day;
    if (day) {
      this.year = Number(day.slice(0, 4));
      this.month = Number(day.slice(5, 7)) - 1;
    }
    this.draw();
  }

  private shift(months: number): void {
    const moved = new Date(this.year, this.month + months, 1);
    this.year = moved.getFullYear();
    this.month = moved.getMonth();
    this.draw();
  }

  private draw(): void {
    const first = new Date(this.year, this.month, 1);
    this.heading.textContent = first.toLocaleDateString("en", { month: "long", year: "numeric" });
    const offset = (first.getDay() + 6) % 7; // weeks start on Monday
    const days = new Date(this.year, this.month + 1, 0).getDate();
    const cells: HTMLElement[] = WEEKDAYS.map((d) => h("span", { class: "calendar-weekday", "aria-hidden": "true" }, d));
    for (let i = 0; i < offset; i += 1) cells.push(h("span", { "aria-hidden": "true" }));
    for (let day = 1; day <= days; day += 1) {
      const date = iso(this.year, this.month, day);
      const has = this.anyDay || this.available.has(date);
      const label = new Date(this.year, this.month, day).toLocaleDateString("en", { weekday: "long", day: "numeric", month: "long", year: "numeric" });
      const button = h(
        "button",
        {
          type: "button",
          class: `calendar-day${has ? " has-data" : ""}`,
          "data-date": date,
          "aria-pressed": date === this.selected ? "true" : "false",
          "aria-label": `${label}${has ? ", input data available" : ", no input data"}`,
          tabindex: date === this.selected || (!this.selected && day === 1) ? 0 : -1,
        },
        String(day),
      );
      button.addEventListener("click", () => {
        this.selected = date;
        this.draw();
        this.onChoose(date);
        (this.grid.querySelector(`[data-date="${date}"]`) as HTMLElement | null)?.focus();
      });
      cells.push(button);
    }
    this.grid.replaceChildren(...cells);
  }

  private key(event: KeyboardEvent): void {
    const steps: Record<string, number> = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -7, ArrowDown: 7 };
    const step = steps[event.key];
    const current = (event.target as HTMLElement).dataset.date;
    if (step === undefined || !current) return;
    event.preventDefault();
    const moved = new Date(Number(current.slice(0, 4)), Number(current.slice(5, 7)) - 1, Number(current.slice(8, 10)) + step);
    const target = iso(moved.getFullYear(), moved.getMonth(), moved.getDate());
    if (moved.getMonth() !== this.month || moved.getFullYear() !== this.year) {
      this.year = moved.getFullYear();
      this.month = moved.getMonth();
      this.draw();
    }
    const button = this.grid.querySelector(`[data-date="${target}"]`) as HTMLElement | null;
    this.grid.querySelectorAll("button").forEach((b) => b.setAttribute("tabindex", "-1"));
    button?.setAttribute("tabindex", "0");
    button?.focus();
  }
}
