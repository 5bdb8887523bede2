"""The federation tests' servers themselves: the real STAC API answers pystac-client's searches
(bbox, datetime, collection; POST and GET; pages through next links; cloud cover filters), the
scene server answers ranges with exactly the bytes asked for and fails on demand, and rasterio
reads a window of a served COG over HTTP for a small part of the file's bytes."""

import socket
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio
from pystac_client import Client
from rasterio.windows import from_bounds

from tests.federation import items as stac_items
from tests.federation import scenes as scene_module
from tests.federation import servers
from tests.federation.conftest import CdseScenes, Scenes
from tests.federation.servers import SceneServer, StacServer, s3_client

JULY = "2026-07-01T00:00:00Z/2026-07-31T23:59:59Z"
ARCHIVE = "2026-05-01T00:00:00Z/2026-06-30T23:59:59Z"


def _conformance(url: str) -> list[str]:
    return list(httpx.get(f"{url}/conformance", timeout=10).json()["conformsTo"])


def test_the_server_is_stac_fastapi_over_pgstac_with_item_search(stac_server: str) -> None:
    landing = httpx.get(stac_server, timeout=10).json()
    assert landing["type"] == "Catalog"
    conformance = _conformance(stac_server)
    assert "https://api.stacspec.org/v1.0.0/item-search" in conformance
    collections = httpx.get(f"{stac_server}/collections", timeout=10).json()["collections"]
    assert {c["id"] for c in collections} == {"sentinel-2-l2a", "landsat-c2-l2"}


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_search_by_bbox_datetime_and_collection_finds_the_scenes_items(
    stac_server: str, scenes: Scenes, method: str
) -> None:
    client = Client.open(stac_server)
    clear = scenes.districts["clear"]

    search = client.search(
        collections=[stac_items.S2_COLLECTION], bbox=clear.bbox, datetime=JULY, method=method
    )
    found = {item["id"]: item for item in search.items_as_dicts()}

    assert set(found) == {stac_items.S2_ITEM_ID, stac_items.S2_CLOUDY_ITEM_ID}
    # The items come back in Earth Search's shape, hrefs and raster:bands as loaded.
    item = found[stac_items.S2_ITEM_ID]
    assert item["properties"]["eo:cloud_cover"] == stac_items.S2_CLOUD_COVER
    assert item["properties"]["s2:processing_baseline"] == "05.11"
    assert item["properties"]["proj:epsg"] == 32633
    red = item["assets"]["red"]
    assert red["href"] == scenes.urls["red"]
    assert red["raster:bands"][0] == {
        "nodata": 0,
        "data_type": "uint16",
        "bits_per_sample": 15,
        "spatial_resolution": 10,
        "scale": 0.0001,
        "offset": -0.1,
    }
    assert set(item["assets"]) >= {"red", "nir", "scl", "visual", "thumbnail"}

    elsewhere = client.search(
        collections=[stac_items.S2_COLLECTION],
        bbox=[2.2, 48.8, 2.4, 48.9],
        datetime=JULY,
        method=method,
    )
    assert list(elsewhere.items()) == []

    landsat = client.search(
        collections=[stac_items.LANDSAT_COLLECTION], bbox=clear.bbox, datetime=JULY, method=method
    )
    assert {i.id for i in landsat.items()} == {
        stac_items.LANDSAT_ITEM_ID,
        stac_items.LANDSAT_CLOUDY_ITEM_ID,
    }


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_search_pages_through_next_links(stac_server: str, scenes: Scenes, method: str) -> None:
    client = Client.open(stac_server)

    search = client.search(
        collections=[stac_items.S2_COLLECTION], datetime=ARCHIVE, limit=10, method=method
    )
    pages = list(search.pages_as_dicts())

    assert len(pages) == 3
    assert [len(page["features"]) for page in pages] == [10, 10, 6]
    ids = [feature["id"] for page in pages for feature in page["features"]]
    assert sorted(ids) == sorted(item["id"] for item in scenes.archive)
    next_link = next(link for link in pages[0]["links"] if link["rel"] == "next")
    assert next_link.get("method", "GET") == method


def _expected(scenes: Scenes, collection: str, below: float) -> set[str]:
    return {
        item["id"]
        for item in scenes.items
        if item["collection"] == collection and item["properties"]["eo:cloud_cover"] < below
    }


def test_a_cql2_filter_on_cloud_cover(stac_server: str, scenes: Scenes) -> None:
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json" in _conformance(stac_server)
    client = Client.open(stac_server)
    cloud_filter: dict[str, Any] = {"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]}

    found = {
        item.id
        for item in client.search(
            collections=[stac_items.S2_COLLECTION],
            filter=cloud_filter,
            filter_lang="cql2-json",
            method="POST",
        ).items()
    }

    assert found == _expected(scenes, stac_items.S2_COLLECTION, 20)
    assert stac_items.S2_ITEM_ID in found
    assert stac_items.S2_CLOUDY_ITEM_ID not in found


def test_a_query_on_cloud_cover(stac_server: str, scenes: Scenes) -> None:
    assert "https://api.stacspec.org/v1.0.0/item-search#query" in _conformance(stac_server)
    client = Client.open(stac_server)

    found = {
        item.id
        for item in client.search(
            collections=[stac_items.LANDSAT_COLLECTION],
            query={"eo:cloud_cover": {"lt": 50}},
            method="POST",
        ).items()
    }

    assert (
        found
        == _expected(scenes, stac_items.LANDSAT_COLLECTION, 50)
        == {stac_items.LANDSAT_ITEM_ID}
    )


def test_landsat_assets_are_on_s3_with_an_https_alternate(stac_server: str, scenes: Scenes) -> None:
    item = httpx.get(
        f"{stac_server}/collections/landsat-c2-l2/items/{stac_items.LANDSAT_ITEM_ID}", timeout=10
    ).json()
    lwir11 = item["assets"]["lwir11"]
    assert lwir11["href"] == scenes.s3["lwir11"]
    assert lwir11["href"].startswith(
        "s3://usgs-landsat/collection02/level-2/standard/oli-tirs/2026/190/026/"
    )
    assert lwir11["alternate"]["https"]["href"] == scenes.urls["lwir11"]
    assert lwir11["raster:bands"][0]["scale"] == 0.00341802
    assert lwir11["raster:bands"][0]["offset"] == 149.0
    assert item["assets"]["qa_pixel"]["raster:bands"][0]["nodata"] == 1
    # The object on moto is the file, and its checksum is the item's.
    bucket, _, key = lwir11["href"].removeprefix("s3://").partition("/")
    body = s3_client(scenes.s3_endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == scenes.files.landsat.lwir11.read_bytes()
    assert lwir11["file:checksum"] == stac_items.multihash_sha512(scenes.files.landsat.lwir11)


# -- the scene server ----------------------------------------------------------------------------


def test_a_range_is_answered_with_exactly_the_bytes_asked_for(
    scene_server: SceneServer, scenes: Scenes
) -> None:
    scene_server.reset()
    url = scenes.urls["red"]
    data = scenes.files.s2.red.read_bytes()

    part = httpx.get(url, headers={"Range": "bytes=1000-1999"}, timeout=10)
    tail = httpx.get(url, headers={"Range": "bytes=-300"}, timeout=10)
    rest = httpx.get(url, headers={"Range": f"bytes={len(data) - 50}-"}, timeout=10)
    beyond = httpx.get(url, headers={"Range": f"bytes={len(data)}-"}, timeout=10)
    head = httpx.head(url, timeout=10)

    assert part.status_code == 206
    assert part.content == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert tail.status_code == 206 and tail.content == data[-300:]
    assert rest.status_code == 206 and rest.content == data[-50:]
    assert beyond.status_code == 416
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == len(data)
    assert head.headers["Accept-Ranges"] == "bytes"
    assert scene_server.bytes_served(url) == 1000 + 300 + 50
    assert scene_server.requests_for(url) == 5


def test_the_scene_server_fails_on_demand(scene_server: SceneServer, scenes: Scenes) -> None:
    scene_server.reset()
    url = scenes.urls["scl"]
    try:
        scene_server.fail(503, times=2, retry_after=3)
        scene_server.fail(429, path=scenes.urls["nir"])
        answers = [httpx.get(url, headers={"Range": "bytes=0-9"}, timeout=10) for _ in range(3)]
        assert [a.status_code for a in answers] == [503, 503, 206]
        assert answers[0].headers["Retry-After"] == "3"
        assert (
            httpx.get(scenes.urls["nir"], headers={"Range": "bytes=0-9"}, timeout=10).status_code
            == 429
        )

        scene_server.bearer = "a-token"
        assert httpx.get(url, timeout=10).status_code == 401
        authorised = httpx.get(
            url, headers={"Authorization": "Bearer a-token", "Range": "bytes=0-0"}, timeout=10
        )
        assert authorised.status_code == 206
        scene_server.bearer = None

        scene_server.fail("drop")
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=10)

        scene_server.down()
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", scene_server.port), 5),
        ):
            pass
        scene_server.up()
        assert httpx.get(url, headers={"Range": "bytes=0-9"}, timeout=10).status_code == 206
    finally:
        scene_server.up()
        scene_server.reset()


def test_rasterio_reads_a_districts_window_over_http_for_a_small_part_of_the_file(
    scene_server: SceneServer, scenes: Scenes
) -> None:
    scene_server.reset()
    url = scenes.urls["red"]
    clear = scenes.districts["clear"]
    size = scenes.files.s2.red.stat().st_size

    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_HTTP_MULTIRANGE="NO"):
        with rasterio.open(url) as remote:
            window = from_bounds(*clear.utm_bounds, transform=remote.transform)
            values = remote.read(1, window=window)
            profile = remote.profile
    with rasterio.open(scenes.files.s2.red) as local:
        expected = local.read(1, window=window)

    assert profile["blockxsize"] == 512 and profile["tiled"]
    assert values.shape == (160, 160)
    np.testing.assert_array_equal(values, expected)
    served = scene_server.bytes_served(url)
    assert 0 < served < size / 10, (served, size)
    assert all(header.startswith("bytes=") for _, header in scene_server.ranges)


# -- the scenes ------------------------------------------------------------------------------------


def test_the_scenes_are_what_their_districts_say(scenes: Scenes) -> None:
    s2, landsat = scenes.files.s2, scenes.files.landsat
    clear = scene_module.ndvi_by_hand(s2, scenes.districts["clear"])
    cloudy = scene_module.ndvi_by_hand(s2, scenes.districts["cloudy"])
    half = scene_module.ndvi_by_hand(s2, scenes.districts["half_cloudy"])

    assert clear["masked_share"] == 0.0 and clear["pixels"] == 160 * 160
    assert 0.2 < clear["mean"] < 0.8
    assert cloudy["masked_share"] == 1.0
    assert half["masked_share"] == 0.5
    assert scene_module.ndvi_by_hand(s2, scenes.districts["cirrus"])["masked_share"] == 1.0
    lst = scene_module.lst_by_hand(landsat, scenes.districts["clear"])
    assert lst["masked_share"] == 0.0 and 295 < lst["mean"] < 310
    assert scene_module.lst_by_hand(landsat, scenes.districts["cloudy"])["masked_share"] == 1.0
    with rasterio.open(s2.scl) as scl, rasterio.open(s2.red) as red:
        assert scl.res == (20.0, 20.0) and red.res == (10.0, 10.0)
        assert scl.dtypes[0] == "uint8" and red.dtypes[0] == "uint16"
        assert set(np.unique(scl.read(1))) == {0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11}
        assert red.nodata == 0 and red.crs.to_epsg() == 32633
    with rasterio.open(landsat.lwir11) as st, rasterio.open(landsat.qa_pixel) as qa:
        assert st.res == (30.0, 30.0) and st.nodata == 0 and qa.nodata == 1
        assert st.dtypes[0] == qa.dtypes[0] == "uint16"


def test_the_stac_server_stops_and_starts_again_on_its_port_with_its_items(
    stac_api: StacServer,
) -> None:
    url = stac_api.url
    try:
        stac_api.stop()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/collections", timeout=5)
    finally:
        stac_api.start()

    assert stac_api.url == url
    item = httpx.get(f"{url}/collections/sentinel-2-l2a/items/{stac_items.S2_ITEM_ID}", timeout=10)
    assert item.status_code == 200


def test_a_missing_install_is_a_clear_failure_not_a_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(servers, "STAC_VENV", tmp_path / "stac-server")

    with pytest.raises(servers.StacServerMissing, match="scripts/test installs it"):
        servers.check_installed()

    (tmp_path / "stac-server" / "bin").mkdir(parents=True)
    (tmp_path / "stac-server" / "bin" / "python").touch()
    (tmp_path / "stac-server" / ".installed").write_text("an older lock's digest\n")
    with pytest.raises(servers.StacServerMissing, match="older tests/federation/stac-server.lock"):
        servers.check_installed()


def test_the_cdse_shaped_server_holds_the_product_as_jpeg2000_on_s3(
    cdse_stac_server: str, cdse_scenes: CdseScenes, scene_server: SceneServer, scenes: Scenes
) -> None:
    client = Client.open(cdse_stac_server)

    found = list(
        client.search(
            collections=["sentinel-2-l2a"],
            bbox=scenes.districts["clear"].bbox,
            datetime=JULY,
            query={"eo:cloud_cover": {"lt": 20}},
            method="POST",
        ).items_as_dicts()
    )

    assert [item["id"] for item in found] == [stac_items.cdse_identifier(scenes.s2_item)]
    item = found[0]
    assert item["properties"]["proj:code"] == "EPSG:32633"
    assert item["properties"]["processing:version"] == "05.11"
    red = item["assets"]["B04_10m"]
    assert red["href"].startswith("s3://eodata/Sentinel-2/MSI/L2A/2026/07/14/")
    assert (red["raster:scale"], red["raster:offset"], red["nodata"]) == (0.0001, -0.1, 0)
    assert red["alternate"]["https"]["href"] == cdse_scenes.urls["B04_10m"]
    assert red["file:checksum"] == stac_items.multihash_md5(cdse_scenes.files["B04_10m"])
    # The granule is the same scene: its pixels are the COG's.
    scene_server.reset()
    with (
        rasterio.open(cdse_scenes.urls["B04_10m"]) as jp2,
        rasterio.open(scenes.files.s2.red) as cog,
    ):
        window = from_bounds(*scenes.districts["clear"].utm_bounds, transform=cog.transform)
        np.testing.assert_array_equal(jp2.read(1, window=window), cog.read(1, window=window))
    assert scene_server.bytes_served(cdse_scenes.urls["B04_10m"]) > 0
    bucket, _, key = red["href"].removeprefix("s3://").partition("/")
    head = s3_client(cdse_scenes.s3_endpoint).head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == red["file:size"]
