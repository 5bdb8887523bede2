"""``driver_connection``: the pool's connection as the driver's own, for one SQL read."""

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from cure.kit.db import driver_connection, is_transient, make_engine
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
    # Handed out again at once (no idle ping yet). If the driver has seen it close, the pool
    # replaces it and the read succeeds; if not, the statement fails on the ended connection,
    # as the server's "terminating connection" or the driver's protocol out of step (the
    # server's message seen on the idle connection, its close not yet)...
    try:
        async with driver_connection(engine) as connection:
            assert await connection.fetchval("SELECT 1") == 1
            assert connection.get_server_pid() != doomed
    except (sa_exc.InterfaceError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        pass
    # ...and either way it has left the pool: the next read gets a new one.
    async with driver_connection(engine) as connection:
        assert connection.get_server_pid() != doomed
        assert await connection.fetchval("SELECT 2") == 2
    assert engine.sync_engine.pool.checkedout() == 0


async def test_a_pooled_connection_known_closed_is_replaced_before_it_is_handed_out(engine) -> None:  # type: ignore[no-untyped-def]
    async with driver_connection(engine) as connection:
        closed = connection.get_server_pid()
        connection.terminate()  # closed while the pool still counts it as good
    async with driver_connection(engine) as connection:
        assert not connection.is_closed()
        assert connection.get_server_pid() != closed
        assert await connection.fetchval("SELECT 1") == 1


def _ended(reported: Exception) -> Exception:
    return sa_exc.InterfaceError(None, None, reported, connection_invalidated=True)


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        # The server refused the statement: the connection is fine, stays in the pool, and the
        # refusal is raised as is.
        (asyncpg.exceptions.DivisionByZeroError("division by zero"), None),
        # The server ending the connection, reported before the driver sees it close: dropped,
        # and raised as a session would raise it.
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), sa_exc.InterfaceError),
        (asyncpg.InternalClientError("cannot switch to state 11"), sa_exc.InterfaceError),
    ],
)
async def test_what_the_failure_says_decides_whether_the_connection_is_kept(  # type: ignore[no-untyped-def]
    engine, error, raised
) -> None:
    with pytest.raises(raised or type(error)) as caught:
        async with driver_connection(engine) as connection:
            first_pid = connection.get_server_pid()
            assert not connection.is_closed()
            raise error
    if raised is not None:
        assert caught.value.connection_invalidated and caught.value.orig is error
        assert is_transient(caught.value)
    async with driver_connection(engine) as connection:
        assert (connection.get_server_pid() == first_pid) is (raised is None)
    assert engine.sync_engine.pool.checkedout() == 0


async def test_a_failure_to_connect_is_raised_as_a_session_would_raise_it(db) -> None:  # type: ignore[no-untyped-def]
    nowhere = make_engine(TEST_DATABASE_URL.rsplit("/", 1)[0] + "/cure_no_such_database")
    try:
        with pytest.raises(sa_exc.DBAPIError) as caught:
            async with driver_connection(nowhere):
                pass
        assert caught.value.orig.sqlstate == "3D000"  # invalid_catalog_name
    finally:
        await nowhere.dispose()
