// Register, log in, reset a password, and the account: profile and API clients.

import { api, ApiError } from "../api";
import { alertBox, announce, field, formatDateTime, h } from "../dom";
import { navigate } from "../router";
import { session } from "../session";

function input(attrs: Record<string, string | number | boolean>): HTMLInputElement {
  return h("input", attrs) as HTMLInputElement;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A form whose submit runs ``work``; its errors are shown above the button. */
function form(
  label: string,
  fields: HTMLElement[],
  submitText: string,
  work: (status: HTMLElement) => Promise<void>,
): HTMLFormElement {
  const status = h("div", { class: "form-status" });
  const button = h("button", { type: "submit" }, submitText) as HTMLButtonElement;
  const element = h("form", { "aria-label": label, novalidate: false }, ...fields, status, button) as HTMLFormElement;
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    button.disabled = true;
    try {
      await work(status);
    } catch (error) {
      status.replaceChildren(alertBox(messageOf(error)));
      announce(messageOf(error));
    } finally {
      button.disabled = false;
    }
  });
  return element;
}

export function loginPage(main: HTMLElement, _: Record<string, string>, query: URLSearchParams): void {
  const email = input({ type: "email", name: "email", autocomplete: "username", required: true });
  const password = input({ type: "password", name: "password", autocomplete: "current-password", required: true });
  const next = query.get("next") ?? "/order";
  main.append(
    h("h1", {}, "Log in"),
    h("div", { class: "narrow" },
      form("Log in", [field("Email", email), field("Password", password)], "Log in", async () => {
        await session.logIn(email.value, password.value);
        announce("Logged in");
        navigate(next.startsWith("/") ? next : "/order");
      }),
      h("p", {}, "No account yet? ", h("a", { href: "#/register" }, "Register"), ". Forgot your password? ", h("a", { href: "#/reset" }, "Reset it"), "."),
    ),
  );
}

export function registerPage(main: HTMLElement): void {
  const name = input({ type: "text", name: "name", autocomplete: "name", required: true, maxlength: 200 });
  const email = input({ type: "email", name: "email", autocomplete: "email", required: true });
  const password = input({ type: "password", name: "password", autocomplete: "new-password", required: true, minlength: 10 });
  const organisation = input({ type: "text", name: "organisation", autocomplete: "organization", maxlength: 200 });
  const result = h("div");
  main.append(
    h("h1", {}, "Register"),
    h("div", { class: "narrow" },
      form(
        "Register",
        [
          field("Name", name),
          field("Email", email),
          field("Password", password, "At least 10 characters; not your email or name, nor a common password."),
          field("Organisation (optional)", organisation),
        ],
        "Create the account",
        async () => {
          const registered = await api<{ client_id: string; client_secret: string }>("/v1/crm/customers", {
            method: "POST",
            auth: false,
            body: { name: name.value, email: email.value, password: password.value, organisation: organisation.value || undefined },
          });
          await session.logIn(email.value, password.value);
          result.replaceChildren(
            alertBox("Your account is ready and you are logged in.", "success"),
            secretBox(registered.client_id, registered.client_secret, "Your first API client, for scripts (client credentials):"),
            h("p", {}, h("a", { href: "#/order", class: "button" }, "Order a product")),
          );
          announce("Account created; you are logged in");
          result.scrollIntoView();
        },
      ),
      result,
    ),
  );
}

function secretBox(clientId: string, secret: string, intro: string): HTMLElement {
  return h(
    "div",
    { class: "secret", role: "status" },
    h("p", {}, intro),
    h("dl", {}, h("dt", {}, "client_id"), h("dd", {}, h("code", {}, clientId)), h("dt", {}, "client_secret"), h("dd", {}, h("code", { class: "client-secret" }, secret))),
    h("p", { class: "hint" }, "The secret is shown once: store it now. CURE keeps only its hash."),
  );
}

export function resetPage(main: HTMLElement, _: Record<string, string>, query: URLSearchParams): void {
  const token = query.get("token");
  main.append(h("h1", {}, "Reset your password"));
  const box = h("div", { class: "narrow" });
  main.append(box);
  if (!token) {
    const email = input({ type: "email", name: "email", autocomplete: "email", required: true });
    box.append(
      form("Ask for a reset email", [field("Email", email)], "Email me a reset link", async (status) => {
        await api("/v1/auth/password-reset", { method: "POST", auth: false, body: { email: email.value } });
        status.replaceChildren(alertBox("If an account has this email, a message with a reset link is on its way.", "success"));
      }),
    );
    return;
  }
  const password = input({ type: "password", name: "new-password", autocomplete: "new-password", required: true, minlength: 10 });
  box.append(
    form("Choose a new password", [field("New password", password)], "Set the password", async (status) => {
      await api("/v1/auth/password-reset/confirm", { method: "POST", auth: false, body: { token, new_password: password.value } });
      status.replaceChildren(alertBox("Your password is set. Log in with it.", "success"), h("a", { href: "#/login" }, "Log in"));
    }),
  );
}

interface Client {
  client_id: string;
  name: string;
  scopes: string[] | null;
  created_at: string;
  secret_rotated_at: string | null;
}

interface Me {
  name: string;
  email: string;
  organisation: string | null;
  country: string | null;
  scopes: string[];
  is_admin: boolean;
}

export async function accountPage(main: HTMLElement): Promise<void> {
  if (!session.loggedIn()) return navigate("/login?next=/account");
  const me = await api<Me>("/v1/crm/customers/me");
  const clientsBox = h("div");
  const secretSlot = h("div");
  const loadClients = async () => {
    const clients = await api<Client[]>("/v1/crm/customers/me/clients");
    clientsBox.replaceChildren(
      h("div", { class: "table-scroll", tabindex: 0, role: "region", "aria-label": "API clients" },
        h("table", {},
          h("caption", {}, "Your API clients"),
          h("thead", {}, h("tr", {}, ["Name", "client_id", "Scopes", "Created", "Secret rotated", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {},
            clients.map((client) => {
              const rotate = h("button", { type: "button", class: "secondary" }, "Rotate secret") as HTMLButtonElement;
              rotate.setAttribute("aria-label", `Rotate the secret of ${client.name}`);
              rotate.addEventListener("click", async () => {
                if (!window.confirm(`Rotate the secret of "${client.name}"? The old secret and its tokens stop working.`)) return;
                try {
                  const rotated = await api<Client & { client_secret: string }>(`/v1/crm/customers/me/clients/${encodeURIComponent(client.client_id)}/secret`, { method: "POST" });
                  secretSlot.replaceChildren(secretBox(rotated.client_id, rotated.client_secret, `The new secret of "${client.name}":`));
                  announce("Secret rotated");
                  await loadClients();
                } catch (error) {
                  secretSlot.replaceChildren(alertBox(messageOf(error)));
                }
              });
              return h("tr", {},
                h("td", {}, client.name),
                h("td", {}, h("code", {}, client.client_id)),
                h("td", {}, client.scopes ? client.scopes.join(" ") : "as your account"),
                h("td", {}, formatDateTime(client.created_at)),
                h("td", {}, client.secret_rotated_at ? formatDateTime(client.secret_rotated_at) : "never"),
                h("td", {}, rotate),
              );
            }),
          ),
        ),
      ),
    );
  };
  const clientName = input({ type: "text", name: "client-name", required: true, maxlength: 200 });
  const logout = h("button", { type: "button", class: "secondary" }, "Log out") as HTMLButtonElement;
  logout.addEventListener("click", async () => {
    await session.logOut();
    announce("Logged out");
    navigate("/login");
  });
  main.append(
    h("h1", {}, "Your account"),
    h("section", { class: "card" },
      h("h2", {}, "Profile"),
      h("dl", { class: "facts" },
        h("dt", {}, "Name"), h("dd", {}, me.name),
        h("dt", {}, "Email"), h("dd", {}, me.email),
        h("dt", {}, "Organisation"), h("dd", {}, me.organisation ?? "—"),
        h("dt", {}, "Scopes"), h("dd", {}, me.scopes.join(" ")),
      ),
      logout,
    ),
    h("section", { class: "card" },
      h("h2", {}, "API clients"),
      h("p", {}, "Scripts and tools authenticate with a client's id and secret (OAuth2 client credentials)."),
      clientsBox,
      secretSlot,
      form("Add an API client", [field("Name of a new client", clientName, "For example the script that will use it.")], "Add the client", async () => {
        const created = await api<Client & { client_secret: string }>("/v1/crm/customers/me/clients", { method: "POST", body: { name: clientName.value } });
        secretSlot.replaceChildren(secretBox(created.client_id, created.client_secret, `The new client "${created.name}":`));
        clientName.value = "";
        await loadClients();
      }),
    ),
  );
  await loadClients();
}

export function isApiError(error: unknown, status: number): boolean {
  return error instanceof ApiError && error.status === status;
}
