"""Order events: the one builder of an event, and applying events to the order row.

Workers, the relay, the reconciler, cancel and the dead-letter handler all describe a change of an
order as an ``OrderEventMessage``; ``apply_event`` is the only code that moves an order's state.
Applying is idempotent and monotonic, so duplicates and late arrivals change nothing.
"""

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cure.ccsi import service as ccsi_service
from cure.ccsi.schemas import ProductReference
from cure.kit.db import is_transient, utcnow
from cure.kit.metrics import ORDER_DURATION, ORDERS_FINISHED
from cure.orders import repository
from cure.orders.lifecycle import FINAL_STATES, OrderStatus, can_apply
from cure.orders.models import Order, OrderEvent
from cure.orders.schemas import OrderEventMessage
from cure.orders.tidy import enqueue_tidy, named_keys, unnamed
from cure.outbox import service as outbox_service

log = logging.getLogger(__name__)

# Final-state notifications, queued in the transaction of the change and sent by the notifier.
ORDER_EMAIL = "order_email"
ORDER_CALLBACK = "order_callback"


def order_event(
    order_id: uuid.UUID,
    status: OrderStatus,
    *,
    attempt: int,
    actor: str,
    event_id: uuid.UUID | None = None,
    **fields: Any,
) -> OrderEventMessage:
    """An event about an order, stamped now; ``fields`` are message, progress, result, heartbeat."""
    return OrderEventMessage(
        event_id=event_id or uuid.uuid4(),
        order_id=order_id,
        status=status,
        attempt=attempt,
        actor=actor,
        occurred_at=utcnow(),
        **fields,
    )


async def apply_event(
    session: AsyncSession, event: OrderEventMessage, *, fresh: bool = False
) -> bool:
    """Apply one event idempotently and monotonically; False when it changes nothing (see
    ``apply_events``)."""
    return (await apply_events(session, [event], fresh=fresh))[0]


async def apply_events(
    session: AsyncSession, events: Sequence[OrderEventMessage], *, fresh: bool = False
) -> list[bool]:
    """Apply events in their order, idempotently and monotonically; for each, False when it
    changes nothing.

    Duplicates (same event id), events of an older attempt and transitions the lifecycle does not
    allow (an event arriving after a later one) are dropped, so redelivery is always safe.
    ``fresh``: the caller built the events just now (new ids), so none can be a duplicate.
    However many events, their orders are read (and locked) in one statement and their changes
    and history written in one flush: the relay applies a whole batch's QUEUED marks so.
    """
    if not events:
        return []
    seen: set[uuid.UUID] = set()
    if not fresh:
        seen = await repository.existing_event_ids(session, [e.event_id for e in events])
    orders = await repository.lock_for_events(
        session, {e.order_id for e in events if e.event_id not in seen}
    )
    applied: list[bool] = []
    for event in events:
        if event.event_id in seen:
            applied.append(False)
            continue
        seen.add(event.event_id)  # the same event twice in one batch is a duplicate too
        applied.append(await _apply(session, orders.get(event.order_id), event))
    await session.flush()
    return applied


async def _apply(session: AsyncSession, order: Order | None, event: OrderEventMessage) -> bool:
    if order is None:
        log.warning(
            "event %s names unknown order %s",
            event.event_id,
            event.order_id,
            extra={"order_id": str(event.order_id)},
        )
        return False
    current = OrderStatus(order.status)
    if event.heartbeat:
        return _heartbeat(order, event, current)
    if event.status == current and event.attempt == order.attempt:
        if event.progress is None or event.progress == order.progress:
            return False
    elif not can_apply(current, order.attempt, event.status, event.attempt):
        log.info(
            "order %s: ignoring %s -> %s",
            order.id,
            current,
            event.status,
            extra={"order_id": str(order.id)},
        )
        return False
    _update(order, event)
    repository.add_event(
        session,
        OrderEvent(
            event_id=event.event_id,
            order_id=order.id,
            status=event.status.value,
            attempt=event.attempt,
            actor=event.actor,
            message=event.message,
            progress=event.progress,
            occurred_at=event.occurred_at,
        ),
    )
    if event.status == OrderStatus.SUCCESS and order.assets:
        try:
            async with session.begin_nested():
                await _register_product(session, order, event.derived_from or [])
        except Exception as exc:
            if is_transient(exc):
                raise  # the database is away: the whole event is applied again later
            # The order's SUCCESS stands even if its catalogue entry cannot be made.
            log.exception("order %s: its product could not be registered", order.id)
    if event.status != current and event.status in FINAL_STATES:
        await _notify_final(session, order)
        if not _nothing_to_tidy(event):
            await enqueue_tidy(session, order.id)  # only what a SUCCESS names stays stored
        _count_final(order)
    return True


def _nothing_to_tidy(event: OrderEventMessage) -> bool:
    """A first attempt's SUCCESS whose run listed the order's stored files after storing its own
    and found no other: no run of the order stored anything else before it (runs of one attempt
    run one at a time, under its lock), and a run that stores later finds the order final or no
    longer its own and removes its files itself (cure.workers.pipeline). Every other final state
    queues a tidy."""
    return event.status == OrderStatus.SUCCESS and event.attempt == 1 and event.stored_alone


def _count_final(order: Order) -> None:
    seconds = (order.updated_at - order.created_at).total_seconds()
    ORDERS_FINISHED.labels(order.app_id, order.status).inc()
    ORDER_DURATION.labels(order.app_id, order.status).observe(max(seconds, 0))
    log.info(
        "order %s ended %s after %.1fs",
        order.id,
        order.status,
        seconds,
        extra={"order_id": str(order.id), "customer_id": str(order.customer_id)},
    )


async def stray_keys(session: AsyncSession, event: OrderEventMessage) -> list[str]:
    """For a SUCCESS that was not applied: the files it names that its order does not (a late
    duplicate run, or a run that finished as the order was cancelled). Files the order shows are
    never among them, so a redelivered SUCCESS removes nothing."""
    if event.status != OrderStatus.SUCCESS:
        return []
    named_by_event = {asset.key for asset in event.assets or []}
    if event.result is not None:
        named_by_event.add(event.result.key)
    if not named_by_event:
        return []
    order = await repository.get_for_update(session, event.order_id)
    if order is None:
        return []
    # Only a run's own files: keys under results/<order id>/ that the order does not show.
    return unnamed(order.id, sorted(named_by_event), named_keys(order))


def _heartbeat(order: Order, event: OrderEventMessage, current: OrderStatus) -> bool:
    if event.attempt != order.attempt or current in FINAL_STATES:
        return False
    # The time it arrived, on this side's clock: the reconciler compares it with that clock,
    # so a worker whose clock is off cannot make a healthy run look silent.
    order.heartbeat_at = utcnow()
    return True


def _update(order: Order, event: OrderEventMessage) -> None:
    if event.attempt > order.attempt:  # a new attempt starts clean
        order.progress = None
        order.heartbeat_at = None
        order.dispatches = 1
    order.status = event.status.value
    order.attempt = event.attempt
    order.updated_at = utcnow()
    if event.message is not None:
        order.message = event.message
    if event.progress is not None:
        order.progress = event.progress
    if event.status == OrderStatus.RUNNING:
        order.heartbeat_at = utcnow()
    if event.status == OrderStatus.SUCCESS and event.result is not None:
        order.progress = 100
        order.result_key = event.result.key
        order.result_size = event.result.size
        order.result_media_type = event.result.media_type
        order.result_checksum = event.result.checksum
        if event.assets:
            order.assets = {
                asset.role: asset.model_dump(exclude={"role"}) for asset in event.assets
            }


async def _register_product(
    session: AsyncSession, order: Order, derived_from: list[ProductReference]
) -> None:
    """CURE's own products are found like any input: the outputs of a successful order become a
    product of the collection ``cure-<app_id>``, owned by the customer, in the same transaction,
    with its lineage (the products the run staged)."""
    assert order.assets is not None
    await ccsi_service.register_order_outputs(
        session,
        order_id=order.id,
        customer_id=order.customer_id,
        app_id=order.app_id,
        app_version=order.app_version,
        roi=order.roi,
        start=order.start_date,
        end=order.end_date,
        params=order.params,
        assets={
            role: {
                "href": asset["key"],
                "type": asset["media_type"],
                "size": asset["size"],
                "checksum": asset["checksum"],
                "roles": [role],
                **({"title": asset["title"]} if asset.get("title") else {}),
            }
            for role, asset in order.assets.items()
        },
        derived_from=derived_from,
    )


async def _notify_final(session: AsyncSession, order: Order) -> None:
    """Queue the final-state notifications in the same transaction as the state change."""
    payload = {"order_id": str(order.id), "status": order.status}
    if order.notify_email and order.status != OrderStatus.CANCELLED:
        await outbox_service.enqueue(
            session, kind=ORDER_EMAIL, payload=payload, subject_id=order.id
        )
    if order.callback_url:
        await outbox_service.enqueue(
            session, kind=ORDER_CALLBACK, payload=payload, subject_id=order.id
        )
