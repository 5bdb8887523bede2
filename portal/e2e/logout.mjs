// The login lives in memory and in an HttpOnly refresh cookie: it survives a reload; API clients
// are listed and rotated; logging out revokes the refresh token, not only the cookie.

import { BASE, DESKTOP, check, logInByForm, noProblems, open, registerByApi, scenario, screenshot, step } from "./lib.mjs";

await scenario("logout", async (browser) => {
  const { context, page, problems } = await open(browser, DESKTOP);
  const account = await registerByApi("logout");
  await logInByForm(page, account);

  step("the refresh token is an HttpOnly, Secure, SameSite=Strict cookie for the session path");
  const cookies = await context.cookies();
  const refresh = cookies.find((c) => c.name === "__Secure-cure_refresh");
  check(refresh, "a refresh cookie is set");
  check(refresh.httpOnly && refresh.secure && refresh.sameSite === "Strict", "HttpOnly, Secure, SameSite=Strict");
  check(refresh.path === "/v1/portal/session", `its path is the session's (${refresh.path})`);
  check(!(await page.evaluate(() => document.cookie)).includes("__Secure-cure_refresh"), "scripts cannot read it");
  const csrf = cookies.find((c) => c.name === "__Host-cure_csrf");
  check(csrf && csrf.secure && csrf.path === "/" && !csrf.domain.startsWith("."), "the browser kept the __Host- CSRF cookie");
  check(!(await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage))).includes("ey"), "no token in web storage");

  step("a reload keeps the login (a refresh from the cookie, which rotates)");
  await page.reload();
  await page.getByRole("link", { name: "Account" }).waitFor();
  const rotated = (await context.cookies()).find((c) => c.name === "__Secure-cure_refresh");
  check(rotated.value !== refresh.value, "the refresh token rotated");

  step("the account lists the API clients; rotating one shows its new secret once");
  await page.getByRole("link", { name: "Account" }).click();
  page.once("dialog", (dialog) => dialog.accept());
  await page.getByRole("button", { name: /^Rotate the secret of/ }).first().click();
  await page.locator(".client-secret").waitFor();
  await screenshot(page, "account-desktop");

  step("log out: the cookies go and the refresh token is revoked");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("link", { name: "Log in" }).waitFor();
  check(!(await context.cookies()).some((c) => c.name === "__Secure-cure_refresh"), "the cookie is gone");
  const answer = await fetch(`${BASE}/v1/auth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "refresh_token", client_id: "cure-portal", refresh_token: rotated.value }),
  });
  const body = await answer.json();
  check(answer.status === 400 && body.error === "invalid_grant", `the old refresh token is dead (${answer.status} ${JSON.stringify(body)})`);
  await page.reload();
  await page.getByRole("link", { name: "Log in" }).waitFor();
  check(!(await page.getByRole("link", { name: "Account" }).isVisible()), "after a reload, still logged out");
  noProblems(problems);
});
