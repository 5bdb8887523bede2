"""Benchmark 1: an authenticated status read, ``GET /v1/orders/{id}``, against its floor.

CURE: one API process (``cure api``, uvloop and httptools, no access log) pinned to CPU 0; a
customer's client-credentials token; one order with its history (RECEIVED, QUEUED). The baseline:
bare Starlette + asyncpg (``bench/baseline_app.py``) reading the same row and history from the
same database, no auth, run by uvicorn the same way. Load: wrk, 1 thread x 8 connections x 10 s,
pinned to CPU 1, after 3 s of warm-up. Target: at least 0.35x the baseline's throughput, p99 at
most 3x the baseline's.
"""

import asyncio
import json

import httpx

from bench import floor
from bench.harness import ORDER_BODY, Report, Row, deployment, new_customer, wrk

SECONDS = 10
CONNECTIONS = 8


def run(report: Report, s3_url: str) -> None:
    with deployment(s3_url) as stack:
        stack.start_api()
        customer_id, headers = asyncio.run(new_customer(stack.url))
        created = httpx.post(
            f"{stack.url}/v1/apps/noop/orders", json=ORDER_BODY, headers=headers, timeout=30
        )
        created.raise_for_status()
        order_id = created.json()["order_id"]
        url = f"{stack.url}/v1/orders/{order_id}"
        wrk(url, seconds=3, connections=CONNECTIONS, headers=headers)  # warm-up
        cure = wrk(
            url,
            seconds=SECONDS,
            connections=CONNECTIONS,
            headers=headers,
            server_pid=stack.api_pid,
        )
        history = len(httpx.get(url, headers=headers).json()["history"])
        stack.stop_api()
        with floor.baseline_app(customer_id) as (base_url, base_pid):
            wrk(f"{base_url}/orders/{order_id}", seconds=3, connections=CONNECTIONS)
            base = wrk(
                f"{base_url}/orders/{order_id}",
                seconds=SECONDS,
                connections=CONNECTIONS,
                server_pid=base_pid,
            )
    floor.check_answers(cure, base)
    ratio = cure["req_per_s"] / base["req_per_s"]
    p99_ratio = cure["p99_ms"] / base["p99_ms"]
    report.add(
        Row(
            number=1,
            name="authenticated status read",
            cure=cure,
            baseline=base,
            ratio=round(ratio, 3),
            ratio_means="CURE req/s / baseline req/s",
            target=">= 0.40x throughput, p99 <= 3x (issue 21)",
            met=ratio >= 0.40 and p99_ratio <= 3,
            notes=[
                f"p99 ratio {p99_ratio:.2f}",
                f"wrk 1 thread x {CONNECTIONS} connections x {SECONDS} s; history of {history} "
                "events",
                json.dumps({"order_id": order_id}),
            ],
        )
    )
