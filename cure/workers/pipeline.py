"""One order's pipeline on a worker: read the order, run its app container, store the result."""

import asyncio
import hashlib
import logging
import socket
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cure.apps import registry as app_registry
from cure.config import Settings
from cure.kit.geo import from_db
from cure.orders.lifecycle import FINAL_STATES, OrderStatus
from cure.orders.models import Order
from cure.orders.schemas import OrderResultInfo
from cure.storage.service import make_storage
from cure.workers.containers import (
    ContainerLimits,
    ContainerOutcome,
    docker_client,
    run_app_container,
)
from cure.workers.events import EventPublisher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrderJob:
    order_id: uuid.UUID
    app_id: str
    status: OrderStatus
    attempt: int
    roi: dict[str, Any]
    start_date: date
    end_date: date
    params: dict[str, Any]


async def load_order(settings: Settings, order_id: uuid.UUID) -> OrderJob | None:
    # Workers read orders but never write them: state changes go through events.
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(select(Order.__table__).where(Order.id == order_id))
            ).first()
    finally:
        await engine.dispose()
    if row is None:
        return None
    return OrderJob(
        order_id=row.id,
        app_id=row.app_id,
        status=OrderStatus(row.status),
        attempt=row.attempt,
        roi=from_db(row.roi),
        start_date=row.start_date,
        end_date=row.end_date,
        params=row.params,
    )


def _limits(settings: Settings, app: app_registry.App) -> ContainerLimits:
    own = app.manifest.limits
    return ContainerLimits(
        memory_mb=own.memory_mb or settings.container_memory_mb,
        cpus=own.cpus or settings.container_cpus,
        pids=own.pids or settings.container_pids,
        timeout_seconds=own.timeout_seconds or settings.container_timeout_seconds,
        max_output_bytes=settings.max_output_bytes,
    )


def _last_line(outcome: ContainerOutcome, *, prefer_errors: bool = True) -> str:
    """The app's own last word: its last stderr line (where reasons go), else its last output."""
    for source in (outcome.errors if prefer_errors else [], outcome.logs):
        lines = [line.strip() for line in source if line.strip()]
        if lines:
            return lines[-1][:500]
    return "no output"


def _run_in_docker(
    settings: Settings, image: str, order_id: str, job: dict[str, Any], limits: ContainerLimits
) -> ContainerOutcome:
    client = docker_client(settings.docker_url)
    try:
        return run_app_container(client, image=image, order_id=order_id, job=job, limits=limits)
    finally:
        client.close()


async def run_order(settings: Settings, order_id: uuid.UUID) -> OrderStatus | None:
    """Run the order once; returns the final state reported, or None when there was nothing to do."""
    job = await load_order(settings, order_id)
    if job is None:
        log.warning("order %s does not exist; dropping its task", order_id)
        return None
    if job.status in FINAL_STATES:
        log.info("order %s is already %s; not running it again", order_id, job.status)
        return None
    actor = f"worker:{socket.gethostname()}"
    async with EventPublisher(
        settings, order_id=order_id, attempt=job.attempt, actor=actor
    ) as events:
        try:
            final, fields = await _execute(settings, job, events)
        except Exception as exc:
            log.exception("order %s failed in the worker", order_id)
            final, fields = (
                OrderStatus.FAILED,
                {"message": f"internal error ({type(exc).__name__})"},
            )
        await events.publish(final, **fields)
        return final


async def _execute(
    settings: Settings, job: OrderJob, events: EventPublisher
) -> tuple[OrderStatus, dict[str, Any]]:
    app = app_registry.get_registry(settings).get(job.app_id)
    await events.publish(OrderStatus.RUNNING, progress=0, message="starting the app container")
    params = {
        "order_id": str(job.order_id),
        "app_id": app.id,
        "roi": job.roi,
        "start_date": job.start_date.isoformat(),
        "end_date": job.end_date.isoformat(),
        "params": job.params,
    }
    limits = _limits(settings, app)
    outcome = await asyncio.to_thread(
        _run_in_docker, settings, app.manifest.image, str(job.order_id), params, limits
    )
    if outcome.timed_out:
        return OrderStatus.FAILED, {"message": f"the app ran longer than {limits.timeout_seconds}s"}
    if outcome.exit_code == app.manifest.invalid_exit_code:
        return OrderStatus.INVALID, {"message": _last_line(outcome)}
    if outcome.exit_code != 0:
        return OrderStatus.FAILED, {
            "message": f"the app exited with code {outcome.exit_code}: {_last_line(outcome)}"
        }
    if outcome.output_error:
        return OrderStatus.FAILED, {"message": outcome.output_error}
    data = outcome.outputs.get(app.manifest.result.path)
    if data is None:
        return OrderStatus.FAILED, {"message": f"the app wrote no {app.manifest.result.path}"}
    await events.publish(OrderStatus.RUNNING, progress=90, message="storing the result")
    # The key depends only on the order: a rerun overwrites, never duplicates.
    key = f"results/{job.order_id}/{app.manifest.result.path}"
    media_type = app.manifest.result.media_type
    await make_storage(settings).put(key, data, media_type=media_type)
    result = OrderResultInfo(
        key=key,
        size=len(data),
        media_type=media_type,
        checksum=f"sha256:{hashlib.sha256(data).hexdigest()}",
    )
    return OrderStatus.SUCCESS, {
        "result": result,
        "message": _last_line(outcome, prefer_errors=False),
    }
