"""The worker pipeline with the order-event consumer: exit codes become SUCCESS, INVALID or FAILED."""

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from cure.auth.principals import Principal
from cure.containers.runner import ContainerOutcome, ContainerRunner, Job, open_runner
from cure.orders import service as order_service
from cure.orders.event_consumer import OrderEventConsumer
from cure.orders.models import Order, OrderEvent
from cure.orders.schemas import OrderCreate
from cure.orders.tidy import ORDER_TIDY, ResultTidier
from cure.outbox.models import OutboxMessage
from cure.storage.service import make_storage
from cure.workers import pipeline
from cure.workers.events import EventLink
from tests.conftest import PROBE_IMAGE, write_apps_dir
from tests.factories import customer_with_token, order_body


@pytest.fixture
def probe_settings(settings, tmp_path: Path):
    return settings.model_copy(
        update={
            "apps_dir": write_apps_dir(tmp_path),
            "events_queue": f"cure.events-{uuid.uuid4().hex[:8]}",
        }
    )


@pytest.fixture
async def status_manager(probe_settings, sessionmaker):
    task = asyncio.create_task(OrderEventConsumer(probe_settings, sessionmaker).run())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def submit_probe(client, sessionmaker, probe_settings, **params) -> Order:
    """A committed probe order of a new customer, not yet run."""
    customer, _ = await customer_with_token(client)
    principal = Principal(
        uuid.UUID(customer["customer_id"]), customer["client_id"], frozenset({"app:probe"}), False
    )
    async with sessionmaker() as session:
        order, _ = await order_service.submit(
            session,
            probe_settings,
            principal,
            app_id="probe",
            data=OrderCreate(**order_body(params=params)),
        )
        await session.commit()
    return order


async def order_and_run(client, sessionmaker, probe_settings, mode: str) -> Order:
    order = await submit_probe(client, sessionmaker, probe_settings, mode=mode)
    await pipeline.run_order(probe_settings, order.id)
    return await stored_final(sessionmaker, order.id)


async def stored_final(sessionmaker, order_id: uuid.UUID) -> Order:
    """The order once the status manager has stored its final state."""
    for _ in range(100):
        async with sessionmaker() as session:
            stored = await session.get(Order, order_id)
            if stored.status in {"SUCCESS", "FAILED", "INVALID"}:
                return stored
        await asyncio.sleep(0.1)
    pytest.fail(f"order stayed {stored.status}")


async def test_success_stores_the_result(
    committing_client, sessionmaker, engine, probe_settings, status_manager
) -> None:
    order = await order_and_run(committing_client, sessionmaker, probe_settings, "report")
    assert order.status == "SUCCESS", order.message
    # under the order, in a folder of this run's own (attempt 1)
    assert re.fullmatch(rf"results/{order.id}/1-[0-9a-f]{{12}}/report.json", order.result_key)
    assert order.result_media_type == "application/json"
    url = await make_storage(probe_settings).presigned_url(order.result_key, expires_in=60)
    async with httpx.AsyncClient() as http:
        body = await http.get(url)
    assert len(body.content) == order.result_size
    report = json.loads(body.content)
    assert report["uid"] == 65534
    # every parameter reaches the app both ways: params.json and the command line
    assert report["params"] == {"mode": "report", "pause": 1.2}
    assert report["argv"] == ["--mode=report", "--pause=1.2"]


async def test_a_run_that_stored_alone_leaves_nothing_to_tidy_one_after_a_lost_run_does(
    committing_client, sessionmaker, engine, probe_settings, status_manager
) -> None:
    alone = await order_and_run(committing_client, sessionmaker, probe_settings, "report")
    assert alone.status == "SUCCESS", alone.message
    assert await _tidies(sessionmaker, alone.id) == 0
    storage = make_storage(probe_settings)
    assert await storage.keys(f"results/{alone.id}/") == [alone.result_key]

    # An earlier run of the same attempt stored its output and died before reporting it.
    order = await submit_probe(committing_client, sessionmaker, probe_settings, mode="report")
    lost = f"results/{order.id}/1-lostrun00000/report.json"
    await storage.put(lost, b"{}", media_type="application/json")
    await pipeline.run_order(probe_settings, order.id)
    order = await stored_final(sessionmaker, order.id)
    assert order.status == "SUCCESS", order.message
    assert await _tidies(sessionmaker, order.id) == 1
    await ResultTidier(probe_settings, sessionmaker).tidy_once()
    assert await storage.keys(f"results/{order.id}/") == [order.result_key]


async def test_runs_share_the_process_s_broker_link_until_one_fails(
    committing_client, sessionmaker, engine, probe_settings, status_manager
) -> None:
    link = EventLink(probe_settings)
    try:
        connections = []
        for _ in range(2):
            order = await submit_probe(committing_client, sessionmaker, probe_settings)
            await pipeline.run_order(probe_settings, order.id, events_link=link)
            assert (await stored_final(sessionmaker, order.id)).status == "SUCCESS"
            connections.append(link._connection)
        assert connections[0] is not None and connections[0] is connections[1]

        # A run that fails (here: its events cannot be published) leaves the link closed,
        # and the next run connects anew and succeeds.
        broken = probe_settings.model_copy(update={"publish_timeout_seconds": 0.000001})
        order = await submit_probe(committing_client, sessionmaker, probe_settings)
        with pytest.raises(TimeoutError):
            await pipeline.run_order(broken, order.id, events_link=link)
        assert link._connection is None and connections[0].is_closed
        await pipeline.run_order(probe_settings, order.id, events_link=link)
        assert (await stored_final(sessionmaker, order.id)).status == "SUCCESS"
        assert link._connection is not None and link._connection is not connections[0]
    finally:
        await link.close()


async def _tidies(sessionmaker, order_id: uuid.UUID) -> int:
    async with sessionmaker() as session:
        query = select(func.count()).where(
            OutboxMessage.kind == ORDER_TIDY, OutboxMessage.subject_id == order_id
        )
        return int(await session.scalar(query) or 0)


async def test_progress_printed_just_before_the_app_exits_is_stored(
    committing_client, sessionmaker, probe_settings, status_manager
) -> None:
    """No pause between the app's three reports and its exit: whether a tick or the last read
    after the exit sees them, each is a stored RUNNING event before the SUCCESS."""
    order = await submit_probe(
        committing_client, sessionmaker, probe_settings, mode="progress", pause=0
    )
    await pipeline.run_order(probe_settings, order.id)
    assert (await stored_final(sessionmaker, order.id)).status == "SUCCESS"
    async with sessionmaker() as session:
        events = (
            await session.execute(
                select(OrderEvent.status, OrderEvent.progress, OrderEvent.message)
                .where(OrderEvent.order_id == order.id)
                .order_by(OrderEvent.id)
            )
        ).all()
    reported = [tuple(e) for e in events if e.progress in (29, 49, 69)]
    assert reported == [
        ("RUNNING", 29, "step 25"),
        ("RUNNING", 49, "step 50"),
        ("RUNNING", 69, "step 75"),
    ]
    assert [e.status for e in events][-1] == "SUCCESS"


async def test_invalid_input_exit_code(
    committing_client, sessionmaker, engine, probe_settings, status_manager
) -> None:
    order = await order_and_run(committing_client, sessionmaker, probe_settings, "invalid")
    assert order.status == "INVALID"
    assert order.message == "no product for this date"


async def test_crash_is_failed_with_reason(
    committing_client, sessionmaker, engine, probe_settings, status_manager
) -> None:
    order = await order_and_run(committing_client, sessionmaker, probe_settings, "crash")
    assert order.status == "FAILED"
    assert order.message == "the app exited with code 7: something broke"
    assert order.result_key is None


async def test_timeout_is_failed(
    committing_client, sessionmaker, engine, probe_settings, status_manager
) -> None:
    order = await order_and_run(committing_client, sessionmaker, probe_settings, "sleep")
    assert order.status == "FAILED"
    assert order.message == "the app ran longer than 3s"


async def test_finished_order_is_not_run_again(
    committing_client, sessionmaker, engine, probe_settings, status_manager
) -> None:
    order = await order_and_run(committing_client, sessionmaker, probe_settings, "crash")
    assert await pipeline.run_order(probe_settings, order.id) is None


async def test_two_deliveries_of_one_attempt_run_it_once(
    committing_client, sessionmaker, engine, probe_settings, tmp_path: Path, status_manager
) -> None:
    # A roomy time limit (the same events queue): the run's 1.5 s of pauses must not meet the
    # probe's 3 s under load; this test is not about the limit.
    apps = write_apps_dir(tmp_path / "roomy", probe_timeout=60)
    roomy = probe_settings.model_copy(update={"apps_dir": apps})
    order = await submit_probe(committing_client, sessionmaker, roomy, mode="progress", pause=0.5)
    first, second = await asyncio.gather(
        pipeline.run_order(roomy, order.id, 1),
        pipeline.run_order(roomy, order.id, 1),
    )
    assert sorted([str(first), str(second)]) == ["None", "SUCCESS"]
    for _ in range(100):
        async with sessionmaker() as session:
            stored = await session.get(Order, order.id)
            if stored.status == "SUCCESS":
                break
        await asyncio.sleep(0.1)
    assert stored.status == "SUCCESS"


async def test_a_task_for_a_finished_order_removes_what_a_killed_run_left(
    committing_client, sessionmaker, engine, probe_settings, status_manager
) -> None:
    order = await order_and_run(committing_client, sessionmaker, probe_settings, "crash")
    assert order.status == "FAILED"
    leftover = engine.containers.run(
        PROBE_IMAGE,
        command=[],
        entrypoint=["sleep", "300"],
        detach=True,
        network_mode="none",
        labels=pipeline.run_labels(probe_settings, order.id, 1),
    )
    try:
        assert await pipeline.run_order(probe_settings, order.id, 1) is None
        label = {"label": f"cure.order_id={order.id}"}
        assert engine.containers.list(all=True, ignore_removed=True, filters=label) == []
    finally:
        try:
            leftover.remove(force=True)
        except Exception:  # noqa: BLE001 (already gone: the point of the test)
            pass


class RecordingRunner:
    """A second container runner: notes each call made of it, then hands it to another runner.
    It knows only the interface, so a pipeline that ran its apps any other way would pass it by."""

    def __init__(self, inner: ContainerRunner) -> None:
        self.inner = inner
        self.calls: list[tuple[str, dict[str, str]]] = []

    def run(self, **kwargs: Any) -> ContainerOutcome:
        self.calls.append(("run", kwargs["labels"]))
        return self.inner.run(**kwargs)

    def open_job(self, **kwargs: Any) -> Job:
        self.calls.append(("open_job", kwargs["labels"]))
        return self.inner.open_job(**kwargs)

    def labelled(self, within: dict[str, str]) -> list[dict[str, str]]:
        self.calls.append(("labelled", within))
        return self.inner.labelled(within)

    def remove(self, labels: dict[str, str]) -> int:
        self.calls.append(("remove", labels))
        return self.inner.remove(labels)

    def build_image(self, context: bytes, *, tag: str, no_cache: bool = False) -> str:
        return self.inner.build_image(context, tag=tag, no_cache=no_cache)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.calls.append(("close", {}))


async def test_the_pipeline_runs_apps_on_the_runner_it_is_given(
    committing_client, sessionmaker, engine, probe_settings, status_manager
) -> None:
    inner = open_runner(probe_settings)
    recorder = RecordingRunner(inner)
    runner: ContainerRunner = recorder  # what the pipeline accepts: the interface, nothing more
    try:
        order = await submit_probe(committing_client, sessionmaker, probe_settings, mode="report")
        status = await pipeline.run_order(probe_settings, order.id, runner=runner)
        assert status == "SUCCESS"
        labels = pipeline.run_labels(probe_settings, order.id, 1)
        assert recorder.calls == [("run", labels)]  # and not closed: its owner closes it
        await stored_final(sessionmaker, order.id)  # the status manager has applied SUCCESS
        # a task for the finished order clears what a killed run may have left, on it too
        assert await pipeline.run_order(probe_settings, order.id, runner=runner) is None
        assert recorder.calls[1:] == [("remove", pipeline.order_labels(probe_settings, order.id))]
    finally:
        inner.close()


async def test_a_missing_image_fails_the_order_with_its_name(
    committing_client, sessionmaker, engine, probe_settings, tmp_path: Path, status_manager
) -> None:
    missing = f"cure-test-missing-{uuid.uuid4().hex[:8]}:latest"
    apps = write_apps_dir(tmp_path / "missing")
    manifest = json.loads((apps / "probe" / "manifest.json").read_text())
    (apps / "probe" / "manifest.json").write_text(json.dumps({**manifest, "image": missing}))
    settings = probe_settings.model_copy(update={"apps_dir": apps})  # the same events queue
    order = await order_and_run(committing_client, sessionmaker, settings, "report")
    assert order.status == "FAILED"
    assert order.message == f"the app image {missing} is missing"
