"""Benchmark 3: dispatch latency, from an order's submit returning to a worker starting its task.

What is timed, for both sides the same way: from the moment the client has the answer of its
submit (CURE: ``POST /v1/apps/noop/orders`` answered 202; baseline: ``apply_async`` returned, its
message confirmed by the broker) to the ``task-started`` event of the task's worker: Celery sends it
once a pool process has taken the task, stamped with the worker's clock (``time.time()``, the same
machine's clock as the client's). Both workers have task events on (CURE's for Flower), and one
event receiver in this process collects both sides' events from the broker.

The task start is the honest end of dispatch: it is what the broker and Celery deliver, and it is
the same event on both sides. What CURE's pipeline does once its task has started (open a database
engine, take the run's lock, open its event channel) comes after it; the notes show it as
"task start -> first worker event" (the worker's first order event, RUNNING "running the app",
from the order's history), and benchmark 4 counts it.

CURE: 50 orders of the no-op app, each waited for until SUCCESS and followed by a 0.2 s pause,
so every one finds an idle worker (``cure worker --concurrency 2``, its default) and an idle
relay: the API answers after its transaction commits, then wakes the outbox relay, which publishes
the task and marks the order QUEUED.

Baseline (``bench/bare_celery.py``): a bare Celery app on the same RabbitMQ vhost, with a quorum
queue and CURE's delivery settings (late acks, prefetch multiplier 1, publisher confirms), its
worker a process of its own with the same concurrency; 50 tasks ``apply_async``-ed, each waited
for until it succeeded, then the same pause.

The two sides take turns (an order, a bare task, 3 + 50 times; the first 3 of each are warm-ups),
both workers up all along, so that whatever else runs on the machine slows both alike.

Target: CURE's p95 at most the baseline's p95 + 100 ms. Row.ratio is CURE p95 - baseline p95, in
milliseconds.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import uuid
from typing import Any

import httpx
from celery import Celery
from celery.events.receiver import EventReceiver

from bench import bare_celery
from bench.harness import (
    NAME,
    Report,
    Row,
    deployment,
    epoch,
    first_event,
    latency_summary,
    new_customer,
    submit,
    wait_success,
)

ORDERS = 50
WARMUPS = 3
CONCURRENCY = 2  # `cure worker`'s default
PAUSE_SECONDS = 0.2
EVENT_TIMEOUT = 60.0
TARGET_MS = 100.0


class TaskEvents:
    """The task events of every worker on a vhost (Celery's event stream), by task id: when each
    task started and succeeded, by its worker's clock."""

    def __init__(self, broker_url: str) -> None:
        self.app = Celery("bench-events", broker=broker_url)
        self.times: dict[tuple[str, str], float] = {}
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._receiver: EventReceiver | None = None
        self._thread = threading.Thread(target=self._capture, name="task-events", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> TaskEvents:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"the event receiver did not start: {self._error!r}")
        return self

    def __exit__(self, *_: object) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(10)

    def _capture(self) -> None:
        events = self

        class Receiver(EventReceiver):
            def on_consume_ready(self, *args: Any, **kwargs: Any) -> None:
                events._ready.set()

        try:
            with self.app.connection_for_read() as connection:
                self._receiver = Receiver(
                    connection,
                    app=self.app,
                    handlers={"task-started": self._record, "task-succeeded": self._record},
                )
                self._receiver.capture(limit=None, timeout=None, wakeup=False)
        except BaseException as exc:  # reported by whoever waits
            self._error = exc
            self._ready.set()
            raise

    def _record(self, event: dict[str, Any]) -> None:
        with self._changed:
            self.times[(event["type"], event["uuid"])] = float(event["timestamp"])
            self._changed.notify_all()

    def wait(self, kind: str, task_id: str, timeout: float = EVENT_TIMEOUT) -> float:
        """The worker's time of the task's ``kind`` event (task-started, task-succeeded)."""
        with self._changed:
            if not self._changed.wait_for(lambda: (kind, task_id) in self.times, timeout):
                raise RuntimeError(f"no {kind} event for task {task_id} in {timeout:.0f} s")
            return self.times[(kind, task_id)]


async def cure_dispatch(
    http: httpx.AsyncClient, headers: dict[str, str], events: TaskEvents
) -> tuple[float, float, float]:
    """One order: seconds from its submit answered to QUEUED, to its task's start and to the
    worker's first event of it; returns once it is SUCCESS."""
    order_id = await submit(http, headers)
    answered = time.time()
    order = await wait_success(http, order_id, headers, poll=0.05)
    started = await asyncio.to_thread(events.wait, "task-started", f"order-{order_id}-1")
    queued = epoch(first_event(order, status="QUEUED")["at"])
    worker_first = epoch(first_event(order, actor="worker:")["at"])
    return queued - answered, started - answered, worker_first - answered


def bare_dispatch(events: TaskEvents, timeout: float = EVENT_TIMEOUT) -> float:
    """One bare task: seconds from ``apply_async`` returned to its start; returns when done."""
    task_id = f"bare-{uuid.uuid4()}"
    bare_celery.noop.apply_async(args=[task_id], task_id=task_id)
    answered = time.time()
    started = events.wait("task-started", task_id, timeout)
    events.wait("task-succeeded", task_id)
    return started - answered


async def interleaved(url: str, events: TaskEvents) -> tuple[list[float], list[float], list[str]]:
    """CURE orders and bare tasks taking turns, so that whatever else runs on the machine slows
    both alike: each side's seconds from submit answered to task start, and notes."""
    _, headers = await new_customer(url)
    cure: list[tuple[float, float, float]] = []
    bare: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for index in range(WARMUPS + ORDERS):
            sample = await cure_dispatch(http, headers, events)
            await asyncio.sleep(PAUSE_SECONDS)
            # The first waits for the bare worker to come up.
            seconds = await asyncio.to_thread(bare_dispatch, events, 120 if index == 0 else 60)
            await asyncio.sleep(PAUSE_SECONDS)
            if index >= WARMUPS:
                cure.append(sample)
                bare.append(seconds)
    to_queued = [queued for queued, _, _ in cure]
    to_start = [start for _, start, _ in cure]
    to_first_event = [first for _, _, first in cure]
    setup = [first - start for _, start, first in cure]
    notes = [
        f"CURE median: answered -> QUEUED (relay published) "
        f"{statistics.median(to_queued) * 1000:.1f} ms, -> task started "
        f"{statistics.median(to_start) * 1000:.1f} ms; task start -> first worker event "
        f"(pipeline set-up) median {statistics.median(setup) * 1000:.0f} ms, "
        f"p95 {latency_summary(setup)['p95_ms']:.0f} ms",
        f"CURE answered -> first worker event: {latency_summary(to_first_event)}",
    ]
    return to_start, bare, notes


def run(report: Report, s3_url: str) -> None:
    with deployment(s3_url) as running:
        broker = running.env["CURE_BROKER_URL"]
        bare_celery.app.conf.broker_url = broker
        with TaskEvents(broker) as events:
            running.start_api()
            running.start_worker(concurrency=CONCURRENCY)
            running.processes.start(
                "bare-celery",
                bare_celery.worker_argv(concurrency=CONCURRENCY, hostname=f"bare@{NAME}"),
                {**running.env, "BENCH_BARE_BROKER": broker},
            )
            cure, baseline, notes = asyncio.run(interleaved(running.url, events))
    cure_figures = latency_summary(cure)
    base_figures = latency_summary(baseline)
    difference = cure_figures["p95_ms"] - base_figures["p95_ms"]
    report.add(
        Row(
            number=3,
            name="dispatch latency (submit -> task start)",
            cure=cure_figures,
            baseline=base_figures,
            ratio=round(difference, 2),
            ratio_means="CURE p95 - baseline p95, in ms",
            target=f"p95 <= baseline p95 + {TARGET_MS:.0f} ms",
            met=difference <= TARGET_MS,
            notes=[
                f"{ORDERS} orders and {ORDERS} bare tasks taking turns after {WARMUPS} warm-ups, "
                f"each waited for until done, then {PAUSE_SECONDS} s; task start = the worker's "
                f"task-started event; deployment {NAME}",
                *notes,
            ],
        )
    )
