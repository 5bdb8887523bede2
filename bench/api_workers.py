"""Benchmark 9: ``cure api --workers 2`` against one API process, on the status read of row 1.

CURE: the same authenticated ``GET /v1/orders/{id}`` as row 1 (a client-credentials token, one
order with its history), served by ``cure api --workers 2`` (two processes sharing the port, one
of them the leader that runs the services), on every core of the machine (``taskset -c 0,1`` on
this one). Baseline: the same API as one process on a core of its own (CPU 0, as in row 1: one
process uses one core at most, and this is its best place). The load, wrk with 16 connections
for 10 s after 3 s of warm-up, is pinned to CPU 1 as in every row. Target: 2 processes at least
1.5x the requests/s of one.

On a 2-core machine the load has no core of its own: it shares CPU 1 with the second API
process, so the ratio here is what two processes gain on two cores that also carry the load,
not the gain on a machine with a core to spare. The figures say how far that goes.
"""

import asyncio
import json
import os

import httpx

from bench.harness import (
    LOAD_CPU,
    ORDER_BODY,
    SERVER_CPU,
    Report,
    Row,
    deployment,
    new_customer,
    wrk,
)

SECONDS = 10
CONNECTIONS = 16


def _measure(stack, workers: int, cpus: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    stack.start_api(workers=workers, cpus=cpus)
    try:
        _, headers = asyncio.run(new_customer(stack.url))
        created = httpx.post(
            f"{stack.url}/v1/apps/noop/orders", json=ORDER_BODY, headers=headers, timeout=30
        )
        created.raise_for_status()
        url = f"{stack.url}/v1/orders/{created.json()['order_id']}"
        wrk(url, seconds=3, connections=CONNECTIONS, headers=headers)  # warm-up
        figures = wrk(
            url,
            seconds=SECONDS,
            connections=CONNECTIONS,
            headers=headers,
            server_pid=stack.api_pid,  # the CPU of the processes under it too
        )
    finally:
        stack.stop_api()
    return figures


def run(report: Report, s3_url: str) -> None:
    cores = os.cpu_count() or 1
    cpus = f"0-{cores - 1}"
    with deployment(s3_url) as stack:
        one = _measure(stack, 1, SERVER_CPU)
        two = _measure(stack, 2, cpus)
    for figures in (one, two):
        if figures["non_2xx"] or figures["errors"]:
            raise RuntimeError(f"the status read failed under load: {json.dumps(figures)}")
    ratio = two["req_per_s"] / one["req_per_s"]
    report.add(
        Row(
            number=9,
            name="cure api --workers 2 against one process, status read",
            cure=two,
            baseline=one,
            ratio=round(ratio, 3),
            ratio_means="2 processes' req/s / 1 process's req/s",
            target=">= 1.5x",
            met=ratio >= 1.5,
            notes=[
                f"1 process on CPU {SERVER_CPU}, 2 on CPUs {cpus}, wrk on CPU {LOAD_CPU} "
                f"({CONNECTIONS} connections, {SECONDS} s); {cores} cores: "
                + (
                    "the load shares a core with the second API process"
                    if cores <= 2
                    else "the load has a core of its own only if the API leaves it one"
                ),
            ],
        )
    )
