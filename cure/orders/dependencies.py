"""Dependencies of the submit routes (``/v1/apps/{id}/orders`` and the OGC execution)."""

from typing import Annotated

from fastapi import Depends

from cure.kit import outbound


async def get_resolver() -> outbound.Resolver:
    """The host-name resolver a callback's host is checked with: the operating system's.

    A seam at the OS resolver (tests inject a DNS server that never answers); nothing else."""
    return outbound.resolve


ResolverDep = Annotated[outbound.Resolver, Depends(get_resolver)]
