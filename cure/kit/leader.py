"""One process of a deployment at a time runs the long-running services: the holder of a lock.

Every API process (``cure api --workers N`` starts N of them, on one machine or several) runs a
``Leadership``. The one that takes a PostgreSQL session-level advisory lock, on a connection of
its own, starts the services (the relay, the order-event consumer, the reconciler, the notifier and the
log saver); the others try again every ``follow_seconds``. A leader that exits or dies loses the
lock with its connection, and a follower takes over within ``follow_seconds``.

A leader whose lock connection is lost (the database restarted, say) keeps its services running,
as they wait out an outage on their own, and takes the lock again as soon as it can connect; only
if another process took it meanwhile does it stop them. Those services are safe to run twice for
a moment (the relay locks the rows it publishes, events are applied once by their ids): the lock
is there so that they normally run once, not for their correctness.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from cure.kit.listen import (
    CONNECTION_ERRORS,
    asyncpg_dsn,
    connect,
    until_lost,
    wait_for_event,
)

log = logging.getLogger(__name__)

APPLICATION_NAME = "cure-leadership"  # how the lock's connection shows in pg_stat_activity
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"


class Leadership:
    def __init__(
        self,
        database_url: str,
        name: str,
        start: Callable[[], list[asyncio.Task[None]]],
        *,
        follow_seconds: float = 2.0,
        probe_seconds: float = 5.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.key = f"cure:leader:{name}"
        self.start = start
        self.follow_seconds = follow_seconds
        self.probe_seconds = probe_seconds
        self.connect_timeout = connect_timeout
        self.tasks: list[asyncio.Task[None]] = []
        self.leading = asyncio.Event()

    async def run(self) -> None:
        try:
            while True:
                try:
                    connection, lost = await connect(
                        self.dsn, APPLICATION_NAME, self.connect_timeout
                    )
                except CONNECTION_ERRORS as exc:
                    log.warning("leadership: cannot reach the database (%s)", exc)
                    await asyncio.sleep(1)
                    continue
                try:
                    await self._hold(connection, lost)
                except CONNECTION_ERRORS:
                    pass
                finally:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), timeout=2)
                log.warning("leadership: lost the lock's connection; taking it again")
                await asyncio.sleep(1)
        finally:
            await self._stop()

    async def _hold(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Take the lock (or keep trying), then hold it until the connection is lost."""
        while not await connection.fetchval(_TRY_LOCK, self.key, timeout=self.connect_timeout):
            if self.tasks:
                log.warning("leadership: another process leads now; stopping the services here")
                await self._stop()
            await wait_for_event(lost, self.follow_seconds)
            if lost.is_set():
                return
        if not self.tasks:
            log.info("leadership: this process runs the relay and the consumers")
            self.tasks = self.start()
            self.leading.set()
        await until_lost(
            connection, lost, probe_seconds=self.probe_seconds, answer_seconds=self.connect_timeout
        )

    async def _stop(self) -> None:
        self.leading.clear()
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
