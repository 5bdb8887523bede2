import asyncio
import logging
import time
import uuid

from cure.config import get_settings
from cure.workers import pipeline
from cure.workers.celery_app import celery_app
from cure.workers.messages import RUN_ORDER_TASK

log = logging.getLogger(__name__)


@celery_app.task(name=RUN_ORDER_TASK)
def run_order(order_id: str, attempt: int | None = None) -> str | None:
    """Run one order's app; takes the order id (and attempt), never an ORM object.

    Failures of the app itself end the order FAILED or INVALID inside the pipeline. What reaches
    here is an infrastructure failure (database, broker, Docker engine, storage): tried again with
    a growing pause, a bounded number of times; then the task fails, its message is rejected and
    RabbitMQ dead-letters it. Retries stay in this task rather than Celery's ``retry``, whose
    delayed messages quorum queues do not take.
    """
    settings = get_settings()
    for retry in range(settings.task_max_retries + 1):
        try:
            final = asyncio.run(pipeline.run_order(settings, uuid.UUID(order_id), attempt))
            return final.value if final else None
        except Exception as exc:
            if retry == settings.task_max_retries:
                log.error("order %s: giving up after %d tries: %r", order_id, retry + 1, exc)
                raise
            pause = settings.task_retry_backoff_seconds * 2**retry
            log.warning("order %s: %r; trying again in %.0fs", order_id, exc, pause)
            time.sleep(pause)
    return None  # not reached: the last try returns or raises
