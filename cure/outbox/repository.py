from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cure.outbox.models import OutboxMessage


async def lock_unpublished(
    session: AsyncSession, *, now: datetime, limit: int
) -> Sequence[OutboxMessage]:
    """The oldest unsent broker messages whose time has come, locked; rows other sessions hold
    are skipped."""
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.routing_key.is_not(None),
            OutboxMessage.available_at <= now,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(query)).scalars().all()


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
