"""Tidying an order's stored files: only what its SUCCESS names stays under its results.

A run can store files its order will never name: it finished as the order was cancelled, a newer
attempt took over, or its worker died between storing and reporting. Every change that can leave
such files queues a tidy in the outbox, in the same transaction as the change (an order reaching a
final state; a SUCCESS that came too late), and this loop carries them out later, retrying with a
growing pause while storage is away. So a cancel always wins: whatever a run stored for an order
that ends CANCELLED is removed, however the run ended, and removing never holds up order events.

The one final change that queues none is a first attempt's SUCCESS whose run listed the order's
files after storing its own and found no other (``stored_alone`` in the event; most orders): runs
of one attempt take turns under its lock, so none stored before it unseen, and one that stores
after finds the order final or not its own and removes its files itself.

A tidy never removes a file the order names, so a late or repeated one is always safe: for a final
order it removes every file under the order's results that the order does not name; for an order
still running only the files its payload lists (a superseded attempt's), never the current run's.
"""

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit.db import utcnow
from cure.orders.lifecycle import FINAL_STATES, OrderStatus
from cure.orders.models import Order
from cure.outbox import repository as outbox_repository
from cure.outbox import service as outbox_service
from cure.storage.service import Storage, make_storage

log = logging.getLogger(__name__)

ORDER_TIDY = "order_tidy"  # the outbox kind
BATCH = 20
MAX_ATTEMPTS = 20  # with the notifier's pauses, about half a day of storage outage


def results_prefix(order_id: uuid.UUID | str) -> str:
    return f"results/{order_id}/"


async def enqueue_tidy(
    session: AsyncSession, order_id: uuid.UUID, *, keys: list[str] | None = None
) -> None:
    """Queue a tidy of the order's stored files in the caller's transaction: of ``keys`` only,
    or (None) of everything the order does not name once it is final."""
    payload: dict[str, Any] = {"order_id": str(order_id), "keys": keys}
    await outbox_service.enqueue(session, kind=ORDER_TIDY, payload=payload, subject_id=order_id)


def named_keys(order: Order | Any) -> set[str]:
    """The stored files an order (or a worker's plain row of it) shows."""
    return {k for k in (order.result_key, *(a["key"] for a in (order.assets or {}).values())) if k}


def unnamed(order_id: uuid.UUID | str, candidates: list[str], named: set[str]) -> list[str]:
    """Of ``candidates``, the files under the order's results that it does not show: neither a
    named file nor what is kept beside one (``<named key>.<suffix>``, e.g. a cached quicklook)."""
    prefix = results_prefix(order_id)
    return sorted(
        key
        for key in candidates
        if key.startswith(prefix)
        and key not in named
        and not any(key.startswith(f"{name}.") for name in named)
    )


class ResultTidier:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        storage: Storage | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self._own_storage = storage is None
        self.storage = storage or make_storage(settings)

    async def tidy_once(self) -> int:
        """Carry out the tidies that are due; returns how many were tried."""
        claims = await self._claim()
        for message_id, order_id, keys in claims:
            await self._tidy(message_id, order_id, keys)
        return len(claims)

    async def run(self) -> None:
        if self._own_storage:  # the loop lives as long as its event loop: one client kept
            self.storage = make_storage(self.settings, kept=True)
        try:
            while True:
                try:
                    handled = await self.tidy_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("tidy pass failed")
                    handled = 0
                if handled < BATCH:
                    await asyncio.sleep(self.settings.notify_poll_seconds)
        finally:
            if self._own_storage:
                await self.storage.close()

    async def _claim(self) -> list[tuple[int, uuid.UUID, list[str] | None]]:
        """Lease the due rows and commit, so no lock is held over storage calls."""
        now = utcnow()
        lease = timedelta(seconds=self.settings.notify_lease_seconds)
        async with self.sessionmaker() as session, session.begin():
            rows = await outbox_repository.lock_due(
                session, kinds=[ORDER_TIDY], now=now, limit=BATCH
            )
            for row in rows:
                row.attempts += 1
                row.available_at = now + lease
            return [
                (row.id, uuid.UUID(row.payload["order_id"]), row.payload["keys"]) for row in rows
            ]

    async def _tidy(self, message_id: int, order_id: uuid.UUID, keys: list[str] | None) -> None:
        failure: str | None = None
        try:
            removed = await self._remove(order_id, keys)
            if removed:
                log.info(
                    "order %s: removed %d stored file(s) it does not name",
                    order_id,
                    removed,
                    extra={"order_id": str(order_id)},
                )
        except Exception as exc:  # storage away: tried again later, the row stays unsent
            failure = f"{type(exc).__name__}: {exc}"
        async with self.sessionmaker() as session, session.begin():
            row = await outbox_repository.get_for_update(session, message_id)
            if row is None or row.sent_at is not None:
                return
            if failure is None:
                row.sent_at, row.last_error = utcnow(), None
                return
            row.last_error = failure[:2000]
            if row.attempts >= MAX_ATTEMPTS:  # settled: an operator reads last_error
                row.sent_at = utcnow()
                log.error("order %s: gave up tidying its files: %s", order_id, failure)
                return
            pause = min(
                self.settings.notify_retry_base_seconds * 2 ** (row.attempts - 1),
                self.settings.notify_retry_max_seconds,
            )
            row.available_at = utcnow() + timedelta(seconds=pause)
            log.warning("order %s: tidying its files failed (%s)", order_id, failure)

    async def _remove(self, order_id: uuid.UUID, keys: list[str] | None) -> int:
        # Read the order, then let the connection go before any storage call.
        async with self.sessionmaker() as session:
            order = await session.get(Order, order_id)
            if order is None:
                return 0
            named, final = named_keys(order), OrderStatus(order.status) in FINAL_STATES
        candidates = await self.storage.keys(results_prefix(order_id)) if final else keys or []
        doomed = unnamed(order_id, candidates, named)
        if doomed:
            await self.storage.delete(doomed)
        return len(doomed)
