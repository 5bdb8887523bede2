"""RabbitMQ plumbing shared by the API's consumers, the relay and the workers (aio-pika).

The orders queue is a quorum queue with a delivery limit and a dead-letter exchange: a task that
keeps killing its worker, or keeps failing, ends in the dead-letter queue after a bounded number of
tries instead of looping forever. Celery (kombu) and aio-pika declare it with the same arguments,
taken from ``orders_queue_arguments``, or RabbitMQ would refuse the second declaration.
"""

from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue, AbstractRobustConnection

from cure.config import Settings


async def connect(url: str) -> AbstractRobustConnection:
    return await aio_pika.connect_robust(url, client_properties={"connection_name": "cure"})


def orders_queue_arguments(settings: Settings) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": settings.dead_letter_exchange,
    }


async def declare_dead_letters(channel: AbstractChannel, settings: Settings) -> AbstractQueue:
    """The dead-letter exchange and queue; declared before anything can be dead-lettered."""
    exchange = await channel.declare_exchange(
        settings.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
    )
    queue = await channel.declare_queue(settings.dead_letter_queue, durable=True)
    await queue.bind(exchange)
    return queue


async def declare_orders_queue(channel: AbstractChannel, settings: Settings) -> AbstractQueue:
    await declare_dead_letters(channel, settings)
    return await channel.declare_queue(
        settings.orders_queue, durable=True, arguments=orders_queue_arguments(settings)
    )


async def declare_events_queue(channel: AbstractChannel, settings: Settings) -> AbstractQueue:
    """Order events: an event that can never be applied is rejected into the dead letters."""
    await declare_dead_letters(channel, settings)
    return await channel.declare_queue(
        settings.events_queue,
        durable=True,
        arguments={"x-dead-letter-exchange": settings.dead_letter_exchange},
    )


async def declare_durable_queue(channel: AbstractChannel, name: str) -> AbstractQueue:
    return await channel.declare_queue(name, durable=True)


async def publish_confirmed(
    channel: AbstractChannel, *, queue: str, body: bytes, exchange: str = "", **properties: Any
) -> None:
    """Publish persistently to ``exchange`` (the default one when empty) with routing key
    ``queue``; returns only once the broker confirmed the message."""
    message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **properties)
    target = channel.default_exchange if not exchange else await channel.get_exchange(exchange)
    await target.publish(message, routing_key=queue, mandatory=True)
