"""Availability under a burst of wrong passwords: its hashes queue on the hasher's threads, other
requests keep answering meanwhile, and every failure is counted."""

import asyncio
import hashlib
import threading

import httpx
import pytest
from sqlalchemy import func, select

from cure.auth.dependencies import PASSWORD_HASHER
from cure.auth.models import AuthFailure
from cure.kit.state import state_of
from tests.conftest import loopback_address, started_app, until
from tests.factories import bearer, create_customer, get_token, order_body, unique_email


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()


@pytest.fixture(scope="module")
async def burst_app(settings):  # type: ignore[no-untyped-def]
    """An API of its own (its own pools and hashing threads) whose limits the bursts stay under,
    so that every request in them costs a full password hash."""
    roomy = settings.model_copy(
        update={"throttle_address_failures": 1000, "throttle_account_failures": 1000}
    )
    async with started_app(roomy) as app:
        yield app


async def _count(app, key: str) -> int:  # type: ignore[no-untyped-def]
    async with state_of(app).db.sessionmaker() as session:
        query = select(func.count()).select_from(AuthFailure).where(AuthFailure.key == key)
        return int((await session.execute(query)).scalar_one())


@pytest.mark.parametrize("size", [40, 200])
async def test_a_burst_of_wrong_passwords_does_not_stall_the_api(burst_app, size) -> None:
    """The hashes of a burst queue on the hasher's own threads: while every one of them waits
    there (the test parks the threads), the event loop still answers other requests, and each
    attempt is already counted as a failure; released, every wrong password is answered. (How
    long a burst takes is a benchmark's business, not a test's.)"""
    address = loopback_address()
    transport = httpx.ASGITransport(app=burst_app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
        customer = await create_customer(http)
        headers = bearer(await get_token(http, customer))
        order = await http.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
        assert order.status_code == 202, order.text
        order_id = order.json()["order_id"]

        hasher = state_of(burst_app).need(PASSWORD_HASHER)
        release = threading.Event()
        parked = [hasher._pool.submit(release.wait) for _ in range(hasher.threads)]
        emails = [unique_email() for _ in range(size)]

        async def wrong(email: str) -> httpx.Response:
            form = {"grant_type": "password", "client_id": "cure-portal", "username": email}
            return await http.post("/v1/auth/token", data={**form, "password": "wrong guess!!"})

        try:
            burst = asyncio.gather(*(wrong(email) for email in emails))
            queue = hasher._pool._work_queue
            await until(lambda: queue.qsize() >= size, seconds=60)  # the whole burst queued
            during = await http.get(f"/v1/orders/{order_id}", headers=headers)
            recorded_during = await _count(burst_app, _key("address", address))
            assert not burst.done()
        finally:
            release.set()
        answers = await burst
        assert all(p.result() for p in parked)

    assert during.status_code == 200, during.text
    assert during.json()["order_id"] == order_id
    # Each attempt is committed as a failure before its hash waits for a thread (so a burst cannot
    # outrun the throttle), and none was answered before the threads were released.
    assert recorded_during == size
    assert [a.status_code for a in answers] == [400] * size
    assert {a.json()["error"] for a in answers} == {"invalid_grant"}
    # Every failure counted: under the address, and under each email.
    assert await _count(burst_app, _key("address", address)) == size
    counts = [await _count(burst_app, _key("user", email)) for email in emails[:5]]
    assert counts == [1] * 5
