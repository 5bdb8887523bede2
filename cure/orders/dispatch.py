"""Dispatch: an order's run becomes a Celery task message in the outbox, and the order becomes
QUEUED once the relay has published it.

``enqueue_run`` is the one place that builds an order's task message; ``DispatchHooks`` is what
the generic relay does around publishing one (lock the orders, then mark them QUEUED).
"""

import uuid
from collections.abc import Sequence
from typing import Any

from aio_pika.abc import AbstractChannel
from sqlalchemy.ext.asyncio import AsyncSession

from cure.config import Settings
from cure.kit.celery_message import celery_task_message
from cure.orders import queues, repository
from cure.orders.events import apply_events, order_event
from cure.orders.lifecycle import OrderStatus
from cure.outbox import service as outbox_service
from cure.outbox.models import OutboxMessage
from cure.outbox.repository import Pending

RUN_ORDER = "run_order"  # the outbox kind of an order's task message
RUN_ORDER_TASK = "cure.run_order"  # the Celery task that runs it (cure.workers.tasks)


def run_order_message(
    settings: Settings, order_id: uuid.UUID | str, attempt: int
) -> tuple[list[object], outbox_service.BrokerMessage]:
    """The Celery body and broker envelope of the task that runs one attempt of an order."""
    body, headers, properties = celery_task_message(
        RUN_ORDER_TASK, task_id=f"order-{order_id}-{attempt}", args=[str(order_id), attempt]
    )
    envelope = outbox_service.BrokerMessage(
        routing_key=settings.orders_queue, headers=headers, properties=properties
    )
    return body, envelope


def run_order_values(settings: Settings, order_id: uuid.UUID, attempt: int) -> dict[str, Any]:
    """The outbox row of this attempt's task, for a statement that writes it with the order
    (submit); ``enqueue_run`` adds the same row on its own."""
    body, envelope = run_order_message(settings, order_id, attempt)
    return outbox_service.message_values(
        kind=RUN_ORDER, payload=body, subject_id=order_id, broker=envelope
    )


async def enqueue_run(
    session: AsyncSession, settings: Settings, order_id: uuid.UUID, attempt: int
) -> OutboxMessage:
    """Queue the task of this attempt in the caller's transaction; it leaves once that commits."""
    body, envelope = run_order_message(settings, order_id, attempt)
    return await outbox_service.enqueue(
        session, kind=RUN_ORDER, payload=body, subject_id=order_id, broker=envelope
    )


def _attempt_of(message: Pending) -> int:
    args = message.payload[0]
    return int(args[1]) if len(args) > 1 else 1


class DispatchHooks:
    """The relay's hooks for RUN_ORDER messages."""

    async def before_publish(self, session: AsyncSession, messages: Sequence[Pending]) -> None:
        # Lock the orders first, so a worker's RUNNING event waits for our QUEUED mark.
        await repository.lock_orders(session, [m.subject_id for m in messages if m.subject_id])

    async def after_publish(self, session: AsyncSession, messages: Sequence[Pending]) -> None:
        """The batch's orders become QUEUED, all in one pass of ``apply_events``."""
        events = [
            order_event(m.subject_id, OrderStatus.QUEUED, attempt=_attempt_of(m), actor="relay")
            for m in messages
            if m.subject_id is not None
        ]
        await apply_events(session, events, fresh=True)


async def declare_topology(settings: Settings, channel: AbstractChannel) -> None:
    """The queues an order's task needs before it can be published (mandatory routing)."""
    await queues.declare_orders_queue(channel, settings)
