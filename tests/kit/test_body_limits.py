"""Request bodies are capped per route and answered 413 before anything parses them."""

import json

import pytest

from tests.factories import VIENNA, customer_with_token, order_body

KIB = 1024


def _chunks(size: int):  # type: ignore[no-untyped-def]
    """A body sent chunked, with no Content-Length to trust."""

    async def body():  # type: ignore[no-untyped-def]
        for _ in range(size // KIB):
            yield b"x" * KIB

    return body()


def _too_large(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "BodyTooLarge"
    assert "bytes" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/auth/token",
        "/v1/auth/login",
        "/v1/crm/customers",
        "/v1/auth/password-reset",
        "/v1/portal/session",
    ],
)
async def test_public_endpoints_take_small_bodies_only(client, settings, path) -> None:
    # Not even valid JSON or form data: refused for its size, before any parser sees it.
    big = b"{" * (settings.max_small_body_bytes + 1)
    _too_large(await client.post(path, content=big, headers={"Content-Type": "application/json"}))
    _too_large(await client.post(path, content=_chunks(settings.max_small_body_bytes + KIB)))


async def test_orders_take_a_region_and_no_more(client, settings) -> None:
    _, headers = await customer_with_token(client)
    ring = VIENNA["coordinates"][0]
    # A real region with many positions fits: about 1.4 MiB of JSON, answered like any order.
    many = [ring[0]] + [[16.3 + i * 1e-7, 48.2] for i in range(60000)] + [ring[0]]
    body = json.dumps(order_body(roi={"type": "Polygon", "coordinates": [many]}))
    assert settings.max_small_body_bytes < len(body) < settings.max_order_body_bytes
    answer = await client.post(
        "/v1/apps/roi_stats/orders",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert answer.status_code in (202, 422), answer.text
    over = b" " * (settings.max_order_body_bytes + 1)
    _too_large(
        await client.post(
            "/v1/apps/roi_stats/orders",
            content=over,
            headers={**headers, "Content-Type": "application/json"},
        )
    )
    # Without a token too: the size is checked first.
    _too_large(await client.post("/v1/apps/roi_stats/orders", content=_chunks(len(over) + KIB)))


async def test_other_endpoints_have_the_default_limit(client, settings) -> None:
    _, headers = await customer_with_token(client)
    big = b"x" * (settings.max_body_bytes + 1)
    _too_large(await client.post("/v1/ccsi/some-collection/products", content=big, headers=headers))


async def test_a_bad_content_length_is_a_400(app) -> None:
    sent: list[dict] = []

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/auth/token",
        "headers": [(b"content-length", b"lots")],
        "query_string": b"",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http",
        "server": ("cure.test", 80),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["error"] == "InvalidRequest"
