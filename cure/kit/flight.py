"""Work done once however many ask for it: single flight per key, and results kept for a while.

``SingleFlight`` runs one task per key at a time; whoever asks for a key already in flight awaits
the same task (a render, a round of readiness checks) rather than starting another. The task runs
apart from its callers: one that gives up (a client that went away) cancels nothing for the rest.
``Recent`` adds a time to live: a result is handed out again until it is ``ttl`` seconds old.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


def _retrieve(task: "asyncio.Task[object]") -> None:
    # A failure nobody awaited any more (every caller gave up) is not logged as "never retrieved".
    if not task.cancelled():
        task.exception()


class SingleFlight(Generic[T]):
    """At most one run per key at a time; ``runs`` and ``joins`` count what it did."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task[T]] = {}
        self.runs = 0  # work started
        self.joins = 0  # callers that awaited work another caller had started

    def in_flight(self, key: Hashable) -> bool:
        return key in self._running

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._running[key] = task
            self.runs += 1
            task.add_done_callback(lambda _: self._running.pop(key, None))
            task.add_done_callback(_retrieve)
        else:
            self.joins += 1
        return await asyncio.shield(task)


class Recent(Generic[T]):
    """A result computed at most once per ``ttl`` seconds (and once at a time)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self.flight: SingleFlight[T] = SingleFlight()
        self._kept: tuple[float, T] | None = None

    async def get(self, compute: Callable[[], Awaitable[T]]) -> T:
        kept = self._kept
        if kept is not None and self.clock() - kept[0] < self.ttl:
            return kept[1]
        return await self.flight.run(None, lambda: self._compute(compute))

    async def _compute(self, compute: Callable[[], Awaitable[T]]) -> T:
        result = await compute()
        self._kept = (self.clock(), result)
        return result
