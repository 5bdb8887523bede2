// The portal's login. The access token is kept in this module's memory only; the refresh token
// is an HttpOnly cookie the page never sees, sent only to /v1/portal/session. A refresh proves it
// comes from this page by echoing the CSRF cookie (readable here, not by other sites) in a header.
// Tabs share the cookie: a Web Lock makes their refreshes take turns, so a rotated refresh token
// is never presented twice (which would end the login everywhere).

const CSRF_COOKIE = "__Host-cure_csrf"; // cure/portal/service.py: CSRF_COOKIE
const CSRF_HEADER = "X-CSRF-Token";

interface SessionAnswer {
  access_token: string;
  expires_in: number;
  scope: string;
}

type Listener = () => void;

function csrfCookie(): string | null {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return null;
}

async function withLock<T>(work: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (!locks) return work();
  return locks.request("cure-portal-refresh", work) as Promise<T>;
}

class Session {
  private token: string | null = null;
  private scopes: string[] = [];
  private timer: number | undefined;
  private listeners: Listener[] = [];
  private refreshing: Promise<boolean> | null = null;

  accessToken(): string | null {
    return this.token;
  }

  loggedIn(): boolean {
    return this.token !== null;
  }

  has(scope: string): boolean {
    return this.scopes.includes(scope);
  }

  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  private accept(answer: SessionAnswer): void {
    const was = this.token !== null;
    this.token = answer.access_token;
    this.scopes = answer.scope.split(" ").filter(Boolean);
    window.clearTimeout(this.timer);
    // Renew a minute before the access token expires (or at half its life if that is short).
    const lead = Math.min(60, answer.expires_in / 2);
    this.timer = window.setTimeout(() => void this.refresh(), (answer.expires_in - lead) * 1000);
    if (!was) this.listeners.forEach((listener) => listener());
  }

  private forget(): void {
    const was = this.token !== null;
    this.token = null;
    this.scopes = [];
    window.clearTimeout(this.timer);
    if (was) this.listeners.forEach((listener) => listener());
  }

  async logIn(email: string, password: string): Promise<void> {
    const response = await fetch("/v1/portal/session", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ email, password }),
      credentials: "same-origin",
    });
    const body = (await response.json()) as SessionAnswer & { detail?: string };
    if (!response.ok) throw new Error(body.detail ? String(body.detail) : "the login failed");
    this.accept(body);
  }

  /** A new access token from the refresh cookie; false when there is no session (any more). */
  refresh(): Promise<boolean> {
    if (!this.refreshing) {
      this.refreshing = withLock(() => this.refreshNow()).finally(() => (this.refreshing = null));
    }
    return this.refreshing;
  }

  private async refreshNow(): Promise<boolean> {
    const csrf = csrfCookie();
    if (!csrf) {
      this.forget();
      return false;
    }
    try {
      const response = await fetch("/v1/portal/session/refresh", {
        method: "POST",
        headers: { [CSRF_HEADER]: csrf, Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) {
        this.forget();
        return false;
      }
      this.accept((await response.json()) as SessionAnswer);
      return true;
    } catch {
      return false; // offline: keep what we have, try again on the next call
    }
  }

  async logOut(): Promise<void> {
    const headers: Record<string, string> = {};
    const csrf = csrfCookie();
    if (csrf) headers[CSRF_HEADER] = csrf;
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    try {
      await fetch("/v1/portal/session", { method: "DELETE", headers, credentials: "same-origin" });
    } finally {
      this.forget();
    }
  }
}

export const session = new Session();
