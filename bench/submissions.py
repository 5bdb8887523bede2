"""Benchmark 2: submissions, ``POST /v1/apps/noop/orders``, against their floor.

CURE: one API process pinned to CPU 0, with its relay running (each order is validated, its
region checked and stored in PostGIS, its RECEIVED event and task message written in one
transaction, then published to RabbitMQ by the relay and marked QUEUED). The baseline: bare
Starlette + asyncpg (``bench/baseline_app.py``) inserting the same three rows (order, event,
outbox message) in one transaction, with no validation, limits or publishing. Load: wrk, 1 thread
x 8 connections x 10 s, pinned to CPU 1, after 3 s of warm-up. Target: at least 0.3x the
baseline's throughput.
"""

import asyncio
import json

from bench import floor
from bench.harness import ORDER_BODY, Report, Row, deployment, new_customer, wrk

SECONDS = 10
CONNECTIONS = 8


def run(report: Report, s3_url: str) -> None:
    body = json.dumps(ORDER_BODY)
    with deployment(s3_url) as stack:
        stack.start_api()
        customer_id, headers = asyncio.run(new_customer(stack.url))
        url = f"{stack.url}/v1/apps/noop/orders"
        wrk(url, seconds=3, connections=CONNECTIONS, headers=headers, method="POST", body=body)
        cure = wrk(
            url,
            seconds=SECONDS,
            connections=CONNECTIONS,
            headers=headers,
            method="POST",
            body=body,
            server_pid=stack.api_pid,
        )
        unsent = floor.unsent_outbox()
        stack.stop_api()
        with floor.baseline_app(customer_id) as (base_url, base_pid):
            target = f"{base_url}/orders"
            wrk(target, seconds=3, connections=CONNECTIONS, method="POST", body=body)
            base = wrk(
                target,
                seconds=SECONDS,
                connections=CONNECTIONS,
                method="POST",
                body=body,
                server_pid=base_pid,
            )
    floor.check_answers(cure, base)
    ratio = cure["req_per_s"] / base["req_per_s"]
    report.add(
        Row(
            number=2,
            name="submissions",
            cure=cure,
            baseline=base,
            ratio=round(ratio, 3),
            ratio_means="CURE orders/s / baseline orders/s",
            target=">= 0.3x throughput",
            met=ratio >= 0.3,
            notes=[
                f"wrk 1 thread x {CONNECTIONS} connections x {SECONDS} s",
                f"task messages the relay had not yet published when the load stopped: {unsent}",
            ],
        )
    )
