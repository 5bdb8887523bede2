"""The README's "Real data" walkthrough, run as it stands against a live stack (the API and a
worker as processes, real app containers) and the real STAC API server of the federation tests:
Earth Search's two source documents, changed only in the server's address and the S3 endpoint,
added and checked with `cure ccsi sources`, the HRL registered with `cure ccsi register`, NDVI
and SUHI ordered over a district of Vienna with curl. The results are the ones computed by hand
from the files the scene server holds; the bytes staged are the district's windows; a second
order stages from the cache; an order whose source stops serving fails naming it."""

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest
import rasterio

from tests.conftest import ROOT, TEST_DB, Stack, running_stack
from tests.factories import customer_with_token
from tests.federation.conftest import Scenes
from tests.federation.scenes import imperviousness_tile, lst_by_hand, ndvi_by_hand
from tests.federation.servers import SceneServer
from tests.test_products import final

SOURCES = ("earth-search", "earth-search-landsat")
HRL_FILE = "IMD_2018_020m_E48N28_03035_v020.tif"  # as the CLMS names its 20 m tiles
# The test's HRL: the district's northern half urban, its southern rural (the scenes' clouds
# cover its eastern half).
URBAN, RURAL = 70, 5


def readme_block() -> str:
    """The shell block of the README's "Real data" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Real data\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the Real data section has no sh block"
    return match.group(1)


def readme_roi() -> dict[str, Any]:
    match = re.search(r"^ROI='(.*)'$", readme_block(), re.M)
    assert match, "the Real data block sets no ROI"
    return dict(json.loads(match.group(1)))


def source_documents(folder: Path, stac_url: str, s3_endpoint: str) -> None:
    """docs/sources' Earth Search documents under folder, pointed at this machine's servers."""
    target = folder / "docs" / "sources"
    target.mkdir(parents=True)
    for name in SOURCES:
        document = json.loads((ROOT / "docs" / "sources" / f"{name}.json").read_text())
        document["url"] = stac_url
        if document["auth"]["type"] == "s3":
            document["auth"]["endpoint_url"] = s3_endpoint
        (target / f"{name}.json").write_text(json.dumps(document))


async def remove_product(collection: str, identifier: str) -> None:
    """The walkthrough's HRL leaves the shared test catalogue with the module."""
    db = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{TEST_DB}")
    try:
        await db.execute(
            "DELETE FROM products WHERE collection = $1 AND identifier = $2",
            collection,
            identifier,
        )
    finally:
        await db.close()


def cure(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cure", *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def stack(scenes: Scenes, stac_server: str, tmp_path_factory) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    settings = {
        # The scene server and moto are on 127.0.0.1: allowed for this test only.
        "CURE_INPUT_HOSTS": '["127.0.0.1"]',
        "CURE_ALLOW_PRIVATE_INPUTS": "true",
        "CURE_STAGE_RETRIES": "2",
        "CURE_STAGE_RETRY_BASE_SECONDS": "0.05",
        "CURE_INPUT_CACHE_DIR": str(tmp_path_factory.mktemp("input-cache")),
        # The Landsat document names its S3 keys by environment variable, as on a real host.
        # (moto takes any keys; a secret of the run's own, looked for in the logs)
        "EARTH_SEARCH_AWS_ACCESS_KEY_ID": "AKIAREALDATATEST",
        "EARTH_SEARCH_AWS_SECRET_ACCESS_KEY": f"realdata-{uuid.uuid4().hex}",
    }
    with running_stack("realdata", **settings) as live:
        for name in SOURCES:  # a run stopped half way may have left them
            cure(live, "ccsi", "sources", "remove", name)
        try:
            yield live
        finally:
            for name in SOURCES:
                cure(live, "ccsi", "sources", "remove", name)
            asyncio.run(remove_product("hrl-imperviousness", Path(HRL_FILE).stem))


async def a_customers_token(url: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        _, headers = await customer_with_token(http)
    return headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture(scope="module")
def walkthrough(  # type: ignore[no-untyped-def]
    stack: Stack, scenes: Scenes, stac_server: str, scene_server: SceneServer, tmp_path_factory
) -> dict[str, Any]:
    """The README block, run by bash in a folder of its own (its docs/sources, its hrl/, and
    the checkout's .venv), with the walkthrough's API, TOKEN and json."""
    folder = tmp_path_factory.mktemp("walkthrough")
    source_documents(folder, stac_server, scenes.s3_endpoint)
    imperviousness_tile(
        scenes.districts["half_cloudy"], folder / "hrl" / HRL_FILE, north=URBAN, south=RURAL
    )
    (folder / ".venv").symlink_to(Path(sys.executable).parents[1])
    token = asyncio.run(a_customers_token(stack.url))
    prelude = (
        f"API={stack.url}\nTOKEN={token}\n"
        'json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }\n'
    )
    scene_server.reset()  # counts from here
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", prelude + readme_block()],
        cwd=folder,
        env={**stack.env, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=600,
    )
    served = {key: scene_server.bytes_served(scenes.urls[key]) for key in ("red", "nir", "scl")}
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    return {"run": run, "folder": folder, "token": token, "served": served}


def test_the_readme_orders_from_the_documents_it_ships() -> None:
    block = readme_block()
    for name in SOURCES:
        assert f"cure ccsi sources add docs/sources/{name}.json" in block
    assert "cure ccsi sources check" in block


def test_the_walkthrough_checks_the_sources_and_searches_them_with_the_local_catalogue(
    walkthrough: dict[str, Any],
) -> None:
    out = walkthrough["run"].stdout
    for name in SOURCES:
        assert re.search(rf"^{name} \(stac, [^)]*\): ok; reachable;", out, re.M), out
    # Step 3: the search lists the remote scenes of the two days, naming the source.
    assert "sentinel2-l2a S2B_33UXP_20260714_0_L2A earth-search 8.312471" in out
    assert "landsat-c2-l2 LC09_L2SP_190026_20260715_02_T1 earth-search-landsat 12.4" in out
    assert "1 product(s) added, 0 already there" in out  # the HRL


def test_the_walkthroughs_ndvi_is_the_one_computed_by_hand_from_the_remote_files(
    walkthrough: dict[str, Any], scenes: Scenes
) -> None:
    district = scenes.districts["half_cloudy"]
    roi = readme_roi()["coordinates"][0]
    for (lon, lat), (x, y) in zip(roi, district.geometry["coordinates"][0], strict=True):
        assert (lon, lat) == pytest.approx((x, y), abs=1e-6)  # the README names this district
    stats = json.loads((walkthrough["folder"] / "ndvi-statistics.json").read_text())
    expected = ndvi_by_hand(scenes.files.s2, district)

    assert stats["region_pixels"] == expected["pixels"]
    assert stats["valid_pixels"] == expected["clear_pixels"]
    assert stats["mean_ndvi"] == pytest.approx(expected["mean"], abs=1e-9)
    assert stats["masked_share"] == pytest.approx(expected["masked_share"], abs=1e-9)
    assert 0.3 < stats["masked_share"] < 0.7  # the eastern half under cloud, masked
    with rasterio.open(walkthrough["folder"] / "ndvi.tif") as ndvi:
        assert ndvi.crs.to_epsg() == 32633 and ndvi.res == (10.0, 10.0)
        values = ndvi.read(1, masked=True)
        assert values.count() == expected["clear_pixels"]
        assert float(values.mean()) == pytest.approx(expected["mean"], abs=1e-6)


def test_the_walkthroughs_suhi_takes_landsat_and_its_temperatures_are_the_files(
    walkthrough: dict[str, Any], scenes: Scenes
) -> None:
    stats = json.loads((walkthrough["folder"] / "suhi-statistics.json").read_text())
    expected = lst_by_hand(scenes.files.landsat, scenes.districts["half_cloudy"])

    assert stats["lst_source"] == "landsat" and stats["crs"] == "EPSG:32633"
    assert stats["urban_pixels"] > 0 and stats["rural_pixels"] > 0
    # Urban and rural together are every valid pixel but the row along the HRL's boundary (its
    # 20 m cells resampled to Landsat's 30 m grid are in between there): their mean is the
    # region's by hand (to that row, and to the row and column of Landsat pixel centres the
    # district's edges run through).
    between = stats["valid_pixels"] - stats["urban_pixels"] - stats["rural_pixels"]
    assert 0 <= between <= np.sqrt(stats["region_pixels"])
    both = (
        stats["mean_urban_lst_k"] * stats["urban_pixels"]
        + stats["mean_rural_lst_k"] * stats["rural_pixels"]
    ) / (stats["urban_pixels"] + stats["rural_pixels"])
    assert both == pytest.approx(expected["mean"], abs=0.2)
    assert stats["masked_share"] == pytest.approx(expected["masked_share"], abs=0.03)
    with rasterio.open(walkthrough["folder"] / "suhi.tif") as suhi:
        assert suhi.crs.to_epsg() == 32633 and suhi.res == (30.0, 30.0)


async def test_the_district_is_staged_by_window_and_a_second_order_from_the_cache(
    walkthrough: dict[str, Any], stack: Stack, scenes: Scenes, scene_server: SceneServer
) -> None:
    served = walkthrough["served"]
    headers = {"Authorization": f"Bearer {walkthrough['token']}"}
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
        orders = (await http.get("/v1/orders", headers=headers)).json()["items"]
        ndvi = next(o for o in orders if o["app_id"] == "urban_green")
        first = (await http.get(f"/v1/orders/{ndvi['order_id']}", headers=headers)).json()
        again = await http.post(
            "/v1/apps/urban_green/orders",
            json={"roi": readme_roi(), "start_date": "2026-07-14"},
            headers=headers,
        )
        assert again.status_code == 202, again.text
        second = await final(http, headers, str(again.json()["order_id"]))

    for key, file in (("red", scenes.files.s2.red), ("nir", scenes.files.s2.nir)):
        assert 0 < served[key] < file.stat().st_size / 10, (key, served)
    transferred = sum(served.values())
    assert staging_line(first) == (
        f"staged 3 input file(s), 0 from the cache, {transferred} bytes transferred from remote "
        "sources"
    )
    assert second["status"] == "SUCCESS", second["message"]
    assert staging_line(second) == (
        "staged 3 input file(s), 3 from the cache, 0 bytes transferred from remote sources"
    )
    assert {k: scene_server.bytes_served(scenes.urls[k]) for k in served} == served


def staging_line(order: dict[str, Any]) -> str:
    return str(next(e["message"] for e in order["history"] if "staged" in (e["message"] or "")))


async def test_an_order_whose_source_stops_serving_fails_naming_it_after_retries(
    walkthrough: dict[str, Any], stack: Stack, scenes: Scenes, scene_server: SceneServer
) -> None:
    headers = {"Authorization": f"Bearer {walkthrough['token']}"}
    scene_server.reset()
    scene_server.fail(503, times=1000, path=scenes.urls["red"])  # the catalogue still answers
    try:
        async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
            submitted = await http.post(
                "/v1/apps/urban_green/orders",
                json={"roi": scenes.districts["clear"].geometry, "start_date": "2026-07-14"},
                headers=headers,
            )
            assert submitted.status_code == 202, submitted.text
            order = await final(http, headers, str(submitted.json()["order_id"]))
        attempts = scene_server.requests_for(scenes.urls["red"])
    finally:
        scene_server.reset()

    assert order["status"] == "FAILED"
    assert order["message"].startswith("an input could not be staged: ")
    assert "earth-search" in order["message"] and "red" in order["message"]
    assert "503" in order["message"]
    assert attempts >= 3  # the first try and CURE_STAGE_RETRIES (2) more
    assert order["result"] is None and not order["assets"]


def test_the_walkthrough_leaves_nothing_of_its_sources_in_the_logs(
    walkthrough: dict[str, Any], stack: Stack
) -> None:
    """The Landsat source's S3 secret (from the environment) is in no log of the stack."""
    secret = stack.env["EARTH_SEARCH_AWS_SECRET_ACCESS_KEY"]
    for name in ("test-realdata-api.log", "test-realdata-worker.log"):
        log = ROOT / "var" / "log" / name
        assert log.exists() and log.stat().st_size > 0
        assert secret not in log.read_text(errors="replace")
    assert secret not in walkthrough["run"].stdout + walkthrough["run"].stderr
