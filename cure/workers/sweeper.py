"""Removes app containers that no run owns any more, on this worker's Docker engine.

A run holds its order's advisory lock from before it creates the container until it has removed
it (see ``pipeline._exclusive_run``). So a container whose order lock is free belongs to no live
run: its worker was killed, and the order was finished, cancelled or handed to another host. A
cancelled order's container therefore stops even when the worker that ran it is gone.

The probe takes the lock for an instant: a run starting for that very order in that instant
drops its task as a duplicate, and the reconciler requeues the order once its heartbeats are
missed. Sweeps are a minute apart, so this is rare and never loses the order.
"""

import asyncio
import logging
import threading

from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cure.config import Settings
from cure.containers.engine import docker_client, labelled_values, remove_labelled
from cure.orders import repository as order_repository
from cure.workers.pipeline import ORDER_LABEL, order_labels

log = logging.getLogger(__name__)


def _labelled_orders(settings: Settings) -> set[str]:
    client = docker_client(settings.docker_url)
    try:
        return labelled_values(client, ORDER_LABEL)
    finally:
        client.close()


async def _unowned(settings: Settings, order_ids: set[str]) -> list[str]:
    """The orders whose run lock nobody holds (taken and given back at once to find out)."""
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    free: list[str] = []
    try:
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for order_id in sorted(order_ids):
                if await order_repository.try_lock_run(connection, order_id):
                    free.append(order_id)
                    await order_repository.unlock_run(connection, order_id)
    finally:
        await engine.dispose()
    return free


def sweep(settings: Settings) -> int:
    """Remove the containers (and volumes) of orders no run owns; returns how many."""
    order_ids = _labelled_orders(settings)
    if not order_ids:
        return 0
    removed = 0
    client = docker_client(settings.docker_url)
    try:
        for order_id in asyncio.run(_unowned(settings, order_ids)):
            count = remove_labelled(client, order_labels(order_id))
            if count:
                log.warning("order %s: removed %d container(s) no run owns", order_id, count)
            removed += count
    finally:
        client.close()
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
