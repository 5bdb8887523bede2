"""Hostile /stac/search input is a 400 that names the parameter, never a 500: Unicode digits that
str.isdigit() accepts and int() refuses, GeoJSON nested past what a parser can walk, NUL
characters. A 500 also cost the client its connection (uvicorn closes it without saying so, and
the next request on it was reset): a live API shows the connection kept."""

import httpx

from tests.conftest import Stack

DEEP = "[" * 2500 + "]" * 2500


async def test_unicode_digits_deep_geojson_and_nul_are_400s_naming_the_parameter(client) -> None:
    cases = [
        ("get", {"limit": "²"}, "limit"),
        ("get", {"token": "²"}, "token"),
        ("get", {"limit": "١٢"}, "limit"),  # Arabic-Indic digits: int() takes them, we do not
        ("post", {"token": "²"}, "token"),
        ("get", {"intersects": '{"type":"Point","coordinates":' + DEEP + "}"}, "intersects"),
        ("get", {"intersects": "[" * 30 + "]" * 30}, "intersects"),
        ("get", {"ids": "a\x00b"}, "ids"),
        ("post", {"ids": ["a\x00b"]}, "ids"),
    ]
    for method, params, named in cases:
        if method == "get":
            response = await client.get("/stac/search", params=params)
        else:
            response = await client.post("/stac/search", json=params)
        assert response.status_code == 400, (params, response.text)
        assert set(response.json()) == {"code", "description"}, response.text
        assert named in response.json()["description"], response.text
    posted = await client.post(
        "/stac/search",
        content='{"intersects":{"type":"Point","coordinates":' + DEEP + "}}",
        headers={"Content-Type": "application/json"},
    )
    assert posted.status_code == 400, posted.text


def test_a_refused_search_keeps_the_connection_alive() -> None:
    stack = Stack("stac-hostile", {"CURE_RUN_BACKGROUND_SERVICES": "false"})
    stack.start_api()
    try:
        with httpx.Client(base_url=stack.url, timeout=15) as http:  # one kept-alive connection
            for params in ({"limit": "²"}, {"token": "²"}, {"intersects": "[" * 2500}):
                refused = http.get("/stac/search", params=params)
                following = http.get("/stac/conformance")  # on the same connection
                assert following.status_code == 200
                assert refused.status_code == 400, refused.text
    finally:
        stack.stop()
