"""STAC API in-process: documents, items that validate against the STAC schemas, search filters,
paging by next links (GET and POST), visibility and errors."""

import uuid

from pystac import STACObjectType
from pystac.validation import validate_dict

from tests.ccsi.factories import add_product, box
from tests.factories import customer_with_token
from tests.stac.conftest import validate_collection, validate_item


async def me(client, headers) -> uuid.UUID:
    response = await client.get("/v1/crm/customers/me", headers=headers)
    return uuid.UUID(response.json()["customer_id"])


async def test_the_landing_page_and_conformance(client) -> None:
    landing = (await client.get("/stac")).json()
    assert landing["type"] == "Catalog" and landing["stac_version"] == "1.1.0"
    rels = {(link["rel"], link.get("method")) for link in landing["links"]}
    assert {("conformance", None), ("data", None), ("search", "GET"), ("search", "POST")} <= rels
    conformance = (await client.get("/stac/conformance")).json()["conformsTo"]
    assert conformance == landing["conformsTo"]
    assert "https://api.stacspec.org/v1.0.0/item-search" in conformance
    validate_dict(landing, STACObjectType.CATALOG)


async def test_items_validate_and_carry_expiring_asset_links(client, session, collection) -> None:
    await add_product(
        session,
        collection,
        identifier="P-one",
        start="2024-07-01T10:00:00Z",
        end="2024-07-01T10:05:00Z",
        assets={"data": {"href": "inputs/one.tif", "type": "image/tiff; application=geotiff"}},
    )
    await add_product(session, collection, identifier="P-two", start="2024-07-02T10:00:00Z")
    await session.commit()
    item = (await client.get(f"/stac/collections/{collection}/items/P-one")).json()
    validate_item(item)
    assert item["properties"]["start_datetime"] == "2024-07-01T10:00:00Z"
    assert item["properties"]["datetime"] is None
    href = item["assets"]["data"]["href"]
    assert href.startswith("http") and ("Expires=" in href or "X-Amz-Expires" in href)
    two = (await client.get(f"/stac/collections/{collection}/items/P-two")).json()
    validate_item(two)
    assert two["properties"]["datetime"] == "2024-07-02T10:00:00Z"
    collection_doc = (await client.get(f"/stac/collections/{collection}")).json()
    validate_collection(collection_doc)
    assert collection_doc["extent"]["spatial"]["bbox"] == [[16.3, 48.2, 16.4, 48.3]]


async def test_search_filters_by_bbox_intersects_datetime_collections_and_ids(
    client, session, collection
) -> None:
    other = collection + "-b"
    await add_product(session, collection, identifier="VIE", footprint=box(16.3, 48.2, 16.4, 48.3))
    await add_product(session, collection, identifier="BER", footprint=box(13.3, 52.4, 13.5, 52.6))
    await add_product(session, other, identifier="VIE-LATE", start="2024-08-15T00:00:00Z")
    await session.commit()
    both = f"{collection},{other}"

    async def get(**params) -> list[str]:
        response = await client.get("/stac/search", params=params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/geo+json"
        return sorted(f["id"] for f in response.json()["features"])

    async def post(**body) -> list[str]:
        response = await client.post("/stac/search", json=body)
        assert response.status_code == 200, response.text
        return sorted(f["id"] for f in response.json()["features"])

    assert await get(collections=both) == ["BER", "VIE", "VIE-LATE"]
    assert await get(collections=both, bbox="16,48,17,49") == ["VIE", "VIE-LATE"]
    assert await post(collections=[collection, other], bbox=[16, 48, 17, 49]) == ["VIE", "VIE-LATE"]
    berlin = {"type": "Point", "coordinates": [13.4, 52.5]}
    assert await post(collections=[collection, other], intersects=berlin) == ["BER"]
    assert await get(collections=both, intersects='{"type":"Point","coordinates":[13.4,52.5]}') == [
        "BER"
    ]
    assert await get(collections=both, datetime="2024-08-01T00:00:00Z/..") == ["VIE-LATE"]
    assert await post(collections=[collection, other], datetime="../2024-07-31") == ["BER", "VIE"]
    assert await get(collections=both, datetime="2024-08-15") == ["VIE-LATE"]
    assert await get(ids="VIE,BER", collections=both) == ["BER", "VIE"]
    assert await post(ids=["VIE-LATE"]) == ["VIE-LATE"]
    items = await client.get(f"/stac/collections/{other}/items", params={"bbox": "16,48,17,49"})
    assert [f["id"] for f in items.json()["features"]] == ["VIE-LATE"]


async def test_paging_follows_next_links_by_get_and_post(client, session, collection) -> None:
    for day in range(1, 6):
        await add_product(
            session, collection, identifier=f"D{day}", start=f"2024-07-0{day}T00:00:00Z"
        )
    await session.commit()
    seen, url, params = [], "/stac/search", {"collections": collection, "limit": "2"}
    while url:
        page = (await client.get(url, params=params)).json()
        assert page["numberMatched"] == 5
        seen += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        params = None
    assert seen == ["D5", "D4", "D3", "D2", "D1"]

    seen, body = [], {"collections": [collection], "limit": 2}
    while body is not None:
        page = (await client.post("/stac/search", json=body)).json()
        seen += [f["id"] for f in page["features"]]
        link = next((link for link in page["links"] if link["rel"] == "next"), None)
        assert link is None or link["method"] == "POST"
        body = link["body"] if link else None
    assert seen == ["D5", "D4", "D3", "D2", "D1"]

    items = (await client.get(f"/stac/collections/{collection}/items", params={"limit": 4})).json()
    following = next(link["href"] for link in items["links"] if link["rel"] == "next")
    rest = (await client.get(following)).json()
    assert [f["id"] for f in rest["features"]] == ["D1"]


async def test_a_customers_own_products_are_seen_by_it_alone(client, session, collection) -> None:
    _, owner = await customer_with_token(client)
    _, stranger = await customer_with_token(client)
    await add_product(session, collection, identifier="MINE", owner_id=await me(client, owner))
    await session.commit()
    path = f"/stac/collections/{collection}/items/MINE"
    assert (await client.get(path, headers=owner)).status_code == 200
    for headers in (stranger, {}):
        response = await client.get(path, headers=headers)
        assert response.status_code == 404
        assert response.json()["code"] == "ItemNotFound"
        found = await client.post("/stac/search", json={"ids": ["MINE"]}, headers=headers)
        assert found.json()["features"] == []
    assert (
        await client.get(f"/stac/collections/{collection}", headers=stranger)
    ).status_code == 404
    names = [
        c["id"]
        for c in (await client.get("/stac/collections", headers=owner)).json()["collections"]
    ]
    assert collection in names
    bad_token = await client.get("/stac/search", headers={"Authorization": "Bearer nope"})
    assert bad_token.status_code == 401 and set(bad_token.json()) == {"code", "description"}


async def test_bad_parameters_are_400s_that_name_them(client) -> None:
    cases = [
        ("get", {"bbox": "1,2,3"}, "bbox"),
        ("get", {"datetime": "soon"}, "datetime"),
        ("get", {"limit": "0"}, "limit"),
        ("get", {"intersects": "{not json"}, "intersects"),
        ("get", {"colour": "red"}, "colour"),
        ("get", {"collections": "bad name!"}, "collection"),
        ("post", {"bbox": [1, 2, 3]}, "bbox"),
        (
            "post",
            {"intersects": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}},
            "intersects",
        ),
        ("post", {"sortby": [{"field": "id"}]}, "sortby"),
        (
            "post",
            {"bbox": [0, 0, 1, 1], "intersects": {"type": "Point", "coordinates": [0, 0]}},
            "intersects",
        ),
    ]
    for method, params, named in cases:
        if method == "get":
            response = await client.get("/stac/search", params=params)
        else:
            response = await client.post("/stac/search", json=params)
        assert response.status_code == 400, (params, response.text)
        assert named in response.json()["description"], response.text
    big = await client.get("/stac/search", params={"limit": "100000"})
    assert big.status_code == 200  # the largest page instead


async def test_unknown_collections_and_items_are_404s(client) -> None:
    for path in (
        "/stac/collections/nope",
        "/stac/collections/nope/items",
        "/stac/collections/nope/items/x",
    ):
        response = await client.get(path)
        assert response.status_code == 404 and "code" in response.json()
