import json
import uuid

import pytest
from sqlalchemy import func, select

from cure.orders.models import Order
from cure.outbox.models import OutboxMessage
from tests.factories import VIENNA, customer_with_token, order_body, problems

SQUARE = VIENNA["coordinates"][0]


async def _stored(session, customer_id: str) -> tuple[int, int]:
    orders = (
        await session.execute(
            select(func.count()).where(Order.customer_id == uuid.UUID(customer_id))
        )
    ).scalar_one()
    outbox = (
        await session.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .join(Order, Order.id == OutboxMessage.subject_id)
            .where(Order.customer_id == uuid.UUID(customer_id))
        )
    ).scalar_one()
    return orders, outbox


async def test_submit_stores_order_event_and_outbox_row_together(client, session) -> None:
    customer, headers = await customer_with_token(client)
    response = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "RECEIVED"
    assert body["params"] == {"area_unit": "km2", "precision": 3}
    assert body["roi"] == VIENNA
    assert response.headers["location"] == f"/v1/orders/{body['order_id']}"
    assert await _stored(session, customer["customer_id"]) == (1, 1)
    # the ROI is a PostGIS geometry in SRID 4326
    srid = (
        await session.execute(
            select(func.ST_SRID(Order.roi)).where(Order.id == uuid.UUID(body["order_id"]))
        )
    ).scalar_one()
    assert srid == 4326


BAD_ROIS = {
    "not an object": "POLYGON((0 0, 1 0, 1 1, 0 0))",
    "point": {"type": "Point", "coordinates": [16.3, 48.2]},
    "no coordinates": {"type": "Polygon"},
    "unclosed ring": {"type": "Polygon", "coordinates": [SQUARE[:-1] + [[16.31, 48.2]]]},
    "too few positions": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]},
    "latitude out of range": {
        "type": "Polygon",
        "coordinates": [[[16.3, 48.2], [16.4, 48.2], [16.4, 98.3], [16.3, 48.2]]],
    },
    "projected coordinates": {
        "type": "Polygon",
        "coordinates": [
            [[600000, 5300000], [610000, 5300000], [610000, 5310000], [600000, 5300000]]
        ],
    },
    "non-WGS84 crs": {
        "type": "Polygon",
        "coordinates": [SQUARE],
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}},
    },
    "self-intersecting": {
        "type": "Polygon",
        "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
    },
    "strings for numbers": {
        "type": "Polygon",
        "coordinates": [[["0", "0"], ["1", "0"], ["1", "1"], ["0", "0"]]],
    },
    "no area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [2, 0], [0, 0]]]},
    "unknown member": {"type": "Polygon", "coordinates": [SQUARE], "colour": "red"},
}


@pytest.mark.parametrize("case", sorted(BAD_ROIS))
async def test_bad_roi_is_422_and_stores_nothing(client, session, case: str) -> None:
    customer, headers = await customer_with_token(client)
    response = await client.post(
        "/v1/apps/roi_stats/orders", json=order_body(roi=BAD_ROIS[case]), headers=headers
    )
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "ValidationError"
    assert error["detail"][0]["loc"][:2] == ["body", "roi"]
    assert error["detail"][0]["msg"]
    assert await _stored(session, customer["customer_id"]) == (0, 0)


BAD_BODIES = {
    "end before start": order_body(start_date="2024-07-31", end_date="2024-07-01"),
    "not a date": order_body(start_date="yesterday"),
    "no start date": {"roi": VIENNA, "params": {}},
    "unknown field": order_body(status="SUCCESS"),
    "owner injected": order_body(customer_id=str(uuid.uuid4())),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
async def test_bad_order_body_is_422_and_stores_nothing(client, session, case: str) -> None:
    customer, headers = await customer_with_token(client)
    response = await client.post(
        "/v1/apps/roi_stats/orders", json=BAD_BODIES[case], headers=headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "ValidationError"
    assert await _stored(session, customer["customer_id"]) == (0, 0)


async def test_params_failing_the_schema_are_422_with_reasons(client, session) -> None:
    customer, headers = await customer_with_token(client)
    response = await client.post(
        "/v1/apps/roi_stats/orders",
        json=order_body(params={"area_unit": "acres", "extra": 1}),
        headers=headers,
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "InvalidParameters"
    assert any("acres" in problem for problem in problems(body))
    assert any("extra" in problem for problem in problems(body))
    assert await _stored(session, customer["customer_id"]) == (0, 0)


async def test_unknown_app_is_404_and_stores_nothing(client, session) -> None:
    customer, headers = await customer_with_token(client)
    response = await client.post("/v1/apps/nope/orders", json=order_body(), headers=headers)
    assert response.status_code == 404
    assert response.json()["error"] == "AppNotFound"
    assert await _stored(session, customer["customer_id"]) == (0, 0)


async def test_missing_or_invalid_token_stores_nothing(client, session) -> None:
    customer, _ = await customer_with_token(client)
    no_token = await client.post("/v1/apps/roi_stats/orders", json=order_body())
    bad_token = await client.post(
        "/v1/apps/roi_stats/orders", json=order_body(), headers={"Authorization": "Bearer x.y.z"}
    )
    assert no_token.status_code == 401 and bad_token.status_code == 401
    assert no_token.json()["error"] == "InvalidToken"
    assert await _stored(session, customer["customer_id"]) == (0, 0)


async def test_another_customers_order_is_404(client) -> None:
    _, owner = await customer_with_token(client)
    _, stranger = await customer_with_token(client)
    order_id = (
        await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=owner)
    ).json()["order_id"]
    assert (await client.get(f"/v1/orders/{order_id}", headers=owner)).status_code == 200
    for path in (f"/v1/orders/{order_id}", f"/v1/orders/{order_id}/result"):
        response = await client.get(path, headers=stranger)
        assert response.status_code == 404, path
        assert response.json()["error"] == "OrderNotFound"
    missing = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=stranger)
    assert missing.json()["detail"].startswith("no order with id")


async def test_result_before_success_is_409(client) -> None:
    _, headers = await customer_with_token(client)
    order_id = (
        await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    ).json()["order_id"]
    response = await client.get(f"/v1/orders/{order_id}/result", headers=headers)
    assert response.status_code == 409
    assert response.json()["error"] == "ResultNotReady"


async def test_malformed_order_id_is_422(client) -> None:
    _, headers = await customer_with_token(client)
    response = await client.get("/v1/orders/not-a-uuid", headers=headers)
    assert response.status_code == 422
    assert response.json()["error"] == "ValidationError"


async def test_malformed_json_is_422(client) -> None:
    _, headers = await customer_with_token(client)
    response = await client.post(
        "/v1/apps/roi_stats/orders",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "ValidationError"


async def test_hostile_numbers_and_names_are_4xx_not_500(client, session) -> None:
    customer, headers = await customer_with_token(client)
    huge = {"type": "Polygon", "coordinates": [[[10**400, 0], [1, 0], [1, 1], [10**400, 0]]]}
    response = await client.post(
        "/v1/apps/roi_stats/orders",
        content=json.dumps(order_body(roi=huge)),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    long_label = "http://" + "a" * 70 + ".example.org/hook"
    response = await client.post(
        "/v1/apps/roi_stats/orders", json=order_body(callback_url=long_label), headers=headers
    )
    assert response.status_code == 422, response.text
    assert await _stored(session, customer["customer_id"]) == (0, 0)
