"""Orders: submit, read, results, and applying the events that move an order through its states."""

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from cure.apps import registry as app_registry
from cure.auth.exceptions import InsufficientScope
from cure.auth.service import Principal
from cure.config import Settings
from cure.kit.db import utcnow
from cure.kit.geo import from_db, parse_roi, to_db
from cure.orders import repository
from cure.orders.exceptions import OrderNotFound, ResultNotReady
from cure.orders.lifecycle import OrderStatus, can_transition
from cure.orders.models import Order, OrderEvent
from cure.orders.schemas import (
    OrderCreate,
    OrderEventMessage,
    OrderEventRead,
    OrderRead,
    OrderResultRead,
)
from cure.outbox import service as outbox_service
from cure.storage.service import Storage

log = logging.getLogger(__name__)


async def submit(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    *,
    app_id: str,
    data: OrderCreate,
) -> Order:
    app = app_registry.get_registry(settings).get(app_id)
    if f"app:{app.id}" not in principal.scopes:
        raise InsufficientScope(f"app:{app.id}")
    params = app.validate_params(data.params)
    assert data.end_date is not None  # filled in by OrderCreate
    order = Order(
        id=uuid.uuid4(),
        customer_id=principal.customer_id,
        app_id=app.id,
        app_version=app.manifest.version,
        status=OrderStatus.RECEIVED.value,
        roi=to_db(parse_roi(data.roi)),
        start_date=data.start_date,
        end_date=data.end_date,
        params=params,
    )
    received = OrderEvent(
        status=OrderStatus.RECEIVED.value, actor=f"customer:{principal.customer_id}"
    )
    await repository.add(session, order, received)
    await outbox_service.enqueue(
        session,
        kind=outbox_service.RUN_ORDER,
        payload={"order_id": str(order.id)},
        order_id=order.id,
    )
    set_committed_value(order, "events", [received])
    return order


async def get(session: AsyncSession, principal: Principal, order_id: uuid.UUID) -> Order:
    # Another customer's order answers exactly like a missing one: ids reveal nothing.
    order = await repository.get_with_events(
        session, order_id, customer_id=None if principal.is_admin else principal.customer_id
    )
    if order is None:
        raise OrderNotFound(f"no order with id {order_id}")
    return order


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


def to_read(order: Order) -> OrderRead:
    result = None
    if order.status == OrderStatus.SUCCESS and order.result_key is not None:
        result = OrderResultRead(
            href=f"/v1/orders/{order.id}/result",
            size=order.result_size or 0,
            media_type=order.result_media_type or "application/octet-stream",
            checksum=order.result_checksum or "",
        )
    return OrderRead(
        order_id=order.id,
        app_id=order.app_id,
        app_version=order.app_version,
        status=OrderStatus(order.status),
        message=order.message,
        progress=order.progress,
        roi=from_db(order.roi),
        start_date=order.start_date,
        end_date=order.end_date,
        params=order.params,
        created_at=order.created_at,
        updated_at=order.updated_at,
        history=[
            OrderEventRead(
                status=OrderStatus(e.status),
                at=e.occurred_at,
                actor=e.actor,
                message=e.message,
                progress=e.progress,
                attempt=e.attempt,
            )
            for e in order.events
        ],
        result=result,
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
    if event.attempt < order.attempt:
        return False
    current = OrderStatus(order.status)
    if event.status == current:
        if event.progress is None or event.progress == order.progress:
            return False
    elif not can_transition(current, event.status):
        log.info("order %s: ignoring %s -> %s", order.id, current, event.status)
        return False
    order.status = event.status.value
    order.attempt = event.attempt
    order.updated_at = utcnow()
    if event.message is not None:
        order.message = event.message
    if event.progress is not None:
        order.progress = event.progress
    if event.status == OrderStatus.SUCCESS and event.result is not None:
        order.progress = 100
        order.result_key = event.result.key
        order.result_size = event.result.size
        order.result_media_type = event.result.media_type
        order.result_checksum = event.result.checksum
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
    return True
