import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import loopback_address, started_app


@pytest.fixture(scope="session")
async def strict_app(settings):  # type: ignore[no-untyped-def]
    """The API with low brute-force limits in a 2 s window: 3 failures per account and address
    together, 4 per account, 6 per address, 2 reset requests per email, 3 registrations per
    address; and short delays (0.05 s doubling, at most 0.4 s)."""
    strict = settings.model_copy(
        update={
            "throttle_pair_failures": 3,
            "throttle_account_failures": 4,
            "throttle_address_failures": 6,
            "throttle_reset_requests": 2,
            "throttle_registrations": 3,
            "throttle_window_seconds": 2,
            "throttle_delay_base_seconds": 0.05,
            "throttle_delay_max_seconds": 0.4,
        }
    )
    async with started_app(strict) as app:
        yield app


@contextlib.asynccontextmanager
async def client_from_new_address(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=(loopback_address(), 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
        yield http


@pytest.fixture
async def strict_client(strict_app):  # type: ignore[no-untyped-def]
    async with client_from_new_address(strict_app) as http:
        yield http
