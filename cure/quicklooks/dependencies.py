"""The process's quicklook renders, for routes."""

from typing import Annotated

from fastapi import Depends, Request

from cure.config import Settings
from cure.quicklooks.renders import Renders


async def get_renders(request: Request) -> Renders:
    """The process's renders, made at first use from the app's settings."""
    state = request.app.state
    renders: Renders | None = getattr(state, "quicklook_renders", None)
    if renders is None:
        settings: Settings = state.settings
        renders = Renders(
            concurrency=settings.quicklook_concurrency,
            wait_seconds=settings.quicklook_wait_seconds,
        )
        state.quicklook_renders = renders
    return renders


RendersDep = Annotated[Renders, Depends(get_renders)]
