"""The order-event consumer (`cure order-events`, once called the status manager): consumes order
events from RabbitMQ and applies them; each is acked only after its DB transaction commits.

Also consumes the dead-letter queue: an order task that RabbitMQ gave up on (it failed or killed
its worker too often) ends its order FAILED with that reason, so no order waits forever.
"""

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit import broker
from cure.kit.db import is_transient
from cure.orders import queues
from cure.orders.events import apply_event, order_event, stray_keys
from cure.orders.lifecycle import OrderStatus
from cure.orders.schemas import OrderEventMessage
from cure.orders.tidy import enqueue_tidy

log = logging.getLogger(__name__)


class OrderEventConsumer:
    """Applies the workers' order events, and fails the orders whose job was dead-lettered."""

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker

    async def _apply(self, message: AbstractIncomingMessage, event: OrderEventMessage) -> None:
        try:
            async with self.sessionmaker() as session, session.begin():
                applied = await apply_event(session, event)
                strays = [] if applied else await stray_keys(session, event)
                if strays:  # a run that lost: its files go, in the tidier's own time
                    await enqueue_tidy(session, event.order_id, keys=strays)
        except Exception as exc:
            if is_transient(exc):
                log.warning("could not apply event %s (%r); redelivering", event.event_id, exc)
                await asyncio.sleep(1)  # the database is likely down: don't spin on redelivery
                await message.nack(requeue=True)
            else:
                # The same event would fail forever and hold up every event behind it.
                log.exception("event %s can never be applied; dead-lettering it", event.event_id)
                await message.reject(requeue=False)
            return
        await message.ack()
        outcome = "applied" if applied else "ignored"
        log.info(
            "order %s: %s %s",
            event.order_id,
            event.status,
            outcome,
            extra={"order_id": str(event.order_id), "actor": event.actor, "event": outcome},
        )

    async def handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event = OrderEventMessage.model_validate_json(message.body)
        except ValidationError:
            log.error("dropping a malformed order event (%d bytes)", len(message.body))
            await message.reject(requeue=False)
            return
        await self._apply(message, event)

    async def handle_dead_letter(self, message: AbstractIncomingMessage) -> None:
        try:
            args = json.loads(message.body)[0]
            order_id = uuid.UUID(str(args[0]))
            attempt = int(args[1]) if len(args) > 1 and args[1] is not None else 1
        except (ValueError, TypeError, IndexError, KeyError):
            await self._park(message)
            return
        tries = _delivery_count(message)
        log.error(
            "order %s: its task was dead-lettered after %s deliveries",
            order_id,
            tries,
            extra={"order_id": str(order_id)},
        )
        event = order_event(
            order_id,
            OrderStatus.FAILED,
            attempt=attempt,
            actor="dead-letter",
            # One event id per dead letter: a redelivered dead letter is applied once.
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"cure:dead:{order_id}:{attempt}"),
            message="the order could not be processed: its task failed repeatedly",
        )
        await self._apply(message, event)

    async def _park(self, message: AbstractIncomingMessage) -> None:
        """Keep a dead letter that names no order in the parked queue, for an operator to read."""
        log.error("dead letter that names no order (%d bytes): parked", len(message.body))
        connection = await broker.connect(self.settings.broker_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            parked = f"{self.settings.dead_letter_queue}.parked"
            await broker.declare_durable_queue(channel, parked)
            await broker.publish_confirmed(
                channel,
                queue=parked,
                body=message.body,
                headers=message.headers,
                content_type=message.content_type,
            )
        await message.ack()  # only once the parked copy is confirmed

    async def run(self) -> None:
        await self._consume(
            lambda channel: queues.declare_events_queue(channel, self.settings),
            self.handle,
        )

    async def run_dead_letters(self) -> None:
        await self._consume(
            lambda channel: broker.declare_dead_letters(channel, self.settings),
            self.handle_dead_letter,
        )

    async def _consume(
        self,
        declare: Callable[..., Awaitable[object]],
        handler: Callable[[AbstractIncomingMessage], Awaitable[None]],
    ) -> None:
        while True:
            try:
                connection = await broker.connect(self.settings.broker_url)
                async with connection:
                    channel = await connection.channel()
                    # One at a time: events of one order are applied in the order published.
                    await channel.set_qos(prefetch_count=1)
                    queue = await declare(channel)
                    await queue.consume(handler)  # type: ignore[attr-defined]
                    await asyncio.Future()  # consume until cancelled
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("order-event consumer lost its broker connection; reconnecting")
                await asyncio.sleep(2)


def _delivery_count(message: AbstractIncomingMessage) -> object:
    deaths = (message.headers or {}).get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return deaths[0].get("count", "?")
    return (message.headers or {}).get("x-delivery-count", "?")
