"""Benchmark 10: draining 200 orders with one worker host, then with two.

One host: the API and one ``cure worker --concurrency 2`` on this machine, with the machine's
Docker engine, as benchmark 5 runs them. Two hosts: the same, plus a second host made as the
tests make it (``tests/hosts.py``: a network namespace on a bridge of its own, its own Docker
engine, its own hostname) running another ``cure worker --concurrency 2``, which reaches
PostgreSQL, RabbitMQ and S3 through relays on the bridge's address. Each side submits 200
orders of the no-op app at once (8 submits in flight) and is timed from the first submit until
the database shows all 200 SUCCESS; warm-up orders run first (on both hosts in the second).

Both hosts are on the same two cores: a second host adds worker processes, not CPU. The ratio
(two hosts' orders/s over one host's) shows what spreading the same work over two engines
costs or gains when the CPU is the ceiling; on separate machines each host brings its own cores.
Skipped (no row) where network namespaces cannot be made (not root, no ``ip``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import asyncpg

from bench.drain import IN_FLIGHT, cure_burst
from bench.harness import DSN, NAME, NOOP_IMAGE, Deployment, Report, Row, deployment
from tests.hosts import Lan, unavailable, wait_until, worker_env

ORDERS = 200
CONCURRENCY = 2  # per host
WARMUPS = 6


async def successes_by_host() -> dict[str, int]:
    """SUCCESS events so far, by the host whose worker sent them."""
    connection = await asyncpg.connect(DSN)
    try:
        rows = await connection.fetch(
            "SELECT actor, count(*) AS n FROM order_events WHERE status = 'SUCCESS' GROUP BY actor"
        )
    finally:
        await connection.close()
    return {row["actor"].removeprefix("worker:"): int(row["n"]) for row in rows}


def burst(running: Deployment, pids: dict[str, int]) -> dict[str, Any]:
    before = asyncio.run(successes_by_host())
    seconds, submitted, cpu = asyncio.run(
        cure_burst(running.url, pids, orders=ORDERS, warmups=WARMUPS)
    )
    after = asyncio.run(successes_by_host())
    per_host = {
        host: n - before.get(host, 0) for host, n in after.items() if n > before.get(host, 0)
    }
    return {
        "orders": ORDERS,
        "seconds": round(seconds, 2),
        "orders_per_s": round(ORDERS / seconds, 3),
        "submit_seconds": round(submitted, 2),
        "_per_host": per_host,  # warm-ups included; shown in the notes
        **cpu,
    }


def run(report: Report, s3_url: str) -> None:
    reason = unavailable()
    if reason:
        print(f"   skipped: no second host can be made here ({reason})", flush=True)
        return
    with deployment(s3_url) as running:
        running.start_api()
        assert running.api is not None
        try:
            first = running.start_worker(concurrency=CONCURRENCY)
            one = burst(running, {"api": running.api.pid, "worker": first.pid})
            lan = Lan()
            try:
                two = two_hosts(running, lan, s3_url, first.pid)
            finally:
                lan.close()
        finally:
            running.stop_workers()
            running.stop_api()
    ratio = two["orders_per_s"] / one["orders_per_s"]
    report.add(
        Row(
            number=10,
            name=f"drain {ORDERS} no-op orders, 1 host vs 2 hosts",
            cure=two,
            baseline=one,
            ratio=round(ratio, 3),
            ratio_means="2 hosts' orders/s / 1 host's orders/s (CURE: 2 hosts, baseline: 1 host)",
            target="2 hosts >= 0.9x 1 host on 2 shared cores (no loss from spreading)",
            met=ratio >= 0.9,
            notes=[
                f"each host: one `cure worker --concurrency {CONCURRENCY}` and its own Docker "
                f"engine; {IN_FLIGHT} submits in flight; both hosts share this machine's cores; "
                "host B reaches PostgreSQL, RabbitMQ and S3 through relays in this process",
                f"SUCCESS per host, 1 host: {one['_per_host']}; 2 hosts: {two['_per_host']} "
                f"(warm-ups included); deployment {NAME}",
            ],
        )
    )


def orders_consumers() -> int:
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", NAME, "name", "consumers"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in listed.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "cure.orders" and fields[1].isdigit():
            return int(fields[1])
    return 0


def two_hosts(running: Deployment, lan: Lan, s3_url: str, first_pid: int) -> dict[str, Any]:
    s3_port = int(s3_url.rsplit(":", 1)[1])
    database, broker, s3 = lan.relay(5432), lan.relay(5672), lan.relay(s3_port)
    host = lan.host("cure-bench-b")
    log_dir = running.scratch
    host.start_engine(log_dir / "host-b-dockerd.log")
    host.load_images(NOOP_IMAGE)
    env = worker_env(
        host,
        running.env,
        database=database,
        broker=broker,
        broker_vhost=NAME,
        database_name=NAME,
        CURE_S3_ENDPOINT_URL=f"http://{s3.host}:{s3.port}",
    )
    worker = host.spawn(
        [sys.executable, "-m", "cure", "worker"]
        + ["--concurrency", str(CONCURRENCY), "--hostname", f"worker-b@{host.name}"],
        log=log_dir / "host-b-worker.log",
        env=env,
    )

    def consuming() -> bool:
        if worker.poll() is not None:
            raise RuntimeError(f"host B's worker exited; see {log_dir / 'host-b-worker.log'}")
        return orders_consumers() >= 2

    wait_until(consuming, 60, "host B's worker consuming the orders queue")
    assert running.api is not None
    return burst(running, {"api": running.api.pid, "worker": first_pid, "worker_b": worker.pid})
