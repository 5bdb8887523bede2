"""Publishes order events from a worker to the order-event consumer's queue, with publisher confirms;
each one (but heartbeats) is also a record of the order's log: the steps of its pipeline."""

import asyncio
import logging
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


class EventPublisher:
    def __init__(self, settings: Settings, *, order_id: Any, attempt: int, actor: str) -> None:
        self.settings = settings
        self.order_id = order_id
        self.attempt = attempt
        self.actor = actor
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    async def __aenter__(self) -> "EventPublisher":
        self._connection = await broker.connect(self.settings.broker_url)
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        await queues.declare_events_queue(self._channel, self.settings)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._connection is not None:
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
