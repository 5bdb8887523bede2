"""Real products end to end: demo inputs in S3 and the catalogue, orders of SUHI, urban green,
flood susceptibility, heat exposure (on a SUHI product) and air quality through the API and real
containers, the product registered with its lineage, the cache, and missing inputs."""

import asyncio
import json
import time
import uuid
from datetime import date

import httpx
import pytest
from rasterio.io import MemoryFile

from cure.auth import repository as auth_repository
from cure.auth.scopes import ADMIN
from cure.demo.rasters import city_by_name
from cure.demo.seed import seed
from cure.demo.showcase import demonstrations, prepare
from cure.kit.resources import Resources
from cure.kit.state import state_of
from cure.portal import service as portal_service
from tests.conftest import running_stack
from tests.factories import create_admin, customer_with_token, problems

DAY = date(2024, 7, 15)
VIENNA = city_by_name("Vienna")
west, south, east, north = VIENNA["bbox"]
# The city core, well inside every demo raster of Vienna
CORE = {
    "type": "Polygon",
    "coordinates": [
        [
            [west + 0.04, south + 0.03],
            [east - 0.04, south + 0.03],
            [east - 0.04, north - 0.03],
            [west + 0.04, north - 0.03],
            [west + 0.04, south + 0.03],
        ]
    ],
}


@pytest.fixture(scope="module")
async def seeded(app, sessionmaker, settings) -> None:
    """Vienna's demo products of one day, uploaded to the S3 test server and registered."""
    await seed(
        Resources(settings, state_of(app).db.engine, sessionmaker), cities=[VIENNA], dates=[DAY]
    )


@pytest.fixture(scope="module")
def stack(seeded):
    with running_stack("products") as live:
        yield live


def order_body(app_id: str, day: date = DAY, **params) -> dict:
    return {"roi": CORE, "start_date": day.isoformat(), "params": params}


async def submit(http, headers, app_id: str, day: date = DAY, **params) -> str:
    response = await http.post(
        f"/v1/apps/{app_id}/orders", json=order_body(app_id, day, **params), headers=headers
    )
    assert response.status_code == 202, response.text
    return str(response.json()["order_id"])


async def final(http, headers, order_id: str, seconds: float = 90) -> dict:
    deadline = time.monotonic() + seconds
    body: dict = {}
    while time.monotonic() < deadline:
        body = (await http.get(f"/v1/orders/{order_id}", headers=headers)).json()
        if body["status"] in {"SUCCESS", "FAILED", "INVALID", "CANCELLED"}:
            return body
        await asyncio.sleep(0.3)
    raise AssertionError(f"order {order_id} never ended: {body}")


async def download(http, headers, path: str) -> bytes:
    redirect = await http.get(path, headers=headers)
    assert redirect.status_code == 307, redirect.text
    async with httpx.AsyncClient() as plain:
        response = await plain.get(redirect.headers["location"])
    assert response.status_code == 200
    return response.content


def staged_message(order: dict) -> str:
    return next(e["message"] for e in order["history"] if "staged" in (e["message"] or ""))


async def test_a_suhi_order_makes_a_real_map_and_registers_it(stack, http, account) -> None:
    headers = {"Authorization": account["Authorization"]}
    order_id = await submit(http, headers, "suhi")
    order = await final(http, headers, order_id)
    assert order["status"] == "SUCCESS", order["message"]
    steps = [e["message"] for e in order["history"]]
    assert "finding the inputs" in steps and "registering the product" in steps

    roles = {asset["role"]: asset for asset in order["assets"]}
    assert set(roles) == {"data", "metadata"}
    assert roles["data"]["primary"] and order["assets"][0]["role"] == "data"
    tiff = await download(http, headers, f"/v1/orders/{order_id}/result")
    assert len(tiff) == roles["data"]["size"] == order["result"]["size"]
    with MemoryFile(tiff) as memory, memory.open() as raster:
        assert raster.crs.to_epsg() == 3035  # the LST product's grid
        assert raster.nodata is not None and raster.overviews(1)
        values = raster.read(1, masked=True)
        assert values.count() > 100 and float(values.max()) > 0  # a warmer core than the rural
    statistics = json.loads(await download(http, headers, roles["metadata"]["href"]))
    assert statistics["mean_urban_lst_k"] > statistics["mean_rural_lst_k"]
    assert statistics["urban_pixels"] > 0 and statistics["rural_pixels"] >= 10

    # CURE's own product is found in the catalogue, by its owner only
    search = await http.get("/v1/ccsi/cure-suhi/search", params={"format": "json"}, headers=headers)
    identifiers = [f["properties"]["identifier"] for f in search.json()["features"]]
    assert f"suhi-{order_id}" in identifiers
    anonymous = await http.get("/v1/ccsi/cure-suhi/search", params={"format": "json"})
    assert f"suhi-{order_id}" not in [
        f["properties"]["identifier"] for f in anonymous.json()["features"]
    ]


async def test_a_second_order_over_the_same_inputs_uses_the_cache(stack, http, account) -> None:
    headers = {"Authorization": account["Authorization"]}
    first = await final(http, headers, await submit(http, headers, "suhi", urban_threshold=60))
    second = await final(http, headers, await submit(http, headers, "suhi", urban_threshold=70))
    assert (first["status"], second["status"]) == ("SUCCESS", "SUCCESS")
    # both ran on one worker's cache: the second fetched nothing
    assert staged_message(second) == "staged 2 input file(s), 2 from the cache"


async def test_an_urban_green_order_makes_an_ndvi_map(stack, http, account) -> None:
    headers = {"Authorization": account["Authorization"]}
    order = await final(http, headers, await submit(http, headers, "urban_green"))
    assert order["status"] == "SUCCESS", order["message"]
    tiff = await download(http, headers, f"/v1/orders/{order['order_id']}/result")
    with MemoryFile(tiff) as memory, memory.open() as raster:
        assert raster.crs.to_epsg() // 100 == 326  # the city's UTM zone, the red band's grid
        values = raster.read(1, masked=True)
        assert -1 <= float(values.min()) and float(values.max()) <= 1
    statistics = json.loads(await download(http, headers, order["assets"][1]["href"]))
    assert 0 < statistics["green_share"] < 1


async def test_a_flood_susceptibility_order_maps_the_terrain(stack, http, account) -> None:
    """From the demo's DEM (Copernicus DEM layout) and imperviousness: an index 0-1 on the
    DEM's one arc-second grid, the river valley's hollows among its depressions."""
    headers = {"Authorization": account["Authorization"]}
    order = await final(http, headers, await submit(http, headers, "flood_susceptibility"))
    assert order["status"] == "SUCCESS", order["message"]
    tiff = await download(http, headers, f"/v1/orders/{order['order_id']}/result")
    with MemoryFile(tiff) as memory, memory.open() as raster:
        assert raster.crs.to_epsg() == 4326
        assert raster.res == pytest.approx((1 / 3600, 1 / 3600))
        values = raster.read(1, masked=True)
        assert values.count() > 100_000 and 0 <= float(values.min()) < float(values.max()) <= 1
    statistics = json.loads(await download(http, headers, order["assets"][1]["href"]))
    assert statistics["sink_pixels"] > 0 and statistics["max_sink_depth_m"] > 0.5
    assert 0 < statistics["mean_index"] < 1 and 0 < statistics["mean_imperviousness_percent"]
    assert statistics["valid_pixels"] == values.count()


# South of the storylines' demonstrations (whose SUHI product of this day gets published here),
# so that no published SUHI product meets it: only a customer's own can serve it.
SOUTH = {
    "type": "Polygon",
    "coordinates": [
        [
            [west + 0.05, south + 0.002],
            [east - 0.05, south + 0.002],
            [east - 0.05, 48.148],
            [west + 0.05, 48.148],
            [west + 0.05, south + 0.002],
        ]
    ],
}


async def test_heat_exposure_takes_the_customers_own_suhi_product_and_names_it_in_its_lineage(
    stack, http, account
) -> None:
    """One product as another's input: without a SUHI product of the customer's own the order is
    refused, naming the app to order first; with one it succeeds and its product's lineage (the
    catalogue's JSON and STAC) names that SUHI product. Another customer's order still cannot
    use it: it is not theirs, nor published."""
    headers = {"Authorization": account["Authorization"]}
    body = {"roi": SOUTH, "start_date": DAY.isoformat(), "params": {}}
    refused = await http.post("/v1/apps/heat_exposure/orders", json=body, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "InputsMissing"
    (reason,) = problems(refused.json())
    assert reason.startswith("no suhi: cure-suhi (suhi) product of yours or published covers")
    assert "order the app suhi first for this region and period" in reason

    suhi = await final(http, headers, await _submit_over(http, headers, "suhi", SOUTH))
    assert suhi["status"] == "SUCCESS", suhi["message"]
    order = await final(http, headers, await _submit_over(http, headers, "heat_exposure", SOUTH))
    assert order["status"] == "SUCCESS", order["message"]
    # a workflow: align and classify side by side, then combine, each step's end an event
    ended = [e["message"] for e in order["history"] if (e["message"] or "").endswith(": done")]
    assert sorted(ended[:2]) == ["step align: done", "step classify: done"]
    assert ended[2:] == ["step combine: done"]
    roles = {asset["role"]: asset for asset in order["assets"]}
    assert set(roles) == {"data", "population", "metadata"}
    statistics = json.loads(await download(http, headers, roles["metadata"]["href"]))
    assert statistics["inputs"]["suhi"] == f"suhi-{suhi['order_id']}"
    assert statistics["population"] > 0 and statistics["valid_pixels"] > 0

    identifier = f"heat_exposure-{order['order_id']}"
    product = await http.get(f"/v1/ccsi/cure-heat_exposure/products/{identifier}", headers=headers)
    assert product.status_code == 200, product.text
    lineage = {(r["collection"], r["identifier"]) for r in product.json()["derived_from"]}
    assert ("cure-suhi", f"suhi-{suhi['order_id']}") in lineage
    assert {c for c, _ in lineage} == {"cure-suhi", "ghs-pop"}
    search = await http.get(
        "/v1/ccsi/cure-heat_exposure/search", params={"format": "json"}, headers=headers
    )
    (feature,) = [
        f for f in search.json()["features"] if f["properties"]["identifier"] == identifier
    ]
    assert {r["identifier"] for r in feature["properties"]["derivedFrom"]} == {
        i for _, i in lineage
    }
    item = await http.get(
        f"/stac/collections/cure-heat_exposure/items/{identifier}", headers=headers
    )
    assert item.status_code == 200, item.text
    derived = [link["href"] for link in item.json()["links"] if link["rel"] == "derived_from"]
    assert any(
        href.endswith(f"/collections/cure-suhi/items/suhi-{suhi['order_id']}") for href in derived
    )

    _, other = await customer_with_token(http)
    elsewhere = await http.post("/v1/apps/heat_exposure/orders", json=body, headers=other)
    assert elsewhere.status_code == 422, elsewhere.text
    assert "order the app suhi first" in problems(elsewhere.json())[0]


async def _submit_over(http, headers, app_id: str, roi: dict) -> str:
    body = {"roi": roi, "start_date": DAY.isoformat(), "params": {}}
    response = await http.post(f"/v1/apps/{app_id}/orders", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["order_id"])


async def test_an_air_quality_order_counts_the_days_above_the_who_guideline(
    stack, http, account
) -> None:
    """From the demo's CAMS ensemble analysis (netCDF, 0.1 degree, hourly): NO2's daily mean
    over the 10 km cells the city core touches, the core's cell above the WHO 2021 guideline."""
    headers = {"Authorization": account["Authorization"]}
    order = await final(http, headers, await submit(http, headers, "air_quality"))
    assert order["status"] == "SUCCESS", order["message"]
    tiff = await download(http, headers, f"/v1/orders/{order['order_id']}/result")
    with MemoryFile(tiff) as memory, memory.open() as raster:
        assert raster.crs.to_epsg() == 4326 and raster.count == 4
        assert raster.res == pytest.approx((0.1, 0.1), abs=1e-4)
        exceedance_days = raster.read(2, masked=True)
    statistics = json.loads(await download(http, headers, order["assets"][1]["href"]))
    assert statistics["guideline_ugm3"] == 25 and statistics["period"]["days"] == 1
    assert statistics["max_daily_ugm3"] > 25 and statistics["exceedance_days"] == 1
    assert 0 < statistics["exceedance_area_share"] < 1 and statistics["valid_share"] == 1
    assert int(exceedance_days.sum()) >= 1


async def test_the_vienna_demonstration_is_published_under_a_service_account(
    stack, http, account, app, sessionmaker, settings
) -> None:
    """`cure portal prepare`, as scripts/run runs it, orders and publishes the storyline's map
    under the demonstrations' account, not an admin's; readers do not see whose it is."""
    (demo,) = [d for d in demonstrations() if d.app == "suhi" and d.region[0] == 16.29]
    resources = Resources(settings, state_of(app).db.engine, sessionmaker)
    report = await prepare(resources, demos=[demo], timeout_seconds=90)
    assert report.ok, report.failed
    async with sessionmaker() as session:
        product = await portal_service.demonstration_product(session, demo)
        assert product is not None and product.published and product.owner_id is not None
        owner = await auth_repository.get_customer(session, product.owner_id)
    assert owner is not None and owner.email == settings.portal_demo_email
    assert not owner.is_admin and ADMIN not in owner.scopes
    url = f"/v1/ccsi/{product.collection}/products/{product.identifier}"
    for headers in ({}, {"Authorization": account["Authorization"]}):
        seen = await http.get(url, headers=headers)
        assert seen.status_code == 200, seen.text
        assert seen.json()["published"] and seen.json()["owner_id"] is None


async def test_an_order_without_data_is_refused_at_submit_with_the_nearest_dates(
    stack, http, account
) -> None:
    headers = {"Authorization": account["Authorization"]}
    response = await http.post(
        "/v1/apps/suhi/orders", json=order_body("suhi", date(2024, 7, 1)), headers=headers
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "InputsMissing"
    assert "lst: sentinel3-slstr-lst" in problems(body)[0]
    assert "after: 2024-07-15" in problems(body)[0]


async def test_inputs_gone_by_run_time_end_the_order_invalid(
    stack, http, account, sessionmaker
) -> None:
    headers = {"Authorization": account["Authorization"]}
    async with sessionmaker() as session:
        _, admin = await create_admin(http, session)
    # a product of a day of its own, so no other test's order depends on it
    day = date(2024, 7, 20)
    product = {
        "identifier": f"LST-GONE-{uuid.uuid4().hex[:8]}",
        "product_type": "SL_2_LST",
        "footprint": CORE,
        "start": f"{day}T10:00:00Z",
        "assets": {},
    }
    created = await http.post("/v1/ccsi/sentinel3-slstr-lst/products", json=product, headers=admin)
    assert created.status_code == 201, created.text
    for worker in list(stack.workers):  # nobody runs it until the product is gone
        stack.stop_worker(worker)
    order_id = await submit(http, headers, "suhi", day)
    removed = await http.delete(
        f"/v1/ccsi/sentinel3-slstr-lst/products/{product['identifier']}", headers=admin
    )
    assert removed.status_code == 204
    stack.start_worker()
    order = await final(http, headers, order_id)
    assert order["status"] == "INVALID"
    assert (
        "no lst: sentinel3-slstr-lst (SL_2_LST) or landsat-c2-l2 (L2SP) product covers the region"
        in order["message"]
    )


async def test_an_input_from_a_host_not_allowed_is_refused(
    stack, http, account, sessionmaker
) -> None:
    headers = {"Authorization": account["Authorization"]}
    async with sessionmaker() as session:
        _, admin = await create_admin(http, session)
    day = date(2024, 7, 21)
    elsewhere = {
        "identifier": f"LST-ELSEWHERE-{uuid.uuid4().hex[:8]}",
        "product_type": "SL_2_LST",
        "footprint": CORE,
        "start": f"{day}T10:00:00Z",
        "assets": {
            "lst": {
                "href": "http://127.0.0.1:9/lst.tif",  # neither the bucket nor an allowed host
                "type": "image/tiff; application=geotiff",
                "size": 10,
                "checksum": "sha256:" + "0" * 64,
            }
        },
    }
    created = await http.post(
        "/v1/ccsi/sentinel3-slstr-lst/products", json=elsewhere, headers=admin
    )
    assert created.status_code == 201, created.text
    order = await final(http, headers, await submit(http, headers, "suhi", day))
    assert order["status"] == "FAILED"
    assert "only from the storage bucket or an allowed host" in order["message"]
