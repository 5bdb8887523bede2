"""The order of a submit's checks: the customer's limits before anything costly (the parameters'
JSON Schema, the callback host's resolution, the catalogue), and the resolution under one deadline
with no database connection held; for ``/v1/apps/{id}/orders`` and the OGC execution alike."""

import asyncio

import httpx
import pytest

from cure.kit.dependencies import get_settings
from cure.kit.state import state_of
from cure.orders.dependencies import get_resolver
from tests.conftest import loopback_address, started_app
from tests.factories import VIENNA, customer_with_token, order_body

# A guard so that a regression fails the test instead of hanging the suite; what is asserted is
# the answer, never how long it took.
HANG_GUARD_SECONDS = 60


@pytest.fixture(scope="module")
async def api(settings):  # type: ignore[no-untyped-def]
    """An API of its own (its own engine, so its pool is the test's to observe), committing."""
    ours = settings.model_copy(update={"callback_resolve_seconds": 0.2})
    async with started_app(ours) as app:
        yield app


@pytest.fixture
async def http(api):  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=api, client=(loopback_address(), 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as client:
        yield client


@pytest.fixture
def resolver_of(api):  # type: ignore[no-untyped-def]
    """Install a resolver for the callback's host in ``api`` (removed after the test)."""

    def install(resolver) -> None:  # type: ignore[no-untyped-def]
        api.dependency_overrides[get_resolver] = lambda: resolver

    yield install
    api.dependency_overrides.pop(get_resolver, None)


async def test_a_callback_host_that_never_resolves_is_a_422_at_the_deadline(
    http, resolver_of
) -> None:
    """The resolver is a DNS server that never answers: a fault injected at the operating
    system's resolver, the seam the route takes its resolver from (no product code is mocked)."""

    async def never(host: str, port: int) -> list[str]:
        await asyncio.get_running_loop().create_future()
        return []

    resolver_of(never)
    _, headers = await customer_with_token(http)
    body = order_body(callback_url="https://hooks.example.org/cure")
    async with asyncio.timeout(HANG_GUARD_SECONDS):
        answer = await http.post(
            "/v1/apps/roi_stats/orders", json=body, headers={**headers, "Idempotency-Key": "k-1"}
        )
    assert answer.status_code == 422, answer.text
    assert answer.json() == {
        "error": "CallbackRefused",
        "detail": [
            {
                "loc": ["body", "callback_url"],
                "msg": "the host 'hooks.example.org' did not resolve within 0.2s",
                "type": "CallbackRefused",
            }
        ],
    }
    assert (await http.get("/v1/orders", headers=headers)).json()["items"] == []


async def test_no_database_connection_is_held_while_the_callback_host_resolves(
    api, http, resolver_of
) -> None:
    """The resolver notes how many of the pool's connections are checked out while it runs: a
    slow DNS server must not hold one (here with an Idempotency-Key, whose look-up reads)."""
    checked_out: list[int] = []

    async def noting(host: str, port: int) -> list[str]:
        checked_out.append(state_of(api).db.engine.pool.checkedout())
        return ["8.8.8.8"]

    resolver_of(noting)
    _, headers = await customer_with_token(http)
    body = order_body(callback_url="https://hooks.example.org/cure")
    answer = await http.post(
        "/v1/apps/roi_stats/orders", json=body, headers={**headers, "Idempotency-Key": "k-2"}
    )
    assert answer.status_code == 202, answer.text
    assert checked_out == [0]


@pytest.fixture
def at_most_one_active(app, settings):  # type: ignore[no-untyped-def]
    limited = settings.model_copy(update={"max_active_orders": 1})
    app.dependency_overrides[get_settings] = lambda: limited
    yield
    app.dependency_overrides.pop(get_settings, None)


@pytest.fixture
def resolutions(app):  # type: ignore[no-untyped-def]
    """The hosts the app's submit route asked to resolve (it answers with a public address)."""
    asked: list[str] = []

    async def noting(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["8.8.8.8"]

    app.dependency_overrides[get_resolver] = lambda: noting
    yield asked
    app.dependency_overrides.pop(get_resolver, None)


async def test_a_customer_at_the_limit_gets_429_before_any_costly_check(
    client, at_most_one_active, resolutions
) -> None:
    _, headers = await customer_with_token(client)
    first = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    assert first.status_code == 202, first.text
    invalid = order_body(params={"precision": 99}, callback_url="https://hooks.example.org/cure")
    refused = await client.post("/v1/apps/roi_stats/orders", json=invalid, headers=headers)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "TooManyOrders"
    assert resolutions == []  # the callback's host was never looked up
    # nor the catalogue asked: suhi has no data in 1990, which would be a 422
    no_data = order_body(start_date="1990-07-01", end_date=None)
    refused = await client.post("/v1/apps/suhi/orders", json=no_data, headers=headers)
    assert refused.status_code == 429, refused.text


async def test_a_repeated_request_gets_its_first_order_even_at_the_limit(
    client, at_most_one_active
) -> None:
    _, headers = await customer_with_token(client)
    keyed = {**headers, "Idempotency-Key": "first"}
    first = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=keyed)
    again = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=keyed)
    assert first.status_code == again.status_code == 202, again.text
    assert again.json()["order_id"] == first.json()["order_id"]
    assert again.headers["idempotent-replayed"] == "true"


async def test_an_ogc_execution_at_the_limit_gets_429_before_any_costly_check(
    client, at_most_one_active
) -> None:
    _, headers = await customer_with_token(client)
    url = "/ogc/processes/{}/execution"
    first = {"inputs": {"roi": VIENNA, "start_date": "2024-07-01"}}
    assert (await client.post(url.format("roi_stats"), json=first, headers=headers)).is_success
    for process, inputs in (
        ("roi_stats", {"roi": VIENNA, "start_date": "2024-07-01", "precision": 99}),
        ("suhi", {"roi": VIENNA, "start_date": "1990-07-01"}),  # no data: a 422 otherwise
    ):
        refused = await client.post(url.format(process), json={"inputs": inputs}, headers=headers)
        assert refused.status_code == 429, refused.text
        assert refused.json()["title"] == "TooManyOrders"
        assert int(refused.headers["retry-after"]) > 0
