"""What the portal's pages read: storylines (anyone), the days with input data and the places
of the catalogue (the order form), quicklooks of catalogue products (who may see them)."""

import uuid
from pathlib import Path

from cure.kit.state import state_of
from cure.storage.dependencies import STORAGE
from tests.ccsi.factories import add_product, box
from tests.factories import customer_with_token
from tests.quicklooks.test_quicklook import write_raster


async def test_storylines_are_public_and_say_when_their_products_are_not_ready(client) -> None:
    listed = await client.get("/v1/portal/storylines")
    assert listed.status_code == 200
    slugs = [s["slug"] for s in listed.json()]
    assert "vienna-heat" in slugs
    story = (await client.get("/v1/portal/storylines/vienna-heat")).json()
    assert story["blocks"][0]["type"] == "html"
    assert story["products"]["heat"]["app"] == "suhi"
    assert (await client.get("/v1/portal/storylines/nope")).status_code == 404


async def test_the_calendar_marks_the_days_every_dated_input_has_data(client, session) -> None:
    area = box(5.0, 40.0, 5.2, 40.2)  # a place of this test's own
    for day in ("2024-05-02", "2024-05-09"):
        await add_product(
            session,
            "sentinel3-slstr-lst",
            product_type="SL_2_LST",
            footprint=area,
            start=f"{day}T10:00:00Z",
        )
    await add_product(
        session,
        "hrl-imperviousness",
        product_type="IMD",
        footprint=area,
        start="2018-01-01T00:00:00Z",
    )
    await session.commit()
    dates = await client.get(
        "/v1/portal/apps/suhi/dates",
        params={"bbox": "5.05,40.05,5.1,40.1", "start": "2024-05-01", "end": "2024-05-31"},
    )
    assert dates.status_code == 200, dates.text
    assert dates.json() == {
        "app_id": "suhi",
        "needs_inputs": True,
        "dates": ["2024-05-02", "2024-05-09"],
    }
    elsewhere = await client.get(
        "/v1/portal/apps/suhi/dates",
        params={"bbox": "6,41,6.1,41.1", "start": "2024-05-01", "end": "2024-05-31"},
    )
    assert elsewhere.json()["dates"] == []
    roi_stats = await client.get("/v1/portal/apps/roi_stats/dates")
    assert roi_stats.json()["needs_inputs"] is False
    assert (
        await client.get("/v1/portal/apps/suhi/dates", params={"bbox": "1,2"})
    ).status_code == 422
    # an end so early that the default start would fall before year 1 (found by the fuzz test)
    too_early = await client.get("/v1/portal/apps/suhi/dates", params={"end": "0001-01-05"})
    assert too_early.status_code == 422, too_early.text


async def test_places_are_the_cities_public_products_name(client, session) -> None:
    name = f"Testville-{uuid.uuid4().hex[:6]}"
    await add_product(
        session, "sentinel2-l2a", footprint=box(7.0, 45.0, 7.1, 45.1), properties={"city": name}
    )
    await add_product(
        session, "sentinel2-l2a", footprint=box(7.1, 45.0, 7.2, 45.2), properties={"city": name}
    )
    await session.commit()
    places = {p["name"]: p["bbox"] for p in (await client.get("/v1/portal/places")).json()}
    assert places[name] == [7.0, 45.0, 7.2, 45.2]


async def test_a_products_quicklook_is_for_those_who_may_see_it(
    client, session, app, tmp_path: Path
) -> None:
    key = f"inputs/test/{uuid.uuid4()}/lst.tif"
    await (
        state_of(app)
        .need(STORAGE)
        .put_file(key, write_raster(tmp_path / "lst.tif"), media_type="image/tiff")
    )
    asset = {
        "href": key,
        "type": "image/tiff; application=geotiff",
        "size": 1,
        "checksum": "sha256:" + "0" * 64,
    }
    public = await add_product(
        session, "sentinel3-slstr-lst", product_type="SL_2_LST", assets={"lst": asset}
    )
    owner, owner_headers = await customer_with_token(client)
    private = await add_product(
        session, "cure-suhi", owner_id=uuid.UUID(owner["customer_id"]), assets={"data": asset}
    )
    await session.commit()

    path = f"/v1/ccsi/sentinel3-slstr-lst/products/{public.identifier}/assets/lst/quicklook"
    described = await client.get(path)
    assert described.status_code == 200, described.text
    assert described.json()["label"] == "Land surface temperature"
    assert described.json()["png"] == f"{path}.png"
    image = await client.get(described.json()["png"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content[:4] == b"\x89PNG"
    assert (await client.get(path.replace("/lst/", "/nope/"))).status_code == 404

    own = f"/v1/ccsi/cure-suhi/products/{private.identifier}/assets/data/quicklook"
    assert (await client.get(own)).status_code == 404  # anonymous: not there
    _, stranger = await customer_with_token(client)
    assert (await client.get(own, headers=stranger)).status_code == 404
    assert (await client.get(own, headers=owner_headers)).status_code == 200


async def test_an_orders_quicklook_and_download_need_a_finished_order_of_ones_own(client) -> None:
    _, headers = await customer_with_token(client)
    missing = uuid.uuid4()
    for tail in ("quicklook", "quicklook.png", "download"):
        response = await client.get(f"/v1/orders/{missing}/assets/data/{tail}", headers=headers)
        assert response.status_code == 404, tail
        assert (await client.get(f"/v1/orders/{missing}/assets/data/{tail}")).status_code == 401
