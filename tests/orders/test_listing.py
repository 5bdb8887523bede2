"""GET /v1/orders: only the caller's orders, filters, bbox through PostGIS, sorting, cursors."""

import uuid

import pytest

from cure.auth.models import Customer
from tests.factories import VIENNA, customer_with_token, get_token, order_body

SALZBURG = {
    "type": "Polygon",
    "coordinates": [[[13.0, 47.7], [13.1, 47.7], [13.1, 47.8], [13.0, 47.8], [13.0, 47.7]]],
}


async def submit(client, headers, **overrides) -> str:
    response = await client.post(
        "/v1/apps/roi_stats/orders", json=order_body(**overrides), headers=headers
    )
    assert response.status_code == 202, response.text
    return str(response.json()["order_id"])


async def ids(client, headers, **params) -> list[str]:
    response = await client.get("/v1/orders", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["order_id"] for item in response.json()["items"]]


async def test_only_own_orders_newest_first(client) -> None:
    _, mine = await customer_with_token(client)
    _, theirs = await customer_with_token(client)
    first, second = await submit(client, mine), await submit(client, mine)
    other = await submit(client, theirs)
    assert await ids(client, mine) == [second, first]
    assert await ids(client, mine, sort="created_at") == [first, second]
    assert other not in await ids(client, mine)


async def test_filters_status_app_dates_and_bbox(client) -> None:
    _, headers = await customer_with_token(client)
    vienna = await submit(client, headers, roi=VIENNA)
    salzburg = await submit(client, headers, roi=SALZBURG)
    assert set(await ids(client, headers, status="RECEIVED")) == {vienna, salzburg}
    assert await ids(client, headers, status=["SUCCESS", "FAILED"]) == []
    assert set(await ids(client, headers, app_id="roi_stats")) == {vienna, salzburg}
    assert await ids(client, headers, app_id="other") == []
    assert await ids(client, headers, bbox="16.0,48.0,16.5,48.5") == [vienna]
    assert await ids(client, headers, bbox="12.9,47.6,13.05,47.75") == [salzburg]
    assert await ids(client, headers, bbox="0,0,1,1") == []
    assert set(await ids(client, headers, created_after="2000-01-01T00:00:00Z")) == {
        vienna,
        salzburg,
    }
    assert await ids(client, headers, created_before="2000-01-01T00:00:00Z") == []
    assert set(await ids(client, headers, updated_before="2999-01-01T00:00:00+00:00")) == {
        vienna,
        salzburg,
    }


async def test_cursor_pagination_is_stable_and_complete(client) -> None:
    _, headers = await customer_with_token(client)
    made = [await submit(client, headers) for _ in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/orders", params=params, headers=headers)).json()
        seen += [item["order_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    # a cursor is bound to its sort
    first = (await client.get("/v1/orders", params={"limit": 1}, headers=headers)).json()
    wrong = await client.get(
        "/v1/orders",
        params={"cursor": first["next_cursor"], "sort": "updated_at"},
        headers=headers,
    )
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("status", "DONE"),
        ("bbox", "1,2,3"),
        ("bbox", "10,10,5,5"),
        ("bbox", "a,b,c,d"),
        ("created_after", "yesterday"),
        ("created_after", "2024-01-01T00:00:00"),  # no time zone
        ("sort", "name"),
        ("limit", "0"),
        ("limit", "1000"),
        ("cursor", "garbage"),
        ("colour", "red"),
    ],
)
async def test_invalid_filters_name_the_parameter(client, parameter: str, value: str) -> None:
    _, headers = await customer_with_token(client)
    response = await client.get("/v1/orders", params={parameter: value}, headers=headers)
    assert response.status_code == 422, response.text
    locations = [error["loc"] for error in response.json()["detail"]]
    assert any(loc[:2] == ["query", parameter] for loc in locations), locations


async def test_customer_filter_is_for_admins(client, session) -> None:
    owner, owner_headers = await customer_with_token(client)
    order = await submit(client, owner_headers)
    _, stranger = await customer_with_token(client)
    refused = await client.get(
        "/v1/orders", params={"customer_id": owner["customer_id"]}, headers=stranger
    )
    assert refused.status_code == 403

    admin, _ = await customer_with_token(client)
    row = await session.get(Customer, uuid.UUID(admin["customer_id"]))
    row.is_admin = True
    row.scopes = [*row.scopes, "admin"]
    await session.commit()
    admin_headers = {"Authorization": f"Bearer {await get_token(client, admin)}"}
    assert await ids(client, admin_headers, customer_id=owner["customer_id"]) == [order]
    assert (await client.get(f"/v1/orders/{order}", headers=admin_headers)).status_code == 200


async def test_forged_cursors_and_extreme_times_are_422(client) -> None:
    import base64
    import json

    _, headers = await customer_with_token(client)
    forged = [
        ["-created_at", "2024-01-01T00:00:00+00:00", 5],
        ["-created_at", "2024-01-01T00:00:00", "00000000-0000-0000-0000-000000000000"],
        {"not": "a list"},
    ]
    for raw in forged:
        cursor = base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")
        response = await client.get("/v1/orders", params={"cursor": cursor}, headers=headers)
        assert response.status_code == 422, raw
    extreme = await client.get(
        "/v1/orders", params={"created_after": "0001-01-01T00:00:00+14:00"}, headers=headers
    )
    assert extreme.status_code == 422
    assert extreme.json()["detail"][0]["loc"][:2] == ["query", "created_after"]


@pytest.mark.parametrize(
    ("bbox", "says"),
    [
        ("1,2", "must be four numbers"),
        ("1,2,3,nan", "must be four numbers"),
        ("190,0,191,1", "longitudes must lie within -180..180"),
        ("0,-91,1,1", "latitudes must lie within -90..90"),
        ("2,0,1,1", "the minimum must not exceed the maximum"),
    ],
)
async def test_one_bbox_rule_for_orders_catalogue_and_portal(client, bbox: str, says: str) -> None:
    """The orders' listing, the catalogue's search and the portal's dates read a bbox with one
    parser (cure.kit.geo.parse_bbox): the same box is refused by each, for the same reason."""
    _, headers = await customer_with_token(client)
    answers = [
        await client.get("/v1/orders", params={"bbox": bbox}, headers=headers),
        await client.get("/v1/ccsi/search", params={"bbox": bbox, "format": "json"}),
        await client.get("/v1/portal/apps/suhi/dates", params={"bbox": bbox}),
    ]
    for answer in answers:
        assert answer.status_code in (400, 422), answer.text
        assert says in answer.text and "bbox" in answer.text
