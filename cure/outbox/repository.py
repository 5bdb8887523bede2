import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from cure.outbox.models import OutboxMessage

# One new message, its values the parameters ``message_<column>`` (``message_params``): for a
# statement that writes a message together with the rows it belongs to (one round trip, one
# transaction), such as an order's submit.
MESSAGE_COLUMNS = (
    "kind",
    "subject_id",
    "payload",
    "exchange",
    "routing_key",
    "headers",
    "properties",
    "created_at",
    "available_at",
    "attempts",
)
_NAMES = ", ".join(MESSAGE_COLUMNS)
_VALUES = ", ".join(f":message_{column}" for column in MESSAGE_COLUMNS)
INSERT_MESSAGE = f"INSERT INTO outbox_messages ({_NAMES}) VALUES ({_VALUES})"  # noqa: S608 (constants)
# Its parameters that need a type (JSON, serialised by SQLAlchemy).
INSERT_MESSAGE_TYPES = tuple(
    bindparam(f"message_{column}", type_=JSONB) for column in ("payload", "headers", "properties")
)


def message_params(values: dict[str, Any]) -> dict[str, Any]:
    """``outbox_service.message_values`` as the parameters of ``INSERT_MESSAGE``."""
    return {f"message_{column}": values[column] for column in MESSAGE_COLUMNS}


@dataclass(frozen=True)
class Pending:
    """An unsent broker message as the relay reads it (plain values, no ORM object)."""

    id: int
    kind: str
    subject_id: uuid.UUID | None
    payload: Any
    exchange: str
    routing_key: str
    headers: dict[str, Any] | None
    properties: dict[str, Any] | None
    attempts: int


_t = OutboxMessage.__table__.c
# Built once: SQLAlchemy computes their cache keys once, not per batch.
_UNPUBLISHED = (
    select(
        _t.id,
        _t.kind,
        _t.subject_id,
        _t.payload,
        _t.exchange,
        _t.routing_key,
        _t.headers,
        _t.properties,
        _t.attempts,
    )
    .where(_t.sent_at.is_(None), _t.routing_key.is_not(None), _t.available_at <= bindparam("now"))
    .order_by(_t.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_MARK_SENT = (
    update(OutboxMessage)
    .where(_t.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
    .values(sent_at=bindparam("now"), attempts=_t.attempts + 1)
)
_DEFER = (
    update(OutboxMessage)
    .where(_t.id == bindparam("message_id"))
    .values(
        attempts=bindparam("attempts"),
        last_error=bindparam("reason"),
        available_at=bindparam("available_at"),
    )
)


async def lock_unpublished(session: AsyncSession, *, now: datetime, limit: int) -> list[Pending]:
    """The oldest unsent broker messages whose time has come, locked; rows other sessions hold
    are skipped."""
    connection = await session.connection()
    rows = await connection.execute(_UNPUBLISHED, {"now": now, "limit": limit})
    return [Pending(*row) for row in rows]


async def mark_sent(session: AsyncSession, ids: Sequence[int], *, now: datetime) -> None:
    """The messages went out: one statement for the whole batch."""
    if ids:
        connection = await session.connection()
        await connection.execute(_MARK_SENT, {"ids": list(ids), "now": now})


async def defer(
    session: AsyncSession, message_id: int, *, attempts: int, reason: str, available_at: datetime
) -> None:
    """A message that could not go out waits until ``available_at``."""
    connection = await session.connection()
    await connection.execute(
        _DEFER,
        {
            "message_id": message_id,
            "attempts": attempts,
            "reason": reason,
            "available_at": available_at,
        },
    )


async def lock_due(
    session: AsyncSession, *, kinds: Sequence[str], now: datetime, limit: int
) -> Sequence[OutboxMessage]:
    """Unsent messages of ``kinds`` whose time has come, locked, skipping rows held elsewhere."""
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.kind.in_(kinds),
            OutboxMessage.available_at <= now,
        )
        .order_by(OutboxMessage.available_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(query)).scalars().all()


async def get_for_update(session: AsyncSession, message_id: int) -> OutboxMessage | None:
    query = select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def backlog(session: AsyncSession) -> tuple[dict[str, int], datetime | None]:
    """Unsent rows by kind, and when the oldest of them was written."""
    rows = await session.execute(
        select(OutboxMessage.kind, func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.sent_at.is_(None))
        .group_by(OutboxMessage.kind)
    )
    counts: dict[str, int] = {}
    oldest: datetime | None = None
    for kind, count, created in rows.all():
        counts[kind] = int(count)
        oldest = created if oldest is None or created < oldest else oldest
    return counts, oldest
