from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.ccsi.federation import Federation
from cure.ccsi.schemas import SearchQuery
from cure.kit.state import StateKey, state_of

FEDERATION = StateKey[Federation]("federation")


async def search_query(request: Request) -> SearchQuery:
    """The OpenSearch parameters, checked here so a bad one is a 400 that names it (not a 422)."""
    collection = request.path_params.get("collection")
    return SearchQuery.parse(request.query_params.multi_items(), collection=collection)


SearchQueryDep = Annotated[SearchQuery, Depends(search_query)]


async def get_federation(request: Request) -> Federation | None:
    """The process's federated search (its sources' clients, limits and cache); None in an app
    whose lifespan made none (local catalogue only)."""
    return state_of(request.app).get(FEDERATION)


FederationDep = Annotated[Federation | None, Depends(get_federation)]


async def get_local_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    """Short read sessions for the local side of a federated search: each gives its connection
    back before the sources' answers are awaited (the request's own session would hold it)."""
    return state_of(request.app).db.reads


LocalSessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_local_sessions)]
