"""Benchmark 5: draining a burst of orders, as orders per second.

CURE: 300 orders of the no-op app submitted at once (8 submits in flight at a time) to the API,
run by one ``cure worker --concurrency 2``: two pool processes, each running one order at a time
(``worker_prefetch_multiplier`` 1). That is what ``cure worker`` runs by default, and it is the
"2 worker processes" of the target: two processes run orders. Two ``--concurrency 1`` workers
would run the same two processes plus a second Celery main process and a second sweeper on this
2-core machine, so it would measure CURE at a disadvantage that no deployment needs. Timed from
the first submit until the database shows all 300 SUCCESS (checked every 0.25 s, so up to 0.25 s
of the time is the check's). Two warm-up orders run before the clock starts.

Baseline: the same work with nothing around it, at the same concurrency: two threads, each with
its own Docker and S3 client (``bench.harness.ContainerRunner``: the container run with
``run_hardened`` and the app's limits, then its output uploaded to the same S3 bucket), taking the
300 runs from one shared counter; one warm-up run each before the clock starts.

Every order must end SUCCESS and every baseline run must succeed, or the benchmark fails.

Both sides also report what an order cost in CPU (``cpu_*_ms``, per order, from /proc): the whole
machine's busy time (on this 2-core machine a burst of containers keeps both cores busy, so CPU
per order bounds the throughput; other processes on the machine count too), and for CURE the API
process's and the worker's (with its pool processes).

Target: CURE's throughput at least 0.9 times the baseline's. Row.ratio is CURE orders/s divided by
baseline runs/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx

from bench.harness import (
    DSN,
    NAME,
    ContainerRunner,
    Deployment,
    OrderFailed,
    Report,
    Row,
    deployment,
    new_customer,
    submit,
    wait_success,
)

ORDERS = 300
CONCURRENCY = 2
IN_FLIGHT = 8  # submits at a time
WARMUPS = 2
CHECK_SECONDS = 0.25
TIMEOUT = 900.0
FAILED_STATES = ("FAILED", "INVALID", "CANCELLED")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- where the CPU goes: /proc, on Linux (zeros elsewhere) ----------------------------------------


def machine_cpu() -> float:
    """CPU seconds every core of the machine has been busy since boot (all processes, ours or
    not: whatever else runs on the machine counts too)."""
    with contextlib.suppress(OSError, ValueError):
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS  # less idle and iowait
    return 0.0


def process_cpu(pid: int) -> float:
    """CPU seconds used by a process and its living descendants (a worker's pool processes)."""
    total = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    with contextlib.suppress(OSError, ValueError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += process_cpu(int(child))
    return total


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {"machine": machine_cpu(), **{name: process_cpu(pid) for name, pid in pids.items()}}


def cpu_ms_per_order(
    before: dict[str, float], after: dict[str, float], orders: int = ORDERS
) -> dict[str, float]:
    return {
        f"cpu_{name}_ms": round((after[name] - before[name]) / orders * 1000, 1) for name in before
    }


async def wait_all_success(ids: list[uuid.UUID], deadline: float) -> dict[str, int]:
    """Poll the database until every order is SUCCESS; raise as soon as one ends otherwise."""
    connection = await asyncpg.connect(DSN)
    try:
        while True:
            rows = await connection.fetch(
                "SELECT status, count(*) AS n FROM orders WHERE id = ANY($1::uuid[]) "
                "GROUP BY status",
                ids,
            )
            counts = {row["status"]: int(row["n"]) for row in rows}
            if counts.get("SUCCESS", 0) == len(ids):
                return counts
            failed = {status: counts[status] for status in FAILED_STATES if status in counts}
            if failed:
                raise OrderFailed(f"orders of the burst ended {failed}")
            if time.monotonic() > deadline:
                raise OrderFailed(f"the burst did not drain in {TIMEOUT:.0f} s: {counts}")
            await asyncio.sleep(CHECK_SECONDS)
    finally:
        await connection.close()


async def cure_burst(
    url: str, pids: dict[str, int], *, orders: int = ORDERS, warmups: int = WARMUPS
) -> tuple[float, float, dict[str, float]]:
    """Seconds from the first submit until all ``orders`` are SUCCESS, the seconds submitting
    took, and the CPU milliseconds an order cost (the machine's, and those of the processes in
    ``pids``)."""
    _, headers = await new_customer(url)
    limits = httpx.Limits(max_connections=IN_FLIGHT)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        for _ in range(warmups):
            await wait_success(http, await submit(http, headers), headers)
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one() -> uuid.UUID:
            async with gate:
                return uuid.UUID(await submit(http, headers))

        before = cpu_snapshot(pids)
        started = time.perf_counter()
        ids = await asyncio.gather(*(one() for _ in range(orders)))
        submitted = time.perf_counter() - started
    await wait_all_success(list(ids), time.monotonic() + TIMEOUT)
    seconds = time.perf_counter() - started
    return seconds, submitted, cpu_ms_per_order(before, cpu_snapshot(pids), orders)


def measure_cure(running: Deployment) -> tuple[float, float, dict[str, float]]:
    running.start_api()
    worker = running.start_worker(concurrency=CONCURRENCY)
    assert running.api is not None
    try:
        return asyncio.run(cure_burst(running.url, {"api": running.api.pid, "worker": worker.pid}))
    finally:
        running.stop_workers()
        running.stop_api()


def measure_baseline(running: Deployment) -> tuple[float, dict[str, float]]:
    """Seconds for ORDERS runs by CONCURRENCY threads taking them from one counter, and the
    machine's CPU milliseconds per run."""
    runners = [ContainerRunner(running.env) for _ in range(CONCURRENCY)]
    tickets = itertools.count()
    lock = threading.Lock()

    def drain(runner: ContainerRunner) -> int:
        done = 0
        while True:
            with lock:
                ticket = next(tickets)
            if ticket >= ORDERS:
                return done
            runner.run_once()
            done += 1

    try:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda runner: runner.run_once(), runners))  # warm-ups
            before = cpu_snapshot({})
            started = time.perf_counter()
            done = sum(pool.map(drain, runners))
            seconds = time.perf_counter() - started
            cpu = cpu_ms_per_order(before, cpu_snapshot({}))
    finally:
        for runner in runners:
            runner.close()
    if done != ORDERS:
        raise OrderFailed(f"the baseline ran {done} of {ORDERS}")
    return seconds, cpu


def run(report: Report, s3_url: str) -> None:
    with deployment(s3_url) as running:
        cure_seconds, submit_seconds, cure_cpu = measure_cure(running)
        base_seconds, base_cpu = measure_baseline(running)
    cure_rate = ORDERS / cure_seconds
    base_rate = ORDERS / base_seconds
    ratio = cure_rate / base_rate
    report.add(
        Row(
            number=5,
            name=f"drain {ORDERS} no-op orders, {CONCURRENCY} processes",
            cure={
                "orders": ORDERS,
                "seconds": round(cure_seconds, 2),
                "orders_per_s": round(cure_rate, 3),
                "submit_seconds": round(submit_seconds, 2),
                **cure_cpu,
            },
            baseline={
                "runs": ORDERS,
                "seconds": round(base_seconds, 2),
                "runs_per_s": round(base_rate, 3),
                **base_cpu,
            },
            ratio=round(ratio, 3),
            ratio_means="CURE orders/s / baseline runs/s",
            target="CURE throughput >= 0.9x baseline",
            met=ratio >= 0.9,
            notes=[
                f"CURE: one `cure worker --concurrency {CONCURRENCY}`, {IN_FLIGHT} submits in "
                f"flight, timed until the database shows all SUCCESS (checked every "
                f"{CHECK_SECONDS} s); baseline: {CONCURRENCY} threads of container + upload; "
                f"deployment {NAME}",
            ],
        )
    )
