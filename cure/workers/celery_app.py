"""The Celery application: RabbitMQ broker, at-least-once delivery."""

from celery import Celery
from kombu import Queue

from cure.config import get_settings

settings = get_settings()

celery_app = Celery("cure", broker=settings.broker_url, include=["cure.workers.tasks"])
celery_app.conf.update(
    task_acks_late=True,  # a task is acked when it ends, so a lost worker's task is redelivered
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=settings.orders_queue,
    task_queues=[Queue(settings.orders_queue, durable=True)],
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    broker_transport_options={"confirm_publish": True},
    worker_send_task_events=True,  # for Flower
    task_send_sent_event=True,
)
