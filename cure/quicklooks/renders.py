"""Quicklook renders of one API process: a few at a time, and one per image however many ask.

A render reads a raster into memory and warps it in a thread: ``quicklook_concurrency`` of them
run at once, and a request that waits longer than ``quicklook_wait_seconds`` for its turn is
answered 503 (Retry-After) rather than queued without bound. Requests for an image already being
rendered await that render (single flight) instead of drawing it again.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from cure.kit.errors import ServiceUnavailable
from cure.kit.flight import SingleFlight
from cure.kit.metrics import QUICKLOOK_RENDERS

Rendered = tuple[bytes, dict[str, Any]]


class QuicklookBusy(ServiceUnavailable):
    """Every render slot stayed taken for as long as a request may wait."""


class Renders:
    def __init__(self, *, concurrency: int, wait_seconds: float) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.wait_seconds = wait_seconds
        self.flight: SingleFlight[Rendered] = SingleFlight()

    async def render(self, key: str, draw: Callable[[], Awaitable[Rendered]]) -> Rendered:
        """``draw()`` once for ``key`` however many ask at the same time, in a free slot."""
        return await self.flight.run(key, lambda: self._in_a_slot(draw))

    async def _in_a_slot(self, draw: Callable[[], Awaitable[Rendered]]) -> Rendered:
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self.slots.acquire()
        except TimeoutError:
            QUICKLOOK_RENDERS.labels("busy").inc()
            raise QuicklookBusy("every quicklook render is taken; try again shortly") from None
        try:
            rendered = await draw()
        finally:
            self.slots.release()
        QUICKLOOK_RENDERS.labels("rendered").inc()
        return rendered
