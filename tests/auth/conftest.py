import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import loopback_address, started_app

WINDOW_SECONDS = 3600  # the strict app's throttle window


@pytest.fixture(scope="session")
async def strict_app(settings):  # type: ignore[no-untyped-def]
    """The API with low brute-force limits: 3 failures per account and address together, 4 per
    account, 6 per address, 2 reset requests per email, 3 registrations per address; and short
    delays (0.05 s doubling, at most 0.4 s).

    The window is an hour, so that no count runs out by itself while a test builds it up (each
    password costs a hash, and a loaded machine can take seconds for a few); every test is its own
    client address with a new account. A test of a refusal that lifts moves its rows back in time
    (test_throttle.py's ``_age``) instead of waiting for the window to pass."""
    strict = settings.model_copy(
        update={
            "throttle_pair_failures": 3,
            "throttle_account_failures": 4,
            "throttle_address_failures": 6,
            "throttle_reset_requests": 2,
            "throttle_registrations": 3,
            "throttle_window_seconds": WINDOW_SECONDS,
            "throttle_delay_base_seconds": 0.05,
            "throttle_delay_max_seconds": 0.4,
        }
    )
    async with started_app(strict) as app:
        yield app


@contextlib.asynccontextmanager
async def client_from(app, address: str) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
        yield http


@contextlib.asynccontextmanager
async def client_from_new_address(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    async with client_from(app, loopback_address()) as http:
        yield http


@pytest.fixture
async def strict_client(strict_app):  # type: ignore[no-untyped-def]
    async with client_from_new_address(strict_app) as http:
        yield http
