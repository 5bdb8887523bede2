"""Every query on ``log_records``: batch inserts, day partitions, searches and retention."""

import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cure.kit.db import utcnow
from cure.kit.pagination import keyset
from cure.logs.models import LogRecord

_PARTITION = re.compile(r"^log_records_p(\d{8})$")
# One lock per saving transaction: seq values are then handed out in commit order.
_SAVE_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('cure:log_records:save', 0))"
_RETENTION_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended('cure:log_records:keep', 0))"


def partition_name(day: date) -> str:
    return f"log_records_p{day:%Y%m%d}"


async def existing_partitions(session: AsyncSession) -> set[date]:
    rows = await session.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'log_records'::regclass"
        )
    )
    days = set()
    for (name,) in rows:
        match = _PARTITION.match(name)
        if match:
            days.add(datetime.strptime(match.group(1), "%Y%m%d").date())
    return days


async def create_partition(session: AsyncSession, day: date) -> None:
    """The partition of one UTC day (names and bounds come from the date alone, never input)."""
    start = datetime.combine(day, time(), tzinfo=None).isoformat()
    end = datetime.combine(day + timedelta(days=1), time()).isoformat()
    await session.execute(
        text(
            f'CREATE TABLE IF NOT EXISTS "{partition_name(day)}" PARTITION OF log_records'
            f" FOR VALUES FROM ('{start}+00') TO ('{end}+00')"
        )
    )


async def insert_batch(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the records, each once (a redelivered record is skipped); returns how many new."""
    if not rows:
        return 0
    await session.execute(text(_SAVE_LOCK))
    statement = (
        insert(LogRecord)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["time", "id"])
        .returning(LogRecord.id)
    )
    return len((await session.execute(statement)).all())


def _filtered(
    *,
    service: str | None,
    min_level: int | None,
    order_id: uuid.UUID | None,
    customer_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
    contains: str | None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if service is not None:
        conditions.append(LogRecord.service == service)
    if min_level is not None:
        conditions.append(LogRecord.level >= min_level)
    if order_id is not None:
        conditions.append(LogRecord.order_id == order_id)
    if customer_id is not None:
        conditions.append(LogRecord.customer_id == customer_id)
    if since is not None:
        conditions.append(LogRecord.time >= since)
    if until is not None:
        conditions.append(LogRecord.time < until)
    if contains:
        escaped = contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(LogRecord.message.ilike(f"%{escaped}%", escape="\\"))
    return conditions


async def search(
    session: AsyncSession,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
    **filters: Any,
) -> Sequence[LogRecord]:
    """Newest first, by (time, id); one row more than ``limit``."""
    query = select(LogRecord).where(*_filtered(**filters))
    query = keyset(
        query,
        column=LogRecord.time,
        id_column=LogRecord.id,
        descending=True,
        after=after,
        limit=limit,
    )
    return (await session.scalars(query)).all()


async def order_records(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    after: int,
    limit: int,
    loggers: Iterable[str] | None,
) -> Sequence[LogRecord]:
    """An order's records in saving order after ``seq`` ``after``; only ``loggers`` if given."""
    query = select(LogRecord).where(LogRecord.order_id == order_id, LogRecord.seq > after)
    if loggers is not None:
        query = query.where(LogRecord.logger.in_(list(loggers)))
    return (await session.scalars(query.order_by(LogRecord.seq).limit(limit))).all()


async def apply_retention(session: AsyncSession, cutoff: datetime) -> tuple[int, int] | None:
    """Drop the partitions wholly older than ``cutoff`` and delete older rows of the one it
    falls in; (partitions dropped, rows deleted), or None when another saver is at it."""
    if not (await session.execute(text(_RETENTION_LOCK))).scalar():
        return None
    dropped = 0
    for day in sorted(await existing_partitions(session)):
        if day + timedelta(days=1) <= cutoff.date():
            await session.execute(text(f'DROP TABLE IF EXISTS "{partition_name(day)}"'))
            dropped += 1
    deleted = await session.execute(
        text("DELETE FROM log_records WHERE time < :cutoff"), {"cutoff": cutoff}
    )
    return dropped, int(deleted.rowcount or 0)  # type: ignore[attr-defined]


def days_ahead(now: datetime | None = None, count: int = 2) -> list[date]:
    today = (now or utcnow()).date()
    return [today + timedelta(days=n) for n in range(count + 1)]
