"""Store messages for other processes in the caller's transaction; nothing leaves before it
commits. Generic: the caller names the kind, the payload and, for broker messages, where to."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cure.outbox.models import OutboxMessage


@dataclass(frozen=True)
class BrokerMessage:
    """Where and how the relay publishes a row: the JSON body goes to ``exchange`` (the default
    exchange when empty) with ``routing_key``."""

    routing_key: str
    exchange: str = ""
    headers: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    payload: Any,
    subject_id: uuid.UUID | None = None,
    broker: BrokerMessage | None = None,
) -> OutboxMessage:
    """Write a message in the caller's transaction; it is delivered once that commits."""
    message = OutboxMessage(kind=kind, payload=payload, subject_id=subject_id)
    if broker is not None:
        message.routing_key = broker.routing_key
        message.exchange = broker.exchange
        message.headers = broker.headers
        message.properties = broker.properties
    session.add(message)
    await session.flush()
    return message
