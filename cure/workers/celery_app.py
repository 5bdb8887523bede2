"""The Celery application: RabbitMQ broker, at-least-once delivery, bounded retries."""

from typing import Any

from celery import Celery
from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)
from kombu import Exchange, Queue

from cure.config import get_settings
from cure.orders.queues import orders_queue_arguments

settings = get_settings()

celery_app = Celery("cure", broker=settings.broker_url, include=["cure.workers.tasks"])
celery_app.conf.update(
    task_acks_late=True,  # acked when the task ends, so a lost worker's task is redelivered
    task_reject_on_worker_lost=True,
    # A task that finally fails is rejected, not acked, so RabbitMQ dead-letters it.
    task_acks_on_failure_or_timeout=False,
    worker_prefetch_multiplier=1,
    task_default_queue=settings.orders_queue,
    task_queues=[
        Queue(
            settings.orders_queue,
            Exchange(settings.orders_queue, type="direct", durable=True),
            routing_key=settings.orders_queue,
            durable=True,
            queue_arguments=orders_queue_arguments(settings),
        )
    ],
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    broker_transport_options={"confirm_publish": True},
    worker_send_task_events=True,  # for Flower
    task_send_sent_event=True,
    worker_cancel_long_running_tasks_on_connection_loss=False,
    worker_hijack_root_logger=False,  # records go through cure.logs (the logs queue)
)


@setup_logging.connect
def _logging(**_: Any) -> None:
    """Keep the logging ``cure worker`` set up; set it up when Celery was started directly."""
    import logging

    if not logging.getLogger().handlers:
        from cure.kit.log_handler import configure_logging

        configure_logging(
            service="worker",
            level=settings.log_level,
            broker_url=settings.broker_url if settings.log_to_broker else None,
            queue_name=settings.log_queue,
            capacity=settings.log_buffer_records,
        )


@worker_process_shutdown.connect
def _forget_metrics(pid: int | None = None, **_: Any) -> None:
    from cure.kit.metrics import mark_process_dead

    if pid is not None:
        mark_process_dead(pid)


@worker_shutting_down.connect
def _stop_in_time(how: str = "", **_: Any) -> None:
    """The backstop of a cold shutdown (SIGTERM under cure worker, SIGQUIT): whatever still
    runs after shutdown_seconds is left (exit status 1); its tasks are unacknowledged and go
    back to the queue (cure.kit.stopping). A warm shutdown (Ctrl-C in a terminal, a plain
    celery worker's SIGTERM) waits for its tasks as it says."""
    from cure.kit.stopping import exit_by

    if how == "Cold":
        exit_by(settings.shutdown_seconds, "the worker")


@worker_ready.connect
def _start_sweeper(**_: Any) -> None:
    from cure.workers.sweeper import start_sweeping

    start_sweeping(settings)


@worker_init.connect
def _declare_dead_letters(**_: Any) -> None:
    """Make sure the dead-letter exchange exists before this worker can reject anything."""
    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        channel.exchange_declare(
            settings.dead_letter_exchange, "fanout", durable=True, auto_delete=False
        )
        channel.queue_declare(settings.dead_letter_queue, durable=True, auto_delete=False)
        channel.queue_bind(settings.dead_letter_queue, settings.dead_letter_exchange, "")
