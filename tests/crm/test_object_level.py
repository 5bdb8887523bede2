"""Object-level authorisation: customer A reaches nothing of customer B's through any route that
takes an id, and B's objects are unchanged afterwards."""

import re
import uuid
from datetime import date

from tests.factories import bearer, create_customer, get_token, order_body

# How to fill each path parameter with customer B's objects. A new route with another parameter
# fails the test until it is added here, so no id-bearing route escapes this check.
FILL = {
    "order_id": lambda b: b["order_id"],
    "client_id": lambda b: b["extra_client_id"],
    "customer_id": lambda b: b["customer_id"],
    "scope": lambda b: "orders:read",
    "app_id": lambda b: "roi_stats",
    "key": lambda b: f"results/{b['order_id']}/result.geojson",  # where results are kept
    "role": lambda b: "data",
    "collection": lambda b: "cure-roi_stats",
    "identifier": lambda b: f"roi_stats-{b['order_id']}",  # the product B's order made
    "job_id": lambda b: b["order_id"],  # OGC API - Processes: a job is an order
    "process_id": lambda b: "roi_stats",
    "collection_id": lambda b: "cure-roi_stats",  # STAC: B's product as an item
    "asset": lambda b: "data",  # a quicklook of B's product
    "item_id": lambda b: f"roi_stats-{b['order_id']}",
    "name": lambda b: "earth-search",  # a catalogue source: admins' alone, no customer's
}
# Signed links carry their proof in the query: A has none for B's objects, so A forges one.
QUERY = {"key": {"expires": "9999999999", "signature": "0" * 64}}
# Routes whose parameters name no customer's object (the public app catalogue, ordering an app
# for oneself).
NOT_OWNED = {
    ("GET", "/v1/apps/{app_id}"),
    ("POST", "/v1/apps/{app_id}/orders"),
    ("GET", "/v1/ccsi/{collection}/search"),  # a search: checked below to find none of B's
    ("GET", "/ogc/processes/{process_id}"),
    ("POST", "/ogc/processes/{process_id}/execution"),
    ("GET", "/v1/portal/storylines/{slug}"),  # the portal's public pages
    ("GET", "/v1/portal/apps/{app_id}/dates"),
}


async def _customer_b(http) -> dict:  # type: ignore[no-untyped-def]
    b = await create_customer(http)
    headers = bearer(await get_token(http, b))
    order = await http.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    assert order.status_code == 202
    extra = await http.post(
        "/v1/crm/customers/me/clients", json={"name": "b's script"}, headers=headers
    )
    assert extra.status_code == 201
    return {
        **b,
        "headers": headers,
        "order_id": order.json()["order_id"],
        "extra_client_id": extra.json()["client_id"],
        "extra_client_secret": extra.json()["client_secret"],
    }


async def _snapshot(http, b: dict) -> dict:  # type: ignore[no-untyped-def]
    order = (await http.get(f"/v1/orders/{b['order_id']}", headers=b["headers"])).json()
    me = (await http.get("/v1/crm/customers/me", headers=b["headers"])).json()
    clients = (await http.get("/v1/crm/customers/me/clients", headers=b["headers"])).json()
    product = await http.get(
        f"/v1/ccsi/cure-roi_stats/products/roi_stats-{b['order_id']}", headers=b["headers"]
    )
    assert product.status_code == 200
    identifier = product.json()["identifier"]
    return {"order": order, "me": me, "clients": clients, "product": identifier}


async def _product_of_b(session, b: dict) -> None:  # type: ignore[no-untyped-def]
    """The catalogue product B's order made (as its SUCCESS would register it)."""
    from cure.ccsi import service as ccsi_service
    from tests.factories import VIENNA

    await ccsi_service.register_order_outputs(
        session,
        order_id=uuid.UUID(b["order_id"]),
        customer_id=uuid.UUID(b["customer_id"]),
        app_id="roi_stats",
        app_version="1.0.0",
        roi=VIENNA,
        start=date(2024, 7, 1),
        end=date(2024, 7, 31),
        params={},
        assets={
            "data": {
                "href": f"results/{b['order_id']}/result.geojson",
                "type": "application/geo+json",
            }
        },
    )
    await session.commit()


async def test_customer_a_reaches_nothing_of_customer_b(client, session) -> None:
    b = await _customer_b(client)
    await _product_of_b(session, b)
    before = await _snapshot(client, b)
    a = await create_customer(client)
    a_headers = bearer(await get_token(client, a))

    # Every operation of the OpenAPI document, so routes added later are covered too.
    spec = (await client.get("/openapi.json")).json()
    checked = 0
    for path, operations in spec["paths"].items():
        if "{" not in path:
            continue
        for method in (m.upper() for m in operations):
            if (method, path) in NOT_OWNED:
                continue
            url, params = path, {}
            for name in re.findall(r"{(\w+)}", path):
                assert name in FILL, f"add a value for {{{name}}} ({method} {path})"
                url = url.replace(f"{{{name}}}", FILL[name](b))
                params.update(QUERY.get(name, {}))
            response = await client.request(method, url, headers=a_headers, params=params, json={})
            assert response.status_code in (403, 404), (method, path, response.text)
            checked += 1
    assert checked >= 10

    search = await client.get("/v1/ccsi/cure-roi_stats/search", headers=a_headers)
    identifiers = [f["properties"]["identifier"] for f in search.json()["features"]]
    assert f"roi_stats-{b['order_id']}" not in identifiers

    after = await _snapshot(client, b)
    assert after == before
    # B's extra client still works with its secret.
    token = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(b["extra_client_id"], b["extra_client_secret"]),
    )
    assert token.status_code == 200


async def test_ids_of_missing_and_foreign_objects_answer_alike(client) -> None:
    b = await _customer_b(client)
    a = await create_customer(client)
    a_headers = bearer(await get_token(client, a))
    for path in ("/v1/orders/{}", "/v1/orders/{}/result"):
        foreign = await client.get(path.format(b["order_id"]), headers=a_headers)
        missing = await client.get(path.format(uuid.uuid4()), headers=a_headers)
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json()["error"] == missing.json()["error"]
    foreign = await client.delete(
        f"/v1/crm/customers/me/clients/{b['extra_client_id']}", headers=a_headers
    )
    missing = await client.delete("/v1/crm/customers/me/clients/cure-nope", headers=a_headers)
    assert foreign.status_code == missing.status_code == 404
