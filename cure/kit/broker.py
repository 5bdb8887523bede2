"""RabbitMQ plumbing shared by the API's consumers, the relay and the workers (aio-pika):
connecting, the dead-letter exchange, durable queues and confirmed publishing. Which queues a
domain uses, and with what arguments, the domain says (e.g. ``cure.orders.queues``)."""

from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue, AbstractRobustConnection

from cure.config import Settings

CONNECT_TIMEOUT_SECONDS = 10


async def connect(url: str) -> AbstractRobustConnection:
    """A robust connection (it reconnects by itself); the first attempt gives up after
    CONNECT_TIMEOUT_SECONDS instead of waiting on an unreachable broker."""
    return await aio_pika.connect_robust(
        url, timeout=CONNECT_TIMEOUT_SECONDS, client_properties={"connection_name": "cure"}
    )


async def declare_dead_letters(channel: AbstractChannel, settings: Settings) -> AbstractQueue:
    """The dead-letter exchange and queue; declared before anything can be dead-lettered."""
    exchange = await channel.declare_exchange(
        settings.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
    )
    queue = await channel.declare_queue(settings.dead_letter_queue, durable=True)
    await queue.bind(exchange)
    return queue


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


async def queue_depths(
    url: str, names: list[str], *, connect_timeout: float = 3
) -> dict[str, tuple[int, int]]:
    """(messages ready, consumers) of each existing queue in ``names``; one short connection."""
    depths: dict[str, tuple[int, int]] = {}
    connection = await aio_pika.connect(url, timeout=connect_timeout)
    async with connection:
        for name in names:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                continue  # not declared yet: nothing to count
            result = queue.declaration_result
            depths[name] = (result.message_count or 0, result.consumer_count or 0)
            await channel.close()
    return depths


async def ping(url: str, *, connect_timeout: float = 3) -> None:
    """Open and close a connection: raises when the broker cannot be reached."""
    connection = await aio_pika.connect(url, timeout=connect_timeout)
    await connection.close()
