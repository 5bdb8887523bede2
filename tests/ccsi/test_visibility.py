"""Who sees which product: input products are public, a generated product is its owner's until an
admin publishes it; admins see everything."""

import uuid
from datetime import date
from xml.etree import ElementTree

from sqlalchemy import func, select

from cure.ccsi import service as ccsi_service
from cure.ccsi.models import Product
from tests.ccsi.factories import add_product, box
from tests.factories import create_admin, customer_with_token


async def _identifiers(client, url: str, headers: dict[str, str] | None = None) -> set[str]:  # type: ignore[no-untyped-def]
    response = await client.get(url, headers=headers or {})
    assert response.status_code == 200, response.text
    return {f["properties"]["identifier"] for f in response.json()["features"]}


async def test_owned_products_are_seen_by_their_owner_and_admins_only(
    client, session, collection
) -> None:
    owner, owner_headers = await customer_with_token(client)
    _, other_headers = await customer_with_token(client)
    _, admin_headers = await create_admin(client, session)
    await add_product(session, collection, identifier="public")
    await add_product(
        session, collection, identifier="mine", owner_id=uuid.UUID(owner["customer_id"])
    )
    await session.commit()
    search = f"/v1/ccsi/{collection}/search"
    assert await _identifiers(client, search) == {"public"}
    assert await _identifiers(client, search, other_headers) == {"public"}
    assert await _identifiers(client, search, owner_headers) == {"public", "mine"}
    assert await _identifiers(client, search, admin_headers) == {"public", "mine"}
    one = f"/v1/ccsi/{collection}/products/mine"
    assert (await client.get(one, headers=other_headers)).status_code == 404
    assert (await client.get(one)).status_code == 404
    assert (await client.get(one, headers=owner_headers)).json()["identifier"] == "mine"
    # The collections list and the description document do not give it away either.
    collections = (await client.get("/v1/ccsi/collections", headers=other_headers)).json()
    (summary,) = [c for c in collections["collections"] if c["id"] == collection]
    assert summary["product_count"] == 1


async def test_publishing_makes_a_product_visible_to_everyone(client, session, collection) -> None:
    owner, _ = await customer_with_token(client)
    _, other_headers = await customer_with_token(client)
    _, admin_headers = await create_admin(client, session)
    await add_product(
        session, collection, identifier="result", owner_id=uuid.UUID(owner["customer_id"])
    )
    await session.commit()
    publish = f"/v1/ccsi/{collection}/products/result/publish"
    assert (await client.post(publish, headers=other_headers)).status_code == 403
    assert (await client.post(publish)).status_code == 401
    assert await _identifiers(client, f"/v1/ccsi/{collection}/search") == set()
    published = await client.post(publish, headers=admin_headers)
    assert published.status_code == 200 and published.json()["published"] is True
    assert await _identifiers(client, f"/v1/ccsi/{collection}/search") == {"result"}
    assert await _identifiers(
        client, "/v1/ccsi/search?collection=" + collection, other_headers
    ) == {"result"}
    missing = await client.post(
        f"/v1/ccsi/{collection}/products/nope/publish", headers=admin_headers
    )
    assert missing.status_code == 404


async def test_a_bad_token_is_refused_not_treated_as_anonymous(client) -> None:
    response = await client.get("/v1/ccsi/search", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401


async def test_order_outputs_become_the_customers_product_once(client, session) -> None:
    customer, headers = await customer_with_token(client)
    order_id, app_id = uuid.uuid4(), f"app{uuid.uuid4().hex[:8]}"
    arguments = {
        "order_id": order_id,
        "customer_id": uuid.UUID(customer["customer_id"]),
        "app_id": app_id,
        "app_version": "1.2.0",
        "roi": box(16.3, 48.2, 16.4, 48.3),
        "start": date(2024, 7, 1),
        "end": date(2024, 7, 31),
        "params": {"threshold": 0.4},
        "assets": {
            "result": {
                "href": f"results/{order_id}/result.tif",
                "type": "image/tiff",
                "size": 42,
                "checksum": "sha256:" + "a" * 64,
                "roles": ["data"],
            }
        },
    }
    first = await ccsi_service.register_order_outputs(session, **arguments)
    await session.commit()
    again = await ccsi_service.register_order_outputs(session, **arguments)
    await session.commit()
    assert again.id == first.id
    assert (first.collection, first.identifier) == (f"cure-{app_id}", f"{app_id}-{order_id}")
    assert first.owner_id == uuid.UUID(customer["customer_id"]) and not first.published
    assert first.properties["app_version"] == "1.2.0"
    assert first.properties["params"] == {"threshold": 0.4}
    url = f"/v1/ccsi/cure-{app_id}/search"
    page = (await client.get(url, params={"timeStart": "2024-07-31"}, headers=headers)).json()
    assert page["totalResults"] == 1
    feature = page["features"][0]
    assert feature["properties"]["start"] == "2024-07-01T00:00:00Z"
    assert feature["properties"]["end"] == "2024-07-31T23:59:59.999999Z"
    assert (await client.get(url)).json()["totalResults"] == 0
    # The order's row is a plain value: a WKBElement from the orders table works the same way.
    again_from_db = await ccsi_service.register_order_outputs(
        session, **{**arguments, "roi": first.footprint}
    )
    assert again_from_db.id == first.id
    count = await session.scalar(
        select(func.count()).select_from(Product).where(Product.order_id == order_id)
    )
    assert count == 1


async def test_own_products_need_a_token_that_may_read_orders(client, session, collection) -> None:
    """A token without orders:read (say, only account:read) sees public products only."""
    import uuid as uuid_

    from cure.ccsi import service as ccsi_service
    from tests.factories import VIENNA, create_customer, get_token

    customer = await create_customer(client)
    order_id = uuid_.uuid4()
    await ccsi_service.register_order_outputs(
        session,
        order_id=order_id,
        customer_id=uuid_.UUID(customer["customer_id"]),
        app_id="roi_stats",
        app_version="1.0.0",
        roi=VIENNA,
        start=date(2024, 7, 1),
        end=date(2024, 7, 1),
        params={},
        assets={"data": {"href": "results/x/result.geojson", "type": "application/geo+json"}},
    )
    await session.commit()
    path = f"/v1/ccsi/cure-roi_stats/products/roi_stats-{order_id}"
    reader = await get_token(client, customer, scope="orders:read")
    narrow = await get_token(client, customer, scope="account:read")
    assert (
        await client.get(path, headers={"Authorization": f"Bearer {reader}"})
    ).status_code == 200
    assert (
        await client.get(path, headers={"Authorization": f"Bearer {narrow}"})
    ).status_code == 404


async def test_lineage_names_another_customers_product_by_its_collection_alone(
    client, session, collection
) -> None:
    """A product's lineage: an input product and the reader's own product in full, another
    customer's product (here to anyone once the product made from it is published) by its
    collection alone, its identifier and id withheld; admins see it all."""
    from cure.ccsi.schemas import ProductReference

    owner, owner_headers = await customer_with_token(client)
    _, other_headers = await customer_with_token(client)
    _, admin_headers = await create_admin(client, session)
    owner_id = uuid.UUID(owner["customer_id"])
    source = await add_product(session, collection, identifier="input-scene")
    suhi = await add_product(session, collection, identifier="suhi-private", owner_id=owner_id)
    made = await ccsi_service.register_order_outputs(
        session,
        order_id=uuid.uuid4(),
        customer_id=owner_id,
        app_id="heat_exposure",
        app_version="1.0.0",
        roi=box(16.3, 48.2, 16.4, 48.3),
        start=date(2024, 7, 15),
        end=date(2024, 7, 15),
        params={},
        assets={"data": {"href": "results/x/heat.tif", "type": "image/tiff", "roles": ["data"]}},
        derived_from=[
            ProductReference(collection=collection, identifier="suhi-private", id=suhi.id),
            ProductReference(collection=collection, identifier="input-scene", id=source.id),
            ProductReference(collection="sentinel2-l2a", identifier="S2B_X", source="earth"),
        ],
    )
    made.published = True
    await session.commit()
    url = f"/v1/ccsi/{made.collection}/products/{made.identifier}"
    full = [
        {"collection": collection, "identifier": "suhi-private", "id": str(suhi.id)},
        {"collection": collection, "identifier": "input-scene", "id": str(source.id)},
        {"collection": "sentinel2-l2a", "identifier": "S2B_X", "id": None},
    ]
    reduced = [{"collection": collection, "identifier": None, "id": None}, *full[1:]]
    for headers, expected in (
        (owner_headers, full),
        (admin_headers, full),
        (other_headers, reduced),
        ({}, reduced),
    ):
        read = await client.get(url, headers=headers)
        assert read.status_code == 200, read.text
        lineage = [
            {key: ref[key] for key in ("collection", "identifier", "id")}
            for ref in read.json()["derived_from"]
        ]
        assert lineage == expected
    search = await client.get(f"/v1/ccsi/{made.collection}/search", params={"format": "json"})
    (feature,) = search.json()["features"]
    assert "suhi-private" not in str(feature) and str(suhi.id) not in str(feature)
    # the Atom answer names the lineage too, as the reader may see it
    for headers, shown in ((owner_headers, True), ({}, False)):
        atom = await client.get(
            f"/v1/ccsi/{made.collection}/search", params={"format": "atom"}, headers=headers
        )
        assert atom.status_code == 200, atom.text
        (entry,) = ElementTree.fromstring(atom.text).iter("{http://www.w3.org/2005/Atom}entry")
        made_from = [
            (e.get("collection"), e.get("identifier"))
            for e in entry.iter("{urn:cure:ccsi}derivedFrom")
        ]
        private = (collection, "suhi-private" if shown else None)
        assert made_from == [
            private, (collection, "input-scene"), ("sentinel2-l2a", "S2B_X")
        ]  # fmt: skip


async def test_lineage_names_local_products_as_stored_whatever_the_event_said(
    client, session, collection
) -> None:
    """The order's event names its inputs, but a local one is recorded as its stored product is
    named and owned; a product of CURE's own collections that names no stored one (removed, or a
    made-up reference) is recorded by its collection alone."""
    from cure.ccsi.schemas import ProductReference

    owner, _ = await customer_with_token(client)
    other, other_headers = await customer_with_token(client)
    private = await add_product(
        session, collection, identifier="suhi-private", owner_id=uuid.UUID(owner["customer_id"])
    )
    made = await ccsi_service.register_order_outputs(
        session,
        order_id=uuid.uuid4(),
        customer_id=uuid.UUID(other["customer_id"]),
        app_id="heat_exposure",
        app_version="1.0.0",
        roi=box(16.3, 48.2, 16.4, 48.3),
        start=date(2024, 7, 15),
        end=date(2024, 7, 15),
        params={},
        assets={"data": {"href": "results/y/heat.tif", "type": "image/tiff", "roles": ["data"]}},
        derived_from=[
            # names another customer's product as if it were a public input of another name
            ProductReference(collection="ghs-pop", identifier="GHS_POP_X", id=private.id),
            ProductReference(collection="cure-suhi", identifier="suhi-gone", id=uuid.uuid4()),
            ProductReference(collection="cure-suhi", identifier="suhi-no-id"),
        ],
    )
    await session.commit()
    read = await client.get(
        f"/v1/ccsi/{made.collection}/products/{made.identifier}", headers=other_headers
    )
    assert read.status_code == 200, read.text
    lineage = [(r["collection"], r["identifier"], r["id"]) for r in read.json()["derived_from"]]
    assert lineage == [(collection, None, None), ("cure-suhi", None, None)]
