"""Submit fails fast with real data: the availability check asks the federated catalogue (a
real STAC API with Earth Search's items) for each input over the order's region and dates. A day
no source covers is a 422 naming the nearest dates; a day whose only scenes are too cloudy is a
422 naming the cloud cover found; a source needed for the answer that does not answer is a 503
with Retry-After. The OGC execution takes the same path."""

from typing import Any

import httpx
import pytest

from cure.kit.state import state_of
from tests.ccsi.factories import add_product
from tests.conftest import free_port, loopback_address, started_app
from tests.factories import customer_with_token, problems
from tests.federation import items as stac_items
from tests.federation.conftest import Scenes
from tests.federation.proxy import CountingProxy
from tests.federation.sourcing import registered, stac_source


def order(scenes: Scenes, day: str, district: str = "clear", **params: Any) -> dict[str, Any]:
    return {"roi": scenes.districts[district].geometry, "start_date": day, "params": params}


async def submit(client: Any, app_id: str, body: dict[str, Any]) -> Any:
    _, headers = await customer_with_token(client)
    return await client.post(f"/v1/apps/{app_id}/orders", json=body, headers=headers)


async def test_an_ndvi_order_for_a_date_only_the_source_holds_is_accepted(
    app, sessionmaker, client, scenes: Scenes, stac_server: str
) -> None:
    async with registered(app, sessionmaker, stac_source(stac_server)):
        answer = await submit(client, "urban_green", order(scenes, "2026-07-14"))

    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] in ("RECEIVED", "QUEUED")


async def test_without_the_source_the_same_order_is_refused(client, scenes: Scenes) -> None:
    answer = await submit(client, "urban_green", order(scenes, "2026-07-14"))

    assert answer.status_code == 422
    assert answer.json()["error"] == "InputsMissing"


async def test_a_day_no_source_covers_is_refused_naming_the_nearest_dates(
    app, sessionmaker, client, scenes: Scenes, stac_server: str
) -> None:
    async with registered(app, sessionmaker, stac_source(stac_server)):
        answer = await submit(client, "urban_green", order(scenes, "2026-07-05"))

    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "InputsMissing"
    (problem,) = problems(body)
    assert problem == (
        "no reflectance: sentinel2-l2a (S2MSI2A) product covers the region on 2026-07-05; "
        "nearest dates with data before: 2026-06-30, after: 2026-07-14"
    )


async def test_a_day_whose_only_scene_is_too_cloudy_is_refused_naming_its_cloud_cover(
    app, sessionmaker, client, scenes: Scenes, stac_server: str
) -> None:
    async with registered(app, sessionmaker, stac_source(stac_server)):
        refused = await submit(client, "urban_green", order(scenes, "2026-07-19"))
        stricter = await submit(
            client, "urban_green", order(scenes, "2026-07-14", max_cloud_cover=5)
        )
        lenient = await submit(
            client, "urban_green", order(scenes, "2026-07-19", max_cloud_cover=99)
        )

    assert refused.status_code == 422, refused.text
    (problem,) = problems(refused.json())
    assert problem == (
        "no reflectance: sentinel2-l2a (S2MSI2A) product clear enough covers the region on "
        f"2026-07-19: the clearest covering scene has {stac_items.S2_CLOUDY_CLOUD_COVER:g}% cloud "
        "cover, more than max_cloud_cover 80%; nearest dates with data before: 2026-07-14"
    )
    assert stricter.status_code == 422
    assert f"{stac_items.S2_CLOUD_COVER:g}% cloud cover" in problems(stricter.json())[0]
    assert lenient.status_code == 202, lenient.text


async def test_submit_is_503_with_retry_after_when_the_needed_source_does_not_answer(
    app, sessionmaker, client, scenes: Scenes
) -> None:
    down = stac_source(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    _, headers = await customer_with_token(client)

    async with registered(app, sessionmaker, down):
        answer = await client.post(
            "/v1/apps/urban_green/orders", json=order(scenes, "2026-07-14"), headers=headers
        )
        execution = await client.post(
            "/ogc/processes/urban_green/execution",
            json={
                "inputs": {"roi": scenes.districts["clear"].geometry, "start_date": "2026-07-14"}
            },
            headers={**headers, "Prefer": "respond-async"},
        )

    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.json()["error"] == "InputSourcesUnavailable"
    assert down["name"] in answer.json()["detail"]
    assert execution.status_code == 503, execution.text
    assert int(execution.headers["Retry-After"]) > 0
    assert down["name"] in execution.json()["detail"]
    listed = await client.get("/v1/orders", headers=headers)
    assert listed.json()["items"] == []  # nothing was submitted


async def test_a_source_that_is_down_does_not_hold_up_an_order_the_local_catalogue_serves(
    app, sessionmaker, client, session, scenes: Scenes
) -> None:
    await add_product(
        session,
        "sentinel2-l2a",
        identifier="LOCAL-S2-20260714",
        footprint=scenes.districts["clear"].geometry,
        start="2026-07-14T10:00:00Z",
        properties={"eo:cloud_cover": 3.0},
    )
    await session.commit()
    down = stac_source(f"http://127.0.0.1:{free_port()}")

    async with registered(app, sessionmaker, down):
        answer = await submit(client, "urban_green", order(scenes, "2026-07-14"))

    assert answer.status_code == 202, answer.text


@pytest.fixture
async def imperviousness(session, scenes: Scenes) -> None:
    """The HRL imperviousness over the districts, in the local catalogue."""
    west, south, east, north = scenes.districts["clear"].bbox
    await add_product(
        session,
        "hrl-imperviousness",
        identifier="IMD-2018-TEST",
        product_type="IMD",
        footprint={
            "type": "Polygon",
            "coordinates": [
                [
                    [west - 1, south - 1],
                    [east + 1, south - 1],
                    [east + 1, north + 1],
                    [west - 1, north + 1],
                    [west - 1, south - 1],
                ]
            ],
        },
        start="2018-01-01T00:00:00Z",
        end="2018-12-31T23:59:59Z",
        properties={},
    )
    await session.commit()


async def test_a_suhi_order_takes_landsat_from_the_source_and_refuses_a_cloudy_one(
    app, sessionmaker, client, imperviousness, scenes: Scenes, stac_server: str
) -> None:
    async with registered(app, sessionmaker, stac_source(stac_server)):
        landsat = await submit(client, "suhi", order(scenes, "2026-07-15"))
        cloudy = await submit(client, "suhi", order(scenes, "2026-07-23", lst_source="landsat"))

    # No SLSTR anywhere: lst_source auto falls back to Landsat, which the source holds.
    assert landsat.status_code == 202, landsat.text
    assert cloudy.status_code == 422, cloudy.text
    (problem,) = problems(cloudy.json())
    assert problem.startswith("no lst: landsat-c2-l2 (L2SP) product clear enough covers the region")
    assert f"{stac_items.LANDSAT_CLOUDY_CLOUD_COVER:g}% cloud cover" in problem
    assert "nearest dates with data before: 2026-07-15" in problem


async def test_no_database_connection_is_held_while_a_source_is_asked(
    settings, sessionmaker, scenes: Scenes, stac_server: str
) -> None:
    """The source (behind a proxy that takes a moment to answer) notes how many of the API's
    pooled connections are checked out as it answers: a slow catalogue must not hold one."""
    proxy = CountingProxy(stac_server)
    checked_out: list[int] = []
    try:
        async with started_app(settings) as api:  # an engine of its own, committing
            proxy.delay = 0.3
            proxy.observe = lambda: checked_out.append(state_of(api).db.engine.pool.checkedout())
            transport = httpx.ASGITransport(app=api, client=(loopback_address(), 50000))
            async with (
                httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http,
                registered(api, sessionmaker, stac_source(proxy.url)),
            ):
                answer = await submit(http, "urban_green", order(scenes, "2026-07-14"))
    finally:
        proxy.close()

    assert answer.status_code == 202, answer.text
    assert checked_out and set(checked_out) == {0}
