"""Publishes committed outbox messages to RabbitMQ with publisher confirms, then marks them sent."""

import asyncio
import logging
import uuid

from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit import broker
from cure.kit.db import utcnow
from cure.orders import repository as order_repository
from cure.orders import service as order_service
from cure.orders.lifecycle import OrderStatus
from cure.orders.schemas import OrderEventMessage
from cure.outbox import repository as outbox_repository
from cure.outbox.models import OutboxMessage
from cure.outbox.service import RUN_ORDER
from cure.workers.messages import RUN_ORDER_TASK, celery_task_message

log = logging.getLogger(__name__)
BATCH = 50


class OutboxRelay:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self._wake = asyncio.Event()
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    def wake(self) -> None:
        self._wake.set()

    async def _ensure_channel(self) -> AbstractChannel:
        if self._connection is None:
            self._connection = await broker.connect(self.settings.broker_url)
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel(publisher_confirms=True)
            await broker.declare_orders_queue(self._channel, self.settings)
        return self._channel

    async def relay_once(self) -> int:
        """Publish one batch; returns how many messages were sent."""
        channel = await self._ensure_channel()
        async with self.sessionmaker() as session, session.begin():
            messages = await outbox_repository.lock_unsent(session, kind=RUN_ORDER, limit=BATCH)
            if not messages:
                return 0
            # Lock the orders first, so a worker's RUNNING event waits for our QUEUED mark.
            await order_repository.lock_orders(
                session, [m.order_id for m in messages if m.order_id is not None]
            )
            for message in messages:
                # Bounded: a blocked broker (a memory or disk alarm) must not hold these row
                # locks, and the status changes waiting on them, for ever.
                async with asyncio.timeout(self.settings.publish_timeout_seconds):
                    await self._publish(channel, message)
                message.sent_at = utcnow()
                message.attempts += 1
                if message.order_id is not None:
                    attempt = int(message.payload.get("attempt", 1))
                    await order_service.apply_event(session, _queued(message.order_id, attempt))
        return len(messages)

    async def _publish(self, channel: AbstractChannel, message: OutboxMessage) -> None:
        order_id, attempt = message.payload["order_id"], int(message.payload.get("attempt", 1))
        body, headers, properties = celery_task_message(
            RUN_ORDER_TASK, task_id=f"order-{order_id}-{attempt}", args=[order_id, attempt]
        )
        await broker.publish_confirmed(
            channel, queue=self.settings.orders_queue, body=body, headers=headers, **properties
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
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.relay_poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


def _queued(order_id: uuid.UUID, attempt: int) -> OrderEventMessage:
    return OrderEventMessage(
        order_id=order_id,
        status=OrderStatus.QUEUED,
        attempt=attempt,
        actor="relay",
        occurred_at=utcnow(),
    )
