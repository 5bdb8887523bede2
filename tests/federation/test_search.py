"""The federated search against a real STAC API (stac-fastapi over pgstac, loaded with items in
Earth Search's shape): local and remote products in one answer, each named by its source, given
once, ordered and paged over both; the cloud filter; sources that are down, slow, busy or answer
garbage named as missing, never a 500; remote answers cached (counted on the wire by a proxy in
front of the server); and the STAC API at /stac answering from the same federation."""

from collections.abc import Iterator
from typing import Any

import pytest
from shapely.geometry import shape

from cure.ccsi.dependencies import FEDERATION
from cure.kit.state import state_of
from tests.ccsi.factories import add_product
from tests.conftest import free_port
from tests.federation import items as stac_items
from tests.federation.conftest import Scenes
from tests.federation.proxy import CountingProxy
from tests.federation.sourcing import registered, stac_source

JULY = {"timeStart": "2026-07-01", "timeEnd": "2026-07-31"}
S2 = "sentinel2-l2a"


@pytest.fixture
def proxy(stac_server: str) -> Iterator[CountingProxy]:
    counting = CountingProxy(stac_server)
    try:
        yield counting
    finally:
        counting.close()


def bbox_of(scenes: Scenes, district: str = "clear") -> str:
    return ",".join(repr(v) for v in scenes.districts[district].bbox)


async def local_scene(
    session: Any, scenes: Scenes, identifier: str, when: str, **extra: Any
) -> None:
    """A product of the local catalogue over the same district (the test's own transaction)."""
    await add_product(
        session,
        S2,
        identifier=identifier,
        footprint=scenes.districts["clear"].geometry,
        start=when,
        properties=extra.pop("properties", {}),
        **extra,
    )
    await session.commit()


async def search(client: Any, collection: str = S2, **params: str) -> dict[str, Any]:
    answer = await client.get(f"/v1/ccsi/{collection}/search", params={"format": "json", **params})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def names(page: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["properties"]["identifier"], f["properties"]["source"]) for f in page["features"]]


async def test_local_and_remote_products_come_in_one_answer_each_naming_its_source(
    app, sessionmaker, client, session, scenes: Scenes, stac_server: str
) -> None:
    await local_scene(session, scenes, "LOCAL-S2-20260710", "2026-07-10T10:00:00Z")
    source = stac_source(stac_server)

    async with registered(app, sessionmaker, source):
        page = await search(client, bbox=bbox_of(scenes), **JULY)

    # Newest acquisition first, across both catalogues.
    assert names(page) == [
        (stac_items.S2_CLOUDY_ITEM_ID, source["name"]),
        (stac_items.S2_ITEM_ID, source["name"]),
        ("LOCAL-S2-20260710", "local"),
    ]
    assert page["sourcesMissing"] == []
    assert page["totalResults"] == 3
    remote = page["features"][1]["properties"]
    assert remote["productType"] == "S2MSI2A" and remote["collection"] == S2
    assert remote["cloudCover"] == pytest.approx(stac_items.S2_CLOUD_COVER)
    assert remote["start"].startswith("2026-07-14T09:56:51")
    red = remote["assets"]["red"]
    assert red["href"] == scenes.urls["red"]  # as the source gave it
    assert (red["scale"], red["offset"], red["nodata"]) == (0.0001, -0.1, 0)
    assert set(remote["assets"]) == {"red", "nir", "scl"}  # the mapped roles only
    assert remote["public"] is True  # the caller has no token: remote products are everyone's


async def test_a_product_held_twice_is_given_once_by_the_lowest_priority_number(
    app, sessionmaker, client, session, scenes: Scenes, stac_server: str
) -> None:
    # The local catalogue holds the same scene (same collection and identifier): local is 0.
    await local_scene(session, scenes, stac_items.S2_ITEM_ID, stac_items.S2_DATETIME)
    first = stac_source(stac_server, priority=50)
    second = stac_source(stac_server, priority=10)

    async with registered(app, sessionmaker, first, second):
        page = await search(client, bbox=bbox_of(scenes), **JULY)

    assert names(page) == [
        (stac_items.S2_CLOUDY_ITEM_ID, second["name"]),  # 10 wins over 50
        (stac_items.S2_ITEM_ID, "local"),  # 0 wins over both
    ]
    assert page["totalResults"] == 2


async def test_pages_run_over_local_and_remote_products_without_gap_or_repeat(
    app, sessionmaker, client, session, scenes: Scenes, stac_server: str
) -> None:
    # 26 remote archive items (two tiles share each date) and three local ones between them.
    for day in ("2026-05-03", "2026-05-26", "2026-06-30"):
        await local_scene(session, scenes, f"LOCAL-{day}", f"{day}T10:00:00Z")
    period = {"timeStart": "2026-05-01", "timeEnd": "2026-06-30"}
    source = stac_source(stac_server)

    async with registered(app, sessionmaker, source):
        whole = await search(client, maxRecords="100", **period)
        paged: list[tuple[str, str]] = []
        index = 1
        while True:
            page = await search(client, maxRecords="7", startIndex=str(index), **period)
            paged += names(page)
            nexts = [link for link in page["links"] if link["rel"] == "next"]
            if not nexts:
                break
            index += 7
            assert f"startIndex={index}" in nexts[0]["href"]

    assert len(names(whole)) == 29
    assert paged == names(whole)
    starts = [f["properties"]["start"] for f in whole["features"]]
    assert starts == sorted(starts, reverse=True)
    # Items of one date come in a fixed order (priority, then identifier) on every page.
    same_day = [n for n, _ in names(whole) if "20260506" in n]
    assert same_day == sorted(same_day) and len(same_day) == 2


async def test_the_cloud_filter_applies_to_local_and_remote_products(
    app, sessionmaker, client, session, scenes: Scenes, stac_server: str
) -> None:
    await local_scene(
        session, scenes, "LOCAL-CLEAR", "2026-07-11T10:00:00Z", properties={"eo:cloud_cover": 4.0}
    )
    await local_scene(
        session, scenes, "LOCAL-CLOUDY", "2026-07-12T10:00:00Z", properties={"eo:cloud_cover": 55.0}
    )
    source = stac_source(stac_server)

    async with registered(app, sessionmaker, source):
        clear = await search(client, bbox=bbox_of(scenes), cloudCover="[0,20]", **JULY)
        cloudy = await search(client, bbox=bbox_of(scenes), cloudCover="[50,100]", **JULY)

    assert names(clear) == [(stac_items.S2_ITEM_ID, source["name"]), ("LOCAL-CLEAR", "local")]
    assert names(cloudy) == [
        (stac_items.S2_CLOUDY_ITEM_ID, source["name"]),
        ("LOCAL-CLOUDY", "local"),
    ]


async def test_a_source_that_is_down_is_named_missing_and_the_rest_answers(
    app, sessionmaker, client, session, scenes: Scenes
) -> None:
    await local_scene(session, scenes, "LOCAL-ONLY", "2026-07-10T10:00:00Z")
    nobody = stac_source(f"http://127.0.0.1:{free_port()}")  # nothing listens there

    async with registered(app, sessionmaker, nobody):
        answer = await client.get(f"/v1/ccsi/{S2}/search", params={"bbox": bbox_of(scenes), **JULY})
        feed = await client.get(
            f"/v1/ccsi/{S2}/search", params={"bbox": bbox_of(scenes), "format": "atom", **JULY}
        )

    assert answer.status_code == 200
    assert answer.headers["CURE-Sources-Missing"] == nobody["name"]
    assert answer.json()["sourcesMissing"] == [nobody["name"]]
    assert names(answer.json()) == [("LOCAL-ONLY", "local")]
    assert feed.status_code == 200 and feed.headers["CURE-Sources-Missing"] == nobody["name"]
    assert f"<cure:sourceMissing>{nobody['name']}</cure:sourceMissing>" in feed.text


@pytest.mark.parametrize("trouble", ["slow", "busy", "garbage"])
async def test_a_slow_busy_or_babbling_source_is_named_missing(
    app, sessionmaker, client, scenes: Scenes, proxy: CountingProxy, stac_server: str, trouble: str
) -> None:
    good = stac_source(stac_server)
    bad = stac_source(proxy.url)  # a good source's roomy deadline: what it answers counts...
    if trouble == "slow":
        # ...or it never answers (held until the test ends): any deadline fires, a short one
        # only keeps the search's wait short
        bad["timeout_seconds"] = 1
        proxy.hold()
    elif trouble == "busy":
        proxy.status = 503
    else:
        proxy.garbage = b'{"type": "FeatureCollection", "features": 12}'

    async with registered(app, sessionmaker, good, bad):
        page = await search(client, bbox=bbox_of(scenes), **JULY)

    assert page["sourcesMissing"] == [bad["name"]]
    assert [source for _, source in names(page)] == [good["name"], good["name"]]
    assert proxy.count() >= 1


async def test_a_source_that_missed_its_deadline_is_not_asked_again_for_as_long(
    app, sessionmaker, client, scenes: Scenes, proxy: CountingProxy, monkeypatch
) -> None:
    """A host that swallows requests would cost every search the whole deadline: once missed,
    the source rests for its deadline (on the federation's clock, held still here). The source
    first holds every request unanswered, so its deadline fires however long it is; it is long
    enough for the answer the third search waits for (the first search waits it all)."""
    monkeypatch.setattr(state_of(app).need(FEDERATION), "_clock", lambda: 1000.0)
    deadline = 10
    slow = stac_source(proxy.url, timeout_seconds=deadline)
    proxy.hold()

    async with registered(app, sessionmaker, slow):
        first = await search(client, bbox=bbox_of(scenes), **JULY)
        calls = proxy.count()
        second = await search(client, bbox=bbox_of(scenes), timeStart="2026-05-01")
        after_second = proxy.count()
        monkeypatch.setattr(
            state_of(app).need(FEDERATION), "_clock", lambda: 1000.0 + deadline + 0.5
        )  # rested enough
        proxy.release()
        third = await search(client, bbox=bbox_of(scenes), **JULY)

    assert first["sourcesMissing"] == second["sourcesMissing"] == [slow["name"]]
    assert calls >= 1 and after_second == calls  # the second search never reached the source
    assert third["sourcesMissing"] == []  # rested: asked again, and it answers
    assert [source for _, source in names(third)] == [slow["name"], slow["name"]]


async def test_a_remote_answer_is_kept_and_a_second_search_makes_no_call(
    app, sessionmaker, client, scenes: Scenes, proxy: CountingProxy
) -> None:
    source = stac_source(proxy.url)

    async with registered(app, sessionmaker, source):
        first = await search(client, bbox=bbox_of(scenes), **JULY)
        searches_after_first = proxy.count("/search")
        calls_after_first = proxy.count()
        second = await search(client, bbox=bbox_of(scenes), **JULY)
        calls_after_second = proxy.count()
        other = await search(
            client, bbox=bbox_of(scenes), timeStart="2026-05-01", timeEnd="2026-05-31"
        )

    assert names(first) == names(second) and len(names(first)) == 2
    assert searches_after_first == 1
    assert calls_after_second == calls_after_first  # the second search: no call at all
    assert proxy.count("/search") == 2  # a different query is asked
    district = shape(scenes.districts["clear"].geometry)
    in_may = [
        item["id"]
        for item in scenes.archive
        if item["properties"]["datetime"].startswith("2026-05")
        and shape(item["geometry"]).intersects(district)
    ]
    assert sorted(n for n, _ in names(other)) == sorted(in_may) and in_may


async def test_a_search_of_a_collection_no_source_maps_makes_no_remote_call(
    app, sessionmaker, client, proxy: CountingProxy
) -> None:
    async with registered(app, sessionmaker, stac_source(proxy.url)):
        page = await search(client, collection="hrl-imperviousness", bbox="16.3,48.1,16.5,48.3")

    assert page["sourcesMissing"] == [] and proxy.count() == 0


@pytest.mark.parametrize("asks", ["cql2-json", "query", "nothing"])
async def test_the_stac_client_pages_through_next_links_and_filters_as_the_server_can(
    stac_server: str, monkeypatch: pytest.MonkeyPatch, asks: str
) -> None:
    """Pages of 4 (the server's next links, POST with a body) and the cloud filter in CQL2 JSON,
    in the query extension, or on this side, as the server's conformance allows."""
    import httpx

    from cure.ccsi.sources import stac
    from cure.ccsi.sources.remote import RemoteQuery

    monkeypatch.setattr(stac, "PAGE_SIZE", 4)
    async with httpx.AsyncClient() as http:
        client = stac.StacClient(stac_server, http=http)
        landing = await client.landing()
        dropped = {
            "cql2-json": (),
            "query": ("filter",),
            "nothing": ("filter", "#query"),
        }[asks]
        landing["conformsTo"] = [
            c for c in landing["conformsTo"] if not any(d in c for d in dropped)
        ]
        result = await client.search(
            RemoteQuery(
                collection="sentinel-2-l2a",
                start=stac_items.ARCHIVE_START,
                end=stac_items.ARCHIVE_START.replace(month=6, day=30, hour=23),
                limit=30,
                cloud_cover=(0.0, 40.0),
            )
        )

    expected = sorted(
        (item["properties"]["datetime"], item["id"])
        for item in stac_items.archive_items(
            {k: "x" for k in ("red", "nir", "scl", "visual", "thumbnail", "product_metadata")}
        )
        if item["properties"]["eo:cloud_cover"] <= 40
    )
    found = sorted((item["properties"]["datetime"], item["id"]) for item in result.items)
    assert found == expected and len(found) > 4  # more than one page
    assert result.more is False
    times = [item["properties"]["datetime"] for item in result.items]
    assert times == sorted(times, reverse=True)


async def test_the_stac_api_answers_from_the_federation(
    app, sessionmaker, scenes: Scenes, stac_server: str
) -> None:
    """pystac-client against a live CURE: /stac/search merges the local product and the
    source's, pages through them by next links, and names a source that is down (a second
    source on a port where nothing listens)."""
    import uuid

    import httpx
    from pystac_client import Client

    from cure.ccsi import service as ccsi_service
    from tests.conftest import Stack

    local = f"LOCAL-STAC-{uuid.uuid4().hex[:8]}"
    async with sessionmaker() as session:
        await local_scene(session, scenes, local, "2026-07-16T10:00:00Z")
    source = stac_source(stac_server)
    nobody = stac_source(f"http://127.0.0.1:{free_port()}", priority=200)
    where = {"bbox": list(scenes.districts["clear"].bbox), "datetime": "2026-07-01/2026-07-31"}
    try:
        async with registered(app, sessionmaker, source, nobody):
            stack = Stack("federation-stac", {})
            try:
                stack.start_api()
                catalog = Client.open(f"{stack.url}/stac")
                found = list(catalog.search(collections=[S2], **where).items())
                landsat = catalog.get_collection("landsat-c2-l2").to_dict()
                listed = {c.id for c in catalog.get_collections()}
                paged = list(catalog.search(collections=[S2], limit=1, **where).items())
                async with httpx.AsyncClient(timeout=30) as http:
                    through_items = await http.get(
                        f"{stack.url}/stac/collections/{S2}/items",
                        params={
                            "bbox": ",".join(map(str, where["bbox"])),
                            "datetime": where["datetime"],
                        },
                        timeout=30,
                    )
                async with httpx.AsyncClient() as http:
                    missing = await http.post(
                        f"{stack.url}/stac/search", json={"collections": [S2], **where}, timeout=30
                    )
            finally:
                stack.stop()
    finally:
        async with sessionmaker() as session:
            await ccsi_service.remove(session, collection=S2, identifier=local)
            await session.commit()

    assert [(i.id, i.properties["cure:source"]) for i in found] == [
        (stac_items.S2_CLOUDY_ITEM_ID, source["name"]),
        (local, "local"),
        (stac_items.S2_ITEM_ID, source["name"]),
    ]
    remote = found[2]
    assert remote.assets["red"].href == scenes.urls["red"]
    assert remote.properties["eo:cloud_cover"] == pytest.approx(stac_items.S2_CLOUD_COVER)
    assert [i.id for i in paged] == [i.id for i in found]  # three pages of one, by next links
    # A collection only the sources hold is a collection of the API too, naming them.
    assert {S2, "landsat-c2-l2"} <= listed
    assert sorted(landsat["cure:sources"]) == sorted([source["name"], nobody["name"]])
    assert through_items.status_code == 200
    assert [f["id"] for f in through_items.json()["features"]] == [i.id for i in found]
    assert missing.status_code == 200
    assert missing.headers["CURE-Sources-Missing"] == nobody["name"]
    assert missing.json()["cure:sources_missing"] == [nobody["name"]]
    assert len(missing.json()["features"]) == 3


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/ccsi/sentinel2-l2a/search"),
        ("POST", "/stac/search"),
        ("GET", "/stac/collections/sentinel2-l2a/items"),
    ],
)
async def test_no_database_connection_is_held_while_a_source_is_asked(
    settings, sessionmaker, scenes: Scenes, proxy: CountingProxy, method: str, path: str
) -> None:
    """The source (behind a proxy that takes a moment to answer) notes how many of the API's
    pooled connections are checked out as it answers: a search waiting on a slow catalogue
    holds none (the local queries beside it have long given theirs back)."""
    import httpx

    from tests.conftest import loopback_address, started_app

    checked_out: list[int] = []
    where = {"bbox": bbox_of(scenes), "datetime": "2026-07-01/2026-07-31"}
    async with started_app(settings) as api:  # an engine of its own
        proxy.delay = 0.3
        proxy.observe = lambda: checked_out.append(state_of(api).db.engine.pool.checkedout())
        transport = httpx.ASGITransport(app=api, client=(loopback_address(), 50000))
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http,
            registered(api, sessionmaker, stac_source(proxy.url)),
        ):
            if method == "POST":
                body = {"collections": [S2], "bbox": list(scenes.districts["clear"].bbox)}
                answer = await http.post(path, json={**body, "datetime": where["datetime"]})
            elif path.startswith("/stac"):
                answer = await http.get(path, params=where)
            else:
                answer = await http.get(path, params={"bbox": where["bbox"], **JULY})

    assert answer.status_code == 200, answer.text
    assert len(answer.json()["features"]) == 2
    assert checked_out and set(checked_out) == {0}


async def test_a_remote_item_is_served_at_the_link_the_search_gives_it(
    app, sessionmaker, client, scenes: Scenes, stac_server: str
) -> None:
    """A search's remote item links to /stac/collections/{c}/items/{id}: that answers it from
    its source; an id no one holds is a 404, and one asked while the source is down a 503."""
    from urllib.parse import urlsplit

    source = stac_source(stac_server)
    where = {"bbox": list(scenes.districts["clear"].bbox), "datetime": "2026-07-01/2026-07-31"}
    async with registered(app, sessionmaker, source):
        page = await client.post("/stac/search", json={"collections": [S2], **where})
        [found] = [f for f in page.json()["features"] if f["id"] == stac_items.S2_ITEM_ID]
        [self_link] = [link["href"] for link in found["links"] if link["rel"] == "self"]
        one = await client.get(urlsplit(self_link).path)
        unknown = await client.get(f"/stac/collections/{S2}/items/S2B_33UXP_20260101_0_L2A")
    down = stac_source(f"http://127.0.0.1:{free_port()}")
    async with registered(app, sessionmaker, down):
        asked_while_down = await client.get(urlsplit(self_link).path)

    assert urlsplit(self_link).path == f"/stac/collections/{S2}/items/{stac_items.S2_ITEM_ID}"
    [original] = [link["href"] for link in found["links"] if link["rel"] == "canonical"]
    assert original.endswith(f"/collections/sentinel-2-l2a/items/{stac_items.S2_ITEM_ID}")
    assert one.status_code == 200, one.text
    item = one.json()
    assert item["id"] == stac_items.S2_ITEM_ID and item["collection"] == S2
    assert item["properties"]["cure:source"] == source["name"]
    assert item["assets"]["red"]["href"] == scenes.urls["red"]
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "ItemNotFound"
    assert asked_while_down.status_code == 503
    assert int(asked_while_down.headers["Retry-After"]) > 0
    assert down["name"] in asked_while_down.json()["description"]


async def test_an_item_by_id_is_one_call_to_the_source_and_holds_no_connection(
    app, sessionmaker, client, scenes: Scenes, proxy: CountingProxy
) -> None:
    """The lookup stops at its item (a search by ids never reads a source through: at most
    ID_PAGES pages), and the local lookup before it is done in a short session of its own."""
    from cure.ccsi.sources.remote import ID_PAGES, RemoteQuery, all_found, pages_for

    async with registered(app, sessionmaker, stac_source(proxy.url)):
        found = await client.get(f"/stac/collections/{S2}/items/{stac_items.S2_ITEM_ID}")
        calls = proxy.count("/search")

    assert found.status_code == 200, found.text
    assert calls == 1
    by_id = RemoteQuery(collection="c", ids=("a", "b"))
    assert pages_for(by_id) == ID_PAGES < pages_for(RemoteQuery(collection="c"))
    assert not all_found([{"id": "a"}], by_id) and all_found([{"id": "b"}, {"id": "a"}], by_id)
    assert not all_found([{"id": "a"}], RemoteQuery(collection="c"))
