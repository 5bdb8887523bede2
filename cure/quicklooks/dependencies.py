"""The process's quicklook renders, for routes."""

from typing import Annotated

from fastapi import Depends, Request

from cure.config import Settings
from cure.kit.state import StateKey, state_of
from cure.quicklooks.renders import Renders

RENDERS = StateKey[Renders]("quicklook renders")


def _renders(settings: Settings) -> Renders:
    return Renders(
        concurrency=settings.quicklook_concurrency, wait_seconds=settings.quicklook_wait_seconds
    )


async def get_renders(request: Request) -> Renders:
    """The process's renders, made at first use from the app's settings."""
    state = state_of(request.app)
    return state.made(RENDERS, lambda: _renders(state.settings))


RendersDep = Annotated[Renders, Depends(get_renders)]
