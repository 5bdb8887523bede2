"""Gauges read from the database and the broker when /metrics is scraped: orders by state and
app, the outbox backlog and the queue depths."""

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit import broker
from cure.kit.db import utcnow
from cure.kit.metrics import (
    ORDERS,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST,
    QUEUE_CONSUMERS,
    QUEUE_DEPTH,
)
from cure.orders import repository as order_repository
from cure.outbox import repository as outbox_repository

log = logging.getLogger(__name__)


def queues_of(settings: Settings) -> list[str]:
    return [
        settings.orders_queue,
        settings.events_queue,
        settings.log_queue,
        settings.dead_letter_queue,
        f"{settings.dead_letter_queue}.parked",
    ]


async def refresh_database(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        counts = await order_repository.count_by_state_and_app(session)
        backlog, oldest = await outbox_repository.backlog(session)
    ORDERS.clear()
    for state, app_id, count in counts:
        ORDERS.labels(state, app_id).set(count)
    OUTBOX_BACKLOG.clear()
    for kind, count in backlog.items():
        OUTBOX_BACKLOG.labels(kind).set(count)
    OUTBOX_OLDEST.set((utcnow() - oldest).total_seconds() if oldest else 0)


async def refresh_broker(settings: Settings) -> None:
    depths = await broker.queue_depths(
        settings.broker_url, queues_of(settings), connect_timeout=settings.health_timeout_seconds
    )
    for name, (messages, consumers) in depths.items():
        QUEUE_DEPTH.labels(name).set(messages)
        QUEUE_CONSUMERS.labels(name).set(consumers)


async def refresh(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Refresh what can be read now; a dependency that is down leaves its gauges as they were
    (its cure_dependency_up says so) rather than failing the scrape."""
    timeout = settings.health_timeout_seconds
    for name, step in (
        ("database", refresh_database(sessionmaker)),
        ("broker", refresh_broker(settings)),
    ):
        try:
            async with asyncio.timeout(timeout):
                await step
        except Exception as exc:
            log.warning("metrics: could not read the %s: %s", name, type(exc).__name__)
