"""The queues of an order's life: the orders queue (its task messages) and the events queue.

The orders queue is a quorum queue with a delivery limit and a dead-letter exchange: a task that
keeps killing its worker, or keeps failing, ends in the dead-letter queue after a bounded number of
tries instead of looping forever. Celery (kombu) and aio-pika declare it with the same arguments,
taken from ``orders_queue_arguments``, or RabbitMQ would refuse the second declaration.
"""

from typing import Any

from aio_pika.abc import AbstractChannel, AbstractQueue

from cure.config import Settings
from cure.kit import broker


def orders_queue_arguments(settings: Settings) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": settings.dead_letter_exchange,
    }


async def declare_orders_queue(channel: AbstractChannel, settings: Settings) -> AbstractQueue:
    await broker.declare_dead_letters(channel, settings)
    return await channel.declare_queue(
        settings.orders_queue, durable=True, arguments=orders_queue_arguments(settings)
    )


async def declare_events_queue(channel: AbstractChannel, settings: Settings) -> AbstractQueue:
    """Order events: an event that can never be applied is rejected into the dead letters."""
    await broker.declare_dead_letters(channel, settings)
    return await channel.declare_queue(
        settings.events_queue,
        durable=True,
        arguments={"x-dead-letter-exchange": settings.dead_letter_exchange},
    )


async def events_waiting(settings: Settings) -> int:
    """How many order events wait in their queue, not yet applied (raises when the broker is
    unreachable)."""
    connection = await broker.connect(settings.broker_url)
    async with connection:
        channel = await connection.channel()
        queue = await declare_events_queue(channel, settings)
        result = queue.declaration_result
        return int(result.message_count or 0) if result is not None else 0
