"""The reconciler requeues orders whose worker went silent, then fails them at the limit."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from cure.orders.events import apply_event, order_event
from cure.orders.lifecycle import OrderStatus
from cure.orders.models import Order
from cure.orders.reconciler import Reconciler
from cure.outbox.models import OutboxMessage
from tests.factories import customer_with_token, order_body


async def move(sessionmaker, order_id: uuid.UUID, status: OrderStatus, attempt: int = 1) -> None:
    async with sessionmaker() as session, session.begin():
        await apply_event(
            session,
            order_event(order_id, status, attempt=attempt, actor="test"),
        )


async def new_order(client) -> uuid.UUID:
    _, headers = await customer_with_token(client)
    response = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    return uuid.UUID(response.json()["order_id"])


async def running_order(client, sessionmaker, *, silent_for: timedelta) -> uuid.UUID:
    order_id = await new_order(client)
    await move(sessionmaker, order_id, OrderStatus.RUNNING)
    await _age(sessionmaker, order_id, silent_for)
    return order_id


async def _age(sessionmaker, order_id: uuid.UUID, by: timedelta) -> None:
    past = datetime.now(UTC) - by
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Order).where(Order.id == order_id).values(heartbeat_at=past, updated_at=past)
        )


async def state(sessionmaker, order_id: uuid.UUID) -> tuple[str, int, str | None]:
    async with sessionmaker() as session:
        order = await session.get(Order, order_id)
        return order.status, order.attempt, order.message


async def test_silent_order_is_requeued_then_failed(
    committing_client, sessionmaker, settings
) -> None:
    client = committing_client
    reconciler = Reconciler(
        settings.model_copy(
            update={
                "heartbeat_timeout_seconds": 60,
                "max_attempts": 2,
                "reconcile_grace_seconds": 0,  # as if it had been up a while
            }
        ),
        sessionmaker,
    )
    fresh = await running_order(client, sessionmaker, silent_for=timedelta(seconds=5))
    silent = await running_order(client, sessionmaker, silent_for=timedelta(minutes=5))

    await reconciler.reconcile_once()
    assert (await state(sessionmaker, fresh))[:2] == (
        "RUNNING",
        1,
    )  # a recent heartbeat: left alone
    status, attempt, message = await state(sessionmaker, silent)
    assert (status, attempt) == ("QUEUED", 2)
    assert "heartbeats" in message
    async with sessionmaker() as session:
        republished = (
            (
                await session.execute(
                    select(OutboxMessage.payload).where(
                        OutboxMessage.subject_id == silent, OutboxMessage.sent_at.is_(None)
                    )
                )
            )
            .scalars()
            .all()
        )
    assert [str(silent), 2] in [body[0] for body in republished]  # the task of attempt 2

    # the second attempt also goes silent: at max_attempts the order fails with the reason
    await move(sessionmaker, silent, OrderStatus.RUNNING, attempt=2)
    await _age(sessionmaker, silent, timedelta(minutes=5))
    await reconciler.reconcile_once()
    status, attempt, message = await state(sessionmaker, silent)
    assert (status, attempt) == ("FAILED", 2)
    assert "giving up" in message


async def test_long_queued_order_is_republished(committing_client, sessionmaker, settings) -> None:
    client = committing_client
    order_id = await new_order(client)
    await move(sessionmaker, order_id, OrderStatus.QUEUED)
    await _age(sessionmaker, order_id, timedelta(hours=2))
    await Reconciler(settings, sessionmaker).reconcile_once()
    assert (await state(sessionmaker, order_id))[:2] == ("QUEUED", 1)  # no attempt spent on waiting
    async with sessionmaker() as session:
        republished = (
            (
                await session.execute(
                    select(OutboxMessage.payload).where(
                        OutboxMessage.subject_id == order_id, OutboxMessage.sent_at.is_(None)
                    )
                )
            )
            .scalars()
            .all()
        )
    assert [body[0] for body in republished].count([str(order_id), 1]) == 2  # submit + again
    # and it is not found stuck again on the next pass
    await Reconciler(settings, sessionmaker).reconcile_once()
    async with sessionmaker() as session:
        count = (
            await session.execute(
                select(OutboxMessage.id).where(OutboxMessage.subject_id == order_id)
            )
        ).all()
    assert len(count) == 2


async def test_silence_is_not_judged_before_heartbeats_are_read(
    committing_client, sessionmaker, settings
) -> None:
    """After a start (the API was down) and while events wait in their queue, a silent RUNNING
    order keeps its attempt: the heartbeats it sent may not be applied yet."""
    import aio_pika

    from cure.orders.queues import declare_events_queue

    client = committing_client
    events_queue = f"cure.events-reconciler-{uuid.uuid4().hex[:8]}"
    quiet = settings.model_copy(
        update={"heartbeat_timeout_seconds": 60, "events_queue": events_queue}
    )
    silent = await running_order(client, sessionmaker, silent_for=timedelta(minutes=5))

    just_started = Reconciler(quiet, sessionmaker)  # grace: a whole heartbeat timeout
    await just_started.reconcile_once()
    assert (await state(sessionmaker, silent))[:2] == ("RUNNING", 1)

    up_a_while = Reconciler(quiet.model_copy(update={"reconcile_grace_seconds": 0}), sessionmaker)
    connection = await aio_pika.connect(settings.broker_url)
    async with connection:
        channel = await connection.channel()
        queue = await declare_events_queue(channel, quiet)
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=events_queue)
        await up_a_while.reconcile_once()  # an event still waits: not judged
        assert (await state(sessionmaker, silent))[:2] == ("RUNNING", 1)
        await queue.purge()
        await up_a_while.reconcile_once()  # nothing left unread: now it is
        assert (await state(sessionmaker, silent))[:2] == ("QUEUED", 2)
        await queue.delete()


async def test_an_order_no_worker_takes_fails_after_its_publications(
    committing_client, sessionmaker, settings
) -> None:
    order_id = await new_order(committing_client)
    await move(sessionmaker, order_id, OrderStatus.QUEUED)
    limited = settings.model_copy(update={"max_dispatches": 2})
    for expected in ("QUEUED", "FAILED"):
        await _age(sessionmaker, order_id, timedelta(hours=2))
        await Reconciler(limited, sessionmaker).reconcile_once()
        status, attempt, message = await state(sessionmaker, order_id)
        assert (status, attempt) == (expected, 1)
    assert "no worker took the order: it was published 2 times" in message
