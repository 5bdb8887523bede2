"""The one factory for what a process needs from its settings: the engine and its sessionmaker.

The API builds them in its lifespan and keeps them on ``app.state``; every ``cure`` command builds
its own through the same function.
"""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit.db import make_engine, make_sessionmaker


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]


def build_resources(settings: Settings) -> Resources:
    engine = make_engine(settings.database_url)
    return Resources(settings=settings, engine=engine, sessionmaker=make_sessionmaker(engine))


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Resources for the length of a command; the engine's connections close at the end."""
    resources = build_resources(settings)
    try:
        yield resources
    finally:
        await resources.engine.dispose()
