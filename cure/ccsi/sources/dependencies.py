"""The process's source registry, for routes (made in the lifespan)."""

from typing import Annotated

from fastapi import Depends, Request

from cure.ccsi.sources.service import AfterCommit, SourceRegistry
from cure.kit.state import StateKey, state_of

SOURCES = StateKey[SourceRegistry]("sources")


async def get_registry(request: Request) -> SourceRegistry | None:
    """This API process's registry of enabled sources (None before the lifespan made it)."""
    return state_of(request.app).get(SOURCES)


async def registry_refresh(request: Request) -> AfterCommit | None:
    """What a change to a source runs once it commits: this process reads its sources again."""
    registry = await get_registry(request)
    return registry.invalidate if registry is not None else None


SourceRegistryDep = Annotated[SourceRegistry | None, Depends(get_registry)]
RegistryRefreshDep = Annotated[AfterCommit | None, Depends(registry_refresh)]
