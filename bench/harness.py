"""What every benchmark shares: a deployment of its own, load generation with wrk, and the report.

A benchmark runs CURE and its baseline back to back, on the same machine, with the same settings,
and adds one ``Row`` to the ``Report``: both sides' figures, the ratio the target is about, and
whether the target is met. ``scripts/bench`` prints the table and writes it as JSON.

The deployment is separate from a ``scripts/run`` stack and from the tests: its own database and
RabbitMQ vhost (``cure_bench``), its own S3 server (moto's, on 127.0.0.1), its own apps folder
(roi_stats and the no-op app of ``bench/noop_app``) and its own deployment id on the Docker engine.

How the two cores are shared: the server under test (CURE or its baseline) is pinned to CPU 0 and
the load generator (wrk, or the Python client) to CPU 1; PostgreSQL and RabbitMQ are not pinned
and take whatever is left of either core. Both sides of a row run under the same pinning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import asyncpg
import boto3
import httpx
from botocore.client import Config
from botocore.exceptions import ClientError

from cure.apps.registry import load_registry
from cure.config import Settings
from cure.containers.runner import open_runner
from cure.workers.pipeline import limits_of

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
NAME = os.environ.get("CURE_BENCH_NAME", "cure_bench")
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DSN = f"postgresql://postgres@127.0.0.1:5432/{NAME}"
NOOP_IMAGE = "cure-bench-noop:latest"
SERVER_CPU = "0"
LOAD_CPU = "1"
ROI = {
    "type": "Polygon",
    "coordinates": [[[16.3, 48.2], [16.4, 48.2], [16.4, 48.3], [16.3, 48.3], [16.3, 48.2]]],
}
ORDER_BODY = {"roi": ROI, "start_date": "2024-07-01", "end_date": "2024-07-31", "params": {}}


# -- figures -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """n, mean, p50, p95 and p99 in milliseconds."""
    return {
        "n": len(seconds),
        "mean_ms": round(statistics.mean(seconds) * 1000, 2),
        "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        "p95_ms": round(percentile(seconds, 95) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
    }


@dataclass
class Row:
    number: int
    name: str
    cure: dict[str, Any]
    baseline: dict[str, Any]
    ratio: float  # what the target is about (see ``ratio_means``)
    ratio_means: str
    target: str
    met: bool
    notes: list[str] = field(default_factory=list)

    def figures(self, side: dict[str, Any]) -> str:
        shown = []
        for key, value in side.items():
            if key.startswith("_"):
                continue
            shown.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
        return " ".join(shown)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(self.line(row), flush=True)

    @staticmethod
    def line(row: Row) -> str:
        verdict = "met" if row.met else "NOT MET"
        return (
            f"[{row.number}] {row.name}\n"
            f"    CURE:     {row.figures(row.cure)}\n"
            f"    baseline: {row.figures(row.baseline)}\n"
            f"    ratio {row.ratio:.3g} ({row.ratio_means}); target {row.target}: {verdict}"
            + "".join(f"\n    note: {note}" for note in row.notes)
        )

    def table(self) -> str:
        header = f"{'#':<3}{'benchmark':<34}{'ratio':>9}  {'target':<34}{'verdict'}"
        lines = [header, "-" * len(header)]
        for row in sorted(self.rows, key=lambda r: r.number):
            lines.append(
                f"{row.number:<3}{row.name[:33]:<34}{row.ratio:>9.3g}  {row.target[:33]:<34}"
                f"{'met' if row.met else 'NOT MET'}"
            )
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "machine": machine(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "rows": [asdict(row) for row in sorted(self.rows, key=lambda r: r.number)],
        }
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "server_cpu": SERVER_CPU,
        "load_cpu": LOAD_CPU,
    }


# -- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpus: str, argv: list[str]) -> list[str]:
    """``argv`` pinned to ``cpus`` with taskset, where the machine has the cores to pin to."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", cpus, *argv]
    return argv


def wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")
        time.sleep(0.1)


class Processes:
    """Processes started by a benchmark, ended (by their own PIDs) when it is done."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (the process keeps it)
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self.running)):
            self.stop(process)


# -- the deployment ------------------------------------------------------------------------------


async def reset_database() -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{NAME}"')
    finally:
        await admin.close()


def reset_vhost() -> None:
    for args in (
        ["delete_vhost", NAME],
        ["add_vhost", NAME],
        ["set_permissions", "-p", NAME, "guest", ".*", ".*", ".*"],
    ):
        subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, check=False)


def build_noop_image() -> None:
    import docker

    client = docker.from_env()
    try:
        client.images.build(
            path=str(BENCH / "noop_app"), tag=NOOP_IMAGE, network_mode="host", rm=True
        )
    finally:
        client.close()


def write_apps_dir(root: Path) -> Path:
    """roi_stats, and the no-op app (writes one small file, reads nothing)."""
    apps = root / "apps"
    shutil.copytree(ROOT / "cure" / "apps" / "roi_stats", apps / "roi_stats", dirs_exist_ok=True)
    shutil.copytree(BENCH / "noop_app", apps / "noop", dirs_exist_ok=True)
    return apps


class Deployment:
    """CURE's processes on the benchmark's own database, vhost, S3 server and apps folder."""

    def __init__(self, scratch: Path, s3_url: str) -> None:
        self.scratch = scratch
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes = Processes(scratch)
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "CURE_ENVIRONMENT": "test",
            "CURE_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{NAME}",
            "CURE_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{NAME}",
            "CURE_DEPLOYMENT_ID": NAME,
            "CURE_STORAGE_BACKEND": "s3",
            "CURE_S3_ENDPOINT_URL": s3_url,
            "CURE_S3_ACCESS_KEY_ID": "testing",
            "CURE_S3_SECRET_ACCESS_KEY": "testing",
            "CURE_S3_BUCKET": "cure-bench",
            "CURE_APPS_DIR": str(write_apps_dir(scratch)),
            "CURE_PUBLIC_URL": self.url,
            "CURE_JWT_SECRET": "bench-secret-" + "x" * 40,
            "CURE_STORAGE_SECRET": "bench-storage-secret-" + "y" * 40,
            "CURE_CALLBACK_SIGNING_KEY": "bench-callback-key-" + "z" * 40,
            "CURE_SECRETS_FILE": str(scratch / "secrets.json"),
            "CURE_INPUT_CACHE_DIR": str(scratch / "input-cache"),
            "CURE_WORK_DIR": str(scratch / "work"),
            "CURE_METRICS_DIR": str(scratch / "metrics"),
            "CURE_MAIL_DIR": str(scratch / "mail"),
            "CURE_WORKER_METRICS_PORT": "0",
            # Nobody listens here: emails wait in the outbox, orders do not.
            "CURE_SMTP_PORT": str(free_port()),
            "CURE_LOG_LEVEL": "WARNING",
            # A benchmark submits far more than a customer may in production.
            "CURE_MAX_ACTIVE_ORDERS": "10000000",
            "CURE_MAX_ORDERS_PER_WINDOW": "10000000",
            "CURE_THROTTLE_REGISTRATIONS": "100000",
            # The catalogue's load comes from one address and without a token.
            "CURE_ANONYMOUS_READS_PER_MINUTE": "100000000",
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    def prepare(self) -> None:
        # The apps folder names the no-op app's image: build it (from its cache after the
        # first time), or every order of the benchmarks that run it fails "image missing".
        build_noop_image()
        asyncio.run(reset_database())
        reset_vhost()
        subprocess.run(
            [sys.executable, "-m", "cure", "db", "upgrade"],
            env=self.env,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )

    def start_api(self, workers: int = 1, cpus: str = SERVER_CPU, **env: str) -> None:
        argv = [sys.executable, "-m", "cure", "api", "--port", str(self.port)]
        if workers > 1:
            argv += ["--workers", str(workers)]
        self.api = self.processes.start("api", pinned(cpus, argv), {**self.env, **env})
        wait_http(f"{self.url}/health")

    @property
    def api_pid(self) -> int:
        assert self.api is not None
        return self.api.pid

    def stop_api(self) -> None:
        if self.api is not None:
            self.processes.stop(self.api)
            self.api = None

    def start_worker(self, concurrency: int = 1, **env: str) -> subprocess.Popen[bytes]:
        name = f"worker-{len(self.workers) + 1}"
        argv = [
            sys.executable, "-m", "cure", "worker",
            "--concurrency", str(concurrency), "--hostname", f"{name}@{NAME}",
        ]  # fmt: skip
        worker = self.processes.start(name, argv, {**self.env, **env})
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            self.processes.stop(worker)
        self.workers.clear()

    def stop(self) -> None:
        self.processes.stop_all()


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, for the run."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per S3 request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def deployment(s3_url: str) -> Iterator[Deployment]:
    scratch = Path(tempfile.mkdtemp(prefix="cure-bench-"))
    running = Deployment(scratch, s3_url)
    running.prepare()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(scratch, ignore_errors=True)


async def new_customer(url: str, *, admin: bool = False) -> tuple[uuid.UUID, dict[str, str]]:
    """A registered customer with every public app's scope, and its Authorization header."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post(
            "/v1/crm/customers",
            json={
                "name": "Bench",
                "email": f"bench-{uuid.uuid4().hex[:12]}@example.org",
                "password": "benchmark passphrase",
            },
        )
        response.raise_for_status()
        customer = response.json()
        if admin:
            connection = await asyncpg.connect(DSN)
            try:
                await connection.execute(
                    "UPDATE customers SET is_admin = true, scopes = array_append(scopes, 'admin') "
                    "WHERE id = $1",
                    uuid.UUID(str(customer["customer_id"])),
                )
            finally:
                await connection.close()
        token = await http.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(customer["client_id"], customer["client_secret"]),
        )
        token.raise_for_status()
        header = {"Authorization": f"Bearer {token.json()['access_token']}"}
        return uuid.UUID(str(customer["customer_id"])), header


# -- load ----------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # the fields after the command's name


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) used so far by the process ``pid`` and its descendants: what
    a server spent on a load, whatever else the machine was doing meanwhile."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / ticks
        todo.extend(children.get(current, []))
    return total


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is missing: scripts/bench installs it (apt-get install wrk)")
    return found


def wrk(
    url: str,
    *,
    seconds: int = 10,
    connections: int = 8,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: str | None = None,
    server_pid: int | None = None,
) -> dict[str, float]:
    """wrk against ``url``: requests/s, p50, p95, p99 (ms) and the count of non-2xx answers;
    with ``server_pid``, also the server's CPU milliseconds per request."""
    env = {**os.environ, "BENCH_METHOD": method}
    body_file = None
    if body is not None:
        body_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
        body_file.write(body)
        body_file.close()
        env["BENCH_BODY_FILE"] = body_file.name
    argv = [
        ensure_wrk(), "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
        "--timeout", "10s", "-s", str(BENCH / "wrk.lua"),
    ]  # fmt: skip
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    cpu_before = cpu_seconds(server_pid) if server_pid is not None else 0.0
    try:
        done = subprocess.run(
            pinned(LOAD_CPU, argv), env=env, capture_output=True, text=True, check=True
        )
    finally:
        if body_file is not None:
            os.unlink(body_file.name)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            figures: dict[str, float] = json.loads(line.removeprefix("BENCH "))
            break
    else:
        raise RuntimeError(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    seconds_run = figures.pop("duration_us") / 1e6
    result = {
        "req_per_s": round(figures["requests"] / seconds_run, 1),
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p95_ms": round(figures["p95_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
        "non_2xx": int(figures["non_2xx"]),
        "errors": int(figures["errors"]),
    }
    if server_pid is not None and figures["requests"]:
        spent = cpu_seconds(server_pid) - cpu_before
        result["server_cpu_ms_per_req"] = round(spent * 1000 / figures["requests"], 3)
    return result


# -- shared by the benchmarks: timed GETs, city boxes and indexes (the listing and the catalogue
# search); the no-op app's orders and its bare container run (end to end, dispatch, drain) ------


# (longitude, latitude) of the cities orders cluster around.
CITIES: tuple[tuple[float, float], ...] = (
    (16.37, 48.21), (13.40, 52.52), (-3.70, 40.42), (2.35, 48.86), (12.50, 41.90),
    (9.19, 45.46), (11.58, 48.14), (9.99, 53.55), (21.01, 52.23), (14.42, 50.08),
    (19.04, 47.50), (4.90, 52.37), (4.35, 50.85), (12.57, 55.68), (18.07, 59.33),
    (10.75, 59.91), (24.94, 60.17), (-9.14, 38.72), (2.17, 41.39), (23.73, 37.98),
    (26.10, 44.43), (23.32, 42.70), (15.98, 45.81), (14.51, 46.06), (17.11, 48.15),
    (8.54, 47.38), (4.84, 45.76), (5.37, 43.30), (-6.26, 53.35), (19.94, 50.06),
    (24.11, 56.95), (25.28, 54.69),
)  # fmt: skip


EUROPE = (-10.0, 36.0, 30.0, 70.0)


BBox = tuple[float, float, float, float]


# The indexes of a table that involve some of its columns (as a key or in an expression),
# primary and unique ones aside: those a baseline runs without, read from the database so that
# an index a later migration adds is left out too.
INDEXES_ON = r"""
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
WHERE i.indrelid = $1::regclass AND NOT i.indisprimary AND NOT i.indisunique
  AND EXISTS (
      SELECT FROM pg_attribute a
      WHERE a.attrelid = i.indrelid AND a.attname = ANY($2::text[])
        AND (a.attnum = ANY(i.indkey::int2[])
             OR pg_get_expr(i.indexprs, i.indrelid) ~ ('\m' || a.attname || '\M'))
  )
ORDER BY 1
"""


@dataclass
class Timings:
    seconds: list[float]
    non_200: int
    statuses: dict[int, int]
    server_cpu_seconds: float | None = None  # the server's CPU time over the timed requests


async def timed_gets(
    url: str,
    paths: Sequence[str],
    *,
    headers: dict[str, str] | None = None,
    warmup: Sequence[str] = (),
    budget_seconds: float | None = None,
    server_pid: int | None = None,
) -> Timings:
    """GET each path in turn (one request at a time) from a client pinned to the load CPU, after
    the warm-up paths; stops early once ``budget_seconds`` are spent. With ``server_pid``, also
    the CPU time that process spent on the timed requests."""
    pinned_before = os.sched_getaffinity(0)
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {int(LOAD_CPU)})
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            for path in warmup:
                await http.get(path)
            seconds: list[float] = []
            statuses: dict[int, int] = {}
            cpu_before = cpu_seconds(server_pid) if server_pid is not None else 0.0
            started = time.perf_counter()
            for path in paths:
                began = time.perf_counter()
                response = await http.get(path)
                seconds.append(time.perf_counter() - began)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if budget_seconds is not None and time.perf_counter() - started > budget_seconds:
                    break
            spent = cpu_seconds(server_pid) - cpu_before if server_pid is not None else None
    finally:
        os.sched_setaffinity(0, pinned_before)
    non_200 = sum(count for status, count in statuses.items() if status != 200)
    return Timings(seconds=seconds, non_200=non_200, statuses=statuses, server_cpu_seconds=spent)


def require_200(label: str, timings: Timings) -> None:
    if timings.non_200:
        raise RuntimeError(f"{label}: {timings.non_200} answers were not 200: {timings.statuses}")


def figures(timings: Timings) -> dict[str, float]:
    shown = {**latency_summary(timings.seconds), "non_200": timings.non_200}
    if timings.server_cpu_seconds is not None:
        per_request = timings.server_cpu_seconds * 1000 / len(timings.seconds)
        shown["server_cpu_ms_per_req"] = round(per_request, 3)
    return shown


def city_boxes(count: int, rng: random.Random) -> list[BBox]:
    """City-sized boxes: half centred near a city where orders cluster, half anywhere."""
    boxes = []
    for n in range(count):
        width, height = rng.uniform(0.2, 0.4), rng.uniform(0.15, 0.3)
        if n % 2 == 0:
            lon, lat = rng.choice(CITIES)
            lon, lat = lon + rng.uniform(-0.1, 0.1), lat + rng.uniform(-0.1, 0.1)
        else:
            lon = rng.uniform(EUROPE[0] + 0.2, EUROPE[2] - 0.2)
            lat = rng.uniform(EUROPE[1] + 0.15, EUROPE[3] - 0.15)
        boxes.append(
            (
                round(lon - width / 2, 4),
                round(lat - height / 2, 4),
                round(lon + width / 2, 4),
                round(lat + height / 2, 4),
            )
        )
    rng.shuffle(boxes)
    return boxes


async def indexes_on(
    connection: asyncpg.Connection, table: str, columns: Sequence[str]
) -> list[tuple[str, str]]:
    """(name, definition) of the indexes of ``table`` on any of ``columns`` (see INDEXES_ON)."""
    rows = await connection.fetch(INDEXES_ON, table, list(columns))
    return [(row["name"], row["definition"]) for row in rows]


async def drop_indexes(connection: asyncpg.Connection, indexes: Sequence[tuple[str, str]]) -> None:
    for name, _ in indexes:
        await connection.execute(f'DROP INDEX "{name}"')


async def build_indexes(
    connection: asyncpg.Connection, table: str, indexes: Sequence[tuple[str, str]]
) -> None:
    for _, definition in indexes:
        await connection.execute(definition)
    await connection.execute(f"ANALYZE {table}")


APP = "noop"


POLL_SECONDS = 0.02


ORDER_TIMEOUT = 120.0


FAILED_STATES = {"FAILED", "INVALID", "CANCELLED"}


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
        self.runner = open_runner(settings)  # the worker's container runner
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
            outcome = self.runner.run(
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
        self.runner.close()
        self.s3.close()
