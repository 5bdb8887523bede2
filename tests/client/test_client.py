"""cure-client, the Python client and its command line, against a live stack: logins, apps, an
order of a real SUHI product followed with a progress bar and downloaded with its checksum
verified, orders and products listed, the async and blocking APIs, retries that respect
Retry-After, and a watch that carries on while the API restarts."""

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cure_client import AsyncCureClient, ClientCredentials, CureClient, PasswordLogin, region
from rasterio.io import MemoryFile

from cure.demo.rasters import city_by_name
from cure.demo.seed import seed
from cure.kit.resources import Resources
from cure.kit.state import state_of
from tests.conftest import Stack, running_stack, write_apps_dir
from tests.factories import PASSWORD, create_customer
from tests.live import releasing

DAY = date(2024, 7, 15)
VIENNA = city_by_name("Vienna")
west, south, east, north = VIENNA["bbox"]
CORE_BBOX = f"{west + 0.04},{south + 0.03},{east - 0.04},{north - 0.03}"
CLI = Path(sys.executable).with_name("cure-client")


@pytest.fixture(scope="module")
async def seeded(app, sessionmaker, settings) -> None:
    await seed(
        Resources(settings, state_of(app).db.engine, sessionmaker), cities=[VIENNA], dates=[DAY]
    )


@pytest.fixture(scope="module")
def stack(seeded, engine, tmp_path_factory) -> Iterator[Stack]:
    apps = write_apps_dir(tmp_path_factory.mktemp("client"), probe_timeout=60, also=("suhi",))
    with running_stack("client", CURE_APPS_DIR=str(apps)) as live:
        yield live


@pytest.fixture
async def customer(http) -> dict:
    return await create_customer(http)


def cli(
    stack: Stack, config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "--url", stack.url, *args],
        env={**os.environ, "CURE_CLIENT_CONFIG": str(config), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sha256(path: Path) -> str:
    return f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"


async def test_the_cli_orders_a_suhi_map_with_a_progress_bar_and_downloads_it(
    stack, http, customer, tmp_path
) -> None:
    config = tmp_path / "config.json"
    login = cli(
        stack, config, "login", "--client-id", customer["client_id"],
        "--client-secret", customer["client_secret"],
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    assert "Logged in" in login.stdout and oct(config.stat().st_mode & 0o777) == "0o600"
    assert customer["client_secret"] in config.read_text()

    apps = json.loads(cli(stack, config, "--json", "apps").stdout)
    assert {"probe", "roi_stats", "suhi"} <= {a["id"] for a in apps}

    area = tmp_path / "vienna.geojson"
    feature = {"type": "Feature", "properties": {}, "geometry": region.from_bbox(CORE_BBOX)}
    area.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    terminal = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "120"}
    ordered = cli(
        stack, config, "order", "suhi", "--geojson", str(area), "--start", DAY.isoformat(),
        "--param", "urban_threshold=50", "--wait", "--out", str(tmp_path / "out"),
        "--interval", "0.3", env=terminal,
    )  # fmt: skip
    assert ordered.returncode == 0, ordered.stdout + ordered.stderr
    assert "━" in ordered.stdout  # the live bar
    assert "running the app" in ordered.stdout or "storing the outputs" in ordered.stdout
    assert "SUCCESS" in ordered.stdout and "sha256 verified" in ordered.stdout
    order_id = ordered.stdout.split("Ordered suhi: ")[1].split()[0]

    headers = {"Authorization": f"Bearer {await token(http, customer)}"}
    order = (await http.get(f"/v1/orders/{order_id}", headers=headers)).json()
    tiffs = list((tmp_path / "out").glob("*.tif"))
    assert len(tiffs) == 1 and sha256(tiffs[0]) == order["result"]["checksum"]
    with MemoryFile(tiffs[0].read_bytes()) as memory, memory.open() as raster:
        assert raster.crs.to_epsg() == 3035
    assert not list((tmp_path / "out").glob("*.part"))

    listed = json.loads(cli(stack, config, "--json", "orders", "--app", "suhi").stdout)
    assert [o["order_id"] for o in listed] == [order_id]
    found = json.loads(
        cli(
            stack, config, "--json", "search", "--bbox", CORE_BBOX,
            "--start", DAY.isoformat(), "--end", DAY.isoformat(),
        ).stdout
    )  # fmt: skip
    collections = {p["collection"] for p in found}
    assert {"sentinel3-slstr-lst", "cure-suhi"} <= collections
    human = cli(stack, config, "orders")
    assert order_id in human.stdout and "SUCCESS" in human.stdout

    again = cli(
        stack, config, "--json", "download", order_id, "--role", "metadata",
        "--out", str(tmp_path / "again"),
    )  # fmt: skip
    saved = json.loads(again.stdout)["files"]
    statistics = json.loads(Path(saved[0]).read_text())  # noqa: ASYNC240 (a small file)
    assert len(saved) == 1 and statistics["urban_pixels"] > 0


async def token(http, customer) -> str:
    response = await http.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    return str(response.json()["access_token"])


async def test_the_async_client_logs_in_by_password_orders_follows_and_downloads(
    stack, customer, tmp_path
) -> None:
    refreshed: list[str] = []
    login = PasswordLogin(customer["email"], password=PASSWORD)
    async with AsyncCureClient(stack.url, login, on_refresh=refreshed.append) as cure:
        token = await cure.login()
        assert token.refresh_token and refreshed == [token.refresh_token]
        wkt = "POLYGON((16.3 48.2, 16.4 48.2, 16.4 48.3, 16.3 48.3, 16.3 48.2))"
        first = await cure.submit("roi_stats", region.from_wkt(wkt), DAY, idempotency_key="k-1")
        replay = await cure.submit("roi_stats", region.from_wkt(wkt), DAY, idempotency_key="k-1")
        assert replay.order_id == first.order_id
        states = [o.status async for o in cure.watch(first.order_id, interval=0.2)]
        assert states[-1] == "SUCCESS" and len(states) >= 2
        final = await cure.order(first.order_id)
        (path,) = await cure.download(final, tmp_path)
        assert sha256(path) == final.assets[0].checksum
        mine = [o.order_id async for o in cure.orders(app_id=["roi_stats"])]
        assert mine == [first.order_id]
        products = [p async for p in cure.search(collection="cure-roi_stats")]
        assert [p.identifier for p in products] == [f"roi_stats-{first.order_id}"]

    # the stored refresh token is enough to log in again, and it rotates
    again = PasswordLogin(customer["email"], refresh_token=refreshed[-1])
    async with AsyncCureClient(stack.url, again, on_refresh=refreshed.append) as cure:
        assert len(await cure.apps()) >= 3
        assert (await cure.order(first.order_id)).status == "SUCCESS"
    assert len(refreshed) == 2 and refreshed[0] != refreshed[1]


def test_the_blocking_client_does_the_same(stack, tmp_path) -> None:
    registered = httpx.post(
        f"{stack.url}/v1/crm/customers",
        json={
            "name": "Sync Script",
            "email": f"sync-{time.time_ns()}@example.org",
            "password": PASSWORD,
        },
    ).json()
    credentials = ClientCredentials(registered["client_id"], registered["client_secret"])
    with CureClient(stack.url, credentials) as cure:
        order = cure.submit("roi_stats", region.from_bbox("16.3,48.2,16.4,48.3"), "2024-07-15")
        assert [o.status for o in cure.watch(order.order_id, interval=0.2)][-1] == "SUCCESS"
        files = cure.download(order.order_id, tmp_path)
        assert files[0].suffix == ".geojson"
        assert [o.order_id for o in cure.orders()] == [order.order_id]


class Busy:
    """A server on 127.0.0.1 that answers 503 and then 429 (each with Retry-After: 1) before 200:
    what CURE answers when it is overloaded or an account submits too much."""

    def __init__(self) -> None:
        self.seen: list[float] = []
        busy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                busy.seen.append(time.monotonic())
                status = {1: 503, 2: 429}.get(len(busy.seen), 200)
                body = b"[]" if status == 200 else b'{"error": "Busy", "detail": "later"}'
                self.send_response(status)
                if status != 200:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_retries_wait_as_long_as_retry_after_says() -> None:
    busy = Busy()
    try:
        with CureClient(busy.url, backoff=0.01) as cure:
            assert cure.apps() == []
    finally:
        busy.server.shutdown()
    assert len(busy.seen) == 3
    assert busy.seen[1] - busy.seen[0] >= 0.95 and busy.seen[2] - busy.seen[1] >= 0.95


async def test_a_watch_carries_on_while_the_api_restarts(stack, http, customer, tmp_path) -> None:
    config = tmp_path / "config.json"
    login = cli(
        stack, config, "login", "--client-id", customer["client_id"],
        "--client-secret", customer["client_secret"],
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    headers = {"Authorization": f"Bearer {await token(http, customer)}"}
    body = {
        "roi": region.from_bbox("16.3,48.2,16.4,48.3"),
        "start_date": "2024-07-15",
        "params": {"mode": "hold", "pause": 2},  # held until the API has restarted
    }
    order_id = (await http.post("/v1/apps/probe/orders", json=body, headers=headers)).json()[
        "order_id"
    ]
    # The watch is another process; the test only waits for it (the API is another one too).
    watch = subprocess.Popen(  # noqa: ASYNC220
        [str(CLI), "--url", stack.url, "--json", "watch", order_id, "--interval", "0.3"],
        env={**os.environ, "CURE_CLIENT_CONFIG": str(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stdout is not None
        before = [json.loads(watch.stdout.readline())]  # it is following the order
        stack.restart_api()
        async with releasing(order_id):  # the app goes on only now: the order cannot be over
            rest, errors = await asyncio.to_thread(watch.communicate, timeout=90)
    finally:
        if watch.poll() is None:
            watch.kill()
    assert watch.returncode == 0, errors
    after = [json.loads(line) for line in rest.splitlines()]
    assert before[0]["status"] in {"RECEIVED", "QUEUED", "RUNNING"}
    assert after and after[-1]["status"] == "SUCCESS"
    # The watch polls, so it may step over a progress message; what was stored may not miss one.
    stored = (await http.get(f"/v1/orders/{order_id}", headers=headers)).json()
    assert "step 75" in [event["message"] for event in stored["history"]]


def test_a_422s_problems_read_as_one_line() -> None:
    from cure_client.errors import ApiError

    problems = [
        {"loc": ["query", "bbox"], "msg": "too wide", "type": "InvalidInput"},
        {"loc": ["body", "params", "acres"], "msg": "must be positive", "type": "X"},
    ]
    said = str(ApiError(422, "InvalidInput", problems))
    assert said == "422 InvalidInput: query.bbox: too wide; params.acres: must be positive"
    assert str(ApiError(404, "OrderNotFound", "no order")) == "404 OrderNotFound: no order"
