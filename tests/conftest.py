"""Test set-up against the real services: PostGIS, RabbitMQ, Docker, S3 over HTTP (moto's server),
SMTP (aiosmtpd on 127.0.0.1).

Each run gets its own database (cure_test) and its own RabbitMQ virtual host (cure_test), both made
anew, so a stack started by scripts/run on the same machine is never touched.
"""

import asyncio
import contextlib
import dataclasses
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Overridable so two checkouts can run their suites on one machine at the same time.
TEST_DB = os.environ.get("CURE_TEST_DB", "cure_test")
TEST_VHOST = os.environ.get("CURE_TEST_VHOST", "cure_test")
TEST_DATABASE_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{TEST_DB}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_moto() -> tuple[object, str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


class Mailbox:
    """What a real SMTP server (aiosmtpd, in a thread) received during the test run."""

    def __init__(self) -> None:
        self.messages: list[object] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    async def wait_for(self, to: str, seconds: float = 10):  # type: ignore[no-untyped-def]
        """The first message to ``to``; fails the test after ``seconds``."""
        import asyncio

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for message in self.messages:
                if message["To"] == to:  # type: ignore[index]
                    return message
            await asyncio.sleep(0.05)
        raise AssertionError(f"no email to {to} within {seconds}s")

    def to(self, address: str) -> list[object]:
        return [m for m in self.messages if m["To"] == address]  # type: ignore[index]


class SmtpServer:
    """A real SMTP server of a test's own, which the test can stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mailbox = Mailbox()
        self._controller: object | None = None
        self.start()

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()  # type: ignore[attr-defined]
            self._controller = None


def _reset_vhost() -> None:
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "delete_vhost", TEST_VHOST], capture_output=True, check=False)
    subprocess.run([*ctl, "add_vhost", TEST_VHOST], capture_output=True, check=True)
    subprocess.run(
        [*ctl, "set_permissions", "-p", TEST_VHOST, "guest", ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )


def test_environment(moto_url: str, smtp_port: int, scratch: Path) -> dict[str, str]:
    """The CURE_* settings of this run, for the in-process app and every process a test starts."""
    return {
        "CURE_INPUT_CACHE_DIR": str(scratch / "input-cache"),
        "CURE_WORK_DIR": str(scratch / "work"),
        "CURE_ENVIRONMENT": "test",
        "CURE_DATABASE_URL": TEST_DATABASE_URL,
        "CURE_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{TEST_VHOST}",
        "CURE_STORAGE_BACKEND": "s3",
        "CURE_S3_ENDPOINT_URL": moto_url,
        "CURE_S3_ACCESS_KEY_ID": "testing",
        "CURE_S3_SECRET_ACCESS_KEY": "testing",
        "CURE_S3_BUCKET": "cure-test-results",
        "CURE_JWT_SECRET": "test-secret-" + "x" * 40,
        "CURE_STORAGE_SECRET": "test-storage-secret-" + "y" * 40,
        "CURE_CALLBACK_SIGNING_KEY": "test-callback-key-" + "z" * 40,
        # Every test registers customers from 127.0.0.1 or a few loopback addresses: the
        # per-address limit on registrations is tested with an app of its own.
        "CURE_THROTTLE_REGISTRATIONS": "100000",
        # Never the secrets file of a scripts/run stack on this checkout: the run's own, if any.
        "CURE_SECRETS_FILE": str(scratch / "secrets.json"),
        "CURE_SMTP_HOST": "127.0.0.1",
        "CURE_SMTP_PORT": str(smtp_port),
        "CURE_METRICS_DIR": str(scratch / "metrics"),
        "CURE_MAIL_DIR": str(scratch / "mail"),
        # Stacks that want a worker's metrics name a free port; a fixed one would collide.
        "CURE_WORKER_METRICS_PORT": "0",
        # No test reaches a tile server on the internet (OpenStreetMap's by default): the portal's
        # browser tests set a tile server of their own on 127.0.0.1.
        "CURE_PORTAL_TILE_URL": "off",
    }


def _reset_database() -> None:
    import asyncio

    import asyncpg

    async def recreate() -> None:
        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{TEST_DB}"')
        finally:
            await admin.close()

    asyncio.run(recreate())
    from cure.kit.provision import migrate

    migrate(TEST_DATABASE_URL)


def pytest_sessionstart(session: pytest.Session) -> None:
    _reset_database()
    _reset_vhost()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A real S3 HTTP server (moto's server mode) on 127.0.0.1 for the whole run."""
    server, url = _start_moto()
    yield url
    server.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    """The run's SMTP server (aiosmtpd on 127.0.0.1)."""
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mailbox(smtp_server: SmtpServer) -> Mailbox:
    """What the run's SMTP server received."""
    return smtp_server.mailbox


@pytest.fixture(scope="session", autouse=True)
def environment(
    moto_url: str, smtp_server: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Every process a test starts (live stacks, commands) reads its settings from os.environ."""
    env = test_environment(moto_url, smtp_server.port, tmp_path_factory.mktemp("cure"))
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def settings(environment):  # type: ignore[no-untyped-def]
    from cure.config import Settings

    return Settings()


@pytest.fixture(scope="session")
async def app(settings):  # type: ignore[no-untyped-def]
    """The API in-process, its lifespan entered (engine, sessionmaker, S3 bucket), without its
    background consumers (the live stack has those)."""
    async with started_app(settings) as api:
        yield api


@pytest.fixture
async def db(app):  # type: ignore[no-untyped-def]
    """This test's own database transaction, rolled back at the end.

    The app's requests and the test's ``session`` join it (each commit is a savepoint), so a test
    sees its own rows and no other test's, and leaves nothing behind.
    """
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from cure.auth.dependencies import PRINCIPALS
    from cure.kit.state import state_of

    state = state_of(app)
    async with state.db.engine.connect() as connection:
        transaction = await connection.begin()
        committed = state.db
        joined = async_sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        # Reads join without a savepoint of their own: a request's read session and its other
        # session would otherwise nest savepoints and release them out of order.
        reads = async_sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="rollback_only"
        )

        @contextlib.asynccontextmanager
        async def read_connection() -> AsyncIterator[object]:
            yield (await connection.get_raw_connection()).driver_connection

        state.resources = dataclasses.replace(
            committed,
            sessionmaker=joined,
            side_sessionmaker=joined,
            read_sessionmaker=reads,
            read_connections=read_connection,  # type: ignore[arg-type]
        )
        # A transaction that never commits sends no change notice: no principal cache in it.
        principals = state.pop(PRINCIPALS)
        try:
            yield connection
        finally:
            state.resources = committed
            if principals is not None:
                state.put(PRINCIPALS, principals)
            await transaction.rollback()


async def until(condition, seconds: float = 15) -> None:  # type: ignore[no-untyped-def]
    """Wait for a condition that, once true, stays true until the test acts (never a race)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.01)


def loopback_address() -> str:
    """A random address in 127.0.0.0/8: each test is its own client to the per-address throttle."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


async def _client(app) -> AsyncIterator[object]:  # type: ignore[no-untyped-def]
    import httpx

    transport = httpx.ASGITransport(app=app, client=(loopback_address(), 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
        yield http


@pytest.fixture
async def client(app, db) -> AsyncIterator[object]:  # type: ignore[no-untyped-def]
    """An HTTP client of the in-process app, inside this test's rolled-back transaction."""
    async for http in _client(app):
        yield http


@pytest.fixture
async def committing_client(app) -> AsyncIterator[object]:  # type: ignore[no-untyped-def]
    """An HTTP client whose requests really commit: for tests whose other parties (a worker, the
    relay, concurrent requests, a second transaction) must see the rows."""
    async for http in _client(app):
        yield http


@pytest.fixture
async def session(app, db) -> AsyncIterator[object]:  # type: ignore[no-untyped-def]
    """A session inside this test's rolled-back transaction (commit releases a savepoint)."""
    from cure.kit.state import state_of

    async with state_of(app).db.sessionmaker() as test_session:
        yield test_session


@pytest.fixture
async def committing_session(app) -> AsyncIterator[object]:  # type: ignore[no-untyped-def]
    """A session whose commits are real, for tests whose workers or relays must see the rows."""
    from cure.kit.state import state_of

    async with state_of(app).db.sessionmaker() as test_session:
        yield test_session


@pytest.fixture(scope="session")
def sessionmaker(app):  # type: ignore[no-untyped-def]
    """A sessionmaker on the app's engine whose commits are real: for tests of the relay,
    the reconciler, the pipeline and other parties that use their own transactions."""
    from cure.kit.db import make_sessionmaker
    from cure.kit.state import state_of

    return make_sessionmaker(state_of(app).db.engine)


@contextlib.asynccontextmanager
async def started_app(settings) -> AsyncIterator[object]:  # type: ignore[no-untyped-def]
    """Another in-process API with settings of its own (its own engine), lifespan entered."""
    from cure.main import create_app

    api = create_app(settings.model_copy(update={"run_background_services": False}))
    async with api.router.lifespan_context(api):
        yield api


def _wait_http(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {seconds}s")


def _spawn(args: list[str], log_name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log_dir = ROOT / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / log_name, "ab")  # noqa: SIM115 (closed with the process)
    # A session of its own, so a test can kill the process with all its children at once.
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _retire_earlier_orders() -> None:
    """Close what in-process tests left open, so a live stack starts with no work of theirs.

    Their unsent outbox rows are marked sent and their unfinished orders cancelled: otherwise the
    live relay, notifier and reconciler would spend the module's time on them.
    """
    import asyncio

    import asyncpg

    async def retire() -> None:
        db = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{TEST_DB}")
        try:
            await db.execute("UPDATE outbox_messages SET sent_at = now() WHERE sent_at IS NULL")
            await db.execute(
                "UPDATE orders SET status = 'CANCELLED'"
                " WHERE status IN ('RECEIVED', 'QUEUED', 'RUNNING')"
            )
        finally:
            await db.close()

    asyncio.run(retire())


class Stack:
    """A real uvicorn API process (with relay, status manager, reconciler) and Celery workers."""

    def __init__(self, name: str, overrides: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "CURE_PUBLIC_URL": self.url, **overrides}
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.started_workers = 0

    def start_api(self) -> None:
        self.api = _spawn(
            [sys.executable, "-m", "cure", "api", "--host", "127.0.0.1", "--port", str(self.port)],
            f"test-{self.name}-api.log",
            self.env,
        )
        _wait_http(f"{self.url}/health", self.api)

    def restart_api(self) -> None:
        """Stop the API process and start it again on the same port, with the same settings."""
        if self.api is not None:
            _stop(self.api)
        self.start_api()

    def start_worker(self) -> subprocess.Popen[bytes]:
        self.started_workers += 1
        number = self.started_workers
        worker = _spawn(
            [
                sys.executable,
                "-m",
                "cure",
                "worker",
                "--concurrency",
                "2",
                "--hostname",
                f"{self.name}-{number}@%h",
            ],
            f"test-{self.name}-worker.log",
            self.env,
        )
        self.workers.append(worker)
        return worker

    def stop_api(self) -> None:
        """Stop the API process (with its relay, status manager and reconciler)."""
        if self.api is not None:
            _stop(self.api)
            self.api = None

    def freeze(self, worker: subprocess.Popen[bytes]) -> None:
        """SIGSTOP the worker and all its processes: it hangs, holding whatever it held."""
        os.killpg(worker.pid, signal.SIGSTOP)

    def thaw(self, worker: subprocess.Popen[bytes]) -> None:
        os.killpg(worker.pid, signal.SIGCONT)

    def stop_worker(self, worker: subprocess.Popen[bytes]) -> None:
        """Stop a worker gracefully (its tasks go back to the queue) and forget it."""
        _stop(worker)
        self.workers.remove(worker)

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        """kill -9 the worker and every process of its session (the pool's children)."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        if worker in self.workers:
            self.workers.remove(worker)

    def stop(self) -> None:
        for worker in self.workers:
            _stop(worker)
        if self.api is not None:
            _stop(self.api)


@contextlib.contextmanager
def running_stack(name: str, **overrides: str) -> Iterator[Stack]:
    """Start a Stack; ``overrides`` are CURE_* settings for all its processes."""
    _retire_earlier_orders()
    stack = Stack(name, overrides)
    try:
        stack.start_worker()
        stack.start_api()
        yield stack
    finally:
        stack.stop()


# Module scope: the live relay competes for outbox rows, so it runs only in the modules that use it.
@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    """The API and a worker as real processes, storing results in S3 (moto's server)."""
    with running_stack("s3") as stack:
        yield stack.url


def _probe_tag() -> str:
    """The probe image's tag, from its files: checkouts sharing an engine (worktrees, a second
    clone) each run their own probe, never one another's."""
    import hashlib

    digest = hashlib.sha256()
    for name in ("Dockerfile", "probe.py"):
        digest.update((ROOT / "tests" / "probe_app" / name).read_bytes())
    return f"cure-test-probe:{digest.hexdigest()[:12]}"


PROBE_IMAGE = _probe_tag()
PROBE_MANIFEST = {
    "id": "probe",
    "title": "Probe",
    "description": "A test app that reports its sandbox and fails, sleeps, reports progress or "
    "is held until released on request",
    "version": "0.0.1",
    "image": PROBE_IMAGE,
    "public": True,
    "outputs": [
        {"role": "data", "path": "report.json", "media_type": "application/json", "primary": True}
    ],
    "limits": {"timeout_seconds": 3, "memory_mb": 96},
    "parameters": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "mode": {"type": "string", "default": "report"},
            "pause": {"type": "number", "default": 1.2},
        },
    },
}


PROBE_FLOW_MANIFEST = {
    "id": "probe_flow",
    "title": "Probe workflow",
    "description": "The probe as a workflow: prepare, then left and right side by side (each "
    "waits for the other to start), then finish, which reports what the work folder holds; a "
    "step fails, sleeps, reports progress slowly or is held until released on request",
    "version": "0.0.1",
    "image": PROBE_IMAGE,
    "public": True,
    "outputs": [
        {"role": "data", "path": "report.json", "media_type": "application/json", "primary": True}
    ],
    "limits": {"timeout_seconds": 60, "memory_mb": 96, "parallel_steps": 2},
    "steps": [
        {"name": "prepare", "command": ["step", "prepare"]},
        {"name": "left", "command": ["step", "left"], "needs": ["prepare"]},
        {"name": "right", "command": ["step", "right"], "needs": ["prepare"]},
        {"name": "finish", "command": ["step", "finish"], "needs": ["left", "right"]},
    ],
    "parameters": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "fail_step": {"type": "string", "default": ""},
            "sleep_step": {"type": "string", "default": ""},
            "slow_step": {"type": "string", "default": ""},
            "hold_step": {"type": "string", "default": ""},
            "pause": {"type": "number", "default": 1.2},
        },
    },
}


def write_apps_dir(
    root: Path, *, probe_timeout: int = 3, also: tuple[str, ...] = (), workflow: bool = False
) -> Path:
    """An apps folder with the probe app and roi_stats (and the apps named in ``also``, and the
    probe_flow workflow with ``workflow``), for stacks and pipelines under test."""
    import json
    import shutil

    apps = root / "apps"
    (apps / "probe").mkdir(parents=True, exist_ok=True)
    manifest = {**PROBE_MANIFEST, "limits": {"timeout_seconds": probe_timeout, "memory_mb": 96}}
    (apps / "probe" / "manifest.json").write_text(json.dumps(manifest))
    if workflow:
        (apps / "probe_flow").mkdir(exist_ok=True)
        (apps / "probe_flow" / "manifest.json").write_text(json.dumps(PROBE_FLOW_MANIFEST))
    for app_id in ("roi_stats", *also):
        shutil.copytree(ROOT / "cure" / "apps" / app_id, apps / app_id, dirs_exist_ok=True)
    return apps


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    """The real Docker engine, with the probe app's image built."""
    import docker

    client = docker.from_env()
    client.images.build(
        path=str(ROOT / "tests" / "probe_app"), tag=PROBE_IMAGE, network_mode="host", rm=True
    )
    yield client
    client.close()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    """An SMTP server of the module's own, for a live stack (CURE_SMTP_PORT=smtp.port)."""
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
async def account(http) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A new customer of the live ``stack``: its email and an Authorization header."""
    from tests.factories import customer_with_token

    customer, headers = await customer_with_token(http)
    return {"email": customer["email"], **headers}


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[object]:
    """An HTTP client of the module's live ``stack``."""
    import httpx

    # Idle connections are dropped before the server's keep-alive of 5 s ends: a request sent on
    # a connection the server closes at that moment fails (RemoteProtocolError, seen once).
    limits = httpx.Limits(keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=stack.url, timeout=15, limits=limits) as client:
        yield client
