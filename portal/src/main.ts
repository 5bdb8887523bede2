// The CURE portal: storylines for everyone; accounts, orders and the catalogue for customers.

import "leaflet/dist/leaflet.css";
import "./style.css";

import { api } from "./api";
import { alertBox, h } from "./dom";
import { configureMaps, type PortalConfig } from "./map";
import { accountPage, loginPage, registerPage, resetPage } from "./pages/account";
import { cataloguePage } from "./pages/catalogue";
import { orderPage } from "./pages/order";
import { orderDetailPage, ordersPage } from "./pages/orders";
import { storylinePage } from "./pages/storylines";
import { currentPath, render, route, start } from "./router";
import { session } from "./session";

function guarded(page: (main: HTMLElement, ...rest: never[]) => unknown) {
  return async (main: HTMLElement, params: Record<string, string>, query: URLSearchParams) => {
    try {
      return (await (page as (m: HTMLElement, p: Record<string, string>, q: URLSearchParams) => unknown)(main, params, query)) as void;
    } catch (error) {
      main.append(alertBox(`This page could not be shown: ${(error as Error).message}`));
    }
  };
}

route("/", "Storylines", guarded(storylinePage));
route("/storylines/:slug", "Storyline", guarded(storylinePage));
route("/login", "Log in", guarded(loginPage));
route("/register", "Register", guarded(registerPage));
route("/reset", "Reset your password", guarded(resetPage));
route("/account", "Your account", guarded(accountPage));
route("/order", "Order", guarded(orderPage));
route("/orders", "Your orders", guarded(ordersPage));
route("/orders/:id", "Order", guarded(orderDetailPage));
route("/catalogue", "Catalogue", guarded(cataloguePage));
route(".*", "Not found", (main) => {
  main.append(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the storylines")));
});

const NAV: { path: string; label: string; when: "always" | "in" | "out" }[] = [
  { path: "/", label: "Storylines", when: "always" },
  { path: "/order", label: "Order", when: "in" },
  { path: "/orders", label: "Orders", when: "in" },
  { path: "/catalogue", label: "Catalogue", when: "always" },
  { path: "/account", label: "Account", when: "in" },
  { path: "/login", label: "Log in", when: "out" },
  { path: "/register", label: "Register", when: "out" },
];

function drawNav(): void {
  const nav = document.getElementById("site-nav") as HTMLElement;
  const here = currentPath();
  const active = (path: string) => (path === "/" ? here === "/" || here.startsWith("/storylines") : here === path || (path === "/orders" && here.startsWith("/orders/")));
  const items = NAV.filter((item) => item.when === "always" || (item.when === "in") === session.loggedIn());
  nav.replaceChildren(
    h("ul", {}, items.map((item) => h("li", {}, h("a", { href: `#${item.path}`, "aria-current": active(item.path) ? "page" : null }, item.label)))),
  );
}

function wireMenu(): void {
  const toggle = document.querySelector(".nav-toggle") as HTMLButtonElement;
  const nav = document.getElementById("site-nav") as HTMLElement;
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  });
  window.addEventListener("hashchange", () => {
    toggle.setAttribute("aria-expanded", "false");
    nav.classList.remove("open");
  });
}

async function boot(): Promise<void> {
  wireMenu();
  // The skip link moves focus to the content without changing the route in the fragment.
  document.querySelector(".skip-link")?.addEventListener("click", (event) => {
    event.preventDefault();
    (document.getElementById("main") as HTMLElement).focus();
  });
  try {
    configureMaps(await api<PortalConfig>("/v1/portal/config", { auth: false }));
  } catch {
    /* without it the maps draw CURE's own basemap, no tiles */
  }
  await session.refresh(); // a login that survives a reload (the refresh cookie)
  session.onChange(() => {
    drawNav();
    const path = currentPath();
    if (!session.loggedIn() && ["/order", "/orders", "/account"].some((p) => path.startsWith(p))) void render();
  });
  document.addEventListener("cure:rendered", drawNav);
  drawNav();
  start();
}

void boot();
