"""Store messages for other processes in the caller's transaction; nothing leaves before it
commits. Generic: the caller names the kind, the payload and, for broker messages, where to."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cure.kit.db import utcnow
from cure.outbox.models import OutboxMessage


@dataclass(frozen=True)
class BrokerMessage:
    """Where and how the relay publishes a row: the JSON body goes to ``exchange`` (the default
    exchange when empty) with ``routing_key``."""

    routing_key: str
    exchange: str = ""
    headers: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


def message_values(
    *,
    kind: str,
    payload: Any,
    subject_id: uuid.UUID | None = None,
    broker: BrokerMessage | None = None,
) -> dict[str, Any]:
    """The stored columns of a new message (``outbox_repository.MESSAGE_COLUMNS``): the one
    description of a message, whether it is added alone (``enqueue``) or written in the same
    statement as the rows it belongs to (an order's submit)."""
    now = utcnow()
    return {
        "kind": kind,
        "subject_id": subject_id,
        "payload": payload,
        "exchange": broker.exchange if broker is not None else "",
        "routing_key": broker.routing_key if broker is not None else None,
        "headers": broker.headers if broker is not None else None,
        "properties": broker.properties if broker is not None else None,
        "created_at": now,
        "available_at": now,
        "attempts": 0,
    }


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    payload: Any,
    subject_id: uuid.UUID | None = None,
    broker: BrokerMessage | None = None,
) -> OutboxMessage:
    """Write a message in the caller's transaction; it is delivered once that commits."""
    message = OutboxMessage(
        **message_values(kind=kind, payload=payload, subject_id=subject_id, broker=broker)
    )
    session.add(message)
    await session.flush()
    return message
