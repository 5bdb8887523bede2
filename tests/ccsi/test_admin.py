"""Admins register and remove products; nobody else can."""

import pytest

from tests.ccsi.factories import box, product_body
from tests.factories import create_admin, customer_with_token


async def test_register_read_duplicate_and_delete(client, collection, session) -> None:
    _, admin = await create_admin(client, session)
    body = product_body(identifier="S2A_MSIL2A_20240701T100031_T33UXP")
    created = await client.post(f"/v1/ccsi/{collection}/products", json=body, headers=admin)
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["identifier"] == body["identifier"] and product["collection"] == collection
    assert product["owner_id"] is None and product["footprint"] == body["footprint"]
    location = created.headers["Location"]
    assert location == f"/v1/ccsi/{collection}/products/{body['identifier']}"
    assert (await client.get(location)).json()["id"] == product["id"]

    again = await client.post(f"/v1/ccsi/{collection}/products", json=body, headers=admin)
    assert again.status_code == 409
    assert again.json()["error"] == "ProductExists"
    # The same identifier in another collection is another product.
    other = await client.post(f"/v1/ccsi/{collection}-b/products", json=body, headers=admin)
    assert other.status_code == 201

    deleted = await client.delete(location, headers=admin)
    assert deleted.status_code == 204
    assert (await client.get(location)).status_code == 404
    assert (await client.delete(location, headers=admin)).status_code == 404
    search = (await client.get(f"/v1/ccsi/{collection}/search")).json()
    assert search["totalResults"] == 0


async def test_non_admins_cannot_register_or_delete(client, collection) -> None:
    _, customer = await customer_with_token(client)
    url = f"/v1/ccsi/{collection}/products"
    assert (await client.post(url, json=product_body(), headers=customer)).status_code == 403
    assert (await client.post(url, json=product_body())).status_code == 401
    assert (await client.delete(f"{url}/anything", headers=customer)).status_code == 403
    assert (await client.get(f"/v1/ccsi/{collection}/search")).json()["totalResults"] == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"footprint": {"type": "Point", "coordinates": [16.3, 48.2]}},
        {"footprint": box(170, 10, 190, 20)},  # outside WGS84
        {
            "footprint": {
                "type": "Polygon",
                "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]],
            }
        },
        {"footprint": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}},
        {"start": "2024-07-02T00:00:00Z", "end": "2024-07-01T00:00:00Z"},
        {"start": "not a time"},
        {"identifier": "../escape"},
        {"identifier": ""},
        {"owner_id": "00000000-0000-0000-0000-000000000000"},  # unknown fields are refused
        {"assets": {"data": {"href": "/etc/passwd", "type": "image/tiff"}}},
        {"assets": {"data": {"href": "s3://other-bucket/x.tif", "type": "image/tiff"}}},
        {"assets": {"data": {"href": "a/../../b", "type": "image/tiff"}}},
        {"assets": {"data": {"href": "x.tif", "type": "image/tiff", "checksum": "md5:abc"}}},
        {"assets": {"data": {"href": "x.tif", "type": "image/tiff", "size": -1}}},
        {"assets": {"bad key!": {"href": "x.tif", "type": "image/tiff"}}},
        {"properties": {"text": "nul\u0000"}},
    ],
)
async def test_a_bad_registration_is_refused_with_a_reason(
    client, collection, overrides, session
) -> None:
    _, admin = await create_admin(client, session)
    response = await client.post(
        f"/v1/ccsi/{collection}/products", json=product_body(**overrides), headers=admin
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "ValidationError"
    assert response.json()["detail"][0]["msg"]


async def test_footprint_errors_name_the_footprint(client, collection, session) -> None:
    _, admin = await create_admin(client, session)
    body = product_body(footprint=box(170, 10, 190, 20))
    response = await client.post(f"/v1/ccsi/{collection}/products", json=body, headers=admin)
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == "footprint" and "roi" not in error["msg"]


async def test_a_bad_collection_name_is_refused(client, session) -> None:
    _, admin = await create_admin(client, session)
    response = await client.post("/v1/ccsi/-x!/products", json=product_body(), headers=admin)
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["path", "collection"]
