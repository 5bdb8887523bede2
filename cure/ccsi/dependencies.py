from typing import Annotated

from fastapi import Depends, Request

from cure.ccsi.federation import Federation
from cure.ccsi.schemas import SearchQuery


async def search_query(request: Request) -> SearchQuery:
    """The OpenSearch parameters, checked here so a bad one is a 400 that names it (not a 422)."""
    collection = request.path_params.get("collection")
    return SearchQuery.parse(request.query_params.multi_items(), collection=collection)


SearchQueryDep = Annotated[SearchQuery, Depends(search_query)]


async def get_federation(request: Request) -> Federation | None:
    """The process's federated search (its sources' clients, limits and cache); None in an app
    whose lifespan made none (local catalogue only)."""
    return getattr(request.app.state, "federation", None)


FederationDep = Annotated[Federation | None, Depends(get_federation)]
