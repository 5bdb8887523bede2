"""FastAPI dependencies every domain shares: the app's settings and the per-request session.

Both come from the app's state (``cure.kit.state``, made by ``create_app`` and its lifespan), never
from module globals.
Dependencies are ``async def`` even when they do not await: FastAPI runs a plain ``def`` one in
its thread pool, a thread hop per request that costs more than the work.
"""

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit.resources import ReadConnections
from cure.kit.state import state_of

F = TypeVar("F", bound=Callable[..., Any])


# Dependencies that reach the database: a route that uses one can answer 503 when it is away,
# and says so in the OpenAPI document (cure.kit.error_handlers.declare_unavailable).
DATABASE_DEPENDENCIES: set[Callable[..., Any]] = set()


def uses_database(dependency: F) -> F:
    """Mark a dependency as one that reads or writes the database."""
    DATABASE_DEPENDENCIES.add(dependency)
    return dependency


async def get_settings(request: Request) -> Settings:
    return state_of(request.app).settings


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return state_of(request.app).db.sessionmaker


@uses_database
async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed once at the end, rolled back on any error."""
    async with state_of(request.app).db.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


@uses_database
async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for a request that only reads: each statement commits on its own, so a read of
    one statement costs one round trip, not three (BEGIN, the read, COMMIT). Never for writes."""
    async with state_of(request.app).db.reads() as session:
        yield session


@uses_database
async def get_read_connections(request: Request) -> ReadConnections:
    """For a route whose read is one SQL statement: how to open its connection
    (``Resources.read_connection``). A plain function of the request, not a generator: FastAPI
    keeps no exit stack for it, and the connection is held only around the statement."""
    return state_of(request.app).db.read_connection


SettingsDep = Annotated[Settings, Depends(get_settings)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
ReadConnectionsDep = Annotated[ReadConnections, Depends(get_read_connections)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
# "function" scope: the commit happens when the endpoint returns, before the response is sent, so
# a client never sees a 2xx for data that then fails to commit or is not yet visible.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
