"""The dispatch baseline's Celery app (benchmark 3): one task that does nothing, on a queue of the
benchmark's own RabbitMQ vhost, under the delivery settings of CURE's ``celery_app``.

The same broker, the same kind of queue (a durable quorum queue), publisher confirms, late acks,
a prefetch multiplier of 1, JSON, and task events on (that is how both sides' task starts are
observed: the worker's ``task-started`` event). Only CURE's own work is missing: the outbox and
its relay before the message, the order's pipeline after it.

Its worker runs as a process of its own (``worker_argv``), like ``cure worker``:
``python -m celery -A bench.bare_celery worker --concurrency N``.
"""

from __future__ import annotations

import os
import sys

from celery import Celery
from kombu import Exchange, Queue

QUEUE = "bench.bare"
TASK = "bench.bare.noop"
BROKER = os.environ.get("BENCH_BARE_BROKER", "amqp://guest:guest@127.0.0.1:5672/cure_bench")

app = Celery("bare", broker=BROKER)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=False,
    worker_prefetch_multiplier=1,
    task_default_queue=QUEUE,
    task_queues=[
        Queue(
            QUEUE,
            Exchange(QUEUE, type="direct", durable=True),
            routing_key=QUEUE,
            durable=True,
            queue_arguments={"x-queue-type": "quorum"},
        )
    ],
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    broker_transport_options={"confirm_publish": True},
    worker_send_task_events=True,
    task_send_sent_event=True,
    worker_hijack_root_logger=False,
)


@app.task(name=TASK)
def noop(tag: str) -> str:
    """Nothing: the task's start is what is measured."""
    return tag


def worker_argv(*, concurrency: int, hostname: str) -> list[str]:
    """The command that runs this app's worker, as ``cure worker`` runs CURE's (prefork pool)."""
    return [
        sys.executable, "-m", "celery", "-A", "bench.bare_celery", "worker",
        "--loglevel=WARNING", f"--concurrency={concurrency}", f"--queues={QUEUE}",
        f"--hostname={hostname}",
    ]  # fmt: skip
