"""The reconciler requeues orders whose worker went silent, then fails them at the limit."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from cure.kit.db import get_sessionmaker
from cure.orders import service as order_service
from cure.orders.lifecycle import OrderStatus
from cure.orders.models import Order
from cure.orders.schemas import OrderEventMessage
from cure.outbox.models import OutboxMessage
from cure.status.reconciler import Reconciler
from tests.factories import customer_with_token, order_body


async def move(order_id: uuid.UUID, status: OrderStatus, attempt: int = 1) -> None:
    async with get_sessionmaker()() as session, session.begin():
        await order_service.apply_event(
            session,
            OrderEventMessage(
                order_id=order_id,
                status=status,
                attempt=attempt,
                actor="test",
                occurred_at=datetime.now(UTC),
            ),
        )


async def new_order(client) -> uuid.UUID:
    _, headers = await customer_with_token(client)
    response = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    return uuid.UUID(response.json()["order_id"])


async def running_order(client, *, silent_for: timedelta) -> uuid.UUID:
    order_id = await new_order(client)
    await move(order_id, OrderStatus.RUNNING)
    await _age(order_id, silent_for)
    return order_id


async def _age(order_id: uuid.UUID, by: timedelta) -> None:
    past = datetime.now(UTC) - by
    async with get_sessionmaker()() as session, session.begin():
        await session.execute(
            update(Order).where(Order.id == order_id).values(heartbeat_at=past, updated_at=past)
        )


async def state(order_id: uuid.UUID) -> tuple[str, int, str | None]:
    async with get_sessionmaker()() as session:
        order = await session.get(Order, order_id)
        return order.status, order.attempt, order.message


async def test_silent_order_is_requeued_then_failed(client, settings) -> None:
    reconciler = Reconciler(
        settings.model_copy(update={"heartbeat_timeout_seconds": 60, "max_attempts": 2}),
        get_sessionmaker(),
    )
    fresh = await running_order(client, silent_for=timedelta(seconds=5))
    silent = await running_order(client, silent_for=timedelta(minutes=5))

    await reconciler.reconcile_once()
    assert (await state(fresh))[:2] == ("RUNNING", 1)  # a recent heartbeat: left alone
    status, attempt, message = await state(silent)
    assert (status, attempt) == ("QUEUED", 2)
    assert "heartbeats" in message
    async with get_sessionmaker()() as session:
        republished = (
            (
                await session.execute(
                    select(OutboxMessage.payload).where(
                        OutboxMessage.order_id == silent, OutboxMessage.sent_at.is_(None)
                    )
                )
            )
            .scalars()
            .all()
        )
    assert {"order_id": str(silent), "attempt": 2} in republished

    # the second attempt also goes silent: at max_attempts the order fails with the reason
    await move(silent, OrderStatus.RUNNING, attempt=2)
    await _age(silent, timedelta(minutes=5))
    await reconciler.reconcile_once()
    status, attempt, message = await state(silent)
    assert (status, attempt) == ("FAILED", 2)
    assert "giving up" in message


async def test_long_queued_order_is_republished(client, settings) -> None:
    order_id = await new_order(client)
    await move(order_id, OrderStatus.QUEUED)
    await _age(order_id, timedelta(hours=2))
    await Reconciler(settings, get_sessionmaker()).reconcile_once()
    assert (await state(order_id))[:2] == ("QUEUED", 1)  # no attempt spent on waiting
    async with get_sessionmaker()() as session:
        republished = (
            (
                await session.execute(
                    select(OutboxMessage.payload).where(
                        OutboxMessage.order_id == order_id, OutboxMessage.sent_at.is_(None)
                    )
                )
            )
            .scalars()
            .all()
        )
    assert republished.count({"order_id": str(order_id), "attempt": 1}) == 2  # submit + again
    # and it is not found stuck again on the next pass
    await Reconciler(settings, get_sessionmaker()).reconcile_once()
    async with get_sessionmaker()() as session:
        count = (
            await session.execute(
                select(OutboxMessage.id).where(OutboxMessage.order_id == order_id)
            )
        ).all()
    assert len(count) == 2
