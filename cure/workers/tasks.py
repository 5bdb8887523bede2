import asyncio
import uuid

from cure.config import get_settings
from cure.workers import pipeline
from cure.workers.celery_app import celery_app
from cure.workers.messages import RUN_ORDER_TASK


@celery_app.task(name=RUN_ORDER_TASK)
def run_order(order_id: str) -> str | None:
    """Run one order's app; takes the order id, never an ORM object."""
    final = asyncio.run(pipeline.run_order(get_settings(), uuid.UUID(order_id)))
    return final.value if final else None
