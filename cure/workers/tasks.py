import asyncio
import functools
import logging
import time
import uuid

import aio_pika
import aiormq

from cure.config import get_settings
from cure.kit.db import is_transient as db_is_transient
from cure.orders.dispatch import RUN_ORDER_TASK
from cure.storage.service import Storage, make_storage
from cure.workers import pipeline
from cure.workers.celery_app import celery_app

log = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """An outage of the database, the broker, the Docker engine or storage: worth waiting out."""
    return db_is_transient(exc) or isinstance(
        exc, (aiormq.exceptions.AMQPConnectionError, aio_pika.exceptions.ChannelInvalidStateError)
    )


@functools.cache
def worker_storage() -> Storage:
    """This worker process's storage, made at its first order and kept: an S3 storage's session
    loads botocore's service models when it makes its first client, which costs a small order
    more time and CPU than its upload. Clients are still made per call, on each task's loop."""
    return make_storage(get_settings())


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
            final = asyncio.run(
                pipeline.run_order(settings, uuid.UUID(order_id), attempt, storage=worker_storage())
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
