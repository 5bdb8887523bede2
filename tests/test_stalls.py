"""Stalls, on real processes: a frozen worker, the API down for a while, a cancel racing a fast
app, a duplicate delivery after SUCCESS, two deployments on one Docker engine, and a bounded chaos
run. Every order ends once, promptly, with one result (or none when cancelled)."""

import asyncio
import hashlib
import json
import random
import subprocess
import time
import uuid
from collections.abc import Iterator

import aio_pika
import aioboto3
import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cure.kit.celery_message import celery_task_message
from cure.orders import repository as order_repository
from cure.orders.dispatch import RUN_ORDER_TASK
from tests.conftest import (
    ROOT,
    TEST_DATABASE_URL,
    TEST_DB,
    SmtpServer,
    Stack,
    running_stack,
    write_apps_dir,
)
from tests.factories import wait_final
from tests.live import (
    container_ids,
    eventually_no_containers,
    releasing,
    statuses,
    stored_keys,
    submit,
    wait_for,
)

FAST = {
    "CURE_HEARTBEAT_INTERVAL_SECONDS": "1",
    "CURE_HEARTBEAT_TIMEOUT_SECONDS": "5",
    "CURE_RECONCILE_INTERVAL_SECONDS": "1",
    "CURE_QUEUED_TIMEOUT_SECONDS": "8",  # a message the broker's restart lost is sent again...
    # ...as often as it takes: no test here is about giving up on a queued order, and with the
    # default (5) one still queued after about 40 s (late in the chaos run) would fail
    "CURE_MAX_DISPATCHES": "1000",
    "CURE_CONTAINER_SWEEP_SECONDS": "1",
    "CURE_MAX_ACTIVE_ORDERS": "60",
    "CURE_NOTIFY_RETRY_BASE_SECONDS": "0.5",
    "CURE_NOTIFY_RETRY_MAX_SECONDS": "2",
}


@pytest.fixture(scope="module")
def stack(engine, smtp, tmp_path_factory) -> Iterator[Stack]:
    apps = write_apps_dir(tmp_path_factory.mktemp("stalls"), probe_timeout=60)
    with running_stack(
        "stalls", CURE_APPS_DIR=str(apps), CURE_SMTP_PORT=str(smtp.port), **FAST
    ) as running:
        yield running


@pytest.fixture
def headers(account) -> dict[str, str]:
    return {"Authorization": account["Authorization"]}


async def one_result(stack: Stack, http, headers, order: dict, seconds: float = 15) -> None:
    """The order's one result: its files alone are stored (a losing run's went), and the
    download matches the checksum it shows."""
    history = [(e["status"], e["attempt"], e["message"]) for e in order["history"]]
    assert order["status"] == "SUCCESS", (order["status"], order["message"], history)
    assert statuses(order).count("SUCCESS") == 1
    deadline = time.monotonic() + seconds
    while len(keys := await stored_keys(stack, order["order_id"])) != 1:
        assert time.monotonic() < deadline, f"stored for {order['order_id']}: {keys}"
        await asyncio.sleep(0.3)
    redirect = await http.get(f"/v1/orders/{order['order_id']}/result", headers=headers)
    async with httpx.AsyncClient() as plain:
        body = (await plain.get(redirect.headers["location"])).content
    assert f"sha256:{hashlib.sha256(body).hexdigest()}" == order["result"]["checksum"]


async def test_a_frozen_worker_thawed_late_changes_nothing(stack, http, headers) -> None:
    order_id = await submit(http, headers, "probe", mode="hold", pause=0.5)
    # held after its first step until released: still running when its worker freezes
    await wait_for(http, headers, order_id, lambda o: (o["progress"] or 0) >= 29)
    held = container_ids(order_id)
    frozen = list(stack.workers)
    for worker in frozen:
        stack.freeze(worker)
    stack.start_worker()
    try:
        # silent past the heartbeat timeout: attempt 2 runs on the live worker, promptly (its
        # app released; the frozen run's stays held)
        async with releasing(order_id, spare=held):
            final = await wait_final(http, order_id, headers, seconds=60)
        assert (final["status"], final["attempt"]) == ("SUCCESS", 2), final
    finally:
        for worker in frozen:
            stack.thaw(worker)
    await asyncio.sleep(4)  # the thawed run finds its app superseded: it stores nothing
    after = (await http.get(f"/v1/orders/{order_id}", headers=headers)).json()
    assert after["result"] == final["result"] and after["attempt"] == 2
    await one_result(stack, http, headers, after)
    await eventually_no_containers([order_id])


async def test_a_worker_frozen_for_good_does_not_hold_its_order(stack, http, headers) -> None:
    order_id = await submit(http, headers, "probe", mode="hold", pause=0.5)
    await wait_for(http, headers, order_id, lambda o: (o["progress"] or 0) >= 29)  # held
    held = container_ids(order_id)
    frozen = list(stack.workers)
    for worker in frozen:
        stack.freeze(worker)
    stack.start_worker()
    try:
        async with releasing(order_id, spare=held):
            final = await wait_final(http, order_id, headers, seconds=60)
        assert final["status"] == "SUCCESS", final
        await one_result(stack, http, headers, final)
    finally:
        for worker in frozen:  # never thawed: killed
            stack.kill_worker(worker)


async def test_the_api_down_longer_than_the_heartbeat_timeout_costs_no_attempt(
    stack, http, headers
) -> None:
    order_id = await submit(http, headers, "probe", mode="hold", pause=1)
    # held after its first step until released: it runs all through the API's absence
    await wait_for(http, headers, order_id, lambda o: (o["progress"] or 0) >= 29)
    stack.stop_api()
    await asyncio.sleep(8)  # past the 5 s heartbeat timeout; heartbeats pile up meanwhile
    stack.start_api()
    async with releasing(order_id):
        final = await wait_final(http, order_id, headers, seconds=60)
    assert (final["status"], final["attempt"]) == ("SUCCESS", 1), final
    assert "QUEUED" not in statuses(final)[2:]  # never requeued
    await one_result(stack, http, headers, final)


async def test_a_cancel_racing_a_fast_app_leaves_no_result_file(stack, http, headers) -> None:
    orders = []
    for delay in (0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1):
        order_id = await submit(http, headers, "probe", mode="report")
        await asyncio.sleep(delay)
        await http.post(f"/v1/orders/{order_id}/cancel", headers=headers)
        orders.append(order_id)
    finals = [await wait_final(http, order_id, headers) for order_id in orders]
    assert {f["status"] for f in finals} <= {"CANCELLED", "SUCCESS"}
    assert "CANCELLED" in {f["status"] for f in finals}
    for final in finals:  # a run that lost the race has its files removed
        await eventually_stored(stack, final, 0 if final["status"] == "CANCELLED" else 1)
    await eventually_no_containers(orders)


async def run_over(order: dict, seconds: float = 60) -> None:
    """Wait until no run of the order holds its run lock: none can store a file after that."""
    engine = create_async_engine(TEST_DATABASE_URL, poolclass=NullPool)
    deadline = time.monotonic() + seconds
    try:
        async with engine.connect() as connection:
            while not await order_repository.try_lock_run(
                connection, order["order_id"], order["attempt"]
            ):
                assert time.monotonic() < deadline, f"a run of {order['order_id']} never ended"
                await asyncio.sleep(0.3)
            await order_repository.unlock_run(connection, order["order_id"], order["attempt"])
    finally:
        await engine.dispose()


async def eventually_stored(stack: Stack, order: dict, count: int, seconds: float = 20) -> None:
    """Once the order's runs are over, what it keeps stored settles on ``count`` files."""
    await run_over(order)
    deadline = time.monotonic() + seconds
    while len(keys := await stored_keys(stack, order["order_id"])) != count:
        assert time.monotonic() < deadline, (order["order_id"], order["status"], keys)
        await asyncio.sleep(0.3)


async def test_a_cancel_removes_what_a_dead_run_stored(stack, http, headers) -> None:
    order_id = await submit(http, headers, "probe", mode="sleep")
    await wait_for(http, headers, order_id, lambda o: o["status"] == "RUNNING")
    # What a run stored before its worker died, never to report it.
    async with aioboto3.Session().client(
        "s3",
        endpoint_url=stack.env["CURE_S3_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ) as s3:
        await s3.put_object(
            Bucket=stack.env["CURE_S3_BUCKET"],
            Key=f"results/{order_id}/1-died/report.json",
            Body=b"{}",
        )
    cancelled = await http.post(f"/v1/orders/{order_id}/cancel", headers=headers)
    assert cancelled.json()["status"] == "CANCELLED"
    await eventually_stored(stack, cancelled.json(), 0)
    await eventually_no_containers(order_id)


async def test_a_duplicate_delivery_after_success_changes_no_result(stack, http, headers) -> None:
    order_id = await submit(http, headers, "probe", mode="report")
    first = await wait_final(http, order_id, headers)
    assert first["status"] == "SUCCESS"
    body, task_headers, properties = celery_task_message(
        RUN_ORDER_TASK, task_id=f"order-{order_id}-1", args=[order_id, 1]
    )
    connection = await aio_pika.connect(stack.env["CURE_BROKER_URL"])
    async with connection:
        channel = await connection.channel()
        for _ in range(2):
            await channel.default_exchange.publish(
                aio_pika.Message(json.dumps(body).encode(), headers=task_headers, **properties),
                routing_key=stack.env.get("CURE_ORDERS_QUEUE", "cure.orders"),
            )
    await asyncio.sleep(4)
    after = (await http.get(f"/v1/orders/{order_id}", headers=headers)).json()
    assert after["result"] == first["result"]
    assert after["history"] == first["history"]
    await one_result(stack, http, headers, after)


def _admin_sql(statement: str) -> None:
    async def run() -> None:
        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            await admin.execute(statement)
        finally:
            await admin.close()

    asyncio.run(run())


@pytest.fixture
def second_deployment(stack, engine, tmp_path_factory) -> Iterator[Stack]:
    """Another deployment (its own database and RabbitMQ vhost) on the same Docker engine."""
    from cure.kit.provision import migrate

    name = f"cure_test_other_{uuid.uuid4().hex[:6]}"
    _admin_sql(f'CREATE DATABASE "{name}"')
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_vhost", name], check=True, capture_output=True)
    subprocess.run(
        [*ctl, "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    migrate(database_url)
    apps = write_apps_dir(tmp_path_factory.mktemp("other"), probe_timeout=60)
    try:
        with running_stack(
            "other",
            CURE_APPS_DIR=str(apps),
            CURE_DATABASE_URL=database_url,
            CURE_BROKER_URL=f"amqp://guest:guest@127.0.0.1:5672/{name}",
            **FAST,
        ) as other:
            yield other
    finally:
        subprocess.run([*ctl, "delete_vhost", name], capture_output=True, check=False)
        _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_two_deployments_on_one_engine_never_touch_each_other(
    stack, second_deployment, http, headers
) -> None:
    from tests.factories import customer_with_token

    # Both sweep every second while the other's apps run for several seconds.
    async with httpx.AsyncClient(base_url=second_deployment.url, timeout=15) as other_http:
        _, other_headers = await customer_with_token(other_http)
        ours = await submit(http, headers, "probe", mode="progress", pause=2)
        theirs = await submit(other_http, other_headers, "probe", mode="progress", pause=2)
        ours_final = await wait_final(http, ours, headers, seconds=60)
        theirs_final = await wait_final(other_http, theirs, other_headers, seconds=60)
    for final in (ours_final, theirs_final):
        assert (final["status"], final["attempt"]) == ("SUCCESS", 1), final
    log = (ROOT / "var" / "log" / f"test-{stack.name}-worker.log").read_text()
    assert theirs not in log  # never swept, never even named by this deployment's workers


def _restart_rabbitmq(pause: float) -> None:
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True)
    time.sleep(pause)
    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True)


async def test_chaos_of_kills_freezes_and_a_broker_restart(
    stack, smtp: SmtpServer, http, account, headers
) -> None:
    """Two dozen orders while workers are killed, frozen and thawed, and RabbitMQ restarts:
    each ends once, SUCCESS, with one result, one email, and no container left."""
    rng = random.Random(20261129)
    orders = [
        await submit(http, headers, "probe", mode="progress", pause=round(rng.uniform(0.3, 1.2), 2))
        for _ in range(24)
    ]
    faults = ["kill", "freeze", "broker", "kill", "freeze"]
    for fault in faults:
        await asyncio.sleep(rng.uniform(1.5, 3))
        if fault == "broker":
            await asyncio.to_thread(_restart_rabbitmq, 3)
            continue
        victim = rng.choice(stack.workers)
        replacement = stack.start_worker()
        assert replacement.poll() is None
        if fault == "kill":
            stack.kill_worker(victim)
        else:
            stack.freeze(victim)
            await asyncio.sleep(7)  # past the heartbeat timeout
            stack.thaw(victim)
    finals = [await wait_final(http, order_id, headers, seconds=120) for order_id in orders]
    for final in finals:
        await one_result(stack, http, headers, final, seconds=30)
    await eventually_no_containers(orders, seconds=30)
    deadline = time.monotonic() + 30
    while len(smtp.mailbox.to(account["email"])) < len(orders):
        assert time.monotonic() < deadline, len(smtp.mailbox.to(account["email"]))
        await asyncio.sleep(0.3)
    await asyncio.sleep(3)
    assert len(smtp.mailbox.to(account["email"])) == len(orders)  # one email each


async def test_every_run_lock_is_gone_after_the_stack_settles(stack) -> None:
    """No lock of a run outlives it (a frozen worker's went with its process)."""
    db = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{TEST_DB}")
    try:
        deadline = time.monotonic() + 20
        # Every advisory lock but the API's leadership (cure.kit.leader), held while it runs.
        held = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND pid NOT IN (SELECT pid FROM pg_stat_activity"
            " WHERE application_name = 'cure-leadership')"
        )
        while await db.fetchval(held):
            assert time.monotonic() < deadline, "advisory locks are still held"
            await asyncio.sleep(0.5)
    finally:
        await db.close()
