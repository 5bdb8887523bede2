"""Admin routes: customers listed, read, updated, disabled and re-enabled; scopes granted and
withdrawn. Only admins (an admin account whose token carries the admin scope) get in."""

import uuid

from sqlalchemy import update

from cure.auth.models import Customer
from tests.factories import (
    PASSWORD,
    bearer,
    create_admin,
    create_customer,
    customer_with_token,
    get_token,
    order_body,
    password_login,
)

ADMIN = "/v1/admin/customers"


async def _admin_routes(http) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Every admin operation, read from the OpenAPI document (so new ones are covered too)."""
    spec = (await http.get("/openapi.json")).json()
    return [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path.startswith("/v1/admin")
        for method in operations
    ]


def _fill(path: str, customer_id: str) -> str:
    return path.replace("{customer_id}", customer_id).replace("{scope}", "orders:read")


async def test_no_admin_route_admits_a_non_admin(client, session) -> None:
    victim = await create_customer(client)
    customer, headers = await customer_with_token(client)
    # Even with the admin scope forced into the database, a non-admin account stays out.
    await session.execute(
        update(Customer)
        .where(Customer.id == uuid.UUID(customer["customer_id"]))
        .values(scopes=Customer.scopes + ["admin"])
    )
    await session.commit()
    forced = bearer(await get_token(client, customer, scope="admin"))
    routes = await _admin_routes(client)
    assert len(routes) >= 7
    for method, path in routes:
        url = _fill(path, victim["customer_id"])
        for who, auth in (("customer", headers), ("forced admin scope", forced)):
            response = await client.request(method, url, headers=auth, json={})
            assert response.status_code == 403, (who, method, path, response.text)
        anonymous = await client.request(method, url, json={})
        assert anonymous.status_code == 401, (method, path)
    victim_row = await session.get(Customer, uuid.UUID(victim["customer_id"]))
    await session.refresh(victim_row)
    assert victim_row.is_active and "orders:read" in victim_row.scopes


async def test_an_admin_token_without_the_admin_scope_is_not_admin(client, session) -> None:
    admin, _ = await create_admin(client, session)
    narrowed = await password_login(client, admin["email"], scope="orders:read account:read")
    response = await client.get(ADMIN, headers=bearer(narrowed["access_token"]))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


async def test_list_filter_and_paginate(client, session) -> None:
    _, admin = await create_admin(client, session)
    tag = uuid.uuid4().hex[:8]
    made = [
        await create_customer(client, email=f"list-{tag}-{i}@example.org", country="AT")
        for i in range(3)
    ]
    page = await client.get(ADMIN, params={"search": f"list-{tag}", "limit": 2}, headers=admin)
    assert page.status_code == 200
    body = page.json()
    assert body["total"] == 3 and body["limit"] == 2 and body["offset"] == 0
    assert len(body["items"]) == 2
    rest = (
        await client.get(
            ADMIN, params={"search": f"list-{tag}", "limit": 2, "offset": 2}, headers=admin
        )
    ).json()
    ids = {c["customer_id"] for c in body["items"] + rest["items"]}
    assert ids == {c["customer_id"] for c in made}
    # the same pages by cursor (the pagination helper orders share)
    by_cursor = (
        await client.get(
            ADMIN,
            params={"search": f"list-{tag}", "limit": 2, "cursor": body["next_cursor"]},
            headers=admin,
        )
    ).json()
    assert [c["customer_id"] for c in by_cursor["items"]] == [
        c["customer_id"] for c in rest["items"]
    ]
    assert by_cursor["next_cursor"] is None
    forged = await client.get(ADMIN, params={"cursor": "garbage"}, headers=admin)
    assert forged.status_code == 422
    assert forged.json()["detail"][0]["loc"] == ["query", "cursor"]
    wildcard = await client.get(ADMIN, params={"search": "%"}, headers=admin)
    assert wildcard.json()["total"] == 0  # LIKE wildcards are literal
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"is_active": "maybe"}):
        assert (await client.get(ADMIN, params=bad, headers=admin)).status_code == 422
    admins = (
        await client.get(ADMIN, params={"is_admin": True, "limit": 100}, headers=admin)
    ).json()
    assert admins["items"] and all(c["is_admin"] for c in admins["items"])


async def test_read_and_update_a_customer_with_mass_assignment_refused(client, session) -> None:
    _, admin = await create_admin(client, session)
    customer = await create_customer(client)
    url = f"{ADMIN}/{customer['customer_id']}"
    read = await client.get(url, headers=admin)
    assert read.status_code == 200
    assert read.json()["email"] == customer["email"]
    changed = await client.patch(url, json={"organisation": "JRC", "country": "IT"}, headers=admin)
    assert changed.status_code == 200
    assert (changed.json()["organisation"], changed.json()["country"]) == ("JRC", "IT")
    for body in (
        {"is_admin": True},
        {"scopes": ["admin"]},
        {"is_active": False},
        {"email": "new@example.org"},
        {"customer_id": str(uuid.uuid4())},
        {"password_hash": "x"},
    ):
        refused = await client.patch(url, json=body, headers=admin)
        assert refused.status_code == 422, body
    row = await session.get(Customer, uuid.UUID(customer["customer_id"]))
    assert not row.is_admin and row.is_active and "admin" not in row.scopes
    assert row.email == customer["email"]
    missing = await client.get(f"{ADMIN}/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["error"] == "CustomerNotFound"
    assert (await client.get(f"{ADMIN}/not-a-uuid", headers=admin)).status_code == 422


async def test_disable_and_re_enable(client, session) -> None:
    admin_account, admin = await create_admin(client, session)
    customer = await create_customer(client)
    machine = bearer(await get_token(client, customer))
    login = await password_login(client, customer["email"])
    url = f"{ADMIN}/{customer['customer_id']}"

    disabled = await client.post(f"{url}/disable", headers=admin)
    assert disabled.status_code == 200
    assert disabled.json()["is_active"] is False
    for token in (machine, bearer(login["access_token"])):
        assert (await client.get("/v1/crm/customers/me", headers=token)).status_code == 401
    refresh = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": login["refresh_token"]},
    )
    assert refresh.json()["error"] == "invalid_grant"
    login_again = await client.post(
        "/v1/auth/login", json={"email": customer["email"], "password": PASSWORD}
    )
    assert login_again.status_code == 400

    enabled = await client.post(f"{url}/enable", headers=admin)
    assert enabled.json()["is_active"] is True
    assert (await client.get("/v1/crm/customers/me", headers=machine)).status_code == 200
    # Refresh tokens from before the suspension stay revoked: the customer logs in again.
    refresh = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": login["refresh_token"]},
    )
    assert refresh.json()["error"] == "invalid_grant"

    self_disable = await client.post(
        f"{ADMIN}/{admin_account['customer_id']}/disable", headers=admin
    )
    assert self_disable.status_code == 409


async def test_grant_and_withdraw_scopes(client, session) -> None:
    admin_account, admin = await create_admin(client, session)
    customer = await create_customer(client)
    token = bearer(await get_token(client, customer))
    url = f"{ADMIN}/{customer['customer_id']}/scopes"

    withdrawn = await client.delete(f"{url}/orders:write", headers=admin)
    assert withdrawn.status_code == 200
    assert "orders:write" not in withdrawn.json()["scopes"]
    # The token issued before loses the scope at once.
    submit = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=token)
    assert submit.status_code == 403
    asked = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "scope": "orders:write"},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    assert asked.json()["error"] == "invalid_scope"

    granted = await client.put(f"{url}/orders:write", headers=admin)
    assert granted.status_code == 200
    again = await client.put(f"{url}/logs:write", headers=admin)
    assert {"orders:write", "logs:write"} <= set(again.json()["scopes"])
    fresh = bearer(await get_token(client, customer))
    submit = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=fresh)
    assert submit.status_code == 202

    unknown = await client.put(f"{url}/superpowers", headers=admin)
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "UnknownScope"
    not_admin = await client.put(f"{url}/admin", headers=admin)
    assert not_admin.status_code == 422
    assert not_admin.json()["error"] == "ScopeNotGrantable"
    own = await client.delete(f"{ADMIN}/{admin_account['customer_id']}/scopes/admin", headers=admin)
    assert own.status_code == 409
