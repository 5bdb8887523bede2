"""A source behind OAuth2: its searches carry a bearer token from a real token endpoint (a CURE
API process's own, client credentials), kept between searches; when the source answers 401 (the
token expired), the token is fetched again once and the search goes on."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.factories import create_customer
from tests.federation import items as stac_items
from tests.federation.conftest import Scenes
from tests.federation.proxy import CountingProxy
from tests.federation.sourcing import registered, stac_source


@pytest.fixture(scope="module")
def token_server() -> Iterator[str]:
    """A real OAuth2 token endpoint: a CURE API process (HTTP only)."""
    stack = Stack("federation-token", {"CURE_RUN_BACKGROUND_SERVICES": "false"})
    try:
        stack.start_api()
        yield stack.url
    finally:
        stack.stop()


@pytest.fixture
def proxy(stac_server: str) -> Iterator[CountingProxy]:
    counting = CountingProxy(stac_server)
    try:
        yield counting
    finally:
        counting.close()


async def client_credentials(token_server: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=token_server, timeout=15) as http:
        registration = await create_customer(http)
    return {"client_id": registration["client_id"], "client_secret": registration["client_secret"]}


async def test_an_expired_token_is_fetched_again_once_and_the_search_goes_on(
    app, sessionmaker, client, scenes: Scenes, proxy: CountingProxy, token_server: str
) -> None:
    credentials = await client_credentials(token_server)
    source = stac_source(
        proxy.url,
        auth={"type": "oauth2", "token_url": f"{token_server}/v1/auth/token", **credentials},
    )
    proxy.require_token = True
    box = ",".join(repr(v) for v in scenes.districts["clear"].bbox)

    async with registered(app, sessionmaker, source):
        first = await client.get(
            "/v1/ccsi/sentinel2-l2a/search",
            params={"bbox": box, "timeStart": "2026-07-01", "timeEnd": "2026-07-31"},
        )
        (token,) = set(proxy.tokens)  # one token for every call so far
        proxy.refused.add(token)  # it expires
        calls_before = len(proxy.tokens)
        second = await client.get(
            "/v1/ccsi/sentinel2-l2a/search",
            params={"bbox": box, "timeStart": "2026-07-13", "timeEnd": "2026-07-20"},
        )

    expected = [stac_items.S2_CLOUDY_ITEM_ID, stac_items.S2_ITEM_ID]
    for answer in (first, second):
        assert answer.status_code == 200, answer.text
        assert answer.json()["sourcesMissing"] == []
        assert [f["properties"]["identifier"] for f in answer.json()["features"]] == expected
    assert token != "" and len(token) > 20
    after = proxy.tokens[calls_before:]
    assert after[0] == token  # refused (401): fetched again once...
    assert after[1] != token and set(after[1:]) == {after[1]}  # ...and the search went on


async def test_a_token_refused_again_after_the_refresh_names_the_source_missing(
    app, sessionmaker, client, scenes: Scenes, proxy: CountingProxy, token_server: str
) -> None:
    credentials = await client_credentials(token_server)
    source = stac_source(
        proxy.url,
        auth={"type": "oauth2", "token_url": f"{token_server}/v1/auth/token", **credentials},
    )
    proxy.bearer = "a token CURE never gets"

    async with registered(app, sessionmaker, source):
        answer = await client.get("/v1/ccsi/sentinel2-l2a/search")

    assert answer.status_code == 200
    assert answer.json()["sourcesMissing"] == [source["name"]]
    assert len(proxy.tokens) == 2  # once, then once after a refresh: no loop
    assert proxy.tokens[0] != proxy.tokens[1]
