"""A search costs at most a bounded count and a bounded OFFSET: totalResults stops counting at
10,000 (a search that matches more says 10,000), and pages start at most at startIndex 10,001
(deeper ones are a 400 that says how to narrow the search)."""

import contextlib
from collections.abc import Iterator

from sqlalchemy import event

from cure.kit.state import state_of
from tests.ccsi.bulk import add_many
from tests.ccsi.factories import add_product


@contextlib.contextmanager
def statements(engine) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The SQL the app sends through ``engine`` meanwhile."""
    seen: list[str] = []

    def note(_connection, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


async def test_total_results_stop_counting_at_ten_thousand(client, session, collection) -> None:
    await add_many(session, collection, 10_001)
    page = (await client.get(f"/v1/ccsi/{collection}/search", params={"maxRecords": 1})).json()
    assert page["totalResults"] == 10_000
    assert [f["properties"]["identifier"] for f in page["features"]] == ["N10001"]
    assert any(link["rel"] == "next" for link in page["links"])
    atom = await client.get(f"/v1/ccsi/{collection}/search", params={"format": "atom"})
    assert b"<os:totalResults>10000</os:totalResults>" in atom.content

    narrow = {"timeStart": "2020-01-07T22:40:00Z", "maxRecords": 5}  # the newest two
    page = (await client.get(f"/v1/ccsi/{collection}/search", params=narrow)).json()
    assert page["totalResults"] == 2 and not any(link["rel"] == "next" for link in page["links"])


async def test_pages_past_start_index_ten_thousand_and_one_are_refused(
    client, session, collection
) -> None:
    await add_many(session, collection, 10_003)
    last = await client.get(
        f"/v1/ccsi/{collection}/search", params={"startIndex": 10_001, "maxRecords": 1}
    )
    assert last.status_code == 200, last.text
    assert [f["properties"]["identifier"] for f in last.json()["features"]] == ["N3"]
    assert not any(link["rel"] == "next" for link in last.json()["links"])  # none past the cap
    deeper = await client.get(f"/v1/ccsi/{collection}/search", params={"startIndex": 10_002})
    assert deeper.status_code == 400, deeper.text
    problem = deeper.json()["detail"][0]
    assert deeper.json()["error"] == "InvalidParameter" and problem["loc"] == [
        "query",
        "startIndex",
    ]
    assert "timeEnd" in problem["msg"]


async def test_searches_count_no_further_than_the_bound_and_summarise_nothing(
    app, client, session, collection
) -> None:
    await add_product(session, collection, identifier="ONE")
    await add_product(session, collection, identifier="TWO")
    await session.commit()
    # Pages with more after them: only a count can say how many match (a last page tells).
    with statements(state_of(app).db.engine) as seen:
        for path, params in (
            (f"/v1/ccsi/{collection}/search", {"maxRecords": 1}),
            ("/stac/search", {"collections": collection, "limit": 1}),
            (f"/stac/collections/{collection}/items", {"limit": 1}),
        ):
            response = await client.get(path, params=params)
            assert response.status_code == 200, response.text
    counts = [statement for statement in seen if "count(" in statement.lower()]
    assert counts and all(" LIMIT " in statement.upper() for statement in counts), counts
    assert not any("GROUP BY" in statement.upper() for statement in seen), seen
