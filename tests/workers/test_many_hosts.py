"""Worker hosts past one machine, shown on this one: a second (and later a third) host in a
network namespace of its own (tests/hosts.py), with its own Docker engine, hostname, input cache
and sweeper, reaching PostgreSQL, RabbitMQ, S3 and the API only over its veth and the relays on
the LAN's address. The first host is this machine itself (the stack's worker, the default
engine). Every process shares one deployment id, as the settings of a real fleet do.

What each test shows is read from what was stored: the orders' histories (each run's events
name the host that sent them: ``worker:<hostname>``), the results in S3, the hosts' cache
folders, their engines' containers and their workers' logs.
"""

import asyncio
import hashlib
import json
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import docker
import pytest

from cure.demo.rasters import city_by_name
from cure.demo.seed import seed
from cure.kit.resources import Resources
from cure.kit.state import state_of
from cure.workers.pipeline import ATTEMPT_LABEL, DEPLOYMENT_LABEL, ORDER_LABEL
from tests.conftest import (
    PROBE_IMAGE,
    PROBE_MANIFEST,
    ROOT,
    TEST_DB,
    TEST_VHOST,
    Stack,
    running_stack,
    write_apps_dir,
)
from tests.factories import wait_final
from tests.hosts import Host, Lan, Relay, unavailable, wait_until, worker_env
from tests.live import (
    containers_of,
    eventually_no_containers,
    releasing,
    statuses,
    stored_keys,
    submit,
)

HOST_A = socket.gethostname()  # this machine: the stack's own worker
DEPLOYMENT = f"hosts-{TEST_DB}"  # equal on every host (their database URLs differ)
FAST = {
    "CURE_HEARTBEAT_INTERVAL_SECONDS": "1",
    "CURE_HEARTBEAT_TIMEOUT_SECONDS": "5",
    "CURE_RECONCILE_INTERVAL_SECONDS": "1",
    "CURE_QUEUED_TIMEOUT_SECONDS": "20",
    "CURE_CONTAINER_SWEEP_SECONDS": "1",
    "CURE_MAX_ACTIVE_ORDERS": "60",
}
DAY = date(2024, 7, 15)
VIENNA = city_by_name("Vienna")
west, south, east, north = VIENNA["bbox"]
CORE = {  # the city core, inside the demo imperviousness raster of Vienna
    "type": "Polygon",
    "coordinates": [
        [
            [west + 0.04, south + 0.03],
            [east - 0.04, south + 0.03],
            [east - 0.04, north - 0.03],
            [west + 0.04, north - 0.03],
            [west + 0.04, south + 0.03],
        ]
    ],
}
# The probe app with one input from the catalogue: its runs stage a file into their host's cache.
PROBE_WITH_INPUT = {
    **PROBE_MANIFEST,
    "id": "probe_in",
    "limits": {"timeout_seconds": 60, "memory_mb": 96},
    "inputs": [
        {
            "role": "imperviousness",
            "collection": "hrl-imperviousness",
            "product_type": "IMD",
            "assets": ["imd"],
            "count": 1,
            "max_age_days": 3650,
        }
    ],
}


@pytest.fixture(scope="module")
def lan() -> Iterator[Lan]:
    reason = unavailable()
    if reason:
        pytest.skip(f"no second host can be made here: {reason}")
    try:
        made = Lan()
    except RuntimeError as exc:
        pytest.skip(f"network namespaces cannot be made here: {exc}")
    try:
        yield made
    finally:
        made.close()


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


@pytest.fixture(scope="module")
async def seeded(app, sessionmaker, settings) -> None:
    """Vienna's demo products of one day in S3 and the catalogue (probe_in's input)."""
    await seed(
        Resources(settings, state_of(app).db.engine, sessionmaker), cities=[VIENNA], dates=[DAY]
    )


@pytest.fixture(scope="module")
def a_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("host-a") / "input-cache"


@pytest.fixture(scope="module")
def stack(lan, engine, seeded, moto_url, a_cache, tmp_path_factory) -> Iterator[Stack]:
    """The API and host A's worker on this machine. Every process, here or on another host,
    reaches S3 at the LAN's relay, so the links the catalogue signs work on every host."""
    s3 = lan.relay(port_of(moto_url))
    apps = write_apps_dir(tmp_path_factory.mktemp("hosts"), probe_timeout=60)
    (apps / "probe_in").mkdir()
    (apps / "probe_in" / "manifest.json").write_text(json.dumps(PROBE_WITH_INPUT))
    with running_stack(
        "hosts",
        CURE_APPS_DIR=str(apps),
        CURE_S3_ENDPOINT_URL=f"http://{s3.host}:{s3.port}",
        CURE_DEPLOYMENT_ID=DEPLOYMENT,
        CURE_INPUT_CACHE_DIR=str(a_cache),
        CURE_WORK_DIR=str(a_cache.parent / "work"),
        **FAST,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def relays(lan, stack) -> dict[str, Relay]:
    return {
        "database": lan.relay(5432),
        "broker": lan.relay(5672),
        "api": lan.relay(stack.port),
    }


@pytest.fixture(scope="module")
def join(lan, stack, relays) -> Callable[[str], Host]:
    """Bring a new host up: its namespaces, its engine with the probe's image, its worker."""

    def bring_up(name: str) -> Host:
        host = lan.host(name)
        host.start_engine(ROOT / "var" / "log" / f"test-hosts-{name}-dockerd.log")
        host.load_images(PROBE_IMAGE)
        api = relays["api"]
        env = worker_env(
            host,
            stack.env,
            database=relays["database"],
            broker=relays["broker"],
            broker_vhost=TEST_VHOST,
            database_name=TEST_DB,
            CURE_CCSI_URL=f"http://{api.host}:{api.port}/v1/ccsi",
        )
        log = worker_log(name)
        start = log.stat().st_size if log.exists() else 0
        worker = host.spawn(
            [sys.executable, "-m", "cure", "worker", "--concurrency", "2"]
            + ["--hostname", f"{name}@{name}"],
            log=log,
            env=env,
        )

        def ready() -> bool:
            assert worker.poll() is None, f"{name}'s worker exited; see {log}"
            with log.open("rb") as text:
                text.seek(start)
                return f"{name}@{name} ready.".encode() in text.read()

        wait_until(ready, 60, f"{name}'s worker ready")
        return host

    return bring_up


def worker_log(name: str) -> Path:
    return ROOT / "var" / "log" / f"test-hosts-{name}-worker.log"


@pytest.fixture(scope="module")
def hosts() -> dict[str, Host]:
    """The hosts the module's tests brought up, by name (the LAN removes them at the end)."""
    return {}


@pytest.fixture
def host_b(hosts, join) -> Host:
    """Host B, brought up by the first test (or here, when a test runs alone)."""
    if "b" not in hosts:
        hosts["b"] = join("cure-host-b")
    return hosts["b"]


@pytest.fixture
def headers(account) -> dict[str, str]:
    return {"Authorization": account["Authorization"]}


def run_hosts(order: dict) -> set[str]:
    """The hosts whose workers sent any of the order's events."""
    return {
        e["actor"].removeprefix("worker:")
        for e in order["history"]
        if e["actor"].startswith("worker:")
    }


def finished_by(order: dict) -> str:
    (success,) = [e for e in order["history"] if e["status"] == "SUCCESS"]
    return str(success["actor"]).removeprefix("worker:")


async def consumers(stack: Stack) -> int:
    connection = await aio_pika.connect(stack.env["CURE_BROKER_URL"])
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("cure.orders", passive=True)
        return int(queue.declaration_result.consumer_count)


async def until_consumers(stack: Stack, count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while await consumers(stack) < count:
        assert time.monotonic() < deadline, "the new host's worker never consumed the orders queue"
        await asyncio.sleep(0.5)


async def one_stored(stack: Stack, order_id: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while len(keys := await stored_keys(stack, order_id)) != 1:
        assert time.monotonic() < deadline, f"stored for {order_id}: {keys}"
        await asyncio.sleep(0.3)


async def submit_input_order(http, headers) -> str:  # type: ignore[no-untyped-def]
    body = {"roi": CORE, "start_date": DAY.isoformat(), "params": {"mode": "progress", "pause": 1}}
    response = await http.post("/v1/apps/probe_in/orders", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["order_id"])


async def test_orders_run_on_both_hosts_and_a_host_joins_later(
    stack, join, hosts, http, headers
) -> None:
    # Host A alone first.
    alone = [await submit(http, headers, "probe", mode="report") for _ in range(2)]
    for order_id in alone:
        final = await wait_final(http, order_id, headers, seconds=60)
        assert final["status"] == "SUCCESS" and run_hosts(final) == {HOST_A}, final
    api, worker = stack.api, stack.workers[0]
    assert api is not None
    before = await consumers(stack)
    # Host B joins: nothing else is restarted.
    hosts["b"] = await asyncio.to_thread(join, "cure-host-b")
    await until_consumers(stack, before + 1)
    orders = [await submit(http, headers, "probe", mode="progress", pause=0.5) for _ in range(8)]
    finals = [await wait_final(http, order_id, headers, seconds=120) for order_id in orders]
    per_host: dict[str, int] = {}
    for final in finals:
        assert final["status"] == "SUCCESS", final
        assert statuses(final).count("SUCCESS") == 1
        (host,) = run_hosts(final)  # one host ran each order, from start to result
        per_host[host] = per_host.get(host, 0) + 1
        await one_stored(stack, final["order_id"])
    print(f"\norders per host: {per_host}")
    assert set(per_host) == {HOST_A, "cure-host-b"}
    assert api.poll() is None and worker.poll() is None and stack.workers == [worker]
    assert stack.api is api


async def test_each_host_stages_inputs_into_its_own_cache(
    stack, host_b, a_cache, http, headers
) -> None:
    b_cache = host_b.dir / "cure" / "input-cache"
    orders = [await submit_input_order(http, headers) for _ in range(6)]
    finals = [await wait_final(http, order_id, headers, seconds=120) for order_id in orders]
    fetched: dict[str, int] = {}
    for final in finals:
        assert final["status"] == "SUCCESS", final
        (host,) = run_hosts(final)
        staged = next(e["message"] for e in final["history"] if "staged" in (e["message"] or ""))
        if staged == "staged 1 input file(s), 0 from the cache":
            fetched[host] = fetched.get(host, 0) + 1
        else:
            assert staged == "staged 1 input file(s), 1 from the cache", staged
    print(f"\ninput fetched into each host's cache (orders that fetched it): {fetched}")
    # Each host fetched the input into its own cache: host B never read host A's, nor A B's.
    assert set(fetched) == {HOST_A, "cure-host-b"}
    entries = {}
    for name, cache in (("a", a_cache), ("b", b_cache)):
        files = [p for p in cache.iterdir() if not p.name.startswith(".part-")]
        assert len(files) == 1, (name, files)
        assert hashlib.sha256(files[0].read_bytes()).hexdigest() == files[0].name
        entries[name] = files[0].name
    assert entries["a"] == entries["b"]  # the same input, cached twice: once per host


def _stray(client: docker.DockerClient, order_id: str) -> None:
    """A container of a run no worker owns (its worker died), as the sweeper finds them."""
    container = client.containers.create(
        PROBE_IMAGE,
        entrypoint=["sleep", "300"],
        labels={ORDER_LABEL: order_id, DEPLOYMENT_LABEL: DEPLOYMENT, ATTEMPT_LABEL: "1"},
        network_mode="none",
    )
    container.start()


async def test_each_host_sweeps_its_own_engine_alone(stack, host_b) -> None:
    a_stray, b_stray = str(uuid.uuid4()), str(uuid.uuid4())
    main, b_engine = docker.from_env(), host_b.client()
    try:
        _stray(main, a_stray)
        _stray(b_engine, b_stray)
        deadline = time.monotonic() + 30
        while main.containers.list(
            all=True, ignore_removed=True, filters={"label": f"{ORDER_LABEL}={a_stray}"}
        ) or (
            b_engine.containers.list(
                all=True, ignore_removed=True, filters={"label": f"{ORDER_LABEL}={b_stray}"}
            )
        ):
            assert time.monotonic() < deadline, "a stray container was never swept"
            await asyncio.sleep(0.5)
    finally:
        main.close()
        b_engine.close()
    a_log = (ROOT / "var" / "log" / "test-hosts-worker.log").read_text()
    b_log = worker_log("cure-host-b").read_text()
    swept = "removed 1 container(s) no run owns"
    assert f"order {a_stray}: {swept}" in a_log and b_stray not in a_log
    assert f"order {b_stray}: {swept}" in b_log and a_stray not in b_log


async def test_a_lost_host_loses_no_order(stack, host_b, http, headers) -> None:
    # Each app is held after its first step until released: host B's still run when it is lost.
    orders = [await submit(http, headers, "probe", mode="hold", pause=1) for _ in range(6)]
    # Wait until host B's apps run: its events say so.
    deadline = time.monotonic() + 60
    while True:
        now = [(await http.get(f"/v1/orders/{o}", headers=headers)).json() for o in orders]
        on_b = [
            o
            for o in now
            if o["status"] == "RUNNING"
            and any(
                e["actor"] == "worker:cure-host-b" and (e["progress"] or 0) >= 29
                for e in o["history"]
            )
        ]
        if on_b:
            break
        assert time.monotonic() < deadline, "host B never ran an app"
        await asyncio.sleep(0.2)
    host_b.lose()  # its worker, its engine and its apps, all at once (SIGKILL)
    assert host_b.alive() == []
    async with releasing(orders):  # on host A's engine (this machine's): B's went with B
        finals = [await wait_final(http, order_id, headers, seconds=120) for order_id in orders]
    victims = [f for f in finals if "cure-host-b" in run_hosts(f)]
    print("\nhost B lost; its runs:")
    for final in finals:
        assert final["status"] == "SUCCESS", final
        assert statuses(final).count("SUCCESS") == 1
        await one_stored(stack, final["order_id"])
        if final in victims:
            print(
                f"  {final['order_id']}: {final['status']} by {finished_by(final)}, "
                f"attempt {final['attempt']}, events by {sorted(run_hosts(final))}"
            )
    assert victims, "no run of host B was under way when it was lost"
    assert {o["order_id"] for o in on_b} <= {v["order_id"] for v in victims}
    for victim in victims:
        assert finished_by(victim) == HOST_A  # taken over by the surviving host
    await eventually_no_containers(orders, seconds=30)  # none left on the surviving engine
    assert all(containers_of(o) == [] for o in orders)
