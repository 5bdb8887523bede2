"""The outbox relay publishes only committed messages, as Celery task messages, and marks QUEUED."""

import json
import uuid

import aio_pika
import pytest

from cure.kit.resources import Resources
from cure.kit.state import state_of
from cure.orders import queues
from cure.orders.models import Order
from cure.outbox.models import OutboxMessage
from cure.runtime import make_relay
from tests.factories import customer_with_token, order_body


@pytest.fixture
async def relay_settings(settings):
    # A queue of its own, so the session's live worker does not take these messages.
    queue = f"cure.orders.relay-test-{uuid.uuid4().hex[:8]}"
    yield settings.model_copy(update={"orders_queue": queue})
    connection = await aio_pika.connect(settings.broker_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)


async def _drain(settings) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(settings.broker_url)
    messages = []
    async with connection:
        channel = await connection.channel()
        queue = await queues.declare_orders_queue(channel, settings)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            messages.append(message)
    return messages


async def _pending_ids(session, order_id) -> set[int]:
    from sqlalchemy import select

    rows = await session.execute(
        select(OutboxMessage.id).where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.kind == "run_order",
            OutboxMessage.subject_id == order_id,
        )
    )
    return set(rows.scalars())


async def test_uncommitted_orders_are_not_published(
    committing_client, relay_settings, sessionmaker, app
) -> None:
    client = committing_client
    from cure.auth.principals import Principal
    from cure.orders import service as order_service
    from cure.orders.schemas import OrderCreate

    customer, _ = await customer_with_token(client)
    principal = Principal(
        customer_id=uuid.UUID(customer["customer_id"]),
        client_id=customer["client_id"],
        scopes=frozenset(customer["scopes"]),
        is_admin=False,
    )
    relay = make_relay(Resources(relay_settings, state_of(app).db.engine, sessionmaker))
    # drain whatever earlier tests left unsent, so this test sees only its own message
    while await relay.relay_once():
        pass
    await _drain(relay_settings)

    async with sessionmaker() as writer:
        order, _ = await order_service.submit(
            writer, relay_settings, principal, app_id="roi_stats", data=OrderCreate(**order_body())
        )
        assert await relay.relay_once() == 0  # the transaction is still open
        assert await _drain(relay_settings) == []
        await writer.commit()

    assert await relay.relay_once() == 1
    published = await _drain(relay_settings)
    assert len(published) == 1
    message = published[0]
    assert message.headers["task"] == "cure.run_order"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    args, kwargs, _embed = json.loads(message.body)
    assert args == [str(order.id), 1] and kwargs == {}

    async with sessionmaker() as reader:
        stored = await reader.get(Order, order.id)
        assert stored.status == "QUEUED"
        assert not (await _pending_ids(reader, order.id))
    await relay.close()


async def test_notification_rows_are_not_published_as_tasks(
    relay_settings, committing_session, sessionmaker, app
) -> None:
    from cure.orders.events import ORDER_EMAIL
    from cure.outbox import service as outbox_service

    session = committing_session
    relay = make_relay(Resources(relay_settings, state_of(app).db.engine, sessionmaker))
    while await relay.relay_once():
        pass
    await _drain(relay_settings)
    email = await outbox_service.enqueue(
        session, kind=ORDER_EMAIL, payload={"order_id": str(uuid.uuid4())}
    )
    await session.commit()
    assert await relay.relay_once() == 0
    assert await _drain(relay_settings) == []
    await session.refresh(email)
    assert email.sent_at is None  # left for the notifier
    await relay.close()


async def test_an_unroutable_message_waits_without_holding_up_the_rest(
    committing_client, relay_settings, sessionmaker, app
) -> None:
    from cure.orders import dispatch
    from cure.outbox import service as outbox_service

    relay = make_relay(Resources(relay_settings, state_of(app).db.engine, sessionmaker))
    while await relay.relay_once():
        pass
    await _drain(relay_settings)
    async with sessionmaker() as session:
        stray = await outbox_service.enqueue(
            session,
            kind="test_stray",
            payload={"hello": "nobody"},
            broker=outbox_service.BrokerMessage(routing_key=f"no-such-queue-{uuid.uuid4().hex}"),
        )
        body, envelope = dispatch.run_order_message(relay_settings, uuid.uuid4(), 1)
        task = await outbox_service.enqueue(
            session, kind="test_task", payload=body, broker=envelope
        )
        await session.commit()
    assert await relay.relay_once() == 1  # the routable one went out
    assert len(await _drain(relay_settings)) == 1
    async with sessionmaker() as session:
        stray_row = await session.get(OutboxMessage, stray.id)
        task_row = await session.get(OutboxMessage, task.id)
        assert task_row.sent_at is not None
        assert stray_row.sent_at is None and "unroutable" in stray_row.last_error
        assert stray_row.available_at > task_row.sent_at  # it waits before its next try
    assert await relay.relay_once() == 0  # and does not block the next pass
    await relay.close()
