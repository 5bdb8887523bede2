"""Dependencies of the submit routes (``/v1/apps/{id}/orders`` and the OGC execution)."""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.kit import outbound
from cure.kit.state import StateKey, state_of
from cure.outbox.relay import OutboxRelay

# The outbox relay this process runs (the leader's), woken after a submit commits.
RELAY = StateKey[OutboxRelay]("relay")


async def get_resolver() -> outbound.Resolver:
    """The host-name resolver a callback's host is checked with: the operating system's, on
    threads of its own (a customer's slow names never delay CURE's own callbacks).

    A seam at the OS resolver (tests inject a DNS server that never answers); nothing else."""
    return outbound.resolve_at_submit


async def get_read_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """Short read sessions for a submit's checks before the request's own session is used (a
    session of the request's dependency would hold its connection until the response)."""
    return state_of(request.app).db.reads


async def get_relay(request: Request) -> OutboxRelay | None:
    """The relay to wake once a submit commits; None where this process runs none."""
    return state_of(request.app).get(RELAY)


ResolverDep = Annotated[outbound.Resolver, Depends(get_resolver)]
ReadSessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_read_sessionmaker)]
RelayDep = Annotated[OutboxRelay | None, Depends(get_relay)]
