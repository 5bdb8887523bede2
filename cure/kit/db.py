"""Database plumbing: the declarative base, engines and sessionmakers, and error classification.

No engine is cached here: whoever runs (the API's lifespan, a command, a task) builds its own from
its settings, so two apps with different settings can live in one process.
"""

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.util import greenlet_spawn

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


# Connection exceptions (class 08), shutdown or start-up (57P01-57P03), out of resources (53).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53")


def means_unavailable(sqlstate: str) -> bool:
    """Whether a PostgreSQL error code means the server is unreachable or not serving now."""
    return bool(sqlstate) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same work again later may succeed (the database or network was down),
    as opposed to an error the same input will always raise."""
    if isinstance(exc, (OSError, TimeoutError, sa_exc.TimeoutError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig
        sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", "") or "")
        if means_unavailable(sqlstate) or exc.connection_invalidated:
            return True
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) and not sqlstate:
            return not isinstance(orig, asyncpg.exceptions.DataError)
        return False
    if isinstance(exc, asyncpg.PostgresError):
        return means_unavailable(str(getattr(exc, "sqlstate", "")))
    return isinstance(exc, asyncpg.exceptions.InterfaceError) and not isinstance(
        exc, asyncpg.exceptions.DataError
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


# A pooled connection idle for longer than this is pinged before it is handed out again.
IDLE_PING_SECONDS = 2.0


# How long a checkout waits for a pooled connection. SQLAlchemy's default (30 s) lets a drained
# pool stall every request for half a minute; a short wait fails fast (the API answers 503).
POOL_TIMEOUT_SECONDS = 5.0


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    pool_timeout: float = POOL_TIMEOUT_SECONDS,
) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_timeout=pool_timeout,
    )
    ping_idle_connections(engine)
    return engine


def ping_idle_connections(engine: AsyncEngine, idle_seconds: float = IDLE_PING_SECONDS) -> None:
    """Ping a pooled connection before use only when it sat idle for ``idle_seconds``.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip per request, a fifth of
    a status read's time. A connection in steady use needs none: a server that went away since
    its last use fails that use, and the pool replaces the connection and every one older. One
    that sat idle (across a restart of the database, say) is pinged, and replaced if that fails,
    so the first request after an outage does not fail on a dead connection.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if isinstance(driver, asyncpg.Connection) and driver.is_closed():
            # The driver already saw this one end (the server terminated it while it sat in the
            # pool): replaced without a round trip, instead of failing the request that gets it.
            raise sa_exc.DisconnectionError("a pooled connection was closed by the server")
        since = record.info.get("checked_in_at")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool drops this connection and opens a new one in its place.
            raise sa_exc.DisconnectionError(f"a pooled connection did not answer: {exc}") from exc


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the engine's pool as the driver's own, for the hottest reads written as
    one SQL statement: no ORM session, no transaction (each statement commits on its own), and
    none of a session's bookkeeping per request (BENCHMARKS.md, row 1). Back to the pool at the
    end; dropped from it unless the server refused the statement (the server went away, a
    cancel).

    Failures to connect, and a connection the server ended under the statement, are raised as
    SQLAlchemy's errors, as a session would raise them (an ended connection as an
    ``InterfaceError`` with ``connection_invalidated``), so that the API's handlers and
    ``is_transient`` judge them alike; the server's refusal of a statement is raised as is."""
    dbapi = engine.dialect.loaded_dbapi
    try:
        pooled = await engine.raw_connection()
    except dbapi.Error as exc:  # the dialect's adapted error, which only a Connection wraps
        raise sa_exc.DBAPIError.instance(
            None, None, exc, dbapi.Error, dialect=engine.dialect
        ) from exc
    driver = pooled.driver_connection
    assert isinstance(driver, asyncpg.Connection)
    try:
        yield driver
    except BaseException as exc:
        refused = isinstance(exc, asyncpg.PostgresError)
        ended = (
            driver.is_closed()
            # The server's "terminating connection" (57P01), seen before the connection closes,
            # or seen on the idle connection, which leaves asyncpg's protocol out of step.
            or isinstance(exc, asyncpg.InternalClientError)
            or (refused and means_unavailable(str(getattr(exc, "sqlstate", "") or "")))
        )
        # A refusal leaves the connection usable; anything else (it ended, or a cancel that may
        # leave the statement being cancelled) drops it.
        if ended or not refused:
            pooled.invalidate()
        if ended and isinstance(exc, Exception) and not isinstance(exc, OSError):
            raise sa_exc.InterfaceError(None, None, exc, connection_invalidated=True) from exc
        raise
    finally:
        await greenlet_spawn(pooled.close)
