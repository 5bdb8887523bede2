"""``driver_connection``: the pool's connection as the driver's own, for one SQL read."""

import asyncpg
import pytest

from cure.kit.db import driver_connection, make_engine
from tests.conftest import TEST_DATABASE_URL


@pytest.fixture
async def engine(db):  # type: ignore[no-untyped-def]
    # ``db`` only for the migrated test database; the engine is this test's own.
    engine = make_engine(TEST_DATABASE_URL, pool_size=1, max_overflow=0)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_the_connection_goes_back_to_the_pool_outside_any_transaction(engine) -> None:  # type: ignore[no-untyped-def]
    async with driver_connection(engine) as connection:
        first_pid = connection.get_server_pid()
        assert not connection.is_in_transaction()
        assert await connection.fetchval("SELECT 1") == 1
    assert engine.sync_engine.pool.checkedout() == 0
    # The pool has one connection: the next read is served by the same one.
    async with driver_connection(engine) as connection:
        assert connection.get_server_pid() == first_pid


async def test_a_connection_the_server_ended_is_dropped_from_the_pool(engine) -> None:  # type: ignore[no-untyped-def]
    async with driver_connection(engine) as connection:
        doomed = connection.get_server_pid()
    admin = await asyncpg.connect(TEST_DATABASE_URL.replace("+asyncpg", ""))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", doomed)
    finally:
        await admin.close()
    # Handed out again at once (no idle ping yet): the statement fails on the ended connection...
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
        async with driver_connection(engine) as connection:
            await connection.fetchval("SELECT 1")
    # ...which leaves the pool: the next read gets a new one.
    async with driver_connection(engine) as connection:
        assert connection.get_server_pid() != doomed
        assert await connection.fetchval("SELECT 2") == 2
    assert engine.sync_engine.pool.checkedout() == 0
