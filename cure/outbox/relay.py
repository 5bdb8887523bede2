"""Publishes committed broker messages from the outbox with publisher confirms, then marks them sent.

Generic: each row names its exchange, routing key, headers and properties. What a kind of message
means to its domain (an order becomes QUEUED once its task is out, say) comes in as hooks from
whoever builds the relay, so this module knows nothing about any domain.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Protocol

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit import broker
from cure.kit.db import utcnow
from cure.outbox import repository as outbox_repository
from cure.outbox.repository import Pending

log = logging.getLogger(__name__)
BATCH = 50


class RelayHooks(Protocol):
    """What a domain does, in the relay's transaction, around publishing a batch of its kind of
    message: before, with every message of the batch; after, with those that went out."""

    async def before_publish(self, session: AsyncSession, messages: Sequence[Pending]) -> None: ...

    async def after_publish(self, session: AsyncSession, messages: Sequence[Pending]) -> None: ...


DeclareTopology = Callable[[AbstractChannel], Awaitable[object]]


# Migration 0010: a statement adding outbox rows notifies this channel at commit.
OUTBOX_CHANNEL = "cure_outbox"


class OutboxRelay:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        hooks: Mapping[str, RelayHooks] | None = None,
        declare: DeclareTopology | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.hooks = dict(hooks or {})
        self.declare = declare
        self._wake = asyncio.Event()
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    def wake(self) -> None:
        self._wake.set()

    async def wake_soon(self) -> None:
        """``wake`` as a coroutine, for a response's background task: Starlette runs a plain
        function there on a thread of its pool, a hop per request, and ``wake`` must run on the
        relay's own event loop anyway."""
        self.wake()

    def _reconnected(self, *_: object) -> None:
        log.info("outbox relay: the broker is back")
        self._channel = None
        self._wake.set()

    async def _pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``; a wake (a new message, the broker back) ends it early."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
        self._wake.clear()

    async def _ensure_channel(self) -> AbstractChannel:
        if self._connection is None:
            self._connection = await broker.connect(self.settings.broker_url)
            # Back from an outage: publish at once, not after the rest of a backoff.
            self._connection.reconnect_callbacks.add(self._reconnected)
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            if self.declare is not None:
                await self.declare(self._channel)
        return self._channel

    async def relay_once(self) -> int:
        """Publish one batch; returns how many messages were sent.

        The batch's messages are published together and their confirms awaited together (one
        wait for the broker, not one per message); the rows are marked sent, and the hooks' work
        done, in one transaction with the lock that took them, so a crash anywhere before its
        commit leaves them unsent, to be published again."""
        channel = await self._ensure_channel()
        async with self.sessionmaker() as session, session.begin():
            messages = await outbox_repository.lock_unpublished(session, now=utcnow(), limit=BATCH)
            if not messages:
                return 0
            kinds = sorted({m.kind for m in messages if m.kind in self.hooks})
            for kind in kinds:
                await self.hooks[kind].before_publish(
                    session, [m for m in messages if m.kind == kind]
                )
            outcomes = await self._publish_all(channel, messages)
            sent: list[Pending] = []
            for message, outcome in zip(messages, outcomes, strict=True):
                if isinstance(outcome, aio_pika.exceptions.DeliveryError):
                    # The broker is fine but cannot route this one message (its queue is gone):
                    # it waits and is tried again later; the rest of the batch goes on.
                    await self._defer(session, message, f"unroutable: {outcome}")
                elif isinstance(outcome, BaseException):
                    raise outcome  # the broker or the channel failed: the batch stays unsent
                else:
                    sent.append(message)
            await outbox_repository.mark_sent(session, [m.id for m in sent], now=utcnow())
            for kind in kinds:
                done = [m for m in sent if m.kind == kind]
                if done:
                    await self.hooks[kind].after_publish(session, done)
        return len(sent)

    async def _publish_all(
        self, channel: AbstractChannel, messages: Sequence[Pending]
    ) -> list[object]:
        """Publish every message, in order, and wait for all their confirms: each one's outcome
        (None, or the exception it failed with). Bounded as a whole: a blocked broker (a memory
        or disk alarm) must not hold these row locks, and the changes waiting on them, for ever."""
        async with asyncio.timeout(self.settings.publish_timeout_seconds):
            return await asyncio.gather(
                *(self._publish(channel, message) for message in messages), return_exceptions=True
            )

    async def _defer(self, session: AsyncSession, message: Pending, reason: str) -> None:
        attempts = message.attempts + 1
        pause = min(2 ** min(attempts, 10), 600)
        await outbox_repository.defer(
            session,
            message.id,
            attempts=attempts,
            reason=reason[:2000],
            available_at=utcnow() + timedelta(seconds=pause),
        )
        log.error(
            "outbox message %s (%s): %s; next try in %ss", message.id, message.kind, reason, pause
        )

    async def _publish(self, channel: AbstractChannel, message: Pending) -> None:
        await broker.publish_confirmed(
            channel,
            exchange=message.exchange,
            queue=message.routing_key,
            body=json.dumps(message.payload).encode(),
            headers=message.headers or {},
            **(message.properties or {}),
        )

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                sent = await self.relay_once()
                backoff = 0.5
                if sent:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying in %.1fs", backoff)
                self._channel = None
                await self._pause(backoff)
                backoff = min(backoff * 2, 5)
                continue
            await self._pause(self.settings.relay_poll_seconds)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
