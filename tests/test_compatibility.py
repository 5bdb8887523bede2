"""The original platform's paths answer as deprecated aliases of CURE's own, hidden from the docs."""

from tests.factories import PASSWORD, unique_email


async def test_the_old_paths_work_and_say_they_are_deprecated(client) -> None:
    body = {"name": "Old Script", "email": unique_email(), "password": PASSWORD}
    created = await client.post("/v1/crm/customers/create", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["deprecation"] == "true"
    assert created.headers["link"] == '</v1/crm/customers>; rel="successor-version"'
    customer = created.json()

    token = await client.post(
        "/v1/auth/get_bearer_token",
        data={"grant_type": "client_credentials"},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    assert token.status_code == 200, token.text
    assert token.headers["deprecation"] == "true"
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert (await client.get("/v1/crm/customers/me", headers=headers)).status_code == 200

    order = {
        "roi": {
            "type": "Polygon",
            "coordinates": [[[16.3, 48.2], [16.4, 48.2], [16.4, 48.3], [16.3, 48.2]]],
        },
        "start_date": "2024-07-01",
    }
    submitted = await client.post("/v1/apps/roi_stats/orders", json=order, headers=headers)
    order_id = submitted.json()["order_id"]
    status = await client.get(f"/v1/services/order_status/{order_id}", headers=headers)
    assert status.status_code == 200 and status.json()["order_id"] == order_id
    assert status.headers["deprecation"] == "true"

    refused = await client.post("/v1/auth/get_bearer_token", data={"grant_type": "password"})
    assert refused.status_code in (400, 401) and "error" in refused.json()

    paths = (await client.get("/openapi.json")).json()["paths"]
    for old in ("/v1/auth/get_bearer_token", "/v1/crm/customers/create"):
        assert old not in paths
    assert "/v1/services/order_status/{order_id}" not in paths
    assert "/v1/auth/token" in paths and "/ogc/processes" in paths and "/stac/search" in paths
