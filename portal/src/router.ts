// Hash routes (#/orders/…): the API serves one page, and tokens in a reset link's fragment never
// reach a server log.

export type Cleanup = () => void;
export type Page = (
  main: HTMLElement,
  params: Record<string, string>,
  query: URLSearchParams,
) => Promise<Cleanup | void> | Cleanup | void;

interface Route {
  pattern: RegExp;
  names: string[];
  page: Page;
  title: string;
}

const routes: Route[] = [];
let cleanup: Cleanup | void;
let rendering = 0;

export function route(path: string, title: string, page: Page): void {
  const names: string[] = [];
  const pattern = new RegExp(
    "^" + path.replace(/:([a-z]+)/g, (_, name: string) => (names.push(name), "([^/]+)")) + "$",
  );
  routes.push({ pattern, names, page, title });
}

export function navigate(path: string): void {
  if (window.location.hash === `#${path}`) void render();
  else window.location.hash = path;
}

export function currentPath(): string {
  return window.location.hash.startsWith("#/") ? window.location.hash.slice(1).split("?")[0] : "/";
}

export async function render(): Promise<void> {
  const main = document.getElementById("main") as HTMLElement;
  // Only #/… is a route; another fragment (an in-page anchor) leaves the page as it is.
  const hash = window.location.hash.startsWith("#/") ? window.location.hash.slice(1) : "/";
  const [path, search] = hash.split("?");
  const found = routes.find((r) => r.pattern.test(path)) ?? routes.find((r) => r.title === "Not found")!;
  const match = found.pattern.exec(path);
  const params: Record<string, string> = {};
  found.names.forEach((name, i) => (params[name] = decodeURIComponent(match?.[i + 1] ?? "")));
  if (cleanup) cleanup();
  cleanup = undefined;
  const mine = ++rendering;
  // Each render fills a container of its own: a page still loading when the visitor moves on
  // keeps adding to its detached container, never to the next page.
  const root = document.createElement("div");
  root.className = "page";
  main.replaceChildren(root);
  main.setAttribute("aria-busy", "true");
  document.title = `${found.title} · CURE`;
  try {
    const result = await found.page(root, params, new URLSearchParams(search ?? ""));
    if (mine === rendering) cleanup = result;
    else if (result) result(); // the visitor moved on while this page loaded
  } finally {
    if (mine === rendering) main.removeAttribute("aria-busy");
  }
  document.dispatchEvent(new CustomEvent("cure:rendered", { detail: { path } }));
}

export function start(): void {
  window.addEventListener("hashchange", () => {
    if (!window.location.hash.startsWith("#/") && window.location.hash !== "") return;
    void render().then(() => (document.getElementById("main") as HTMLElement).focus({ preventScroll: false }));
  });
  void render();
}
