"""STAC pages are keyset pages: a next link's token says where the page ended (not how many
items to skip), so a page costs the same however deep, and items that arrive meanwhile neither
repeat nor hide one. numberMatched is given while at most 10,000 match (the count stops there)."""

from tests.ccsi.bulk import add_many
from tests.ccsi.factories import add_product


def _next(page: dict) -> dict | None:  # type: ignore[type-arg]
    return next((link for link in page["links"] if link["rel"] == "next"), None)


async def test_number_matched_is_left_out_past_ten_thousand(client, session, collection) -> None:
    await add_many(session, collection, 10_001)
    page = (await client.get("/stac/search", params={"collections": collection, "limit": 1})).json()
    assert "numberMatched" not in page
    assert page["numberReturned"] == 1 and [f["id"] for f in page["features"]] == ["N10001"]
    following = (await client.get(_next(page)["href"])).json()
    assert [f["id"] for f in following["features"]] == ["N10000"]


async def test_next_pages_resume_after_the_last_item_when_newer_ones_arrive(
    client, session, collection
) -> None:
    for day in range(1, 6):
        await add_product(session, collection, identifier=f"D{day}", start=f"2024-07-0{day}")
    await session.commit()
    first = (
        await client.get("/stac/search", params={"collections": collection, "limit": 2})
    ).json()
    assert [f["id"] for f in first["features"]] == ["D5", "D4"] and first["numberMatched"] == 5
    posted = (
        await client.post("/stac/search", json={"collections": [collection], "limit": 2})
    ).json()
    await add_product(session, collection, identifier="D6", start="2024-07-06")
    await session.commit()
    second = (await client.get(_next(first)["href"])).json()
    assert [f["id"] for f in second["features"]] == ["D3", "D2"]
    body = _next(posted)["body"]
    assert [f["id"] for f in (await client.post("/stac/search", json=body)).json()["features"]] == [
        "D3",
        "D2",
    ]


async def test_offset_tokens_past_ten_thousand_are_refused(client) -> None:
    deep = await client.get("/stac/search", params={"token": "10001"})
    assert deep.status_code == 400, deep.text
    assert "token" in deep.json()["description"] and "next" in deep.json()["description"]
    for token in ("nope", "zz.zz", "1." + "0" * 31):
        response = await client.get("/stac/search", params={"token": token})
        assert response.status_code == 400, (token, response.text)
