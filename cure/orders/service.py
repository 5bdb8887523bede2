"""Orders: submit, read, list, cancel, results, and the events that move an order along."""

import base64
import hashlib
import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from cure.apps import registry as app_registry
from cure.auth.exceptions import InsufficientScope
from cure.auth.service import Principal
from cure.config import Settings
from cure.kit.db import utcnow
from cure.kit.geo import checked_to_db, from_db
from cure.notifications import targets
from cure.orders import repository
from cure.orders.exceptions import (
    CallbackRefused,
    FilterForbidden,
    IdempotencyKeyReused,
    InvalidFilter,
    OrderFinished,
    OrderNotFound,
    ResultNotReady,
    TooManyOrders,
)
from cure.orders.lifecycle import FINAL_STATES, OrderStatus, can_apply
from cure.orders.models import Order, OrderEvent
from cure.orders.schemas import (
    OrderCreate,
    OrderEventMessage,
    OrderEventRead,
    OrderFilter,
    OrderPage,
    OrderRead,
    OrderResultRead,
    OrderSummary,
)
from cure.outbox import service as outbox_service
from cure.storage.service import Storage

log = logging.getLogger(__name__)


def _request_hash(app_id: str, data: OrderCreate) -> str:
    canonical = json.dumps(
        {"app_id": app_id, **data.model_dump(mode="json")}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def submit(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    *,
    app_id: str,
    data: OrderCreate,
    idempotency_key: str | None = None,
) -> tuple[Order, bool]:
    """The new order and True, or, for a repeated Idempotency-Key, the first order and False."""
    app = app_registry.get_registry(settings).get(app_id)
    if f"app:{app.id}" not in principal.scopes:
        raise InsufficientScope(f"app:{app.id}")
    params = app.validate_params(data.params)
    if data.callback_url is not None:
        try:
            await targets.check_target(
                str(data.callback_url), allow_private=settings.allow_private_callbacks
            )
        except targets.TargetRefused as exc:
            raise CallbackRefused(str(exc)) from exc

    await repository.lock_customer(session, principal.customer_id)
    request_hash = _request_hash(app.id, data)
    if idempotency_key is not None:
        earlier = await repository.get_idempotency_key(
            session, principal.customer_id, idempotency_key
        )
        if earlier is not None:
            if earlier.request_hash != request_hash:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used with a different request; use a new key"
                )
            return await get(session, principal, earlier.order_id), False
    await _check_limits(session, settings, principal.customer_id)

    assert data.end_date is not None  # filled in by OrderCreate
    order = Order(
        id=uuid.uuid4(),
        customer_id=principal.customer_id,
        app_id=app.id,
        app_version=app.manifest.version,
        status=OrderStatus.RECEIVED.value,
        roi=checked_to_db(data.roi),  # OrderCreate checked and normalised it
        start_date=data.start_date,
        end_date=data.end_date,
        params=params,
        notify_email=data.notify_email,
        callback_url=str(data.callback_url) if data.callback_url else None,
    )
    received = OrderEvent(
        status=OrderStatus.RECEIVED.value, actor=f"customer:{principal.customer_id}"
    )
    await repository.add(session, order, received)
    if idempotency_key is not None:
        await repository.add_idempotency_key(
            session,
            customer_id=principal.customer_id,
            key=idempotency_key,
            request_hash=request_hash,
            order_id=order.id,
        )
    await outbox_service.enqueue(
        session,
        kind=outbox_service.RUN_ORDER,
        payload={"order_id": str(order.id), "attempt": order.attempt},
        order_id=order.id,
    )
    set_committed_value(order, "events", [received])
    return order, True


async def _check_limits(session: AsyncSession, settings: Settings, customer_id: uuid.UUID) -> None:
    active = await repository.count_active(session, customer_id)
    if active >= settings.max_active_orders:
        raise TooManyOrders(
            f"{active} orders are not finished yet; at most {settings.max_active_orders} may be",
            retry_after=30,
        )
    window = timedelta(seconds=settings.orders_window_seconds)
    count, oldest = await repository.created_since(session, customer_id, utcnow() - window)
    if count >= settings.max_orders_per_window and oldest is not None:
        wait = int((oldest + window - utcnow()).total_seconds()) + 1
        raise TooManyOrders(
            f"at most {settings.max_orders_per_window} orders per "
            f"{settings.orders_window_seconds}s",
            retry_after=wait,
        )


async def get(session: AsyncSession, principal: Principal, order_id: uuid.UUID) -> Order:
    # Another customer's order answers exactly like a missing one: ids reveal nothing.
    order = await repository.get_with_events(session, order_id, customer_id=_owner(principal))
    if order is None:
        raise OrderNotFound(f"no order with id {order_id}")
    return order


def _owner(principal: Principal) -> uuid.UUID | None:
    """The customer whose orders the principal may see; None for an admin (all)."""
    return None if principal.is_admin else principal.customer_id


def _encode_cursor(sort: str, value: datetime, order_id: uuid.UUID) -> str:
    raw = json.dumps([sort, value.isoformat(), str(order_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cursor_sort, value, order_id = json.loads(base64.urlsafe_b64decode(padded))
        decoded = (datetime.fromisoformat(value), uuid.UUID(order_id))
        if decoded[0].tzinfo is None:
            raise ValueError("a cursor's time has a zone")
    except Exception as exc:  # whatever a forged cursor holds, it is the client's mistake
        raise InvalidFilter("cursor", "not a cursor this API gave out") from exc
    if cursor_sort != sort:
        raise InvalidFilter("cursor", f"the cursor belongs to sort={cursor_sort}, not sort={sort}")
    return decoded


async def list_orders(
    session: AsyncSession, principal: Principal, filters: OrderFilter
) -> OrderPage:
    owner = _owner(principal)
    if owner is not None and filters.customer_id not in (None, principal.customer_id):
        raise FilterForbidden("customer_id: only admins may list other customers' orders")
    after = _decode_cursor(filters.cursor, filters.sort) if filters.cursor else None
    rows = await repository.list_page(session, filters, customer_id=owner, after=after)
    page, more = rows[: filters.limit], len(rows) > filters.limit
    next_cursor = None
    if more and page:
        last = page[-1]
        value = last.updated_at if filters.sort.lstrip("-") == "updated_at" else last.created_at
        next_cursor = _encode_cursor(filters.sort, value, last.id)
    return OrderPage(items=[to_summary(o) for o in page], next_cursor=next_cursor)


async def cancel(session: AsyncSession, principal: Principal, order_id: uuid.UUID) -> Order:
    """Cancel a order that has not ended. A QUEUED order never starts; a RUNNING one's worker
    sees the state within a second and stops and removes its container."""
    order = await repository.get_for_update(session, order_id, customer_id=_owner(principal))
    if order is None:
        raise OrderNotFound(f"no order with id {order_id}")
    if OrderStatus(order.status) in FINAL_STATES:
        raise OrderFinished(f"the order is already {order.status}; it cannot be cancelled")
    await apply_event(
        session,
        OrderEventMessage(
            order_id=order.id,
            status=OrderStatus.CANCELLED,
            attempt=order.attempt,
            actor=f"customer:{principal.customer_id}",
            occurred_at=utcnow(),
            message="cancelled on request",
        ),
    )
    return await get(session, principal, order_id)


async def result_link(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal,
    order_id: uuid.UUID,
) -> str:
    order = await get(session, principal, order_id)
    if order.status != OrderStatus.SUCCESS or order.result_key is None:
        raise ResultNotReady(
            f"the order is {order.status}; a result exists only once it is SUCCESS"
        )
    return await storage.presigned_url(
        order.result_key, expires_in=settings.result_link_ttl_seconds
    )


def _result(order: Order) -> OrderResultRead | None:
    if order.status != OrderStatus.SUCCESS or order.result_key is None:
        return None
    return OrderResultRead(
        href=f"/v1/orders/{order.id}/result",
        size=order.result_size or 0,
        media_type=order.result_media_type or "application/octet-stream",
        checksum=order.result_checksum or "",
    )


def _summary_fields(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "customer_id": order.customer_id,
        "app_id": order.app_id,
        "app_version": order.app_version,
        "status": OrderStatus(order.status),
        "message": order.message,
        "progress": order.progress,
        "attempt": order.attempt,
        "start_date": order.start_date,
        "end_date": order.end_date,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "result": _result(order),
    }


def to_summary(order: Order) -> OrderSummary:
    return OrderSummary(**_summary_fields(order))


def events_of(order: Order) -> list[OrderEventRead]:
    return [
        OrderEventRead(
            status=OrderStatus(e.status),
            at=e.occurred_at,
            actor=e.actor,
            message=e.message,
            progress=e.progress,
            attempt=e.attempt,
        )
        for e in order.events
    ]


def to_read(order: Order) -> OrderRead:
    return OrderRead(
        **_summary_fields(order),
        roi=from_db(order.roi),
        params=order.params,
        notify_email=order.notify_email,
        callback_url=order.callback_url,
        history=events_of(order),
    )


async def apply_event(session: AsyncSession, event: OrderEventMessage) -> bool:
    """Apply one event idempotently and monotonically; False when it changes nothing.

    Duplicates (same event id), events of an older attempt and transitions the lifecycle does not
    allow (an event arriving after a later one) are dropped, so redelivery is always safe.
    """
    if await repository.event_exists(session, event.event_id):
        return False
    order = await repository.get_for_update(session, event.order_id)
    if order is None:
        log.warning("event %s names unknown order %s", event.event_id, event.order_id)
        return False
    current = OrderStatus(order.status)
    if event.heartbeat:
        return _heartbeat(order, event, current)
    if event.status == current and event.attempt == order.attempt:
        if event.progress is None or event.progress == order.progress:
            return False
    elif not can_apply(current, order.attempt, event.status, event.attempt):
        log.info("order %s: ignoring %s -> %s", order.id, current, event.status)
        return False
    _update(order, event)
    await repository.add_event(
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
    if event.status != current and event.status in FINAL_STATES:
        await _notify_final(session, order)
    return True


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


async def _notify_final(session: AsyncSession, order: Order) -> None:
    """Queue the final-state notifications in the same transaction as the state change."""
    payload = {"order_id": str(order.id), "status": order.status}
    if order.notify_email and order.status != OrderStatus.CANCELLED:
        await outbox_service.enqueue(
            session, kind=outbox_service.ORDER_EMAIL, payload=payload, order_id=order.id
        )
    if order.callback_url:
        await outbox_service.enqueue(
            session, kind=outbox_service.ORDER_CALLBACK, payload=payload, order_id=order.id
        )
