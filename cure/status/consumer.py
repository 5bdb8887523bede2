"""Consumes order events from RabbitMQ; each is acked only after its DB transaction commits."""

import asyncio
import logging

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit import broker
from cure.orders import service as order_service
from cure.orders.schemas import OrderEventMessage

log = logging.getLogger(__name__)


class StatusManager:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker

    async def handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event = OrderEventMessage.model_validate_json(message.body)
        except ValidationError:
            log.error("dropping a malformed order event (%d bytes)", len(message.body))
            await message.reject(requeue=False)
            return
        try:
            async with self.sessionmaker() as session, session.begin():
                applied = await order_service.apply_event(session, event)
        except Exception:
            log.exception("could not apply event %s; it will be redelivered", event.event_id)
            await asyncio.sleep(1)  # the database is likely down: don't spin on redelivery
            await message.nack(requeue=True)
            return
        await message.ack()
        log.info(
            "order %s: %s %s", event.order_id, event.status, "applied" if applied else "ignored"
        )

    async def run(self) -> None:
        while True:
            try:
                connection = await broker.connect(self.settings.broker_url)
                async with connection:
                    channel = await connection.channel()
                    # One at a time: events of one order are then applied in the order they were published.
                    await channel.set_qos(prefetch_count=1)
                    queue = await broker.declare_durable_queue(channel, self.settings.events_queue)
                    await queue.consume(self.handle)
                    await asyncio.Future()  # consume until cancelled
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("status manager lost its broker connection; reconnecting")
                await asyncio.sleep(2)
