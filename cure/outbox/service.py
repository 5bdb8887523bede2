import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cure.outbox.models import OutboxMessage

RUN_ORDER = "run_order"  # published to RabbitMQ by the relay
ORDER_EMAIL = "order_email"  # sent over SMTP by the notifier
ORDER_CALLBACK = "order_callback"  # POSTed to the order's callback URL by the notifier


async def enqueue(
    session: AsyncSession, *, kind: str, payload: dict[str, Any], order_id: uuid.UUID | None = None
) -> OutboxMessage:
    """Write a message in the caller's transaction; the relay publishes it once that commits."""
    message = OutboxMessage(kind=kind, payload=payload, order_id=order_id)
    session.add(message)
    await session.flush()
    return message
