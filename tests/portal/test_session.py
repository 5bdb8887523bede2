"""Portal sessions: the refresh token only in an HttpOnly, Secure, SameSite=Strict cookie for
the session path; refresh and logout need the CSRF token bound to it and the portal's origin."""

from http.cookies import SimpleCookie

import pytest

from tests.factories import PASSWORD, create_customer

ORIGIN = "http://cure.test"  # the in-process client's own origin
# __Host-: Secure, Path=/ and no Domain, or browsers refuse it; __Secure- (Secure) for the
# refresh cookie, which keeps to the session's path.
REFRESH = "__Secure-cure_refresh"
CSRF = "__Host-cure_csrf"


def set_cookies(response) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Every Set-Cookie of a response: name -> value and attributes (lowercase)."""
    found: dict[str, dict[str, str]] = {}
    for header in response.headers.get_list("set-cookie"):
        jar = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            attributes = {k: str(v) for k, v in morsel.items() if v}
            attributes["httponly"] = str("httponly" in header.lower())
            attributes["secure"] = str("secure" in header.lower())
            found[name] = {"value": morsel.value, **attributes}
    return found


async def log_in(client) -> tuple[dict[str, object], dict[str, dict[str, str]]]:  # type: ignore[no-untyped-def]
    customer = await create_customer(client)
    response = await client.post(
        "/v1/portal/session",
        json={"email": customer["email"], "password": PASSWORD},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 200, response.text
    return response.json(), set_cookies(response)


def session_headers(cookies: dict[str, dict[str, str]], csrf: str | None = None) -> dict[str, str]:
    headers = {
        "Cookie": f"{REFRESH}={cookies[REFRESH]['value']}",
        "Origin": ORIGIN,
        "Sec-Fetch-Site": "same-origin",
    }
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return headers


async def test_login_puts_the_refresh_token_in_a_strict_cookie_and_nowhere_else(client) -> None:
    body, cookies = await log_in(client)
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert set(cookies) == {REFRESH, CSRF}
    refresh = cookies[REFRESH]
    assert refresh["httponly"] == "True" and refresh["secure"] == "True"
    assert refresh["samesite"].lower() == "strict" and refresh["path"] == "/v1/portal/session"
    csrf = cookies[CSRF]
    assert csrf["httponly"] == "False" and csrf["samesite"].lower() == "strict"
    assert csrf["path"] == "/" and csrf["secure"] == "True"
    assert "domain" not in refresh and "domain" not in csrf
    me = await client.get(
        "/v1/crm/customers/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200


async def test_a_wrong_password_sets_no_cookie(client) -> None:
    customer = await create_customer(client)
    response = await client.post(
        "/v1/portal/session", json={"email": customer["email"], "password": "not the password"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "LoginFailed"
    assert not response.headers.get_list("set-cookie")


async def test_refresh_rotates_the_cookie_and_needs_the_matching_csrf_token(client) -> None:
    _, cookies = await log_in(client)
    csrf = cookies[CSRF]["value"]
    for wrong in (None, "", csrf[:-2] + "xx"):
        refused = await client.post(
            "/v1/portal/session/refresh", headers=session_headers(cookies, wrong)
        )
        assert refused.status_code == 403, wrong
        assert refused.json()["error"] == "CsrfRejected"
    renewed = await client.post(
        "/v1/portal/session/refresh", headers=session_headers(cookies, csrf)
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["access_token"]
    rotated = set_cookies(renewed)
    assert rotated[REFRESH]["value"] != cookies[REFRESH]["value"]
    assert rotated[CSRF]["value"] != csrf
    # the first refresh token is spent: presenting it again ends the whole login
    replay = await client.post("/v1/portal/session/refresh", headers=session_headers(cookies, csrf))
    assert replay.status_code == 401
    assert set_cookies(replay)[REFRESH]["value"] == ""  # cleared
    after = await client.post(
        "/v1/portal/session/refresh",
        headers=session_headers(rotated, rotated[CSRF]["value"]),
    )
    assert after.status_code == 401


@pytest.mark.parametrize(
    "origin_headers",
    [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}],
)
async def test_session_requests_from_another_site_are_refused(client, origin_headers) -> None:
    _, cookies = await log_in(client)
    headers = {**session_headers(cookies, cookies[CSRF]["value"]), **origin_headers}
    for method, path in (("POST", "/v1/portal/session/refresh"), ("DELETE", "/v1/portal/session")):
        response = await client.request(method, path, headers=headers)
        assert response.status_code == 403, (method, response.text)


async def test_without_a_cookie_there_is_no_session(client) -> None:
    response = await client.post("/v1/portal/session/refresh", headers={"Origin": ORIGIN})
    assert response.status_code == 401
    assert response.json()["error"] == "SessionMissing"


async def test_logout_revokes_the_login_and_its_access_token(client) -> None:
    body, cookies = await log_in(client)
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    headers = {**session_headers(cookies, cookies[CSRF]["value"]), **bearer}
    out = await client.delete("/v1/portal/session", headers=headers)
    assert out.status_code == 204
    cleared = set_cookies(out)
    assert cleared[REFRESH]["value"] == "" and cleared[CSRF]["value"] == ""
    assert cleared[REFRESH]["secure"] == "True" and cleared[CSRF]["path"] == "/"
    token = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "cure-portal",
            "refresh_token": cookies[REFRESH]["value"],
        },
    )
    assert token.status_code == 400 and token.json()["error"] == "invalid_grant"
    assert (await client.get("/v1/crm/customers/me", headers=bearer)).status_code == 401
