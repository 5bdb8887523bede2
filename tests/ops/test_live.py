"""A running stack seen by its operators: an order's log with its container's output, followed
live; the metrics moving after a real order; `cure check` passing, and failing without a worker;
/docs drawn in a headless browser."""

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, Stack, free_port, running_stack, write_apps_dir
from tests.factories import customer_with_token, order_body, wait_final


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory) -> Iterator[Stack]:
    worker_metrics = free_port()
    with running_stack(
        "ops",
        # A roomy time limit for the probe: no test here is about it, and a slow start under
        # load must not kill the progress order (2.1 s of pauses) as "ran longer than 3s".
        CURE_APPS_DIR=str(write_apps_dir(tmp_path_factory.mktemp("ops"), probe_timeout=60)),
        CURE_WORKER_METRICS_PORT=str(worker_metrics),
        CURE_METRICS_CACHE_SECONDS="0",  # each scrape reads the gauges: they follow the order
    ) as running:
        running.env["WORKER_METRICS_URL"] = f"http://127.0.0.1:{worker_metrics}/metrics"
        yield running


async def _order_log(http: httpx.AsyncClient, order_id: str, headers: dict[str, str], until):
    """The order's whole log once ``until(records)`` holds (the saver writes within a second)."""
    deadline = time.monotonic() + 15
    records: list[dict] = []
    while time.monotonic() < deadline:
        page = (await http.get(f"/v1/orders/{order_id}/logs", headers=headers)).json()
        records = page["records"]
        if until(records):
            return records
        await asyncio.sleep(0.3)
    raise AssertionError(f"the order's log never got there: {records}")


async def test_an_orders_log_holds_its_steps_and_its_containers_output(http, account) -> None:
    headers = {"Authorization": account["Authorization"]}
    submitted = await http.post(
        "/v1/apps/probe/orders", json=order_body(params={"mode": "leak"}), headers=headers
    )
    order_id = submitted.json()["order_id"]
    assert (await wait_final(http, order_id, headers))["status"] == "SUCCESS"

    records = await _order_log(
        http, order_id, headers, lambda rs: any(r["message"].startswith("SUCCESS") for r in rs)
    )
    app_lines = [r for r in records if r["logger"] == "cure.order.app"]
    by_text = {r["message"]: r for r in app_lines}
    assert by_text["probe ran"]["extra"]["stream"] == "stdout"
    assert by_text["a warning on stderr"]["extra"]["stream"] == "stderr"
    leaked = next(r for r in app_lines if r["message"].startswith("calling with"))
    assert "abcdefgh12345678" not in leaked["message"] and "hunter22" not in leaked["message"]
    assert "[REDACTED]" in leaked["message"]
    for record in records:
        assert record["order_id"] == order_id
        assert record["customer_id"] is not None
        assert record["service"] == "worker" and record["host"] and record["time"]
    steps = [r["message"] for r in records if r["logger"] == "cure.order.steps"]
    assert any("running the app" in s for s in steps) and steps[-1].startswith("SUCCESS")
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)

    # someone else's order is not theirs to read
    _, other = await customer_with_token(http)
    assert (await http.get(f"/v1/orders/{order_id}/logs", headers=other)).status_code == 404


async def test_an_orders_log_is_followed_live(http, account) -> None:
    headers = {"Authorization": account["Authorization"]}
    submitted = await http.post(
        "/v1/apps/probe/orders",
        json=order_body(params={"mode": "progress", "pause": 0.7}),
        headers=headers,
    )
    order_id = submitted.json()["order_id"]

    # long polling: the wait ends with the first records, which come while the order runs
    # (tests/logs/test_waits.py follows a wait step by step, without a clock)
    polled = await http.get(f"/v1/orders/{order_id}/logs?wait=20", headers=headers)
    assert polled.json()["records"]

    # Server-Sent Events: every record as it is saved, then the end
    events: list[tuple[str, dict]] = []
    async with http.stream(
        "GET",
        f"/v1/orders/{order_id}/logs",
        headers={**headers, "Accept": "text/event-stream"},
        timeout=30,
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = None
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind:
                events.append((kind, json.loads(line.removeprefix("data: "))))
                if kind == "end":
                    break
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "end" and events[-1][1]["order_status"] == "SUCCESS"
    lines = [data["message"] for kind, data in events if kind == "record"]
    assert [line for line in lines if line.startswith("CURE_PROGRESS")] == [
        "CURE_PROGRESS 25 step 25",
        "CURE_PROGRESS 50 step 50",
        "CURE_PROGRESS 75 step 75",
    ]
    assert lines[-1].startswith("SUCCESS")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_after_a_real_order(stack: Stack, http, account) -> None:
    headers = {"Authorization": account["Authorization"]}
    worker_url = stack.env["WORKER_METRICS_URL"]
    api_before = _samples((await http.get("/metrics")).text)
    worker_before = _samples((await http.get(worker_url)).text)

    submitted = await http.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    final = await wait_final(http, submitted.json()["order_id"], headers)
    assert final["status"] == "SUCCESS"
    await asyncio.sleep(0.5)  # the last event is applied and counted just after it shows

    response = await http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    api = _samples(response.text)
    worker = _samples((await http.get(worker_url)).text)

    finished = {"app": "roi_stats", "state": "SUCCESS"}
    assert _value(api, "cure_orders_finished_total", **finished) == (
        _value(api_before, "cure_orders_finished_total", **finished) + 1
    )
    assert _value(api, "cure_order_duration_seconds_count", **finished) >= 1
    assert _value(api, "cure_orders", state="SUCCESS", app="roi_stats") >= 1
    submit = {"method": "POST", "route": "/v1/apps/{app_id}/orders", "status": "202"}
    assert _value(api, "cure_http_requests_total", **submit) == (
        _value(api_before, "cure_http_requests_total", **submit) + 1
    )
    assert _value(api, "cure_queue_messages", queue="cure.orders") >= 0
    assert ("cure_outbox_oldest_seconds", ()) in api
    assert _value(api, "cure_dependency_up", dependency="database") in (0, 1)

    exits = {"app": "roi_stats", "exit_code": "0"}
    assert _value(worker, "cure_container_exits_total", **exits) == (
        _value(worker_before, "cure_container_exits_total", **exits) + 1
    )
    step = {"app": "roi_stats", "step": "run"}
    assert _value(worker, "cure_pipeline_step_duration_seconds_count", **step) == (
        _value(worker_before, "cure_pipeline_step_duration_seconds_count", **step) + 1
    )
    assert _value(worker, "cure_container_run_duration_seconds_count", app="roi_stats") >= 1


def test_docs_are_drawn_without_a_network(stack: Stack) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed (scripts/test installs it)"
    page = httpx.get(f"{stack.url}/docs").text
    assert "/static/docs/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    redoc = httpx.get(f"{stack.url}/redoc").text
    assert "/static/docs/redoc.standalone.js" in redoc and "cdn" not in redoc.lower()
    assert httpx.get(f"{stack.url}/static/docs/redoc.standalone.js").status_code == 200
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"{stack.url}/docs",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
    # Swagger UI draws one "opblock" per operation once its script ran and read /openapi.json.
    assert dom.count('class="opblock opblock-') >= 30, dom[-2000:]
    assert "/v1/apps/{app_id}/orders" in dom


def _check(stack: Stack, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cure", "check", "--url", stack.url, *extra],
        cwd=ROOT,
        env={**stack.env, "CURE_LOG_TO_BROKER": "false"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cure_check_passes_and_names_the_step_that_fails(stack: Stack) -> None:
    passed = _check(stack, "--timeout", "60")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    for step in ("health", "token", "order", "download"):
        assert f"ok    {step}" in passed.stdout

    for worker in list(stack.workers):
        stack.stop_worker(worker)
    try:
        failed = _check(stack, "--timeout", "4")
    finally:
        stack.start_worker()
    assert failed.returncode == 1
    assert "FAILED at step 'order'" in failed.stderr
    # The order waits for a worker: QUEUED once the relay has published it, RECEIVED before
    # that (a relay slowed by load may not have published it within the check's 4 s). Queued,
    # the check asks whether a worker runs.
    status = re.search(r"order \S+ still (\w+) after 4s", failed.stderr)
    assert status, failed.stderr
    assert status[1] in ("RECEIVED", "QUEUED")
    assert ("(is a worker running?)" in failed.stderr) == (status[1] == "QUEUED")
