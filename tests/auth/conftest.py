import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import loopback_address, started_app


@pytest.fixture(scope="session")
async def strict_app(settings):  # type: ignore[no-untyped-def]
    """The API with low brute-force limits: 3 failures per account, 6 per address and 2 reset
    requests per email, in a 2 s window."""
    strict = settings.model_copy(
        update={
            "throttle_account_failures": 3,
            "throttle_address_failures": 6,
            "throttle_reset_requests": 2,
            "throttle_window_seconds": 2,
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
