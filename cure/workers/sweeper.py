"""Removes this deployment's app containers that no run owns any more, on the worker's engine.

A run holds the advisory lock of its order's attempt from before it creates the container until
it has removed it (see ``pipeline._exclusive_run``). So a container whose attempt lock is free
belongs to no live run: its worker was killed, and the order was finished, cancelled or handed
to another host. A cancelled order's container therefore stops even when its worker is gone.
Only containers labelled with this deployment are looked at: another deployment's (another
database) sharing the engine is never touched.

The probe takes the lock for an instant: a run starting for that very attempt in that instant
drops its task as a duplicate, and the reconciler requeues the order once its heartbeats are
missed. Sweeps are a minute apart, so this is rare and never loses the order.
"""

import asyncio
import logging
import threading

from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cure.config import Settings
from cure.containers.runner import open_runner
from cure.orders import repository as order_repository
from cure.workers.pipeline import (
    ATTEMPT_LABEL,
    DEPLOYMENT_LABEL,
    ORDER_LABEL,
    run_labels,
)

log = logging.getLogger(__name__)


def _runs(settings: Settings) -> set[tuple[str, int]]:
    """(order, attempt) of every container of this deployment's runs on the engine."""
    runner = open_runner(settings)
    try:
        found = runner.labelled({DEPLOYMENT_LABEL: settings.deployment})
    finally:
        runner.close()
    runs = set()
    for labels in found:
        try:
            runs.add((labels[ORDER_LABEL], int(labels.get(ATTEMPT_LABEL, "1"))))
        except (KeyError, ValueError):
            continue
    return runs


async def _unowned(settings: Settings, runs: set[tuple[str, int]]) -> list[tuple[str, int]]:
    """The runs whose attempt lock nobody holds (taken and given back at once to find out)."""
    engine = create_async_engine(
        settings.database_url,
        poolclass=NullPool,
        connect_args={"timeout": 10, "command_timeout": settings.database_timeout_seconds},
    )
    free: list[tuple[str, int]] = []
    try:
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for order_id, attempt in sorted(runs):
                if await order_repository.try_lock_run(connection, order_id, attempt):
                    free.append((order_id, attempt))
                    await order_repository.unlock_run(connection, order_id, attempt)
    finally:
        await engine.dispose()
    return free


def sweep(settings: Settings) -> int:
    """Remove the containers (and volumes) of runs no worker owns; returns how many."""
    runs = _runs(settings)
    if not runs:
        return 0
    removed = 0
    runner = open_runner(settings)
    try:
        for order_id, attempt in asyncio.run(_unowned(settings, runs)):
            count = runner.remove(run_labels(settings, order_id, attempt))
            if count:
                log.warning("order %s: removed %d container(s) no run owns", order_id, count)
            removed += count
    finally:
        runner.close()
    return removed


def start_sweeping(settings: Settings) -> threading.Thread:
    """Sweep now and then every ``container_sweep_seconds``, in a daemon thread."""

    def loop() -> None:
        while True:
            try:
                sweep(settings)
            except Exception:
                log.exception("container sweep failed; trying again later")
            threading.Event().wait(settings.container_sweep_seconds)

    thread = threading.Thread(target=loop, name="cure-container-sweeper", daemon=True)
    thread.start()
    return thread
