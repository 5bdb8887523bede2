"""RabbitMQ plumbing shared by the API's consumers, the relay and the workers (aio-pika)."""

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue, AbstractRobustConnection


async def connect(url: str) -> AbstractRobustConnection:
    return await aio_pika.connect_robust(url, client_properties={"connection_name": "cure"})


async def declare_durable_queue(channel: AbstractChannel, name: str) -> AbstractQueue:
    # Must match what Celery declares for the same queue (durable, no arguments), or RabbitMQ
    # refuses the second declaration.
    return await channel.declare_queue(name, durable=True)


async def publish_confirmed(
    channel: AbstractChannel, *, queue: str, body: bytes, **properties: object
) -> None:
    """Publish persistently to ``queue``; returns only once the broker confirmed the message."""
    message = aio_pika.Message(
        body,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        **properties,  # type: ignore[arg-type]
    )
    await channel.default_exchange.publish(message, routing_key=queue, mandatory=True)
