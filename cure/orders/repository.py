import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Select,
    TextClause,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import joinedload

from cure.kit.pagination import keyset
from cure.orders.lifecycle import ACTIVE_STATES, FINAL_STATES
from cure.orders.models import IdempotencyKey, Order, OrderEvent
from cure.orders.schemas import OrderFilter
from cure.outbox import repository as outbox_repository

# A customer's orders that count against the limits: those not yet final (``active``) and those
# created since ``since`` (``recent``, and the oldest of them). One definition, read alone before
# the costly checks, and as part of the submit's statement under the customer's lock.
_COUNTS = (
    "SELECT count(*) FILTER (WHERE status = ANY(:active)) AS active, "
    "count(*) FILTER (WHERE created_at >= :since) AS recent, "
    "min(created_at) FILTER (WHERE created_at >= :since) AS oldest "
    "FROM orders WHERE customer_id = :customer_id "
    "AND (status = ANY(:active) OR created_at >= :since)"
)
_ACTIVE = [s.value for s in ACTIVE_STATES]


class SubmissionCounts(NamedTuple):
    active: int  # orders not yet final
    recent: int  # orders created since the window's start
    oldest: datetime | None  # the oldest of those


_SUBMISSION_COUNTS = text(_COUNTS)


# A new order, its RECEIVED event and the task message that runs it (and, when the client sent
# one, its Idempotency-Key), written in one statement that also reads the customer's counts
# (``_COUNTS``) as they were before it (the statement's sub-statements share one snapshot and do
# not see each other's rows): one round trip under the customer's lock, and the order never
# stored without its task message (one statement is all or nothing).
_INSERT_ORDER = (
    "INSERT INTO orders (id, customer_id, app_id, app_version, status, roi, start_date, "
    "end_date, params, attempt, dispatches, notify_email, callback_url, created_at, updated_at) "
    "VALUES (:id, :customer_id, :app_id, :app_version, :status, ST_GeomFromWKB(:roi, 4326), "
    ":start_date, :end_date, :params, :attempt, :dispatches, :notify_email, :callback_url, "
    ":created_at, :updated_at)"
)
_INSERT_EVENT = (
    "INSERT INTO order_events (event_id, order_id, status, attempt, actor, occurred_at, "
    "recorded_at) VALUES (:event_id, :id, :event_status, :attempt, :actor, :occurred_at, "
    ":occurred_at)"
)
_INSERT_KEY = (
    "INSERT INTO idempotency_keys (customer_id, key, request_hash, order_id, created_at) "
    "VALUES (:customer_id, :key, :request_hash, :id, :created_at) "
    "ON CONFLICT ON CONSTRAINT uq_idempotency_keys_customer_key DO NOTHING"
)


def _submit_statement(*, with_key: bool) -> TextClause:
    parts = [
        f"counts AS ({_COUNTS})",
        f"new_order AS ({_INSERT_ORDER})",
        f"received AS ({_INSERT_EVENT})",
        f"task AS ({outbox_repository.INSERT_MESSAGE} RETURNING id)",
    ]
    if with_key:
        parts.append(f"idempotency AS ({_INSERT_KEY})")
    query = "SELECT counts.*, task.id AS task_id FROM counts, task"
    return text(f"WITH {', '.join(parts)} {query}").bindparams(
        bindparam("params", type_=JSONB), *outbox_repository.INSERT_MESSAGE_TYPES
    )


_SUBMIT = _submit_statement(with_key=False)
_SUBMIT_WITH_KEY = _submit_statement(with_key=True)


async def insert_submitted(
    session: AsyncSession,
    order: Order,
    received: OrderEvent,
    *,
    task: dict[str, Any],
    key: tuple[str, str] | None,
    since: datetime,
) -> tuple[SubmissionCounts, int]:
    """Store a new ``order`` (made, not added to the session) with its first event ``received``,
    its task message (``outbox_service.message_values``) and ``key`` (the Idempotency-Key and the
    request's hash), in one statement; the customer's counts before it (``submission_counts``
    with ``since``) and the task message's id (for ``take_back``)."""
    assert not order.roi.extended  # plain WKB, as checked_to_db makes it
    params: dict[str, Any] = {
        "id": order.id,
        "customer_id": order.customer_id,
        "app_id": order.app_id,
        "app_version": order.app_version,
        "status": order.status,
        "roi": bytes(order.roi.data),
        "start_date": order.start_date,
        "end_date": order.end_date,
        "params": order.params,
        "attempt": order.attempt,
        "dispatches": order.dispatches,
        "notify_email": order.notify_email,
        "callback_url": order.callback_url,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "event_id": received.event_id,
        "event_status": received.status,
        "actor": received.actor,
        "occurred_at": received.occurred_at,
        "since": since,
        "active": _ACTIVE,
        **outbox_repository.message_params(task),
    }
    if key is not None:
        params["key"], params["request_hash"] = key
    connection = await session.connection()
    found = await connection.execute(_SUBMIT if key is None else _SUBMIT_WITH_KEY, params)
    *counts, task_id = found.one()
    return SubmissionCounts(*counts), task_id


_TAKE_BACK = text(
    "WITH gone AS (DELETE FROM orders WHERE id = :order_id) "
    "DELETE FROM outbox_messages WHERE id = :task_id"
)


async def take_back(session: AsyncSession, order_id: uuid.UUID, task_id: int) -> None:
    """Remove what ``insert_submitted`` wrote (its event and key go with the order)."""
    connection = await session.connection()
    await connection.execute(_TAKE_BACK, {"order_id": order_id, "task_id": task_id})


# The status read, the API's most frequent statement: one round trip (the order joined with its
# few events, not a second select), built once so that SQLAlchemy computes its cache key once
# (a statement built per call costs a fifth of the read's time in key generation alone).
_WITH_EVENTS = (
    select(Order).options(joinedload(Order.events)).where(Order.id == bindparam("order_id"))
)
_OWN_WITH_EVENTS = _WITH_EVENTS.where(Order.customer_id == bindparam("customer_id"))


async def get_with_events(
    session: AsyncSession, order_id: uuid.UUID, *, customer_id: uuid.UUID | None
) -> Order | None:
    """The order with its history; ``customer_id`` limits it to that customer's orders."""
    if customer_id is None:
        found = await session.execute(_WITH_EVENTS, {"order_id": order_id})
    else:
        found = await session.execute(
            _OWN_WITH_EVENTS, {"order_id": order_id, "customer_id": customer_id}
        )
    return found.unique().scalar_one_or_none()


# The status read without the ORM: the order and its history in one statement on the session's
# own connection (no BEGIN: the read session autocommits), the rows turned into the answer by
# ``OrderRead.from_rows``. Loading ORM objects cost half of the read's CPU time (BENCHMARKS.md).
_STATUS_READ = (
    "SELECT o.id, o.customer_id, o.app_id, o.app_version, o.status, ST_AsBinary(o.roi) AS roi, "
    "o.start_date, o.end_date, o.params, o.message, o.attempt, o.progress, o.result_key, "
    "o.result_size, o.result_media_type, o.result_checksum, o.assets, o.notify_email, "
    "o.callback_url, o.created_at, o.updated_at, e.status AS event_status, "
    "e.occurred_at AS event_at, e.actor AS event_actor, e.message AS event_message, "
    "e.progress AS event_progress, e.attempt AS event_attempt "
    "FROM orders o LEFT OUTER JOIN order_events e ON e.order_id = o.id WHERE o.id = $1"
)
_ANY_STATUS = f"{_STATUS_READ} ORDER BY e.id"
_OWN_STATUS = f"{_STATUS_READ} AND o.customer_id = $2 ORDER BY e.id"


async def read_status(
    connection: asyncpg.Connection, order_id: uuid.UUID, *, customer_id: uuid.UUID | None
) -> list[Mapping[str, Any]]:
    """The order's row once per event (its history, oldest first; one row with no event
    columns when it has none); none when it is missing or, with ``customer_id``, not theirs."""
    if customer_id is None:
        rows = await connection.fetch(_ANY_STATUS, order_id)
    else:
        rows = await connection.fetch(_OWN_STATUS, order_id, customer_id)
    return list(rows)


async def get_for_update(
    session: AsyncSession, order_id: uuid.UUID, *, customer_id: uuid.UUID | None = None
) -> Order | None:
    query = select(Order).where(Order.id == order_id).with_for_update()
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    return (await session.execute(query)).scalar_one_or_none()


async def lock_orders(session: AsyncSession, order_ids: list[uuid.UUID]) -> None:
    if order_ids:
        query = select(Order.id).where(Order.id.in_(order_ids)).order_by(Order.id)
        await session.execute(query.with_for_update())


async def lock_for_events(
    session: AsyncSession, order_ids: set[uuid.UUID]
) -> dict[uuid.UUID, Order]:
    """The orders, locked, by id (in id order, as every locker of several takes them)."""
    if not order_ids:
        return {}
    query = select(Order).where(Order.id.in_(order_ids)).order_by(Order.id).with_for_update()
    return {order.id: order for order in (await session.execute(query)).scalars()}


async def existing_event_ids(session: AsyncSession, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``event_ids`` already stored (applied before)."""
    found = await session.execute(
        select(OrderEvent.event_id).where(OrderEvent.event_id.in_(event_ids))
    )
    return set(found.scalars())


def add_event(session: AsyncSession, event: OrderEvent) -> None:
    """Written at the next flush, with the rest of the batch."""
    session.add(event)


# A worker's run lock: a session-level advisory lock on one attempt of an order, held on its own
# connection for the whole run (so it goes with the connection if the worker dies). Per attempt:
# a worker that hangs with attempt 1 never keeps attempt 2 from running. The sweeper probes it.
_RUN_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(:key, 0))"
_RUN_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(:key, 0))"


def _run_key(order_id: uuid.UUID | str, attempt: int) -> dict[str, str]:
    return {"key": f"cure:run:{order_id}:{attempt}"}


async def try_lock_run(
    connection: AsyncConnection, order_id: uuid.UUID | str, attempt: int
) -> bool:
    return bool(await connection.scalar(text(_RUN_LOCK), _run_key(order_id, attempt)))


async def unlock_run(connection: AsyncConnection, order_id: uuid.UUID | str, attempt: int) -> None:
    await connection.execute(text(_RUN_UNLOCK), _run_key(order_id, attempt))


async def read_row(connection: AsyncConnection, order_id: uuid.UUID) -> Row[Any] | None:
    """The order's row as plain values, for the workers, which read orders but never write them."""
    return (await connection.execute(select(Order.__table__).where(Order.id == order_id))).first()


_LOCK_CUSTOMER = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


async def lock_customer(session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Serialise one customer's submissions until the transaction ends (limits stay exact)."""
    connection = await session.connection()
    await connection.execute(_LOCK_CUSTOMER, {"key": f"orders:{customer_id}"})


async def submission_counts(
    session: AsyncSession, customer_id: uuid.UUID, since: datetime
) -> SubmissionCounts:
    """In one read: the customer's orders not yet final, how many it created since ``since``,
    and the oldest of those."""
    connection = await session.connection()
    found = await connection.execute(
        _SUBMISSION_COUNTS, {"customer_id": customer_id, "since": since, "active": _ACTIVE}
    )
    return SubmissionCounts(*found.one())


async def get_idempotency_key(
    session: AsyncSession, customer_id: uuid.UUID, key: str
) -> IdempotencyKey | None:
    query = select(IdempotencyKey).where(
        IdempotencyKey.customer_id == customer_id, IdempotencyKey.key == key
    )
    return (await session.execute(query)).scalar_one_or_none()


def _duration() -> ColumnElement[Any]:
    """Seconds from creation to the final state (its last update), or to now while unfinished."""
    final = Order.status.in_([s.value for s in FINAL_STATES])
    until = case((final, Order.updated_at), else_=func.now())
    return func.extract("epoch", until - Order.created_at)


def _filtered(query: Select[Order], filters: OrderFilter) -> Select[Order]:
    if filters.status:
        query = query.where(Order.status.in_([s.value for s in filters.status]))
    if filters.app_id:
        query = query.where(Order.app_id.in_(filters.app_id))
    if filters.customer_id is not None:
        query = query.where(Order.customer_id == filters.customer_id)
    for column, after, before in (
        (Order.created_at, filters.created_after, filters.created_before),
        (Order.updated_at, filters.updated_after, filters.updated_before),
    ):
        if after is not None:
            query = query.where(column >= after)
        if before is not None:
            query = query.where(column < before)
    if filters.min_duration is not None:
        query = query.where(_duration() >= filters.min_duration)
    if filters.max_duration is not None:
        query = query.where(_duration() <= filters.max_duration)
    bbox = filters.bbox_numbers()
    if bbox is not None:
        # ST_Intersects against an envelope uses the GiST index on roi.
        query = query.where(func.ST_Intersects(Order.roi, func.ST_MakeEnvelope(*bbox, 4326)))
    return query


async def list_page(
    session: AsyncSession,
    filters: OrderFilter,
    *,
    customer_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Order]:
    """One page in a stable order: the sort column, then the id, both the same direction."""
    column = Order.updated_at if filters.sort.lstrip("-") == "updated_at" else Order.created_at
    descending = filters.sort.startswith("-")
    query = _filtered(select(Order), filters)
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    query = keyset(
        query,
        column=column,
        id_column=Order.id,
        descending=descending,
        after=after,
        limit=filters.limit,
    )
    return list((await session.execute(query)).scalars())


async def stuck_orders(
    session: AsyncSession,
    *,
    queued_before: datetime,
    silent_before: datetime | None,
    limit: int = 100,
) -> list[Order]:
    """QUEUED orders waiting too long and (unless ``silent_before`` is None) RUNNING orders whose
    worker went silent, locked."""
    last_sign = func.coalesce(Order.heartbeat_at, Order.updated_at)
    stuck = [and_(Order.status == "QUEUED", Order.updated_at < queued_before)]
    if silent_before is not None:
        stuck.append(and_(Order.status == "RUNNING", last_sign < silent_before))
    query = (
        select(Order)
        .where(or_(*stuck))
        .order_by(Order.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).scalars())


async def count_by_state_and_app(session: AsyncSession) -> list[tuple[str, str, int]]:
    """(state, app, orders) over every order, for the metrics."""
    rows = await session.execute(
        select(Order.status, Order.app_id, func.count()).group_by(Order.status, Order.app_id)
    )
    return [(status, app_id, int(count)) for status, app_id, count in rows.all()]
