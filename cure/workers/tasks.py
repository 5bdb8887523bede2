import asyncio
import contextlib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
from celery.signals import worker_process_shutdown
from sqlalchemy.ext.asyncio import AsyncEngine

from cure.ccsi.client import CcsiUnavailable
from cure.config import get_settings
from cure.containers.runner import ContainerRunner, open_runner
from cure.kit.db import is_transient as db_is_transient
from cure.kit.stopping import stopping_now
from cure.orders.dispatch import RUN_ORDER_TASK
from cure.storage.service import Storage, make_storage
from cure.workers import pipeline
from cure.workers.celery_app import celery_app
from cure.workers.events import EventLink

log = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """An outage of the database, the broker, the catalogue, the Docker engine or storage: worth
    waiting out."""
    return db_is_transient(exc) or isinstance(
        exc,
        (
            aiormq.exceptions.AMQPConnectionError,
            aio_pika.exceptions.ChannelInvalidStateError,
            CcsiUnavailable,  # the catalogue is down or limits us for now
        ),
    )


@dataclass
class ProcessResources:
    """What a worker process keeps across the orders it runs, made at its first order (in the
    pool process, after the fork): one event loop, and on it the database engine's pool and the
    storage's S3 client (an S3 session loads botocore's service models when it makes its first
    client, and a kept client halves what a small PUT costs).

    Made anew for each order, these cost a small order more than its upload: a new engine's
    first connections (and SQLAlchemy's first-connect queries), and a new S3 session's models.
    """

    pid: int
    runner: asyncio.Runner
    engine: AsyncEngine
    storage: Storage
    # The Docker engine's client: made once (its API version asked once), not for every run.
    containers: ContainerRunner
    # The broker connection for order events, kept while runs follow each other.
    events: EventLink

    def close(self) -> None:
        # An app still running in this process is stopped at its supervisor's next tick (about
        # a second), so the runner's close below does not wait for it to end on its own.
        stopping_now.set()
        with contextlib.suppress(Exception):
            self.runner.run(self.engine.dispose())
        with contextlib.suppress(Exception):
            self.runner.run(self.storage.close())  # its S3 client lives on this loop
        with contextlib.suppress(Exception):
            self.runner.run(self.events.close())
        self.runner.close()
        with contextlib.suppress(Exception):
            self.containers.close()


_kept: list[ProcessResources] = []


def process_resources() -> ProcessResources:
    if _kept and _kept[0].pid != os.getpid():
        _kept.clear()  # inherited through a fork: the parent's loop and connections are not ours
    if not _kept:
        settings = get_settings()
        _kept.append(
            ProcessResources(
                pid=os.getpid(),
                runner=asyncio.Runner(),
                engine=pipeline.worker_engine(settings, kept=True),
                storage=make_storage(settings, kept=True),
                containers=open_runner(settings),
                events=EventLink(settings),
            )
        )
    return _kept[0]


@worker_process_shutdown.connect
def _close_process_resources(**_: Any) -> None:
    if _kept and _kept[0].pid == os.getpid():
        _kept.pop().close()


@celery_app.task(name=RUN_ORDER_TASK)
def run_order(order_id: str, attempt: int | None = None) -> str | None:
    """Run one order's app; takes the order id (and attempt), never an ORM object.

    Failures of the app itself end the order FAILED or INVALID inside the pipeline. What reaches
    here is an infrastructure failure. An outage (database, broker, Docker engine) is waited out
    for up to ``task_outage_seconds``; any other error is tried again a bounded number of times.
    Then the task fails, its message is rejected and RabbitMQ dead-letters it. Retries stay in
    this task rather than Celery's ``retry``, whose delayed messages quorum queues do not take.
    """
    settings = get_settings()
    started = time.monotonic()
    tries = 0
    while True:
        try:
            kept = process_resources()
            final = kept.runner.run(
                pipeline.run_order(
                    settings,
                    uuid.UUID(order_id),
                    attempt,
                    storage=kept.storage,
                    engine=kept.engine,
                    runner=kept.containers,
                    events_link=kept.events,
                )
            )
            return final.value if final else None
        except Exception as exc:
            outage = is_transient(exc) and time.monotonic() - started < settings.task_outage_seconds
            if not outage:
                tries += 1
                if tries > settings.task_max_retries:
                    log.error("order %s: giving up after %d tries: %r", order_id, tries, exc)
                    raise
            pause = min(settings.task_retry_backoff_seconds * 2 ** min(tries, 5), 30)
            log.warning("order %s: %r; trying again in %.1fs", order_id, exc, pause)
            time.sleep(pause)
