"""Finds orders stuck past a deadline and requeues them as a new attempt, or fails them.

Stuck means RUNNING with no heartbeat for ``heartbeat_timeout_seconds`` (the worker died or
hangs): requeued as a new attempt, up to ``max_attempts``, then FAILED. An order QUEUED for
longer than ``queued_timeout_seconds`` may only sit behind a backlog, or its message may be lost:
it is published again under the same attempt. Rows are claimed with FOR UPDATE SKIP LOCKED, so
several API replicas can run it side by side.
"""

import asyncio
import logging
import time
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit.db import utcnow
from cure.orders import repository as order_repository
from cure.orders.dispatch import enqueue_run
from cure.orders.events import apply_event, order_event
from cure.orders.lifecycle import OrderStatus
from cure.orders.models import Order
from cure.orders.queues import events_waiting

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.started = time.monotonic()

    async def judges_silence(self) -> bool:
        """Whether silence means anything now. Not before a whole heartbeat timeout has passed
        since this reconciler started, or last saw the broker again (it, or the broker, may have
        been down: heartbeats sent or held back meanwhile are not applied yet), and not while
        order events wait in their queue. An outage of the API or the broker alone never costs a
        run its attempt."""
        grace = self.settings.reconcile_grace_seconds
        if grace is None:
            grace = self.settings.heartbeat_timeout_seconds
        if time.monotonic() - self.started < grace:
            return False
        try:
            waiting = await events_waiting(self.settings)
        except Exception as exc:  # the broker is away: what was sent cannot be known
            log.info("reconciler: cannot see the event queue (%r); not judging silence", exc)
            self.started = time.monotonic()  # workers could not send heartbeats either
            return False
        if waiting:
            log.info("reconciler: %d order events still to apply; not judging silence", waiting)
        return waiting == 0

    async def reconcile_once(self) -> int:
        """Handle the stuck orders found now; returns how many."""
        judge = await self.judges_silence()
        now = utcnow()
        async with self.sessionmaker() as session, session.begin():
            silent_before = now - timedelta(seconds=self.settings.heartbeat_timeout_seconds)
            stuck = await order_repository.stuck_orders(
                session,
                queued_before=now - timedelta(seconds=self.settings.queued_timeout_seconds),
                silent_before=silent_before if judge else None,
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
            message = f"the order {why}, {order.attempt} times; giving up"
            await _move(session, order, OrderStatus.FAILED, order.attempt, message)
            return
        attempt = order.attempt + 1
        log.warning("order %s %s; requeueing it as attempt %d", order.id, why, attempt)
        message = f"the order {why}; requeued as attempt {attempt}"
        await _move(session, order, OrderStatus.QUEUED, attempt, message)
        await enqueue_run(session, self.settings, order.id, attempt)

    async def _republish(self, session: AsyncSession, order: Order) -> None:
        """A long wait in the queue may be a backlog, not a loss: publish the same attempt again
        and spend no attempt on it, up to max_dispatches times in all; then the order fails with
        the reason. A duplicate is harmless: a worker takes an order only while it is not final,
        of that attempt, and not running elsewhere."""
        if order.dispatches >= self.settings.max_dispatches:
            waited = int(self.settings.queued_timeout_seconds * order.dispatches)
            log.warning("order %s: no worker took it in %d publications", order.id, waited)
            message = (
                f"no worker took the order: it was published {order.dispatches} times "
                f"over about {waited}s; giving up"
            )
            await _move(session, order, OrderStatus.FAILED, order.attempt, message)
            return
        log.warning("order %s has waited in the queue too long; publishing it again", order.id)
        order.dispatches += 1
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


async def _move(
    session: AsyncSession, order: Order, status: OrderStatus, attempt: int, message: str
) -> None:
    event = order_event(order.id, status, attempt=attempt, actor="reconciler", message=message)
    await apply_event(session, event)
