"""Inputs that once answered 500 get a 4xx with the project's error shape; an admin acting on a
customer's order stays anonymous in its history."""

import json

import pytest

from cure.kit import geo
from tests.factories import VIENNA, create_admin, customer_with_token, order_body


def _nested(depth: int) -> object:
    """A JSON value ``depth`` levels deep, objects and arrays in turn."""
    value: object = 1
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


async def _submit(client, headers, body):  # type: ignore[no-untyped-def]
    return await client.post("/v1/apps/roi_stats/orders", json=body, headers=headers)


@pytest.mark.parametrize(
    "crs",
    [
        {"type": "name", "properties": [1]},
        {"type": "name", "properties": {"name": ["EPSG:4326"]}},
        {"type": "name", "properties": {"name": {"x": 1}}},
        "EPSG:4326",
        [],
    ],
)
async def test_a_malformed_crs_member_is_a_422(client, crs) -> None:
    _, headers = await customer_with_token(client)
    answer = await _submit(client, headers, order_body(roi={**VIENNA, "crs": crs}))
    assert answer.status_code == 422
    assert answer.json()["error"] == "ValidationError"


@pytest.mark.parametrize("field", ["params", "roi"])
async def test_deeply_nested_json_is_a_4xx(client, field) -> None:
    _, headers = await customer_with_token(client)
    body = order_body(**{field: _nested(600)})
    answer = await client.post(
        "/v1/apps/roi_stats/orders",
        content=json.dumps(body),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert 400 <= answer.status_code < 500
    assert set(answer.json()) == {"error", "detail"}


async def test_params_deeper_than_the_limit_are_refused_with_a_reason(client) -> None:
    _, headers = await customer_with_token(client)
    answer = await _submit(client, headers, order_body(params={"x": _nested(40)}))
    assert answer.status_code == 422
    assert "nested" in json.dumps(answer.json()["detail"])


def test_the_region_is_counted_while_it_is_read() -> None:
    """Positions are counted ring by ring as the region is walked: one past the limit is refused
    before any of its coordinates is looked at, let alone converted."""
    examined = []

    class Position(list):  # records every look at a coordinate
        def __getitem__(self, index):  # type: ignore[no-untyped-def]
            examined.append(index)
            return super().__getitem__(index)

    corners = [Position(p) for p in ([0.0, 0.0], [1.0, 0.0], [1.0, 1.0])]
    ring = corners * geo.MAX_VERTICES + [corners[0]]  # three times the limit
    with pytest.raises(ValueError, match="at most"):
        geo.parse_roi({"type": "Polygon", "coordinates": [ring]})
    assert examined == []
    small = [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]
    with pytest.raises(ValueError, match="at most"):  # the limit counts across polygons too
        geo.parse_roi({"type": "MultiPolygon", "coordinates": [small, [ring]]})
    assert examined == []


async def test_an_over_long_password_is_refused_the_same_for_every_email(client) -> None:
    from tests.factories import create_customer

    customer = await create_customer(client)
    answers = []
    for email in (customer["email"], "nobody-" + customer["email"]):
        form = {"grant_type": "password", "client_id": "cure-portal", "username": email}
        answers.append(await client.post("/v1/auth/token", data={**form, "password": "p" * 5000}))
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["error"] == "invalid_request"


async def test_an_admin_cancelling_a_customer_order_is_recorded_as_admin(client, session) -> None:
    customer, headers = await customer_with_token(client)
    order = (await _submit(client, headers, order_body())).json()
    admin, admin_headers = await create_admin(client, session)
    cancelled = await client.post(f"/v1/orders/{order['order_id']}/cancel", headers=admin_headers)
    assert cancelled.status_code == 200
    events = (await client.get(f"/v1/orders/{order['order_id']}/events", headers=headers)).json()
    assert [e["actor"] for e in events] == [f"customer:{customer['customer_id']}", "admin"]
    seen_by_customer = json.dumps(
        (await client.get(f"/v1/orders/{order['order_id']}", headers=headers)).json()
    )
    assert admin["customer_id"] not in seen_by_customer


async def test_dates_at_the_calendars_edges_are_not_a_500(client) -> None:
    """An app whose input looks back years, ordered for the calendar's first or last days."""
    from tests.factories import customer_with_token

    _, headers = await customer_with_token(client)
    for day in ("0001-01-02", "9999-12-31"):
        body = {
            "roi": {
                "type": "Polygon",
                "coordinates": [
                    [[16.3, 48.2], [16.4, 48.2], [16.4, 48.3], [16.3, 48.3], [16.3, 48.2]]
                ],
            },
            "start_date": day,
        }
        response = await client.post("/v1/apps/suhi/orders", json=body, headers=headers)
        assert response.status_code == 422, (day, response.text)  # no input on such a day
