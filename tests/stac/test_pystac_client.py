"""pystac-client against a live stack: open the API, list collections, search by bbox and time,
page through results, find a product of one's own order, and validate every item against the
STAC JSON schemas (pystac's, offline)."""

import hashlib
import itertools
import uuid
from collections.abc import Iterator

import httpx
import pytest
from pystac.extensions.processing import ProcessingExtension
from pystac_client import Client

from tests.ccsi.factories import add_product, box
from tests.conftest import Stack, running_stack
from tests.factories import VIENNA, customer_with_token, wait_final
from tests.stac.conftest import validate_collection, validate_item

COLLECTION = f"stac-live-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def seeded(sessionmaker) -> None:
    """Seven input products of one collection: five over Vienna on five days, two over Berlin."""
    async with sessionmaker() as session:
        for day in range(1, 6):
            await add_product(
                session,
                COLLECTION,
                identifier=f"VIE-{day}",
                start=f"2024-07-0{day}T10:00:00Z",
                assets={"data": {"href": f"inputs/vie-{day}.tif", "type": "image/tiff"}},
            )
        for day in (1, 2):
            await add_product(
                session,
                COLLECTION,
                identifier=f"BER-{day}",
                footprint=box(13.3, 52.4, 13.5, 52.6),
                start=f"2024-07-0{day}T10:00:00Z",
            )
        await session.commit()


@pytest.fixture(scope="module")
def stack(seeded) -> Iterator[Stack]:
    with running_stack("stac") as live:
        yield live


def test_pystac_client_opens_lists_searches_and_pages(stack: Stack) -> None:
    catalog = Client.open(f"{stack.url}/stac")
    assert catalog.conforms_to("ITEM_SEARCH") and catalog.conforms_to("COLLECTIONS")
    collection = catalog.get_collection(COLLECTION)
    validate_collection(collection.to_dict())
    assert collection.extent.temporal.intervals[0][0].day == 1

    search = catalog.search(
        collections=[COLLECTION], bbox=[16.2, 48.1, 16.5, 48.4], datetime="2024-07-02/2024-07-04"
    )
    assert sorted(item.id for item in search.items()) == ["VIE-2", "VIE-3", "VIE-4"]

    paged = catalog.search(collections=[COLLECTION], limit=2)  # POST, next links with bodies
    pages = list(paged.pages_as_dicts())
    assert [len(page["features"]) for page in pages] == [2, 2, 2, 1]
    items = [item for page in pages for item in page["features"]]
    times = [i["properties"]["datetime"] for i in items]
    assert times == sorted(times, reverse=True)  # newest first, across pages
    assert len({i["id"] for i in items}) == 7
    for item in items:
        validate_item(item)
        for asset in item["assets"].values():
            assert "X-Amz-Expires" in asset["href"]

    by_get = catalog.search(method="GET", collections=[COLLECTION], bbox=[13, 52, 14, 53], limit=1)
    assert [item.id for item in by_get.items()] == ["BER-2", "BER-1"]
    assert by_get.matched() == 2


async def test_a_product_of_ones_own_order_is_an_item_with_the_processing_extension(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
        _, headers = await customer_with_token(http)
        body = {"roi": VIENNA, "start_date": "2024-07-15", "params": {"precision": 2}}
        submitted = await http.post("/v1/apps/roi_stats/orders", json=body, headers=headers)
        order = await wait_final(http, submitted.json()["order_id"], headers)
    assert order["status"] == "SUCCESS", order["message"]

    mine = Client.open(f"{stack.url}/stac", headers=headers)
    item_id = f"roi_stats-{order['order_id']}"
    search = mine.search(collections=["cure-roi_stats"], ids=[item_id])
    pages = list(itertools.islice(search.pages_as_dicts(), 2))  # a next link would bring more
    assert len(pages) == 1 and not [link for link in pages[0]["links"] if link["rel"] == "next"]
    (item,) = pages[0]["features"]
    assert item["id"] == item_id
    validate_item(item)  # core; the processing extension's schema is not available offline
    properties = item["properties"]
    assert properties["cure:app_id"] == "roi_stats"
    assert properties["cure:params"] == {"area_unit": "km2", "precision": 2}
    assert properties["cure:region"] == item["geometry"]
    assert properties["cure:order_id"] == order["order_id"]

    pystac_item = mine.get_collection("cure-roi_stats").get_item(item_id)
    processing = ProcessingExtension.ext(pystac_item)
    assert processing.software == {"cure-app-roi_stats": order["app_version"]}
    async with httpx.AsyncClient() as plain:
        data = await plain.get(item["assets"]["data"]["href"])  # the expiring link
    assert f"sha256:{hashlib.sha256(data.content).hexdigest()}" == order["result"]["checksum"]

    anonymous = Client.open(f"{stack.url}/stac")
    assert list(anonymous.search(ids=[item_id]).items()) == []
