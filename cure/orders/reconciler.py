"""Finds orders stuck past a deadline and requeues them as a new attempt, or fails them.

Stuck means RUNNING with no heartbeat for ``heartbeat_timeout_seconds`` (the worker died or
hangs): requeued as a new attempt, up to ``max_attempts``, then FAILED. An order QUEUED for
longer than ``queued_timeout_seconds`` may only sit behind a backlog, or its message may be lost:
it is published again under the same attempt. Rows are claimed with FOR UPDATE SKIP LOCKED, so
several API replicas can run it side by side.
"""

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit.db import utcnow
from cure.orders import repository as order_repository
from cure.orders.dispatch import enqueue_run
from cure.orders.events import apply_event, order_event
from cure.orders.lifecycle import OrderStatus
from cure.orders.models import Order

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker

    async def reconcile_once(self) -> int:
        """Handle the stuck orders found now; returns how many."""
        now = utcnow()
        async with self.sessionmaker() as session, session.begin():
            stuck = await order_repository.stuck_orders(
                session,
                queued_before=now - timedelta(seconds=self.settings.queued_timeout_seconds),
                silent_before=now - timedelta(seconds=self.settings.heartbeat_timeout_seconds),
            )
            for order in stuck:
                await self._handle(session, order)
        return len(stuck)

    async def _handle(self, session: AsyncSession, order: Order) -> None:
        if order.status == OrderStatus.QUEUED:
            await self._republish(session, order)
            return
        why = "its worker stopped sending heartbeats"
        if order.attempt >= self.settings.max_attempts:
            log.warning("order %s %s; failing it after %d attempts", order.id, why, order.attempt)
            await apply_event(
                session,
                order_event(
                    order.id,
                    OrderStatus.FAILED,
                    attempt=order.attempt,
                    actor="reconciler",
                    message=f"the order {why}, {order.attempt} times; giving up",
                ),
            )
            return
        attempt = order.attempt + 1
        log.warning("order %s %s; requeueing it as attempt %d", order.id, why, attempt)
        await apply_event(
            session,
            order_event(
                order.id,
                OrderStatus.QUEUED,
                attempt=attempt,
                actor="reconciler",
                message=f"the order {why}; requeued as attempt {attempt}",
            ),
        )
        await enqueue_run(session, self.settings, order.id, attempt)

    async def _republish(self, session: AsyncSession, order: Order) -> None:
        """A long wait in the queue may be a backlog, not a loss: publish the same attempt again
        and spend no attempt on it. A duplicate is harmless: a worker takes an order only while
        it is not final, of that attempt, and not running elsewhere."""
        log.warning("order %s has waited in the queue too long; publishing it again", order.id)
        order.updated_at = utcnow()  # not found stuck again before another full wait
        await enqueue_run(session, self.settings, order.id, order.attempt)

    async def run(self) -> None:
        while True:
            try:
                await self.reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciler pass failed")
            await asyncio.sleep(self.settings.reconcile_interval_seconds)
