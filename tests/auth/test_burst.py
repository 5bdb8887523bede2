"""Availability under a burst of wrong passwords: the token endpoint answers in about the time
the hashes take, other requests keep answering meanwhile, and every failure is counted."""

import asyncio
import hashlib
import time

import httpx
import pytest
from sqlalchemy import func, select

from cure.auth import passwords
from cure.auth.dependencies import PASSWORD_HASHER
from cure.auth.models import AuthFailure
from cure.kit.state import state_of
from tests.conftest import loopback_address, started_app
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


def _one_hash_seconds(settings) -> float:  # type: ignore[no-untyped-def]
    passwords.hash_password(settings, "warm up the context")
    started = time.perf_counter()
    for _ in range(3):
        passwords.hash_password(settings, "a password of some length")
    return (time.perf_counter() - started) / 3


@pytest.mark.parametrize("size", [40, 200])
async def test_a_burst_of_wrong_passwords_does_not_stall_the_api(burst_app, settings, size) -> None:
    address = loopback_address()
    transport = httpx.ASGITransport(app=burst_app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
        customer = await create_customer(http)
        headers = bearer(await get_token(http, customer))
        order = await http.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
        assert order.status_code == 202, order.text
        order_id = order.json()["order_id"]

        threads = state_of(burst_app).need(PASSWORD_HASHER).threads
        expected = size * _one_hash_seconds(settings) / threads
        emails = [unique_email() for _ in range(size)]

        async def wrong(email: str) -> httpx.Response:
            form = {"grant_type": "password", "client_id": "cure-portal", "username": email}
            return await http.post("/v1/auth/token", data={**form, "password": "wrong guess!!"})

        started = time.perf_counter()
        burst = asyncio.gather(*(wrong(email) for email in emails))
        await asyncio.sleep(0.2)  # the burst is in flight, its hashes queued
        asked = time.perf_counter()
        during = await http.get(f"/v1/orders/{order_id}", headers=headers)
        answered_in = time.perf_counter() - asked
        async with asyncio.timeout(expected * 3 + 20):
            answers = await burst
        took = time.perf_counter() - started

    print(
        f"{size}: GET during the burst {answered_in:.3f}s, burst {took:.2f}s, hashes {expected:.2f}s"
    )
    assert during.status_code == 200
    assert answered_in < 1.0, f"GET /v1/orders/{{id}} took {answered_in:.2f}s during the burst"
    assert [a.status_code for a in answers] == [400] * size
    assert {a.json()["error"] for a in answers} == {"invalid_grant"}
    assert took < expected * 1.5 + 2, (
        f"{size} wrong passwords took {took:.1f}s (hashes: {expected:.1f}s)"
    )
    # Every failure counted: under the address, and under each email.
    assert await _count(burst_app, _key("address", address)) == size
    counts = [await _count(burst_app, _key("user", email)) for email in emails[:5]]
    assert counts == [1] * 5
