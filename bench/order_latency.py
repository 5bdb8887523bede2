"""Latency of small orders end to end, against the container floor measured in the same run.

Starts its own API and worker processes (database `cure_bench`, RabbitMQ vhost `cure_bench`, local
storage in a temporary folder) on the services scripts/test sets up, then:

- baseline: the roi_stats container alone, run N times the way the worker runs it (create, copy
  the job in, start, wait, copy the result out, remove) with no database, broker or storage;
- sequential: N orders one after another, each timed from POST to the first GET that shows SUCCESS;
- burst: N orders submitted at once, timed until all are SUCCESS.

Run: .venv/bin/python bench/order_latency.py [N]
"""

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
NAME = "cure_bench"
ROI = {
    "type": "Polygon",
    "coordinates": [[[16.3, 48.2], [16.4, 48.2], [16.4, 48.3], [16.3, 48.3], [16.3, 48.2]]],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def summary(label: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return (
        f"{label:<28} n={len(seconds):<3} mean={statistics.mean(seconds) * 1000:7.0f} ms"
        f"  p50={statistics.median(seconds) * 1000:7.0f} ms  p95={p95 * 1000:7.0f} ms"
    )


def baseline(count: int) -> list[float]:
    from cure.apps.registry import load_registry
    from cure.containers.engine import ContainerLimits, docker_client, run_hardened

    app = load_registry(ROOT / "cure" / "apps").get("roi_stats")
    limits = ContainerLimits(
        memory_mb=128, cpus=0.5, pids=32, timeout_seconds=60, max_output_bytes=1 << 20
    )
    client = docker_client(None)
    times = []
    for _ in range(count):
        order_id = str(uuid.uuid4())
        job = {
            "order_id": order_id,
            "app_id": app.id,
            "roi": ROI,
            "start_date": "2024-07-01",
            "end_date": "2024-07-31",
            "params": {"area_unit": "km2", "precision": 3},
        }
        started = time.perf_counter()
        outcome = run_hardened(
            client,
            image=app.manifest.image,
            labels={"cure.order_id": order_id},
            job=job,
            limits=limits,
        )
        times.append(time.perf_counter() - started)
        assert outcome.exit_code == 0 and "result.geojson" in outcome.outputs
    client.close()
    return times


async def prepare_database() -> None:
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{NAME}"')
    await admin.close()


def prepare_broker_and_schema(env: dict[str, str]) -> None:
    for args in (
        ["delete_vhost", NAME],
        ["add_vhost", NAME],
        ["set_permissions", "-p", NAME, "guest", ".*", ".*", ".*"],
    ):
        subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, check=False)
    subprocess.run(
        [sys.executable, "-m", "cure", "db", "upgrade"], env=env, check=True, capture_output=True
    )


async def wait_success(http: httpx.AsyncClient, order_id: str, headers: dict[str, str]) -> None:
    while True:
        status = (await http.get(f"/v1/orders/{order_id}", headers=headers)).json()["status"]
        if status == "SUCCESS":
            return
        if status in ("FAILED", "INVALID", "CANCELLED"):
            raise RuntimeError(f"order {order_id} ended {status}")
        await asyncio.sleep(0.02)


async def one_order(http: httpx.AsyncClient, headers: dict[str, str]) -> float:
    body = {"roi": ROI, "start_date": "2024-07-01", "end_date": "2024-07-31", "params": {}}
    started = time.perf_counter()
    response = await http.post("/v1/apps/roi_stats/orders", json=body, headers=headers)
    response.raise_for_status()
    await wait_success(http, response.json()["order_id"], headers)
    return time.perf_counter() - started


async def measure(count: int, url: str) -> tuple[list[float], float]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        customer = (
            await http.post(
                "/v1/crm/customers",
                json={
                    "name": "Bench",
                    "email": f"bench-{uuid.uuid4().hex[:8]}@example.org",
                    "password": "benchmark passphrase",
                },
            )
        ).json()
        token = (
            await http.post(
                "/v1/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(customer["client_id"], customer["client_secret"]),
            )
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        for _ in range(2):  # warm-up: connections, image cache
            await one_order(http, headers)
        sequential = [await one_order(http, headers) for _ in range(count)]
        started = time.perf_counter()
        await asyncio.gather(*(one_order(http, headers) for _ in range(count)))
        return sequential, time.perf_counter() - started


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    port = free_port()
    storage = tempfile.mkdtemp(prefix="cure-bench-")
    env = {
        **os.environ,
        "CURE_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{NAME}",
        "CURE_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{NAME}",
        "CURE_STORAGE_BACKEND": "local",
        "CURE_STORAGE_DIR": storage,
        "CURE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CURE_MAX_ACTIVE_ORDERS": str(count + 10),
        "CURE_SMTP_PORT": str(free_port()),  # nobody listens: emails wait, orders do not
    }
    asyncio.run(prepare_database())
    prepare_broker_and_schema(env)
    logs = open(Path(storage) / "stack.log", "wb")  # noqa: SIM115
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "cure", "worker", "--concurrency", "2"],
            env=env,
            stdout=logs,
            stderr=logs,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "cure", "api", "--port", str(port)],
            env=env,
            stdout=logs,
            stderr=logs,
        ),
    ]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        floor = baseline(count)
        sequential, burst = asyncio.run(measure(count, f"http://127.0.0.1:{port}"))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
    print(summary("baseline: container alone", floor))
    print(summary("order, submit to SUCCESS", sequential))
    overhead = statistics.median(sequential) - statistics.median(floor)
    print(
        f"{'overhead over the baseline':<28} p50 +{overhead * 1000:.0f} ms "
        f"(x{statistics.median(sequential) / statistics.median(floor):.2f})"
    )
    print(
        f"{'burst of orders at once':<28} n={count:<3} all SUCCESS in {burst:.1f} s "
        f"({count / burst:.1f} orders/s with 2 worker processes)"
    )


if __name__ == "__main__":
    main()
