"""Every process stops within 10 s of SIGTERM, whatever is pending (compose kills a container
10 s after it, Kubernetes 30 s), and loses nothing by it.

- `cure api` with event streams and long polls of an order's log open, and callbacks retrying
  to an address that refuses them: the streams and polls end at once, the process exits, and
  the callbacks still wait in the outbox, tried again by the next API process.
- `cure worker` while an app container runs: the container is stopped and removed, the order
  stays RUNNING, and its task goes back to the queue: the next worker runs the app again.
- The stand-alone commands (`cure relay`, `cure order-events` and its old name, `cure log-saver`).

The bound is the requirement itself (10 s, against CURE_SHUTDOWN_SECONDS of 8), not a speed.
"""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import docker
import httpx
import pytest

from tests.conftest import (
    ROOT,
    TEST_DB,
    Stack,
    _retire_earlier_orders,
    _spawn,
    free_port,
    running_stack,
    write_apps_dir,
)
from tests.factories import customer_with_token

STOP_LIMIT = 10  # seconds after SIGTERM
ROI = {
    "type": "Polygon",
    "coordinates": [[[16.3, 48.2], [16.31, 48.2], [16.31, 48.21], [16.3, 48.21], [16.3, 48.2]]],
}


def stop(process: subprocess.Popen[bytes], seconds: float = STOP_LIMIT) -> int | None:
    """SIGTERM, then the exit status if the process exited within ``seconds`` (killed if not:
    None)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


def backstop_fired(log: Path, since: int) -> bool:
    """Whether the backstop (cure.kit.stopping.exit_by) wrote its line after byte ``since``."""
    with log.open("rb") as file:
        file.seek(since)
        return b"after the stop signal; exiting" in file.read()


async def callback_rows(order_ids: list[str]) -> list[asyncpg.Record]:
    db = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{TEST_DB}")
    try:
        return list(
            await db.fetch(
                "SELECT subject_id, attempts, sent_at FROM outbox_messages"
                " WHERE kind = 'order_callback' AND subject_id = ANY($1::uuid[])",
                [uuid.UUID(i) for i in order_ids],
            )
        )
    finally:
        await db.close()


def test_the_api_stops_at_once_with_streams_long_polls_and_callbacks_pending() -> None:
    _retire_earlier_orders()
    stack = Stack(
        "shutdown-api",
        {
            "CURE_ALLOW_PRIVATE_CALLBACKS": "true",
            # the stream and the poll below fill a customer's slots: a third wait is a 429
            "CURE_LOG_WAITS_PER_CUSTOMER": "2",
            # retries (and a claim left by the stopped process) come again within seconds
            "CURE_NOTIFY_RETRY_BASE_SECONDS": "0.5",
            "CURE_NOTIFY_RETRY_MAX_SECONDS": "2",
            "CURE_NOTIFY_LEASE_SECONDS": "3",
        },
    )
    stack.start_api()  # no worker: the orders stay QUEUED, and their logs are followed
    try:

        async def prepare() -> tuple[dict[str, str], list[str], str]:
            async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
                _, headers = await customer_with_token(http)
                refused = f"http://127.0.0.1:{free_port()}/hook"
                cancelled = []
                for _ in range(3):  # cancelled at once: their callbacks go to nobody
                    submitted = await http.post(
                        "/v1/apps/roi_stats/orders",
                        json={"roi": ROI, "start_date": "2024-07-15", "callback_url": refused},
                        headers=headers,
                    )
                    order_id = submitted.json()["order_id"]
                    await http.post(f"/v1/orders/{order_id}/cancel", headers=headers)
                    cancelled.append(order_id)
                queued = await http.post(
                    "/v1/apps/roi_stats/orders",
                    json={"roi": ROI, "start_date": "2024-07-15"},
                    headers=headers,
                )
                return headers, cancelled, queued.json()["order_id"]

        headers, cancelled, queued = asyncio.run(prepare())
        deadline = time.monotonic() + 30
        while not all(row["attempts"] for row in asyncio.run(callback_rows(cancelled))):
            assert time.monotonic() < deadline, "the callbacks were never tried"
            time.sleep(0.3)

        first = httpx.get(f"{stack.url}/v1/orders/{queued}/logs", headers=headers, timeout=30)
        after = {"after": first.json()["next_after"]}  # what follows: nothing, until it runs
        ended: list[str] = []
        opened = threading.Barrier(3, timeout=30)

        def stream() -> None:
            with httpx.stream(
                "GET",
                f"{stack.url}/v1/orders/{queued}/logs",
                params=after,
                headers={**headers, "Accept": "text/event-stream"},
                timeout=60,
            ) as answer:
                opened.wait()
                for _ in answer.iter_bytes():
                    pass
            ended.append(f"stream {answer.status_code}")

        def poll() -> None:
            opened.wait()
            while True:  # a client that tries again when refused (the check below takes slots)
                answer = httpx.get(
                    f"{stack.url}/v1/orders/{queued}/logs",
                    params={"wait": 30, **after},
                    headers=headers,
                    timeout=60,
                )
                if answer.status_code != 429:
                    break
                time.sleep(0.05)
            ended.append(f"poll {answer.status_code}")

        clients = [threading.Thread(target=stream), threading.Thread(target=poll)]
        for client in clients:
            client.start()
        opened.wait()
        deadline = time.monotonic() + 30
        while True:  # both hold their slot: a third wait of the customer is refused
            third = httpx.get(
                f"{stack.url}/v1/orders/{queued}/logs",
                params={"wait": 0.05, **after},
                headers=headers,
                timeout=30,
            )
            if third.status_code == 429:
                break
            assert time.monotonic() < deadline, (
                f"the stream and the poll never both waited: {third.status_code} {third.text[:300]}"
                f" {ended} {first.json()}"
            )
        assert stack.api is not None
        log = ROOT / "var" / "log" / "test-shutdown-api-api.log"
        since = log.stat().st_size
        # uvicorn re-raises the SIGTERM it caught once it is done: -15, not the backstop's 1
        assert stop(stack.api) == -signal.SIGTERM, "cure api did not stop on its own"
        assert not backstop_fired(log, since)
        for client in clients:
            client.join(5)
        assert sorted(ended) == ["poll 200", "stream 200"]  # ended, each with what it had
        rows = asyncio.run(callback_rows(cancelled))
        assert len(rows) == 3 and all(r["sent_at"] is None for r in rows)
        tried = {str(r["subject_id"]): r["attempts"] for r in rows}

        stack.start_api()  # the next process takes the retries up from the outbox
        deadline = time.monotonic() + 60
        while True:
            now = {
                str(r["subject_id"]): r["attempts"] for r in asyncio.run(callback_rows(cancelled))
            }
            if all(now[i] > tried[i] for i in cancelled):
                break
            assert time.monotonic() < deadline, (tried, now)
            time.sleep(0.5)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def probe_stack(engine, tmp_path_factory) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    apps = write_apps_dir(tmp_path_factory.mktemp("shutdown"), probe_timeout=300)
    with running_stack("shutdown-worker", CURE_APPS_DIR=str(apps)) as stack:
        yield stack


async def order_log(http: httpx.AsyncClient, headers: dict[str, str], order_id: str) -> list[str]:
    page = (await http.get(f"/v1/orders/{order_id}/logs", headers=headers)).json()
    return [record["message"] for record in page["records"]]


def test_the_worker_stops_its_app_at_once_and_the_order_runs_again(probe_stack: Stack) -> None:
    stack = probe_stack

    async def running() -> tuple[dict[str, str], str]:
        async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
            _, headers = await customer_with_token(http)
            submitted = await http.post(
                "/v1/apps/probe/orders",
                json={"roi": ROI, "start_date": "2024-07-15", "params": {"mode": "sleep"}},
                headers=headers,
            )
            order_id = submitted.json()["order_id"]
            deadline = time.monotonic() + 60
            while (await order_log(http, headers, order_id)).count("probe ran") < 1:
                assert time.monotonic() < deadline, "the app never ran"
                await asyncio.sleep(0.3)
            return headers, order_id

    headers, order_id = asyncio.run(running())  # the app sleeps for ten minutes now
    [worker] = stack.workers
    log = ROOT / "var" / "log" / "test-shutdown-worker-worker.log"
    since = log.stat().st_size
    assert stop(worker) is not None, "cure worker still ran 10 s after SIGTERM"
    assert not backstop_fired(log, since), "cure worker was ended by its backstop"
    stack.workers.remove(worker)
    engine = docker.from_env()
    try:
        left = engine.containers.list(
            all=True, ignore_removed=True, filters={"label": f"cure.order_id={order_id}"}
        )
        volumes = engine.volumes.list(filters={"label": f"cure.order_id={order_id}"})
    finally:
        engine.close()
    assert left == [] and volumes == []

    async def taken_up_again() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
            order = (await http.get(f"/v1/orders/{order_id}", headers=headers)).json()
            assert (order["status"], order["attempt"]) == ("RUNNING", 1)
            stack.start_worker()
            deadline = time.monotonic() + 60
            while (await order_log(http, headers, order_id)).count("probe ran") < 2:
                assert time.monotonic() < deadline, "the order was not run again"
                await asyncio.sleep(0.3)
            cancelled = await http.post(f"/v1/orders/{order_id}/cancel", headers=headers)
            return dict(cancelled.json())

    assert asyncio.run(taken_up_again())["status"] == "CANCELLED"


@pytest.mark.parametrize("command", ["relay", "order-events", "status-manager", "log-saver"])
def test_each_stand_alone_command_stops_on_time(command: str) -> None:
    process = _spawn(
        [sys.executable, "-m", "cure", command], f"test-shutdown-{command}.log", dict(os.environ)
    )
    log = ROOT / "var" / "log" / f"test-shutdown-{command}.log"
    try:
        time.sleep(3)  # started, connected, waiting for work
        assert process.poll() is None, Path(log).read_text()[-2000:]
    finally:
        assert stop(process) == -signal.SIGTERM, f"cure {command} did not stop on SIGTERM"
