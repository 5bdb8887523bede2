"""The rules of log records: who may write what, searching, and an order's own log."""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.auth.principals import Principal
from cure.config import Settings
from cure.kit.db import is_transient, utcnow
from cure.kit.listen import wait_for_event
from cure.kit.log_handler import ORDER_LOGGERS
from cure.kit.pagination import decode_cursor, page_of
from cure.kit.redact import redact
from cure.logs import repository
from cure.logs.exceptions import LogRecordRefused, LogsUnavailable
from cure.logs.publisher import LogPublisher
from cure.logs.schemas import (
    LogFilter,
    LogPage,
    LogRecordCreate,
    LogRecordRead,
    OrderLogPage,
)
from cure.logs.waiters import OrderLogWaiters, WaitSlot
from cure.orders import service as order_service
from cure.orders.lifecycle import FINAL_STATES, OrderStatus

SORT = "-time"
# Every record a customer sends is logged under this prefix: marked as theirs, never CURE's.
CUSTOMER_LOGGER_PREFIX = "customer."
# After an order is final its last lines may still be on their way through the queue.
SETTLE_SECONDS = 3.0
# A waiter reads again this often even without a notice (one lost while the listener was away).
FALLBACK_SECONDS = 5.0
KEEPALIVE = 15.0  # an event stream sends a comment after this long without records
STREAM_PAGE = 500


def _as_customers(
    logger: str, when: datetime, now: datetime, ordered_at: datetime | None
) -> tuple[str, datetime]:
    """A customer's record can never pass for CURE's own: its logger is under ``customer.`` (so
    never one of an order's pipeline loggers), and its time lies between the order's creation
    (if it names one) and its arrival, so it cannot slip in among earlier or later lines."""
    if not logger.startswith(CUSTOMER_LOGGER_PREFIX):
        logger = CUSTOMER_LOGGER_PREFIX + logger
    when = min(when, now)
    if ordered_at is not None:
        when = max(when, ordered_at)
    return logger[:255], when


async def ingest(
    session: AsyncSession,
    settings: Settings,
    publisher: LogPublisher,
    principal: Principal,
    records: list[LogRecordCreate],
    *,
    client_host: str | None,
) -> int:
    """Check and queue records sent over HTTP; returns how many were accepted.

    Anyone but an admin writes records about themselves only: their customer id is set on each
    record, and an order a record names must be theirs.
    """
    if len(records) > settings.log_post_max_records:
        raise LogRecordRefused(f"at most {settings.log_post_max_records} records per request")
    now = utcnow()
    oldest = now - timedelta(days=settings.log_retention_days)
    ordered_at: dict[uuid.UUID, datetime] = {}
    if not principal.is_admin:
        for order_id in {r.order_id for r in records if r.order_id is not None}:
            order = await order_service.get(session, principal, order_id)  # 404 unless theirs
            ordered_at[order_id] = order.created_at
    wire: list[dict[str, Any]] = []
    for record in records:
        when = record.time or now
        if not oldest <= when <= now + timedelta(days=1):
            raise LogRecordRefused(
                f"time {when.isoformat()} is outside the kept period "
                f"({settings.log_retention_days} days back, one day ahead)"
            )
        customer = record.customer_id if principal.is_admin else principal.customer_id
        logger = record.logger or record.service
        extra = {**record.extra, "client_id": principal.client_id}
        if not principal.is_admin:
            named = ordered_at.get(record.order_id) if record.order_id else None
            logger, when = _as_customers(logger, when, now, named)
            extra["origin"] = "customer"
        wire.append(
            {
                "id": str(record.id or uuid.uuid4()),
                "time": when.isoformat(),
                "service": record.service,
                "host": record.host or client_host or "unknown",
                "level": record.level.value,
                "logger": logger,
                "message": redact(record.message),
                "order_id": str(record.order_id) if record.order_id else None,
                "customer_id": str(customer) if customer else None,
                "extra": extra,
            }
        )
    try:
        await publisher.publish(wire)
    except (OSError, TimeoutError, ConnectionError, socket.gaierror) as exc:
        raise LogsUnavailable("the log queue is unavailable; try again shortly") from exc
    except Exception as exc:  # aio-pika's own errors for a refused or closed channel
        raise LogsUnavailable(f"the log queue refused the records: {type(exc).__name__}") from exc
    return len(wire)


async def search(session: AsyncSession, filters: LogFilter) -> LogPage:
    after = decode_cursor(filters.cursor, SORT) if filters.cursor else None
    rows = await repository.search(
        session,
        after=after,
        limit=filters.limit,
        service=filters.service,
        min_level=filters.min_level.number if filters.min_level else None,
        order_id=filters.order_id,
        customer_id=filters.customer_id,
        since=filters.since,
        until=filters.until,
        contains=filters.q,
    )
    page, cursor = page_of(rows, limit=filters.limit, sort=SORT, key=lambda r: (r.time, r.id))
    return LogPage(records=[LogRecordRead.model_validate(r) for r in page], next_cursor=cursor)


class _Read(NamedTuple):
    page: OrderLogPage
    settles_in: float | None  # the order is final: seconds until its log counts as complete


async def _read(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    order_id: uuid.UUID,
    *,
    after: int,
    limit: int,
) -> _Read:
    """An order's log after ``after``, read in a short session of its own (closed before any
    wait): its pipeline's steps and its app's output (admins see every record naming the
    order). 404 for anyone else's order."""
    async with sessionmaker() as session:
        order = await order_service.get(session, principal, order_id)
        rows = await repository.order_records(
            session,
            order_id,
            after=after,
            limit=limit,
            loggers=None if principal.is_admin else ORDER_LOGGERS,
        )
    settles_in = None
    if OrderStatus(order.status) in FINAL_STATES:
        settles_in = max(0.0, SETTLE_SECONDS - (utcnow() - order.updated_at).total_seconds())
    records = [LogRecordRead.model_validate(r) for r in rows]
    page = OrderLogPage(
        records=records,
        next_after=records[-1].seq if records else after,
        order_status=order.status,
        finished=settles_in == 0.0 and len(records) < limit,
    )
    return _Read(page, settles_in)


def _pause(read: _Read, remaining: float) -> float:
    """How long to wait for a notice before reading again anyway."""
    pause = min(remaining, FALLBACK_SECONDS)
    return pause if read.settles_in is None else min(pause, read.settles_in)


async def order_log(
    sessionmaker: async_sessionmaker[AsyncSession],
    waiters: OrderLogWaiters,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    after: int,
    limit: int,
    wait: float,
) -> OrderLogPage:
    """The order's log after ``after``; with none yet, wait up to ``wait`` seconds for some
    (long polling), woken by the order's notices, with no database connection held."""
    changed = waiters.change_of(order_id)
    read = await _read(sessionmaker, principal, order_id, after=after, limit=limit)
    if read.page.records or read.page.finished or wait <= 0 or waiters.stopping:
        return read.page
    clock = asyncio.get_running_loop()
    deadline = clock.time() + wait
    with waiters.admit(principal.customer_id):
        while (remaining := deadline - clock.time()) > 0 and not waiters.stopping:
            await wait_for_event(changed, _pause(read, remaining))
            changed = waiters.change_of(order_id)
            read = await _read(sessionmaker, principal, order_id, after=after, limit=limit)
            if read.page.records or read.page.finished:
                break
    return read.page


@dataclass
class OrderLogStream:
    """An order's log followed live: its pages, and the wait slot to give back at the end."""

    pages: AsyncIterator[OrderLogPage]
    slot: WaitSlot


async def follow_order_log(
    sessionmaker: async_sessionmaker[AsyncSession],
    waiters: OrderLogWaiters,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    after: int,
    max_seconds: float = 3600,
) -> OrderLogStream:
    """Follow the order's log from ``after``: 404 and 429 come here, before anything is sent."""
    changed = waiters.change_of(order_id)
    first = await _read(sessionmaker, principal, order_id, after=after, limit=STREAM_PAGE)
    slot = waiters.admit(principal.customer_id)
    pages = _follow(
        sessionmaker,
        waiters,
        principal,
        order_id,
        first=first,
        changed=changed,
        seconds=max_seconds,
    )
    return OrderLogStream(pages, slot)


async def _follow(
    sessionmaker: async_sessionmaker[AsyncSession],
    waiters: OrderLogWaiters,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    first: _Read,
    changed: asyncio.Event,
    seconds: float,
) -> AsyncIterator[OrderLogPage]:
    """Pages of new records as they are saved, until the order is final and its log complete
    (or ``seconds`` pass); an empty page now and then keeps the connection alive."""
    clock = asyncio.get_running_loop()
    deadline = clock.time() + seconds
    read, quiet_since = first, clock.time()
    while True:
        if read.page.records or read.page.finished or clock.time() - quiet_since >= KEEPALIVE:
            quiet_since = clock.time()
            yield read.page
        if read.page.finished or clock.time() >= deadline or waiters.stopping:
            return
        if not read.page.records:
            await wait_for_event(changed, _pause(read, deadline - clock.time()))
        changed = waiters.change_of(order_id)
        after = read.page.next_after
        try:
            read = await _read(sessionmaker, principal, order_id, after=after, limit=STREAM_PAGE)
        except Exception as exc:
            if not is_transient(exc):
                raise
            # The database is away or busy (no pooled connection free): read again at the
            # next notice or fallback, keeping the stream open.
            read = _Read(read.page.model_copy(update={"records": []}), settles_in=None)
