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
import os
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import httpx
from botocore.client import Config
from botocore.exceptions import ClientError

from bench.harness import (
    NAME,
    ORDER_BODY,
    ROI,
    Report,
    Row,
    deployment,
    latency_summary,
    new_customer,
)
from cure.apps.registry import load_registry
from cure.config import Settings
from cure.containers.engine import docker_client, run_hardened
from cure.workers.pipeline import limits_of

APP = "noop"
ORDERS = 20
WARMUPS = 2
POLL_SECONDS = 0.02
ORDER_TIMEOUT = 120.0
FAILED_STATES = {"FAILED", "INVALID", "CANCELLED"}


# -- CURE's side ---------------------------------------------------------------------------------


class OrderFailed(RuntimeError):
    pass


async def submit(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """Order the no-op app; its order id."""
    response = await http.post(f"/v1/apps/{APP}/orders", json=ORDER_BODY, headers=headers)
    if response.status_code != 202:
        raise OrderFailed(f"submit answered {response.status_code}: {response.text[:500]}")
    return str(response.json()["order_id"])


async def wait_success(
    http: httpx.AsyncClient,
    order_id: str,
    headers: dict[str, str],
    *,
    poll: float = POLL_SECONDS,
    within: float = ORDER_TIMEOUT,
) -> dict[str, Any]:
    """Poll the order until it is SUCCESS (its last GET's body); raise if it ends otherwise."""
    deadline = time.monotonic() + within
    while True:
        response = await http.get(f"/v1/orders/{order_id}", headers=headers)
        response.raise_for_status()
        order: dict[str, Any] = response.json()
        if order["status"] == "SUCCESS":
            return order
        if order["status"] in FAILED_STATES:
            raise OrderFailed(f"order {order_id} ended {order['status']}: {order['message']}")
        if time.monotonic() > deadline:
            raise OrderFailed(f"order {order_id} is still {order['status']} after {within:.0f} s")
        await asyncio.sleep(poll)


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def first_event(order: dict[str, Any], *, actor: str = "", status: str = "") -> dict[str, Any]:
    for event in order["history"]:
        if event["actor"].startswith(actor) and (not status or event["status"] == status):
            return event
    raise OrderFailed(f"order {order['order_id']} has no {status or 'event'} from {actor!r}")


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


class ContainerRunner:
    """The baseline's work for one order, with nothing around it: run the app's container with
    the Docker SDK as the worker does, upload its output to the deployment's S3 bucket."""

    def __init__(self, env: dict[str, str]) -> None:
        with mock.patch.dict(os.environ, env, clear=True):
            settings = Settings()
        app = load_registry(settings.apps_dir).get(APP)
        self.image = app.manifest.image
        self.limits = limits_of(settings, app)
        self.output = app.manifest.outputs[0]
        self.work_dir = settings.work_dir
        self.bucket = settings.s3_bucket
        self.steps: list[tuple[float, float]] = []  # each run's container and upload seconds
        # Its own label value: a CURE worker's sweep of this deployment never touches these.
        self.deployment = f"{settings.deployment}-baseline"
        self.docker = docker_client(settings.docker_url, timeout=settings.docker_timeout_seconds)
        secret = settings.s3_secret_access_key
        self.s3 = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.s3.create_bucket(Bucket=self.bucket)

    def run_once(self) -> float:
        """One run, container and upload: its seconds. Raises unless the app succeeded."""
        order_id = str(uuid.uuid4())
        job = {
            "order_id": order_id,
            "app_id": APP,
            "roi": ROI,
            "start_date": ORDER_BODY["start_date"],
            "end_date": ORDER_BODY["end_date"],
            "params": {},
            "inputs": {},
        }
        self.work_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"{order_id}-", dir=self.work_dir) as folder:
            outcome = run_hardened(
                self.docker,
                image=self.image,
                labels={"cure.order_id": order_id, "cure.deployment": self.deployment},
                job=job,
                limits=self.limits,
                work_dir=Path(folder),
                command=[],
            )
            ran = time.perf_counter()
            path = outcome.outputs.get(self.output.path)
            if outcome.exit_code != 0 or path is None:
                raise OrderFailed(f"baseline run: exit {outcome.exit_code}, {outcome.errors[-3:]}")
            self.s3.upload_file(
                str(path),
                self.bucket,
                f"baseline/{order_id}/{self.output.path}",
                ExtraArgs={"ContentType": self.output.media_type},
            )
        done = time.perf_counter()
        self.steps.append((ran - started, done - ran))
        return done - started

    def close(self) -> None:
        self.docker.close()
        self.s3.close()


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
            target="p50 and mean <= 1.2x baseline",
            met=ratio <= 1.2 and mean_ratio <= 1.2,
            notes=[
                f"mean ratio {mean_ratio:.3g}; {ORDERS} orders and {ORDERS} baseline runs taking "
                f"turns after {WARMUPS} warm-ups each; GET every {POLL_SECONDS * 1000:.0f} ms; "
                f"deployment {NAME}",
                f"CURE median by phase: {median_phases(cure_phases)}",
                f"baseline median: container {container:.0f} ms, upload {upload:.0f} ms",
            ],
        )
    )
