"""Introspection (RFC 7662) and revocation (RFC 7009)."""

import time

from jose import jwt

from tests.factories import (
    bearer,
    create_admin,
    create_customer,
    get_token,
    order_body,
    password_login,
)

ME = "/v1/crm/customers/me"


async def _introspect(http, token: str, *, auth=None, headers=None):  # type: ignore[no-untyped-def]
    return await http.post("/v1/auth/introspect", data={"token": token}, auth=auth, headers=headers)


async def test_introspection_of_an_active_token(client) -> None:
    customer = await create_customer(client)
    token = await get_token(client, customer, scope="orders:read account:read")
    auth = (customer["client_id"], customer["client_secret"])
    response = await _introspect(client, token, auth=auth)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True
    assert body["scope"] == "account:read orders:read"
    assert body["sub"] == customer["customer_id"]
    assert body["client_id"] == customer["client_id"]
    assert body["token_type"] == "Bearer"
    assert {"exp", "iat", "jti", "iss", "aud"} <= set(body)
    # A bearer token authenticates the caller too.
    by_bearer = await _introspect(client, token, headers=bearer(token))
    assert by_bearer.json()["active"] is True


async def test_introspection_says_only_inactive_for_bad_tokens(client, settings) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    auth = (customer["client_id"], customer["client_secret"])
    token = await get_token(client, customer)
    claims = jwt.get_unverified_claims(token)
    expired = jwt.encode(
        {**claims, "exp": int(time.time()) - 10},
        settings.jwt_secret.get_secret_value(),
        algorithm="HS256",
        headers={"typ": "at+jwt"},
    )
    foreign_issuer = jwt.encode(
        {**claims, "iss": "elsewhere"},
        settings.jwt_secret.get_secret_value(),
        algorithm="HS256",
        headers={"typ": "at+jwt"},
    )
    revoked = await get_token(client, customer)
    await client.post("/v1/auth/revoke", data={"token": revoked}, auth=auth)
    cases = {
        "expired": expired,
        "malformed": "not-a-token",
        "foreign issuer": foreign_issuer,
        "revoked": revoked,
        "another customer's": await get_token(client, other),
    }
    for name, bad in cases.items():
        response = await _introspect(client, bad, auth=auth)
        assert response.status_code == 200, name
        assert response.json() == {"active": False}, name


async def test_introspection_needs_an_authenticated_caller(client) -> None:
    customer = await create_customer(client)
    token = await get_token(client, customer)
    anonymous = await _introspect(client, token)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"
    wrong = await _introspect(client, token, auth=(customer["client_id"], "wrong"))
    assert wrong.status_code == 401
    missing = await client.post(
        "/v1/auth/introspect", data={}, auth=(customer["client_id"], customer["client_secret"])
    )
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"


async def test_admins_may_introspect_any_token(client, session) -> None:
    customer = await create_customer(client)
    _, admin_headers = await create_admin(client, session)
    token = await get_token(client, customer)
    response = await _introspect(client, token, headers=admin_headers)
    assert response.json()["active"] is True
    assert response.json()["sub"] == customer["customer_id"]


async def test_introspection_of_refresh_tokens(client) -> None:
    customer = await create_customer(client)
    tokens = await password_login(client, customer["email"])
    headers = bearer(tokens["access_token"])
    active = (await _introspect(client, tokens["refresh_token"], headers=headers)).json()
    assert active["active"] is True
    assert active["client_id"] == "cure-portal"
    assert active["token_type"] == "refresh_token"
    rotated = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "cure-portal",
        },
    )
    new_headers = bearer(rotated.json()["access_token"])
    used = await _introspect(client, tokens["refresh_token"], headers=new_headers)
    assert used.json() == {"active": False}


async def test_a_revoked_access_token_stops_working_everywhere(client) -> None:
    customer = await create_customer(client)
    auth = (customer["client_id"], customer["client_secret"])
    token = await get_token(client, customer)
    spare = await get_token(client, customer)
    assert (await client.get(ME, headers=bearer(token))).status_code == 200
    response = await client.post(
        "/v1/auth/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        auth=auth,
    )
    assert response.status_code == 200
    assert (await client.get(ME, headers=bearer(token))).status_code == 401
    assert (
        await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=bearer(token))
    ).status_code == 401
    assert (
        await client.get("/v1/orders/00000000-0000-0000-0000-000000000000", headers=bearer(token))
    ).status_code == 401
    assert (await _introspect(client, token, auth=auth)).json() == {"active": False}
    # Only that token: another one of the same client still works.
    assert (await client.get(ME, headers=bearer(spare))).status_code == 200


async def test_revoking_a_refresh_token_ends_the_login(client) -> None:
    customer = await create_customer(client)
    tokens = await password_login(client, customer["email"])
    response = await client.post(
        "/v1/auth/revoke",
        data={"token": tokens["refresh_token"], "client_id": "cure-portal"},
    )
    assert response.status_code == 200
    refresh = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "cure-portal",
        },
    )
    assert refresh.json()["error"] == "invalid_grant"
    # RFC 7009 section 2.1: the access token of the same grant goes too.
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 401


async def test_revocation_answers_200_for_unknown_tokens_and_checks_the_client(client) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    auth = (customer["client_id"], customer["client_secret"])
    for token in ("unknown", "a.b.c", ""):
        response = await client.post("/v1/auth/revoke", data={"token": token or "x"}, auth=auth)
        assert response.status_code == 200
    missing = await client.post("/v1/auth/revoke", data={}, auth=auth)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    wrong_secret = await client.post(
        "/v1/auth/revoke", data={"token": "x"}, auth=(customer["client_id"], "nope")
    )
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"
    # A client cannot revoke a token issued to another client.
    others_token = await get_token(client, other)
    refused = await client.post("/v1/auth/revoke", data={"token": others_token}, auth=auth)
    assert refused.status_code == 400
    assert refused.json()["error"] == "unauthorized_client"
    assert (await client.get(ME, headers=bearer(others_token))).status_code == 200
