"""The one factory for what a process needs from its settings: the engine and its sessionmaker.

The API builds them in its lifespan and keeps them in its state (cure.kit.state); every ``cure``
command builds its own through the same function.
"""

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit.db import driver_connection, make_engine, make_sessionmaker

# Opens a connection for one read statement written in SQL (``Resources.read_connection``).
ReadConnections = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

SIDE_POOL_SIZE = 3


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # A small pool apart from the requests' one, for short transactions that commit on their own
    # while a request may hold a connection of the main pool (throttle records): a request never
    # waits for a second connection from the pool it already draws on, so bursts cannot drain it.
    # Left out (a command, a test), the main pool serves for both.
    side_engine: AsyncEngine | None = None
    side_sessionmaker: async_sessionmaker[AsyncSession] | None = None
    # Sessions on the main pool whose statements each commit on their own (no BEGIN, no
    # COMMIT): for requests that only read, where each statement is consistent by itself.
    read_sessionmaker: async_sessionmaker[AsyncSession] | None = None
    # Where ``read_connection`` draws from, if not the main pool (tests: their own transaction).
    read_connections: ReadConnections | None = None

    def read_connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A connection of the main pool as the driver's own, for the hottest reads: one SQL
        statement each, no session, no transaction (``cure.kit.db.driver_connection``)."""
        if self.read_connections is not None:
            return self.read_connections()
        return driver_connection(self.engine)

    @property
    def reads(self) -> async_sessionmaker[AsyncSession]:
        return self.read_sessionmaker or self.sessionmaker

    @property
    def side(self) -> async_sessionmaker[AsyncSession]:
        return self.side_sessionmaker or self.sessionmaker

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.side_engine is not None:
            await self.side_engine.dispose()


def build_resources(settings: Settings) -> Resources:
    timeout = settings.database_pool_timeout_seconds
    engine = make_engine(
        settings.database_url, pool_size=settings.database_pool_size, pool_timeout=timeout
    )
    side = make_engine(
        settings.database_url, pool_size=SIDE_POOL_SIZE, max_overflow=2, pool_timeout=timeout
    )
    return Resources(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        side_engine=side,
        side_sessionmaker=make_sessionmaker(side),
        read_sessionmaker=make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT")),
    )


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Resources for the length of a command; the engine's connections close at the end."""
    resources = build_resources(settings)
    try:
        yield resources
    finally:
        await resources.dispose()
