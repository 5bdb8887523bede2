"""Publishes order events from a worker to the order-event consumer's queue, with publisher confirms;
each one (but heartbeats) is also a record of the order's log: the steps of its pipeline."""

import asyncio
import contextlib
import logging
import time
from types import TracebackType
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from cure.config import Settings
from cure.kit import broker
from cure.kit.log_handler import ORDER_STEPS_LOGGER
from cure.orders import queues
from cure.orders.events import order_event
from cure.orders.lifecycle import OrderStatus
from cure.orders.schemas import OrderEventMessage

steps = logging.getLogger(ORDER_STEPS_LOGGER)
_LEVELS = {OrderStatus.FAILED: logging.ERROR, OrderStatus.INVALID: logging.WARNING}


async def _open(settings: Settings) -> tuple[AbstractRobustConnection, AbstractChannel]:
    connection = await broker.connect(settings.broker_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await queues.declare_events_queue(channel, settings)
    except BaseException:
        with contextlib.suppress(Exception):
            await connection.close()
        raise
    return connection, channel


class EventLink:
    """A worker process's connection to the broker for order events, kept from one run to the
    next on the process's one event loop (a connection, its channel and the queues' declarations
    made for every run cost each order a connection's set-up on both sides).

    It is used again only while fresh: between runs the loop stands still and answers no broker
    heartbeats, so after a pause a run starts on a new connection rather than on one the broker
    may have dropped; so does the run after one that failed. The owner closes it on its loop."""

    FRESH_SECONDS = 15.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._used = 0.0

    async def channel(self) -> AbstractChannel:
        kept, channel = self._connection, self._channel
        if (
            kept is None
            or channel is None
            or kept.is_closed
            or channel.is_closed
            or time.monotonic() - self._used > self.FRESH_SECONDS
        ):
            await self.close()
            self._connection, self._channel = await _open(self.settings)
            channel = self._channel
        return channel

    def used(self) -> None:
        self._used = time.monotonic()

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


class EventPublisher:
    """One run's events: on the worker process's kept ``link`` when given, else on a connection
    of the run's own."""

    def __init__(
        self,
        settings: Settings,
        *,
        order_id: Any,
        attempt: int,
        actor: str,
        link: EventLink | None = None,
    ) -> None:
        self.settings = settings
        self.order_id = order_id
        self.attempt = attempt
        self.actor = actor
        self._link = link
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    async def __aenter__(self) -> "EventPublisher":
        if self._link is not None:
            self._channel = await self._link.channel()
        else:
            self._connection, self._channel = await _open(self.settings)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._link is not None:
            if exc is None:
                self._link.used()
            else:  # the broker may be what failed: the next run connects anew
                await self._link.close()
        elif self._connection is not None:
            await self._connection.close()

    async def publish(self, status: OrderStatus, **fields: Any) -> OrderEventMessage:
        assert self._channel is not None, "use EventPublisher as an async context manager"
        event = order_event(self.order_id, status, attempt=self.attempt, actor=self.actor, **fields)
        # Bounded: a blocked broker must not hold a worker (the task waits the outage out).
        async with asyncio.timeout(self.settings.publish_timeout_seconds):
            await broker.publish_confirmed(
                self._channel,
                queue=self.settings.events_queue,
                body=event.model_dump_json().encode(),
                content_type="application/json",
                message_id=str(event.event_id),
            )
        if not event.heartbeat:
            steps.log(
                _LEVELS.get(status, logging.INFO),
                "%s%s: %s",
                status.value,
                f" {event.progress}%" if event.progress is not None else "",
                event.message or status.value.lower(),
                extra={
                    "order_id": str(self.order_id),
                    "status": status.value,
                    "progress": event.progress,
                    "attempt": self.attempt,
                },
            )
        return event
