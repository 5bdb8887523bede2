"""One order's pipeline on a worker: read the order, run its app container, store the result.

While the app runs, a watch reports its progress, sends heartbeats, and stops the container as
soon as the order is cancelled or was handed to a newer attempt.
"""

import asyncio
import contextlib
import json
import logging
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cure.apps import registry as app_registry
from cure.apps.exceptions import AppNotFound
from cure.apps.schemas import AppStep
from cure.ccsi.client import CcsiError, CcsiUnavailable
from cure.config import Settings
from cure.containers.runner import (
    ContainerControl,
    ContainerLimits,
    ContainerOutcome,
    ContainerRunner,
    ImageMissing,
    Job,
    OutputLine,
    open_runner,
)
from cure.kit.files import size_and_sha256
from cure.kit.geo import from_db
from cure.kit.log_handler import ORDER_APP_LOGGER, ORDER_STEPS_LOGGER, log_context
from cure.kit.metrics import CONTAINER_EXITS, CONTAINER_RUN, PIPELINE_STEP
from cure.kit.redact import redact
from cure.kit.stopping import stopping_now
from cure.orders import repository as order_repository
from cure.orders.lifecycle import FINAL_STATES, OrderStatus
from cure.orders.schemas import OrderAssetInfo, OrderResultInfo
from cure.orders.tidy import named_keys, results_prefix, unnamed
from cure.storage.service import Storage, make_storage
from cure.workers import staging, workflow
from cure.workers.events import EventLink, EventPublisher

log = logging.getLogger(__name__)
app_output = logging.getLogger(ORDER_APP_LOGGER)
order_steps = logging.getLogger(ORDER_STEPS_LOGGER)

ORDER_LABEL = "cure.order_id"  # on every container and volume of an order's run
ATTEMPT_LABEL = "cure.attempt"  # which attempt of it
DEPLOYMENT_LABEL = "cure.deployment"  # whose: deployments sharing an engine touch only their own


def order_labels(settings: Settings, order_id: uuid.UUID | str) -> dict[str, str]:
    """What every container and volume of this deployment's runs of the order carries."""
    return {ORDER_LABEL: str(order_id), DEPLOYMENT_LABEL: settings.deployment}


def run_labels(settings: Settings, order_id: uuid.UUID | str, attempt: int) -> dict[str, str]:
    return {**order_labels(settings, order_id), ATTEMPT_LABEL: str(attempt)}


def worker_engine(settings: Settings, *, kept: bool = False) -> AsyncEngine:
    """A small pool for a run: the lock's connection and the watch's reads, every statement
    and connection attempt bounded in time. One ``kept`` across a worker process's runs checks
    each connection it hands out, so a database restart between two runs costs nothing."""
    return create_async_engine(
        settings.database_url,
        pool_size=2,
        max_overflow=1,
        pool_timeout=settings.database_timeout_seconds,
        pool_pre_ping=kept,
        connect_args={"timeout": 10, "command_timeout": settings.database_timeout_seconds},
    )


# An app reports progress by printing "CURE_PROGRESS <percent> <step name>" on a line of its own.
PROGRESS_LINE = re.compile(r"^CURE_PROGRESS\s+(\d{1,3})(?:\s+(.{1,200}))?$")


@dataclass(frozen=True)
class OrderJob:
    order_id: uuid.UUID
    customer_id: uuid.UUID
    app_id: str
    status: OrderStatus
    attempt: int
    roi: dict[str, Any]
    start_date: date
    end_date: date
    params: dict[str, Any]


async def _read_state(engine: AsyncEngine, order_id: uuid.UUID) -> Any:
    async with engine.connect() as connection:
        return await order_repository.read_row(connection, order_id)


async def load_order(engine: AsyncEngine, order_id: uuid.UUID) -> OrderJob | None:
    # Workers read orders but never write them: state changes go through events.
    row = await _read_state(engine, order_id)
    if row is None:
        return None
    return OrderJob(
        order_id=row.id,
        customer_id=row.customer_id,
        app_id=row.app_id,
        status=OrderStatus(row.status),
        attempt=row.attempt,
        roi=from_db(row.roi),
        start_date=row.start_date,
        end_date=row.end_date,
        params=row.params,
    )


def limits_of(settings: Settings, app: app_registry.App) -> ContainerLimits:
    own = app.manifest.limits
    return ContainerLimits(
        memory_mb=own.memory_mb or settings.container_memory_mb,
        cpus=own.cpus or settings.container_cpus,
        pids=own.pids or settings.container_pids,
        timeout_seconds=own.timeout_seconds or settings.container_timeout_seconds,
        max_output_bytes=(own.max_output_mb or 0) * 1024 * 1024 or settings.max_output_bytes,
        max_log_bytes=(own.max_log_mb or 0) * 1024 * 1024 or settings.max_log_bytes,
    )


def step_limits(settings: Settings, app: app_registry.App, step: AppStep) -> ContainerLimits:
    """A workflow step's limits: its own, else the app's, else the worker's."""
    app_limits = limits_of(settings, app)
    own = step.limits
    return ContainerLimits(
        memory_mb=own.memory_mb or app_limits.memory_mb,
        cpus=own.cpus or app_limits.cpus,
        pids=own.pids or app_limits.pids,
        timeout_seconds=own.timeout_seconds or app_limits.timeout_seconds,
        max_output_bytes=app_limits.max_output_bytes,
        max_log_bytes=(own.max_log_mb or 0) * 1024 * 1024 or app_limits.max_log_bytes,
    )


def _last_line(outcome: ContainerOutcome, *, prefer_errors: bool = True) -> str:
    """The app's own last word: its last stderr line (where reasons go), else its last output."""
    for source in (outcome.errors if prefer_errors else [], outcome.logs):
        lines = [
            line.strip()
            for line in source
            if line.strip() and not PROGRESS_LINE.match(line.strip())
        ]
        if lines:
            return lines[-1][:500]
    return "no output"


class OrderWatch:
    """The container's control while it runs (called from the Docker thread, works on the loop).
    For a workflow, ``for_step`` gives each step's control: its lines are logged under the
    step's name and its progress counts for its share of the app's."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        job: OrderJob,
        events: EventPublisher,
        loop: asyncio.AbstractEventLoop,
        *,
        steps: int = 1,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.job = job
        self.events = events
        self.loop = loop
        self.progress = 10
        self.stop_reason: str | None = None
        self.lines = 0
        self.steps = steps
        self.step_percent: dict[str | None, int] = {}
        self._lines_lock = threading.Lock()

    def record(self, new_lines: list[OutputLine], step: str | None = None) -> None:
        """Each output line becomes a record of the order's log (secrets redacted), up to
        ``app_log_max_lines`` a run."""
        limit = self.settings.app_log_max_lines
        where = {"step": step} if step else {}
        for line in new_lines:
            with self._lines_lock:
                self.lines += 1
                number = self.lines
            if number > limit:
                if number == limit + 1:
                    app_output.warning(
                        "the app's output goes on; only its first %d lines are kept", limit
                    )
                continue
            app_output.info(
                redact(line.text[:8192]),
                extra={"stream": line.stream, "app_id": self.job.app_id, "line": number, **where},
            )

    def tick(self, new_lines: list[OutputLine], step: str | None = None) -> bool:
        self.record(new_lines, step)
        if stopping_now.is_set():  # the pool process is closing: stop the app now
            self.stop_reason = "the worker is stopping"
            return True
        future = asyncio.run_coroutine_threadsafe(self._tick(new_lines, step), self.loop)
        try:
            return future.result(timeout=30)
        except Exception:
            log.exception("order %s: watch failed; the app keeps running", self.job.order_id)
            return False

    def drain(self, new_lines: list[OutputLine], step: str | None = None) -> None:
        """The app's last lines, read after it ended: logged, and the progress it reported in
        them sent too (a step the app printed just before it exited, which no tick saw, is a
        step it reported). Not for a run already stopped: its outcome is decided. (A workflow
        step's control logs them only: ``StepControl.drain``.)"""
        self.record(new_lines, step)
        stopped = self.stop_reason is not None or stopping_now.is_set()
        if stopped or not any(PROGRESS_LINE.match(line.strip()) for _, line in new_lines):
            return
        future = None
        try:
            future = asyncio.run_coroutine_threadsafe(
                self._report_lines(new_lines, step), self.loop
            )
            future.result(timeout=30)
        except Exception:
            if future is not None:
                future.cancel()  # not sent later, after the run's outcome
            log.warning("order %s: the app's last progress was not reported", self.job.order_id)

    def ready(self, step: str | None = None) -> bool:
        """Right before the app (or a step) starts: only if the order is still this attempt's
        to run (a cancel that came in meanwhile wins)."""
        if stopping_now.is_set():
            self.stop_reason = "the worker is stopping"
            return False
        future = asyncio.run_coroutine_threadsafe(self._ready(step), self.loop)
        try:
            return future.result(timeout=30)
        except Exception:
            log.exception("order %s: could not read its state; not starting", self.job.order_id)
            return False

    def for_step(self, step: str, abort: threading.Event) -> "StepControl":
        return StepControl(self, step, abort)

    def step_done(self, step: str) -> None:
        """A step succeeded: its whole share of the progress counts (an event naming it)."""
        future = asyncio.run_coroutine_threadsafe(self.report(100, "done", step), self.loop)
        try:
            future.result(timeout=30)
        except Exception:
            log.warning("order %s: the end of step %s was not reported", self.job.order_id, step)

    async def _ready(self, step: str | None) -> bool:
        if not await self.still_ours():
            return False
        if step is not None:
            order_steps.info("step %s starts", step, extra={"step": step})
        return True

    async def still_ours(self) -> bool:
        """Whether the order is still this run's: not final, and still this attempt."""
        row = await _read_state(self.engine, self.job.order_id)
        if row is None or row.status in FINAL_STATES:
            self.stop_reason = f"the order is {row.status if row else 'gone'}"
        elif row.attempt != self.job.attempt:
            self.stop_reason = f"attempt {row.attempt} took over"
        return self.stop_reason is None

    async def _tick(self, new_lines: list[OutputLine], step: str | None = None) -> bool:
        await self._report_lines(new_lines, step)
        return not await self.still_ours()

    async def _report_lines(self, new_lines: list[OutputLine], step: str | None) -> None:
        for _, line in new_lines:
            match = PROGRESS_LINE.match(line.strip())
            if match:
                await self.report(int(match.group(1)), match.group(2), step)

    async def report(self, app_percent: int, message: str | None, step: str | None) -> None:
        """An app's (or a step's) 0-100: the app's share of the order's progress is 10-89
        (before is staging, after is storing the result), a workflow step's is its part of it."""
        self.step_percent[step] = max(self.step_percent.get(step, 0), min(app_percent, 100))
        overall = 10 + sum(self.step_percent.values()) * 79 // (100 * self.steps)
        if step is not None:
            message = f"step {step}: {message or 'running'}"
        if overall > self.progress:
            self.progress = overall
            await self.events.publish(
                OrderStatus.RUNNING, progress=overall, message=message or "running the app"
            )


class StepWatch(Protocol):
    """What a workflow run reports to: each step's control, and each step that succeeded."""

    def for_step(self, step: str, abort: threading.Event) -> ContainerControl: ...

    def step_done(self, step: str) -> None: ...


class StepControl:
    """One workflow step's control (``ContainerControl``): the order's watch under the step's
    name, which also stops the step once ``abort`` is set (another step failed)."""

    def __init__(self, watch: OrderWatch, step: str, abort: threading.Event) -> None:
        self.watch = watch
        self.step = step
        self.abort = abort

    def ready(self) -> bool:
        return not self.abort.is_set() and self.watch.ready(self.step)

    def tick(self, new_lines: list[OutputLine]) -> bool:
        return self.watch.tick(new_lines, self.step) or self.abort.is_set()

    def drain(self, new_lines: list[OutputLine]) -> None:
        # A step's last lines are only logged: its end is reported by ``step_done`` as an event
        # of its own ("step align: done"), which a last line at 100 % reported first would
        # leave without any progress to add (the event would be dropped as no news).
        self.watch.record(new_lines, self.step)


async def _clean_up(
    settings: Settings, order_id: uuid.UUID, runner: ContainerRunner | None = None
) -> None:
    def remove() -> int:
        own = runner or open_runner(settings)
        try:
            return own.remove(order_labels(settings, order_id))
        finally:
            if runner is None:
                own.close()

    removed = await asyncio.to_thread(remove)
    if removed:
        log.info("order %s: removed %d container(s) an earlier run left", order_id, removed)


def command_args(params: dict[str, Any]) -> list[str]:
    """Every parameter also as ``--name=value`` (JSON for anything but a string)."""
    args: list[str] = []
    for name, value in params.items():
        # One argument each: a value that starts with "-" is still a value.
        args.append(f"--{name}={value if isinstance(value, str) else json.dumps(value)}")
    return args


def run_app(
    settings: Settings,
    app: app_registry.App,
    *,
    job: dict[str, Any],
    files: dict[str, Path],
    work_dir: Path,
    labels: dict[str, str],
    control: ContainerControl | None = None,
    supersedes: dict[str, str] | None = None,
    runner: ContainerRunner | None = None,
) -> ContainerOutcome:
    """Run an app the way every run does (synchronous: call it in a thread): ``job`` becomes
    /job/params.json, its params the command line, ``files`` the staged inputs; the outputs land
    in ``work_dir``/outputs. On ``runner`` when given (its owner closes it), else on a runner of
    its own. Used by the worker and by `cure apps try`; raises ImageMissing."""
    own = runner is None
    runner = runner or open_runner(settings)
    try:
        return runner.run(
            image=app.manifest.image,
            labels=labels,
            job=job,
            limits=limits_of(settings, app),
            work_dir=work_dir,
            control=control,
            command=command_args(job.get("params", {})),
            files=files,
            supersedes=supersedes,
        )
    finally:
        if own:
            runner.close()


def judge(
    app: app_registry.App,
    outcome: ContainerOutcome,
    limits: ContainerLimits,
    *,
    step: str | None = None,
) -> tuple[OrderStatus, str] | None:
    """The final state an app's run earns when it did not succeed; None when it did. For a
    workflow, ``outcome`` is a step's (named ``step``), then the collected outputs' (no step)."""
    ended = judge_exit(app, outcome, limits, step=step)
    if ended is not None or step is not None:
        return ended
    if outcome.output_error:
        return OrderStatus.FAILED, outcome.output_error
    missing = [o.path for o in app.manifest.outputs if o.path not in outcome.outputs]
    if missing:
        return OrderStatus.FAILED, f"the app wrote no {', '.join(missing)}"
    return None


def judge_exit(
    app: app_registry.App,
    outcome: ContainerOutcome,
    limits: ContainerLimits,
    *,
    step: str | None = None,
) -> tuple[OrderStatus, str] | None:
    """How the app's container (or the workflow's ``step``) ended, when not with success."""
    who = f"step {step}" if step else "the app"
    if outcome.log_error:
        return OrderStatus.FAILED, f"{who}: {outcome.log_error}" if step else outcome.log_error
    if outcome.timed_out:
        return OrderStatus.FAILED, f"{who} ran longer than {limits.timeout_seconds}s"
    if outcome.exit_code == app.manifest.invalid_exit_code:  # the step's reason, as the app's
        return OrderStatus.INVALID, _last_line(outcome)
    if outcome.exit_code != 0:
        return (
            OrderStatus.FAILED,
            f"{who} exited with code {outcome.exit_code}: {_last_line(outcome)}",
        )
    return None


async def run_workflow(
    settings: Settings,
    app: app_registry.App,
    *,
    job: dict[str, Any],
    files: dict[str, Path],
    work_dir: Path,
    labels: dict[str, str],
    watch: "StepWatch",
    supersedes: dict[str, str] | None = None,
    runner: ContainerRunner | None = None,
) -> tuple[ContainerOutcome, str | None]:
    """Run a workflow app's steps on one job folder (``workflow.run_steps``): (the outcome of
    the step that failed or was stopped, and its name) or (the collected outputs, None), the
    outputs' logs being the last step's. The folder and every container go at the end."""
    own = runner is None
    if runner is None:
        runner = await asyncio.to_thread(open_runner, settings)
    try:
        opening = asyncio.ensure_future(
            asyncio.to_thread(
                runner.open_job,
                image=app.manifest.image,
                labels=labels,
                job=job,
                work_dir=work_dir,
                files=files,
                supersedes=supersedes,
            )
        )
        try:
            handle = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The folder is being made in its thread whatever happens here: close it once made.
            with contextlib.suppress(Exception):
                made = await opening
                await asyncio.to_thread(made.close)
            raise
        try:
            return await _run_steps(settings, app, handle, job, work_dir, watch)
        finally:
            await asyncio.to_thread(handle.close)
    finally:
        if own:
            await asyncio.to_thread(runner.close)


async def _run_steps(
    settings: Settings,
    app: app_registry.App,
    handle: Job,
    job: dict[str, Any],
    work_dir: Path,
    watch: "StepWatch",
) -> tuple[ContainerOutcome, str | None]:
    arguments = command_args(job.get("params", {}))

    def run_one(step: AppStep, abort: threading.Event) -> ContainerOutcome:
        outcome = handle.run_step(
            step=step.name,
            image=step.image or app.manifest.image,
            limits=step_limits(settings, app, step),
            control=watch.for_step(step.name, abort),
            command=[*step.command, *arguments],
        )
        if succeeded(step, outcome):
            watch.step_done(step.name)
        return outcome

    def succeeded(step: AppStep, outcome: ContainerOutcome) -> bool:
        limits = step_limits(settings, app, step)
        return not outcome.stopped and judge_exit(app, outcome, limits, step=step.name) is None

    parallel = app.manifest.limits.parallel_steps or settings.workflow_parallel_steps
    failed, last = await workflow.run_steps(
        app.manifest.steps, run_one, parallel=parallel, succeeded=succeeded
    )
    if failed is not None:
        return failed.outcome, failed.step.name
    outcome = await asyncio.to_thread(
        handle.collect, limits_of(settings, app).max_output_bytes, work_dir / "outputs"
    )
    if last is not None:
        outcome.logs = last.outcome.logs
    return outcome, None


async def run_order(
    settings: Settings,
    order_id: uuid.UUID,
    attempt: int | None = None,
    *,
    storage: Storage | None = None,
    engine: AsyncEngine | None = None,
    runner: ContainerRunner | None = None,
    events_link: EventLink | None = None,
) -> OrderStatus | None:
    """Run the order once; returns the final state reported, or None when there was nothing to do.

    Raises on infrastructure failures (database, broker, Docker engine, storage) so the task can
    be tried again; the app's own failures end the order FAILED or INVALID. ``storage`` and
    ``engine`` are the worker process's own when given, kept across its runs (an S3 session and
    a new engine's first connections cost a small order more than its upload); without them the
    run makes its own and disposes of them. ``runner`` runs the app's container (default: a
    runner of the run's own, on the configured engine). ``events_link``: the worker process's
    kept broker connection for the run's events (default: a connection of the run's own).
    """
    storage = storage or make_storage(settings)
    own_engine = engine is None
    engine = engine or worker_engine(settings)
    try:
        job = await load_order(engine, order_id)
        if job is None:
            log.warning("order %s does not exist; dropping its task", order_id)
            return None
        if job.status in FINAL_STATES:
            log.info("order %s is already %s; not running it", order_id, job.status)
            # a killed earlier run may have left its app
            await _clean_up(settings, order_id, runner)
            await _remove_strays(storage, engine, order_id)
            return None
        if attempt is not None and attempt != job.attempt:
            log.info("order %s: task of attempt %s, order is at %s", order_id, attempt, job.attempt)
            return None
        with log_context(order_id=str(order_id), customer_id=str(job.customer_id)):
            return await _run_locked(settings, storage, engine, job, runner, events_link)
    finally:
        if own_engine:
            await engine.dispose()


async def _run_locked(
    settings: Settings,
    storage: Storage,
    engine: AsyncEngine,
    job: OrderJob,
    runner: ContainerRunner | None,
    events_link: EventLink | None = None,
) -> OrderStatus | None:
    """The run itself, while this worker holds the lock of the order's attempt."""
    order_id = job.order_id
    async with _exclusive_run(engine, order_id, job.attempt) as mine:
        if not mine:
            # Another worker runs this attempt now (a redelivered or republished duplicate):
            # this copy is dropped; should that run die, its own message comes back, and
            # should it hang, the reconciler's next attempt takes a lock of its own.
            log.info("order %s is running elsewhere; dropping this duplicate", order_id)
            return None
        actor = f"worker:{socket.gethostname()}"
        async with EventPublisher(
            settings, order_id=order_id, attempt=job.attempt, actor=actor, link=events_link
        ) as events:
            async with _heartbeats(settings, events):
                outcome = await _execute(settings, storage, engine, job, events, runner)
            if outcome is None:
                return None
            final, fields = outcome
            try:
                await events.publish(final, **fields)
            except Exception:
                # No order will ever name this run's files: remove them, then let the task
                # try again (the broker is likely away).
                keys = [asset.key for asset in fields.get("assets") or []]
                await _quietly_delete(storage, job.order_id, keys)
                raise
            return final


async def _remove_strays(storage: Storage, engine: AsyncEngine, order_id: uuid.UUID) -> None:
    """For a final order: remove stored files it does not name (runs that lost, or were killed
    between storing and reporting). A run that stores later finds the order final and removes
    its own files, so this never takes what the order shows."""
    stored = await storage.keys(results_prefix(order_id))
    if not stored:
        return
    row = await _read_state(engine, order_id)
    strays = unnamed(order_id, stored, named_keys(row) if row else set())
    if strays:
        log.info("order %s: removing %d file(s) no run reported", order_id, len(strays))
        await _quietly_delete(storage, order_id, strays)


async def _quietly_delete(storage: Storage, order_id: uuid.UUID, keys: list[str]) -> None:
    try:
        await storage.delete(keys)
    except Exception:  # the next run of the order removes them (_remove_strays)
        log.warning("order %s: could not remove %d file(s) yet", order_id, len(keys))


@contextlib.asynccontextmanager
async def _heartbeats(settings: Settings, events: EventPublisher) -> AsyncIterator[None]:
    """Send a heartbeat every interval for as long as the run lasts: staging, the app, and
    storing the result alike, so a slow upload never looks like a dead worker."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(settings.heartbeat_interval_seconds)
            try:
                await events.publish(OrderStatus.RUNNING, heartbeat=True)
            except Exception:
                log.warning("order %s: a heartbeat could not be sent", events.order_id)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def _exclusive_run(
    engine: AsyncEngine, order_id: uuid.UUID, attempt: int
) -> AsyncIterator[bool]:
    """Hold a session-level advisory lock on this attempt of the order while it runs: True if we
    got it. The lock lives as long as this connection, so a worker killed mid-run releases it."""
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        got = await order_repository.try_lock_run(connection, order_id, attempt)
        unlocked = not got
        try:
            yield got
        finally:
            if got:
                try:
                    await order_repository.unlock_run(connection, order_id, attempt)
                    unlocked = True
                except Exception:  # the connection died (a database restart): so did the lock
                    log.info("order %s: the run lock went with its connection", order_id)
            if not unlocked:
                # Not back into a kept pool: a connection that may hold the lock must close.
                with contextlib.suppress(Exception):
                    await connection.invalidate()


async def _execute(
    settings: Settings,
    storage: Storage,
    engine: AsyncEngine,
    job: OrderJob,
    events: EventPublisher,
    runner: ContainerRunner | None,
) -> tuple[OrderStatus, dict[str, Any]] | None:
    """The steps of one run: resolve inputs, stage in, run the app, stage out; the SUCCESS event
    then registers the product. The work folder goes whatever happens (``_work_dir``)."""
    try:
        app = app_registry.get_registry(settings).get(job.app_id)
    except AppNotFound:
        return OrderStatus.FAILED, {"message": f"the app {job.app_id} is not installed here"}
    with _work_dir(settings, job) as work_dir:
        with _timed(app.id, "stage_in"):
            staged = await _stage_in(settings, storage, engine, app, job, events, work_dir)
        if isinstance(staged, tuple):
            return staged
        await events.publish(OrderStatus.RUNNING, progress=10, message="running the app")
        params = {
            "order_id": str(job.order_id),
            "app_id": app.id,
            "roi": job.roi,
            "start_date": job.start_date.isoformat(),
            "end_date": job.end_date.isoformat(),
            "params": job.params,
            "inputs": staged.described,
        }
        steps = app.manifest.steps
        watch = OrderWatch(
            settings, engine, job, events, asyncio.get_running_loop(), steps=len(steps) or 1
        )
        started = time.monotonic()
        step: str | None = None
        try:
            if steps:
                outcome, step = await run_workflow(
                    settings,
                    app,
                    job=params,
                    files=staged.files,
                    work_dir=work_dir,
                    labels=run_labels(settings, job.order_id, job.attempt),
                    watch=watch,
                    supersedes=order_labels(settings, job.order_id),
                    runner=runner,
                )
            else:
                outcome = await asyncio.to_thread(
                    run_app,
                    settings,
                    app,
                    job=params,
                    files=staged.files,
                    work_dir=work_dir,
                    labels=run_labels(settings, job.order_id, job.attempt),
                    # an earlier attempt's app (its worker hung or died) is superseded: removed
                    supersedes=order_labels(settings, job.order_id),
                    control=watch,
                    runner=runner,
                )
        except ImageMissing as exc:
            return OrderStatus.FAILED, {"message": str(exc)}
        _count_run(app.id, outcome, time.monotonic() - started)
        if outcome.stopped:
            log.info("order %s: container stopped: %s", job.order_id, watch.stop_reason)
            return None
        limits = limits_of(settings, app)
        if step is not None:
            limits = step_limits(settings, app, next(s for s in steps if s.name == step))
        failed = judge(app, outcome, limits, step=step)
        if failed is not None:
            return failed[0], {"message": failed[1]}
        if not await watch.still_ours():  # cancelled, or superseded, while the app finished
            log.info("order %s: not storing its outputs: %s", job.order_id, watch.stop_reason)
            return None
        await events.publish(OrderStatus.RUNNING, progress=90, message="storing the outputs")
        with _timed(app.id, "stage_out"):
            assets = await _stage_out(storage, app, job, outcome)
        # The two reads at once: whether the order is still ours, and what its results hold.
        ours, alone = await asyncio.gather(watch.still_ours(), _stored_alone(storage, job, assets))
        if not ours:  # a cancel that won the race leaves no file behind
            log.info("order %s: removing its outputs: %s", job.order_id, watch.stop_reason)
            await storage.delete([asset.key for asset in assets])
            return None
    await events.publish(OrderStatus.RUNNING, progress=95, message="registering the product")
    primary = next(a for a in assets if a.primary)
    return OrderStatus.SUCCESS, {
        "result": OrderResultInfo(**primary.model_dump(include=set(OrderResultInfo.model_fields))),
        "assets": assets,
        "message": _last_line(outcome, prefer_errors=False),
        "derived_from": staged.derived_from,
        "stored_alone": alone,
    }


async def _stored_alone(storage: Storage, job: OrderJob, assets: list[OrderAssetInfo]) -> bool:
    """Whether the order's results hold only this run's files, listed after storing them: then
    a first attempt's SUCCESS needs no tidy, and the order-event consumer queues none (one
    listing here, on the worker's kept client, instead of an outbox row, the tidier's claim and
    listing for every order). Any doubt (storage away for the listing) leaves the tidy queued."""
    if job.attempt != 1:  # an earlier attempt's files are the tidier's to find
        return False
    try:
        stored = await storage.keys(results_prefix(job.order_id))
    except Exception:
        log.info(
            "order %s: could not list its stored files; its SUCCESS asks for a tidy", job.order_id
        )
        return False
    return set(stored) == {asset.key for asset in assets}


@contextlib.contextmanager
def _timed(app_id: str, step: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        PIPELINE_STEP.labels(app_id, step).observe(time.monotonic() - started)


def _count_run(app_id: str, outcome: ContainerOutcome, seconds: float) -> None:
    PIPELINE_STEP.labels(app_id, "run").observe(seconds)
    CONTAINER_RUN.labels(app_id).observe(seconds)
    if outcome.timed_out:
        code = "timeout"
    elif outcome.stopped:
        code = "stopped"
    else:
        code = str(outcome.exit_code)
    CONTAINER_EXITS.labels(app_id, code).inc()


@contextlib.contextmanager
def _work_dir(settings: Settings, job: OrderJob) -> Iterator[Path]:
    """A folder of this run's own for staged archives and outputs, removed at the end."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{job.order_id}-", dir=settings.work_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def _stage_in(
    settings: Settings,
    storage: Storage,
    engine: AsyncEngine,
    app: app_registry.App,
    job: OrderJob,
    events: EventPublisher,
    work_dir: Path,
) -> staging.StagedInputs | tuple[OrderStatus, dict[str, Any]]:
    """The staged inputs, or the final state when they cannot be had (INVALID when missing)."""
    if not app.manifest.inputs:
        return staging.StagedInputs()
    await events.publish(OrderStatus.RUNNING, progress=2, message="finding the inputs")
    try:
        found = await staging.resolve(
            settings,
            app.manifest.inputs,
            roi=job.roi,
            start=job.start_date,
            end=job.end_date,
            params=job.params,
            own=staging.OrderProducts(settings, engine, storage, job.customer_id),
        )
    except staging.InputMissing as exc:
        return OrderStatus.INVALID, {"message": str(exc)}
    except CcsiUnavailable:
        raise  # an outage: the task waits it out and tries again
    except CcsiError as exc:
        return OrderStatus.FAILED, {"message": f"the catalogue refused the search: {exc}"}
    await events.publish(OrderStatus.RUNNING, progress=5, message="fetching the inputs")
    cache = staging.InputCache(settings.input_cache_dir, settings.input_cache_max_mb << 20)
    try:
        staged = await staging.stage(
            settings,
            storage,
            found,
            cache,
            into=work_dir / "staged",
            roi=job.roi,
            sources=staging.source_loader(settings, engine),
        )
    except staging.InputRefused as exc:  # a remote source down after the retries included
        return OrderStatus.FAILED, {"message": f"an input could not be staged: {exc}"}
    note = f"staged {staged.fetched} input file(s), {staged.from_cache} from the cache"
    if staged.remote:
        note += f", {staged.transferred} bytes transferred from remote sources"
    log.info("order %s: %s", job.order_id, note)
    await events.publish(OrderStatus.RUNNING, progress=9, message=note)
    return staged


async def _stage_out(
    storage: Storage, app: app_registry.App, job: OrderJob, outcome: ContainerOutcome
) -> list[OrderAssetInfo]:
    """Upload every declared output, streamed from disk, under keys of this run's own: whatever
    another run of the order writes, the files a SUCCESS names never change."""
    assets = []
    run = f"{job.attempt}-{uuid.uuid4().hex[:12]}"
    for output in app.manifest.outputs:
        path = outcome.outputs[output.path]
        key = f"results/{job.order_id}/{run}/{output.path}"
        size, checksum = await asyncio.to_thread(size_and_sha256, path)
        await storage.put_file(key, path, media_type=output.media_type)
        assets.append(
            OrderAssetInfo(
                key=key,
                size=size,
                media_type=output.media_type,
                checksum=checksum,
                role=output.role,
                title=output.title,
                primary=output.primary,
            )
        )
    return assets
