"""Applying order events: legal transitions only, idempotent, monotonic."""

import uuid
from datetime import UTC, datetime

import pytest

from cure.orders.events import apply_event
from cure.orders.lifecycle import (
    FINAL_STATES,
    TRANSITIONS,
    OrderStatus,
    can_apply,
    can_transition,
)
from cure.orders.models import Order
from cure.orders.schemas import OrderEventMessage, OrderResultInfo
from tests.factories import customer_with_token, order_body


def test_attempts_only_grow_and_restart_from_queued() -> None:
    assert can_apply(OrderStatus.RUNNING, 1, OrderStatus.QUEUED, 2)
    assert can_apply(OrderStatus.QUEUED, 1, OrderStatus.QUEUED, 2)
    assert not can_apply(OrderStatus.RUNNING, 1, OrderStatus.RUNNING, 2)
    assert not can_apply(OrderStatus.SUCCESS, 1, OrderStatus.QUEUED, 2)
    assert not can_apply(OrderStatus.RUNNING, 2, OrderStatus.SUCCESS, 1)


def test_final_states_go_nowhere_and_nothing_goes_back() -> None:
    rank = {"RECEIVED": 0, "QUEUED": 1, "RUNNING": 2}
    for state in FINAL_STATES:
        assert TRANSITIONS[state] == frozenset()
    for state, targets in TRANSITIONS.items():
        for target in targets:
            assert rank.get(target, 3) > rank.get(state, 3), (state, target)
    assert can_transition(OrderStatus.RUNNING, OrderStatus.CANCELLED)
    assert not can_transition(OrderStatus.SUCCESS, OrderStatus.RUNNING)
    assert not can_transition(OrderStatus.RUNNING, OrderStatus.QUEUED)


def event(order_id: uuid.UUID, status: OrderStatus, **fields) -> OrderEventMessage:
    return OrderEventMessage(
        order_id=order_id, status=status, actor="test", occurred_at=datetime.now(UTC), **fields
    )


@pytest.fixture
async def order_id(client) -> uuid.UUID:
    _, headers = await customer_with_token(client)
    response = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    return uuid.UUID(response.json()["order_id"])


async def apply(session, message: OrderEventMessage) -> bool:
    async with session.begin():
        return await apply_event(session, message)


async def test_happy_path_and_duplicates(session, order_id) -> None:
    running = event(order_id, OrderStatus.RUNNING, progress=0)
    assert await apply(session, event(order_id, OrderStatus.QUEUED))
    assert await apply(session, running)
    assert not await apply(session, running)  # the same event again changes nothing
    result = OrderResultInfo(key="k", size=3, media_type="text/plain", checksum="sha256:x")
    assert await apply(session, event(order_id, OrderStatus.SUCCESS, result=result))
    order = await session.get(Order, order_id)
    await session.refresh(order)
    assert order.status == "SUCCESS" and order.result_key == "k" and order.progress == 100


async def test_stale_and_illegal_events_are_dropped(session, order_id) -> None:
    assert await apply(session, event(order_id, OrderStatus.RUNNING))
    assert not await apply(session, event(order_id, OrderStatus.QUEUED))  # late, older state
    assert await apply(session, event(order_id, OrderStatus.FAILED, message="boom"))
    assert not await apply(session, event(order_id, OrderStatus.SUCCESS))  # after a final state
    assert not await apply(session, event(order_id, OrderStatus.RUNNING, progress=50))
    order = await session.get(Order, order_id)
    await session.refresh(order)
    assert order.status == "FAILED" and order.message == "boom"


async def test_a_new_attempt_starts_over_and_old_attempts_are_ignored(session, order_id) -> None:
    assert await apply(session, event(order_id, OrderStatus.RUNNING, progress=40))
    # a new attempt may only start from QUEUED
    assert not await apply(session, event(order_id, OrderStatus.RUNNING, attempt=2))
    assert await apply(session, event(order_id, OrderStatus.QUEUED, attempt=2))
    assert await apply(session, event(order_id, OrderStatus.RUNNING, attempt=2, progress=10))
    assert await apply(session, event(order_id, OrderStatus.RUNNING, attempt=2, progress=60))
    assert not await apply(session, event(order_id, OrderStatus.SUCCESS, attempt=1))
    order = await session.get(Order, order_id)
    await session.refresh(order)
    assert (order.status, order.progress, order.attempt) == ("RUNNING", 60, 2)


async def test_heartbeats_touch_only_the_current_attempt(session, order_id) -> None:
    assert await apply(session, event(order_id, OrderStatus.RUNNING))
    assert await apply(session, event(order_id, OrderStatus.QUEUED, attempt=2))
    assert await apply(session, event(order_id, OrderStatus.RUNNING, attempt=2))
    async with session.begin():
        first = (await session.get(Order, order_id, populate_existing=True)).heartbeat_at
    assert first is not None
    assert not await apply(session, event(order_id, OrderStatus.RUNNING, heartbeat=True))
    assert await apply(session, event(order_id, OrderStatus.RUNNING, attempt=2, heartbeat=True))
    async with session.begin():
        later = (await session.get(Order, order_id, populate_existing=True)).heartbeat_at
    assert later > first
    assert [e.status for e in await _events(session, order_id)] == [
        "RECEIVED",
        "RUNNING",
        "QUEUED",
        "RUNNING",
    ]


async def _events(session, order_id):
    from sqlalchemy import select

    from cure.orders.models import OrderEvent

    rows = await session.execute(
        select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
    )
    return list(rows.scalars())


async def test_event_for_unknown_order_is_dropped(session) -> None:
    assert not await apply(session, event(uuid.uuid4(), OrderStatus.QUEUED))
