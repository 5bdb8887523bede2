"""Failure tests on real processes and services: the order lifecycle never loses an order.

Each test drives a real API process and real Celery workers (see ``Stack``) against PostgreSQL,
RabbitMQ, the Docker engine and S3 (moto), and breaks one of them on purpose.
"""

import asyncio
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest

from cure.kit import broker
from cure.kit.celery_message import celery_task_message
from cure.orders.dispatch import RUN_ORDER_TASK
from tests.conftest import SmtpServer, Stack, running_stack, write_apps_dir
from tests.factories import wait_final
from tests.live import (
    container_ids,
    containers_of,
    eventually_no_containers,
    releasing,
    statuses,
    stored_keys,
    submit,
    volumes_of,
    wait_for,
)


@pytest.fixture(scope="module")
def stack(engine, smtp, tmp_path_factory) -> Iterator[Stack]:
    apps = write_apps_dir(tmp_path_factory.mktemp("failures"), probe_timeout=60, workflow=True)
    with running_stack(
        "failures",
        CURE_APPS_DIR=str(apps),
        CURE_SMTP_PORT=str(smtp.port),
        CURE_NOTIFY_RETRY_BASE_SECONDS="0.5",
        CURE_NOTIFY_RETRY_MAX_SECONDS="2",
        CURE_HEARTBEAT_INTERVAL_SECONDS="1",
        CURE_TASK_MAX_RETRIES="2",
        CURE_TASK_RETRY_BACKOFF_SECONDS="0.2",
        CURE_RECONCILE_INTERVAL_SECONDS="2",
        CURE_MAX_ACTIVE_ORDERS="50",
    ) as running:
        yield running


@pytest.fixture
def headers(account) -> dict[str, str]:
    return {"Authorization": account["Authorization"]}


async def emails_settle(smtp: SmtpServer, address: str, count: int, seconds: float = 15) -> None:
    """Wait until ``address`` has ``count`` emails, then make sure no more arrive."""
    deadline = time.monotonic() + seconds
    while len(smtp.mailbox.to(address)) < count:
        assert time.monotonic() < deadline, f"{address} got {len(smtp.mailbox.to(address))} emails"
        await asyncio.sleep(0.2)
    await asyncio.sleep(3)  # the notifier polls every second: give a duplicate its chance
    assert len(smtp.mailbox.to(address)) == count


async def test_progress_is_reported_while_running(http, headers) -> None:
    """The app's steps (25, 50, 75 of its share: 29, 49, 69 of the order's) are stored as
    RUNNING events, in order, before the SUCCESS (read from the stored history, not caught in
    passing)."""
    order_id = await submit(http, headers, mode="progress", pause=1.5)
    final = await wait_final(http, order_id, headers)
    assert final["status"] == "SUCCESS"
    history = final["history"]
    steps = [
        (e["status"], e["progress"], e["message"]) for e in history if e["progress"] in (29, 49, 69)
    ]
    assert steps == [
        ("RUNNING", 29, "step 25"),
        ("RUNNING", 49, "step 50"),
        ("RUNNING", 69, "step 75"),
    ]
    last_step = max(i for i, e in enumerate(history) if e["progress"] == 69)
    assert statuses(final).index("SUCCESS") > last_step
    progress = [e["progress"] for e in history if e["progress"] is not None]
    assert progress == sorted(progress)


async def test_cancel_running_stops_and_removes_the_container(http, headers) -> None:
    order_id = await submit(http, headers, mode="sleep")
    await wait_for(http, headers, order_id, lambda o: o["status"] == "RUNNING")
    deadline = time.monotonic() + 10
    while not containers_of(order_id):
        assert time.monotonic() < deadline, "the app container never started"
        await asyncio.sleep(0.2)
    cancelled = await http.post(f"/v1/orders/{order_id}/cancel", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    await eventually_no_containers(order_id, seconds=10)
    await asyncio.sleep(2)  # nothing the stopped worker says afterwards changes the order
    final = (await http.get(f"/v1/orders/{order_id}", headers=headers)).json()
    assert final["status"] == "CANCELLED"
    assert statuses(final)[-1] == "CANCELLED"
    again = await http.post(f"/v1/orders/{order_id}/cancel", headers=headers)
    assert again.status_code == 409


async def test_cancelled_queued_order_never_starts(stack, http, headers) -> None:
    blockers = [await submit(http, headers, mode="sleep") for _ in range(2)]  # both worker slots
    for blocker in blockers:
        await wait_for(http, headers, blocker, lambda o: o["status"] == "RUNNING")
    waiting = await submit(http, headers, mode="report")
    await wait_for(http, headers, waiting, lambda o: o["status"] == "QUEUED")
    assert (await http.post(f"/v1/orders/{waiting}/cancel", headers=headers)).status_code == 200
    for blocker in blockers:
        await http.post(f"/v1/orders/{blocker}/cancel", headers=headers)
    connection = await aio_pika.connect(stack.env["CURE_BROKER_URL"])
    async with connection:  # a free slot takes the cancelled order's task, and drops it
        channel = await connection.channel()
        deadline = time.monotonic() + 20
        while True:
            queue = await channel.declare_queue("cure.orders", passive=True)
            if queue.declaration_result.message_count == 0:
                break
            assert time.monotonic() < deadline, "the cancelled order's task was never taken"
            await asyncio.sleep(0.3)
    await asyncio.sleep(1)
    final = (await http.get(f"/v1/orders/{waiting}", headers=headers)).json()
    assert statuses(final) == ["RECEIVED", "QUEUED", "CANCELLED"]
    assert containers_of(waiting) == []


async def test_kill_9_worker_while_its_container_runs(stack, smtp, http, account, headers) -> None:
    order_id = await submit(http, headers, mode="hold", pause=0.5)
    # held after its first step until released: it runs for as long as the test needs
    await wait_for(http, headers, order_id, lambda o: (o["progress"] or 0) >= 29)
    held = container_ids(order_id)
    assert held, "the app container should be running"
    victim = stack.workers[0]
    stack.kill_worker(victim)
    stack.start_worker()  # the task is redelivered to the new worker
    async with releasing(order_id, spare=held):  # the killed run's app stays held
        final = await wait_final(http, order_id, headers, seconds=90)
    assert final["status"] == "SUCCESS", final
    assert statuses(final).count("SUCCESS") == 1
    # one run's file (the killed run stored none), in that run's own folder
    (key,) = await stored_keys(stack, order_id)
    assert re.fullmatch(rf"results/{order_id}/1-[0-9a-f]{{12}}/report.json", key)
    await eventually_no_containers(order_id)
    await emails_settle(smtp, account["email"], 1)


def _rabbitmq_restart(pause: float) -> None:
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True)
    time.sleep(pause)
    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True)


async def test_rabbitmq_restart_during_a_burst(http, headers) -> None:
    restart = threading.Thread(target=_rabbitmq_restart, args=(3,))
    accepted: list[str] = []
    restart.start()
    try:
        for _ in range(12):
            accepted.append(await submit(http, headers, app="roi_stats"))
            await asyncio.sleep(0.25)
    finally:
        await asyncio.to_thread(restart.join)
    finals = [await wait_final(http, order_id, headers, seconds=120) for order_id in accepted]
    assert [f["status"] for f in finals] == ["SUCCESS"] * len(accepted)


def _pg(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            version,
            "main",
            action,
            *(["-m", "fast"] if action == "stop" else []),
        ],
        check=True,
        capture_output=True,
    )


async def test_postgres_outage_is_503_and_loses_no_event(http, headers) -> None:
    order_id = await submit(http, headers, mode="hold", pause=1.5)
    # held after its first step (29) until released: the rest comes during the outage
    await wait_for(http, headers, order_id, lambda o: (o["progress"] or 0) >= 29)
    await asyncio.to_thread(_pg, "stop")
    async with releasing(order_id):
        try:
            # Answered, not hung: the client's own timeout (15 s) bounds the wait.
            down = await http.get(f"/v1/orders/{order_id}", headers=headers)
            assert down.status_code == 503
            assert down.json()["error"] == "ServiceUnavailable"
            assert "retry-after" in down.headers
            await asyncio.sleep(6)  # released: the app finishes and reports meanwhile
        finally:
            await asyncio.to_thread(_pg, "start")
        final = await wait_final(http, order_id, headers, seconds=60)
    assert final["status"] == "SUCCESS"
    progress = {e["progress"] for e in final["history"] if e["progress"] is not None}
    assert {29, 49, 69} <= progress  # reported during the outage, applied after it


async def publish_raw(stack: Stack, body: bytes, **properties) -> None:
    connection = await aio_pika.connect(stack.env["CURE_BROKER_URL"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await broker.publish_confirmed(
            channel,
            queue=stack.env.get("CURE_ORDERS_QUEUE", "cure.orders"),
            body=body,
            **properties,
        )


async def test_poison_message_is_dead_lettered_and_work_goes_on(stack, http, headers) -> None:
    body, task_headers, properties = celery_task_message(
        RUN_ORDER_TASK, task_id=f"poison-{uuid.uuid4()}", args=["not-an-order-id", 1]
    )
    await publish_raw(stack, json.dumps(body).encode(), headers=task_headers, **properties)
    connection = await aio_pika.connect(stack.env["CURE_BROKER_URL"])
    async with connection:
        channel = await connection.channel()
        parked = await channel.declare_queue("cure.dead.parked", durable=True)
        deadline = time.monotonic() + 30
        message = None
        while message is None:
            assert time.monotonic() < deadline, "the poison message never reached the dead letters"
            message = await parked.get(fail=False, no_ack=True)
            await asyncio.sleep(0.3)
        assert json.loads(message.body)[0] == ["not-an-order-id", 1]
        assert message.headers["x-death"][0]["reason"] == "rejected"
    # the worker still serves everyone else
    order_id = await submit(http, headers, app="roi_stats")
    assert (await wait_final(http, order_id, headers))["status"] == "SUCCESS"


async def test_a_dead_lettered_order_task_fails_the_order(stack, http, headers) -> None:
    order_id = await submit(http, headers, mode="sleep")
    await wait_for(http, headers, order_id, lambda o: o["status"] == "RUNNING")
    body, task_headers, properties = celery_task_message(
        RUN_ORDER_TASK, task_id=f"order-{order_id}-1", args=[order_id, 1]
    )
    connection = await aio_pika.connect(stack.env["CURE_BROKER_URL"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("cure.dead")
        await exchange.publish(
            aio_pika.Message(json.dumps(body).encode(), headers=task_headers, **properties),
            routing_key="",
        )
    final = await wait_final(http, order_id, headers)
    assert final["status"] == "FAILED"
    assert "failed repeatedly" in final["message"]
    await eventually_no_containers(order_id)  # the worker saw FAILED and stopped the app


async def test_smtp_outage_never_holds_up_the_order_and_the_email_follows(
    smtp, http, account, headers
) -> None:
    smtp.stop()
    try:
        order_id = await submit(http, headers, app="roi_stats")
        final = await wait_final(http, order_id, headers)
        assert final["status"] == "SUCCESS"  # at once, with the mail server down
        await asyncio.sleep(2)  # the notifier has tried and failed by now
        assert smtp.mailbox.to(account["email"]) == []
    finally:
        smtp.start()
    await emails_settle(smtp, account["email"], 1)
    email = smtp.mailbox.to(account["email"])[0]
    assert email["Subject"] == f"CURE order {order_id}: SUCCESS"
    assert f"/v1/orders/{order_id}/result" in email.get_content()


def event_bytes(order_id: str, status: str, **fields) -> bytes:
    from datetime import UTC, datetime

    from cure.orders.schemas import OrderEventMessage

    event = OrderEventMessage(
        order_id=uuid.UUID(order_id),
        status=status,
        actor="test",
        occurred_at=datetime.now(UTC),
        **fields,
    )
    return event.model_dump_json().encode()


async def publish_events(stack: Stack, *bodies: bytes) -> None:
    connection = await aio_pika.connect(stack.env["CURE_BROKER_URL"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for body in bodies:
            await broker.publish_confirmed(channel, queue="cure.order_events", body=body)


async def applied(http, headers, order_id: str, progress: int) -> dict:
    """Wait for a sentinel progress event: the queue is FIFO with one message in flight, so
    everything published before it has been applied or dropped by then."""
    return await wait_for(
        http, headers, order_id, lambda o: any(e["progress"] == progress for e in o["history"])
    )


async def test_duplicate_and_out_of_order_events_change_nothing(
    stack, smtp, http, account, headers
) -> None:
    finished = await submit(http, headers, app="roi_stats")
    final = await wait_final(http, finished, headers)
    await emails_settle(smtp, account["email"], 1)
    running = await submit(http, headers, mode="sleep")
    await wait_for(http, headers, running, lambda o: o["status"] == "RUNNING")

    twice = event_bytes(running, "RUNNING", progress=40)
    success_again = event_bytes(finished, "SUCCESS")
    await publish_events(
        stack,
        twice,
        twice,  # the same event delivered twice
        event_bytes(finished, "RUNNING", progress=50),  # late
        event_bytes(finished, "QUEUED"),  # older still
        event_bytes(finished, "FAILED", message="a late contradiction"),
        success_again,
        success_again,
        event_bytes(finished, "RUNNING", heartbeat=True),
        event_bytes(running, "RUNNING", progress=41),  # the sentinel
    )
    after_running = await applied(http, headers, running, 41)
    assert [e["progress"] for e in after_running["history"]].count(40) == 1
    after = (await http.get(f"/v1/orders/{finished}", headers=headers)).json()
    assert after["status"] == "SUCCESS"
    assert after["history"] == final["history"]
    assert after["updated_at"] == final["updated_at"]
    await http.post(f"/v1/orders/{running}/cancel", headers=headers)
    await emails_settle(smtp, account["email"], 1)  # one for SUCCESS; none for CANCELLED


async def test_an_event_that_can_never_be_applied_does_not_block_the_rest(
    stack, http, headers
) -> None:
    order_id = await submit(http, headers, mode="sleep")
    await wait_for(http, headers, order_id, lambda o: o["status"] == "RUNNING")
    result = {"key": "k" * 600, "size": 1, "media_type": "text/plain", "checksum": "x"}
    poison = event_bytes(order_id, "SUCCESS", result=result)  # too long for the result column
    await publish_events(stack, poison, event_bytes(order_id, "RUNNING", progress=33))
    await applied(http, headers, order_id, 33)  # the events behind it still get through
    connection = await aio_pika.connect(stack.env["CURE_BROKER_URL"])
    async with connection:
        channel = await connection.channel()
        parked = await channel.declare_queue("cure.dead.parked", durable=True)
        deadline = time.monotonic() + 15
        bodies: list[bytes] = []
        while poison not in bodies:
            assert time.monotonic() < deadline, "the poison event was not parked"
            message = await parked.get(fail=False, no_ack=True)
            if message is None:
                await asyncio.sleep(0.2)
            else:
                bodies.append(message.body)
    # text PostgreSQL cannot store (a NUL) is cleaned, not refused
    await publish_events(stack, event_bytes(order_id, "FAILED", message="bad\x00 input"))
    final = await wait_final(http, order_id, headers)
    assert (final["status"], final["message"]) == ("FAILED", "bad input")
    await eventually_no_containers(order_id)


async def test_cancel_after_the_worker_was_killed_still_removes_the_container(
    stack, http, headers
) -> None:
    order_id = await submit(http, headers, mode="sleep")
    await wait_for(http, headers, order_id, lambda o: o["status"] == "RUNNING")
    deadline = time.monotonic() + 10
    while not containers_of(order_id):
        assert time.monotonic() < deadline, "the app container never started"
        await asyncio.sleep(0.2)
    victim = stack.workers[0]
    stack.kill_worker(victim)
    assert containers_of(order_id), "the app outlives its killed worker, for now"
    cancelled = await http.post(f"/v1/orders/{order_id}/cancel", headers=headers)
    assert cancelled.json()["status"] == "CANCELLED"
    stack.start_worker()  # its sweep (or the redelivered task) removes what no run owns
    await eventually_no_containers(order_id, seconds=30)
    final = (await http.get(f"/v1/orders/{order_id}", headers=headers)).json()
    assert statuses(final)[-1] == "CANCELLED"


# -- workflows: a step cancelled, a worker killed during a step --------------------------------


def step_containers(order_id: str) -> set[str]:
    return {c.labels.get("cure.step", "") for c in containers_of(order_id)} - {""}


async def test_a_cancel_during_workflow_steps_stops_them_all_and_stores_nothing(
    stack, http, headers
) -> None:
    order_id = await submit(http, headers, app="probe_flow", sleep_step="left,right")
    deadline = time.monotonic() + 30
    while step_containers(order_id) != {"left", "right"}:
        assert time.monotonic() < deadline, f"the two steps never ran: {step_containers(order_id)}"
        await asyncio.sleep(0.2)
    cancelled = await http.post(f"/v1/orders/{order_id}/cancel", headers=headers)
    assert cancelled.json()["status"] == "CANCELLED"
    await eventually_no_containers(order_id, seconds=15)  # both steps and the job's holder
    assert volumes_of(order_id) == []  # the job folder, interim data and all
    await asyncio.sleep(1)  # nothing the stopped run says afterwards changes the order
    final = (await http.get(f"/v1/orders/{order_id}", headers=headers)).json()
    assert statuses(final)[-1] == "CANCELLED"
    assert await stored_keys(stack, order_id) == []


async def test_a_worker_killed_during_a_step_is_retried_to_one_success(
    stack, http, headers
) -> None:
    order_id = await submit(http, headers, app="probe_flow", hold_step="right", pause=0.5)
    # the right step is held after its first progress line until released
    await wait_for(
        http,
        headers,
        order_id,
        lambda o: any(
            (e["message"] or "").startswith("step right: right at") for e in o["history"]
        ),
    )
    assert "right" in step_containers(order_id)
    held = container_ids(order_id)
    stack.kill_worker(stack.workers[0])
    stack.start_worker()  # the task comes back to the new worker, which runs every step again
    async with releasing(order_id, spare=held):  # the killed run's step stays held
        final = await wait_final(http, order_id, headers, seconds=90)
    assert final["status"] == "SUCCESS", final
    assert statuses(final).count("SUCCESS") == 1
    (key,) = await stored_keys(stack, order_id)  # one run's result
    assert key.endswith("/report.json")
    await eventually_no_containers(order_id, seconds=30)
    assert volumes_of(order_id) == []
    records: list[dict] = []
    after, finished = 0, False
    while not finished:  # the whole log: followed until the API says it is complete
        page = await http.get(
            f"/v1/orders/{order_id}/logs", headers=headers, params={"after": after, "wait": 10}
        )
        assert page.status_code == 200, page.text
        records += page.json()["records"]
        after, finished = page.json()["next_after"], page.json()["finished"]
    # the order's log names the step of each line the app wrote, for every step
    steps = {r["extra"].get("step") for r in records if r["logger"] == "cure.order.app"}
    assert {"prepare", "left", "right", "finish"} <= steps
