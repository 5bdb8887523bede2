"""Checking a source: ``POST /v1/ccsi/sources/{name}/check`` (admins) and ``cure ccsi sources
check`` against the real STAC API and against a source where nothing listens."""

import asyncio
import json
import os
import subprocess
import sys

from tests.conftest import ROOT, free_port
from tests.factories import create_admin, customer_with_token
from tests.federation import items as stac_items
from tests.federation.conftest import Scenes
from tests.federation.sourcing import registered, stac_source

JULY = {"start": "2026-07-01T00:00:00Z", "end": "2026-07-31T23:59:59Z"}


async def test_an_admin_checks_a_stac_source_reachability_conformance_and_counts(
    app, sessionmaker, client, session, scenes: Scenes, stac_server: str
) -> None:
    _, admin = await create_admin(client, session)
    source = stac_source(stac_server, enabled=False)  # a check comes before enabling
    body = {"bbox": list(scenes.districts["clear"].bbox), **JULY}

    async with registered(app, sessionmaker, source):
        answer = await client.post(
            f"/v1/ccsi/sources/{source['name']}/check", json=body, headers=admin
        )

    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["ok"] is True and found["problems"] == []
    assert found["reachable"] is True
    assert "https://api.stacspec.org/v1.0.0/item-search" in found["conformance"]
    assert found["capabilities"] == {
        "item_search": True,
        "filter": True,
        "query": True,
        "sort": True,
        "features": True,
    }
    by_collection = {c["collection"]: c for c in found["collections"]}
    s2 = by_collection["sentinel2-l2a"]
    assert (s2["remote"], s2["count"], s2["at_least"]) == ("sentinel-2-l2a", 2, False)
    assert s2["newest"] == stac_items.S2_CLOUDY_ITEM_ID
    assert s2["newest_cloud_cover"] == stac_items.S2_CLOUDY_CLOUD_COVER
    assert s2["roles_missing"] == []
    landsat = by_collection["landsat-c2-l2"]
    assert landsat["count"] == 2 and landsat["newest"] == stac_items.LANDSAT_CLOUDY_ITEM_ID


async def test_a_source_that_cannot_be_reached_is_checked_and_says_why(
    app, sessionmaker, client, session
) -> None:
    _, admin = await create_admin(client, session)
    _, customer = await customer_with_token(client)
    down = stac_source(f"http://127.0.0.1:{free_port()}")

    async with registered(app, sessionmaker, down):
        answer = await client.post(f"/v1/ccsi/sources/{down['name']}/check", headers=admin)
        forbidden = await client.post(f"/v1/ccsi/sources/{down['name']}/check", headers=customer)
    unknown = await client.post("/v1/ccsi/sources/no-such-source/check", headers=admin)

    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["ok"], found["reachable"], found["collections"]) == (False, False, [])
    (problem,) = found["problems"]
    assert "cannot be reached" in problem
    assert forbidden.status_code == 403
    assert unknown.status_code == 404


async def test_the_command_checks_one_source_or_all_and_exits_1_on_a_problem(
    app, sessionmaker, scenes: Scenes, stac_server: str
) -> None:
    good = stac_source(stac_server)
    down = stac_source(f"http://127.0.0.1:{free_port()}")
    west, south, east, north = scenes.districts["clear"].bbox

    def cure(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cure", "ccsi", "sources", "check", *args],
            cwd=ROOT,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    where = [
        "--bbox",
        f"{west},{south},{east},{north}",
        "--start",
        "2026-07-01",
        "--end",
        "2026-07-31",
    ]
    async with registered(app, sessionmaker, good, down):
        one = await asyncio.to_thread(cure, good["name"], *where)
        as_json = await asyncio.to_thread(cure, good["name"], "--json", *where)
        every = await asyncio.to_thread(cure, *where)
        bad_box = await asyncio.to_thread(cure, good["name"], "--bbox", "1,2,3")

    assert one.returncode == 0, one.stderr
    assert f"{good['name']} (stac, {stac_server}" in one.stdout and ": ok;" in one.stdout
    assert "sentinel2-l2a <- sentinel-2-l2a: 2 items" in one.stdout
    assert json.loads(as_json.stdout)[0]["collections"][0]["count"] == 2
    assert every.returncode == 1
    assert f"{down['name']} (stac" in every.stdout and "NOT reachable" in every.stdout
    assert bad_box.returncode != 0 and "--bbox" in bad_box.stderr
