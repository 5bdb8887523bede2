"""PostgreSQL LISTEN/NOTIFY: one connection per process that hears the notices of other processes.

A ``Listener`` keeps one asyncpg connection that LISTENs on the channels its subscribers name, and
connects again after a loss. A notice is sent by ``pg_notify`` (from a trigger or a statement) at
the commit of the transaction that sent it, to every listening connection of the database.

Subscribers are told when the listener is *not* hearing (before the first connection, and from a
loss until the next LISTEN is in place): whatever they keep on the strength of notices (a cache,
say) must not be trusted in between, because notices sent then are lost.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
APPLICATION_NAME = "cure-notices"  # how the connection shows in pg_stat_activity
PROBE_SECONDS = 5.0  # a silent connection (a network loss) is probed this often


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL ``postgresql+asyncpg://...`` as a DSN asyncpg takes."""
    scheme, _, rest = database_url.partition("://")
    return f"{scheme.split('+', 1)[0]}://{rest}"


CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def connect(
    dsn: str, name: str, connect_seconds: float
) -> tuple[asyncpg.Connection, asyncio.Event]:
    """A connection of its own, shown as ``name`` in pg_stat_activity, and an event set when
    the server closes it."""
    connection = await asyncpg.connect(
        dsn, timeout=connect_seconds, server_settings={"application_name": name}
    )
    lost = asyncio.Event()
    connection.add_termination_listener(lambda _c: lost.set())
    return connection, lost


async def wait_for_event(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set, at most ``seconds``."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


async def until_lost(
    connection: asyncpg.Connection,
    lost: asyncio.Event,
    *,
    probe_seconds: float,
    answer_seconds: float,
) -> None:
    """Return once the connection is lost: closed by the server, or silent to a probe."""
    while not lost.is_set():
        await wait_for_event(lost, probe_seconds)
        if lost.is_set():
            return
        try:
            await connection.fetchval("SELECT 1", timeout=answer_seconds)
        except CONNECTION_ERRORS:
            return


@dataclass(frozen=True)
class Subscription:
    channel: str
    on_notice: Callable[[str], None]  # the payload
    on_hearing: Callable[[bool], None] = lambda hearing: None  # False: notices may be lost


class Listener:
    def __init__(self, database_url: str, *, connect_timeout: float = 10) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.connect_timeout = connect_timeout
        self.subscriptions: list[Subscription] = []
        self.hearing = False
        self._lost = asyncio.Event()
        self._heard = asyncio.Event()

    def subscribe(self, subscription: Subscription) -> None:
        self.subscriptions.append(subscription)

    async def wait_hearing(self, seconds: float) -> bool:
        """Whether the listener hears notices, waiting up to ``seconds`` for it."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._heard.wait()
        return self.hearing

    def _set_hearing(self, hearing: bool) -> None:
        if hearing == self.hearing:
            return
        self.hearing = hearing
        if hearing:
            self._heard.set()
        else:
            self._heard.clear()
        for subscription in self.subscriptions:
            subscription.on_hearing(hearing)

    def _notice(self, subscription: Subscription) -> Callable[..., None]:
        def deliver(_connection: object, _pid: int, _channel: str, payload: str) -> None:
            try:
                subscription.on_notice(payload)
            except Exception:  # a subscriber's bug must not silence the others
                log.exception("a notice on %s could not be handled", subscription.channel)

        return deliver

    async def run(self) -> None:
        """Listen until cancelled, connecting again after every loss."""
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection, lost = await connect(self.dsn, APPLICATION_NAME, self.connect_timeout)
                for subscription in self.subscriptions:
                    await connection.add_listener(subscription.channel, self._notice(subscription))
                self._set_hearing(True)
                await until_lost(
                    connection,
                    lost,
                    probe_seconds=PROBE_SECONDS,
                    answer_seconds=self.connect_timeout,
                )
                log.warning("lost the database connection that listens for notices")
            except asyncio.CancelledError:
                raise
            except CONNECTION_ERRORS as exc:
                log.warning("cannot listen for notices (%s); trying again", exc)
            finally:
                self._set_hearing(False)
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), timeout=2)
            await asyncio.sleep(RETRY_SECONDS)
