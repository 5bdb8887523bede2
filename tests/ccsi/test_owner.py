"""A published product names its owner only to that owner and to admins: other customers and
anonymous readers see the product, never whose it is, in any of the catalogue's representations."""

import uuid

from tests.ccsi.factories import add_product
from tests.factories import create_admin, customer_with_token


async def test_a_published_product_names_its_owner_to_the_owner_and_admins_only(
    client, session, collection
) -> None:
    owner, owner_headers = await customer_with_token(client)
    _, other_headers = await customer_with_token(client)
    _, admin_headers = await create_admin(client, session)
    owner_id = owner["customer_id"]
    await add_product(
        session, collection, identifier="result", owner_id=uuid.UUID(owner_id), published=True
    )
    await session.commit()
    one = f"/v1/ccsi/{collection}/products/result"

    async def read(headers: dict[str, str]) -> dict[str, object]:
        response = await client.get(one, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    for headers in (other_headers, {}):
        product = await read(headers)
        assert product["identifier"] == "result" and product["published"] is True
        assert product["owner_id"] is None
    assert (await read(owner_headers))["owner_id"] == owner_id
    assert (await read(admin_headers))["owner_id"] == owner_id

    # Nor do the searches (GeoJSON, Atom) and the STAC facade give it away.
    for url in (
        f"/v1/ccsi/{collection}/search",
        f"/v1/ccsi/{collection}/search?format=atom",
        f"/v1/ccsi/search?collection={collection}",
        f"/stac/collections/{collection}/items",
        f"/stac/collections/{collection}/items/result",
        f"/stac/search?collections={collection}",
    ):
        for headers in (other_headers, {}):
            response = await client.get(url, headers=headers)
            assert response.status_code == 200, (url, response.text)
            assert "result" in response.text, url  # the product is there...
            assert owner_id not in response.text, url  # ...but not its owner


async def test_an_admin_publishing_a_product_sees_its_owner(client, session, collection) -> None:
    owner, _ = await customer_with_token(client)
    _, admin_headers = await create_admin(client, session)
    await add_product(
        session, collection, identifier="result", owner_id=uuid.UUID(owner["customer_id"])
    )
    await session.commit()
    published = await client.post(
        f"/v1/ccsi/{collection}/products/result/publish", headers=admin_headers
    )
    assert published.status_code == 200, published.text
    assert published.json()["owner_id"] == owner["customer_id"]
