"""Benchmark 4: what an order costs end to end beyond running its app.

CURE: the no-op app (``bench/noop_app``: reads nothing, writes one small file) ordered 20 times
one after another (after 2 warm-ups) through the API, with one ``cure worker --concurrency 1``;
each order is timed from just before its ``POST /v1/apps/noop/orders`` to the first
``GET /v1/orders/{id}`` that shows SUCCESS, polled every 20 ms (so up to ~20 ms, and on average
~10 ms plus a GET, of each figure is the polling's).

Baseline: a plain script doing the same work with nothing around it: the same container run with
the Docker SDK the way the worker runs it (``cure.containers.engine.run_hardened`` with the app's
limits as ``cure.workers.pipeline.limits_of`` gives them: create a volume and a hardened container,
copy params.json in, start, wait, read the logs, copy the outputs out, remove both), then the same
file uploaded to the same S3 server and bucket (boto3 against moto's server). It keeps one Docker
and one S3 client for the whole run, as a script would.

The two sides take turns, an order then a baseline run, 2 + 20 times, so that whatever else runs
on the machine slows both alike (the CURE processes stay up, idle, during the baseline's turns).

Target: CURE's p50 and mean at most 1.2 times the baseline's. Row.ratio is CURE p50 / baseline
p50. The notes break CURE's median down by the order's own event history (the API's, the relay's
and the worker's clocks, all this machine's): submit -> QUEUED (the relay published the task) ->
the worker's first event (the pipeline has started; then each of its steps, named by the message
of the event that begins it) -> the worker's SUCCESS event -> applied by the status manager (the
order's ``updated_at``) -> seen by the client; and the baseline's into its container run and its
upload.

Its helpers (the baseline's ``ContainerRunner``, submitting and waiting for orders) also serve
benchmarks 3 and 5.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

from bench.harness import (
    NAME,
    POLL_SECONDS,
    ContainerRunner,
    OrderFailed,
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

ORDERS = 20
WARMUPS = 2


# -- CURE's side ---------------------------------------------------------------------------------


def phases(order: dict[str, Any], *, submitted: float, seen: float) -> dict[str, float]:
    """Where one order's time went, in seconds, from its own history (this machine's clock):
    submit -> QUEUED -> the worker's first event, each of the worker's steps (named by the message
    of the event that starts it) up to its SUCCESS event, until the status manager applied it
    (the order's ``updated_at``), then until the client saw SUCCESS."""
    queued = epoch(first_event(order, status="QUEUED")["at"])
    marks = [("submit -> QUEUED", submitted), ("QUEUED -> worker's first event", queued)]
    for event in order["history"]:
        if not event["actor"].startswith("worker:"):
            continue
        if event["status"] == "SUCCESS":
            marks.append(("worker's SUCCESS -> applied", epoch(event["at"])))
            # The status manager stamps the order when it applies the event.
            marks.append(("applied -> seen", epoch(order["updated_at"])))
            break
        marks.append((f"worker: {event['message']}", epoch(event["at"])))
    else:
        raise OrderFailed(f"order {order['order_id']} has no SUCCESS event from its worker")
    marks.append(("", seen))
    return {name: marks[i + 1][1] - at for i, (name, at) in enumerate(marks[:-1])}


def median_phases(samples: list[dict[str, float]]) -> str:
    return ", ".join(
        f"{name} {statistics.median(s[name] for s in samples) * 1000:.0f} ms" for name in samples[0]
    )


async def cure_order(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, float]:
    """One order, submit to SUCCESS seen: its seconds (``total``) and its phases."""
    submitted = time.time()
    started = time.perf_counter()
    order = await wait_success(http, await submit(http, headers), headers)
    elapsed = time.perf_counter() - started
    return {"total": elapsed, **phases(order, submitted=submitted, seen=submitted + elapsed)}


# -- the baseline --------------------------------------------------------------------------------


async def interleaved(
    url: str, runner: ContainerRunner
) -> tuple[list[float], list[dict[str, float]], list[float]]:
    """CURE orders and baseline runs taking turns, so that both meet the same machine (whatever
    else runs on it slows both sides alike): CURE's seconds and phases, the baseline's seconds."""
    _, headers = await new_customer(url)
    cure: list[dict[str, float]] = []
    baseline: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for index in range(WARMUPS + ORDERS):
            order = await cure_order(http, headers)
            run_seconds = await asyncio.to_thread(runner.run_once)
            if index >= WARMUPS:
                cure.append(order)
                baseline.append(run_seconds)
    return [order.pop("total") for order in cure], cure, baseline


def run(report: Report, s3_url: str) -> None:
    with deployment(s3_url) as running:
        running.start_api()
        running.start_worker(concurrency=1)
        runner = ContainerRunner(running.env)
        try:
            cure, cure_phases, baseline = asyncio.run(interleaved(running.url, runner))
        finally:
            runner.close()
            running.stop_workers()
            running.stop_api()
    steps = runner.steps[WARMUPS:]
    container = statistics.median(step[0] for step in steps) * 1000
    upload = statistics.median(step[1] for step in steps) * 1000
    cure_figures = latency_summary(cure)
    base_figures = latency_summary(baseline)
    ratio = cure_figures["p50_ms"] / base_figures["p50_ms"]
    mean_ratio = cure_figures["mean_ms"] / base_figures["mean_ms"]
    report.add(
        Row(
            number=4,
            name="end-to-end overhead (no-op app)",
            cure=cure_figures,
            baseline=base_figures,
            ratio=round(ratio, 3),
            ratio_means="CURE p50 / baseline p50, submit -> SUCCESS vs container + upload",
            target="p50 and mean <= 1.15x baseline (issue 21)",
            met=ratio <= 1.15 and mean_ratio <= 1.15,
            notes=[
                f"mean ratio {mean_ratio:.3g}; {ORDERS} orders and {ORDERS} baseline runs taking "
                f"turns after {WARMUPS} warm-ups each; GET every {POLL_SECONDS * 1000:.0f} ms; "
                f"deployment {NAME}",
                f"CURE median by phase: {median_phases(cure_phases)}",
                f"baseline median: container {container:.0f} ms, upload {upload:.0f} ms",
            ],
        )
    )
