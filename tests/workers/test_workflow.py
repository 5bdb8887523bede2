"""Apps as workflows: the manifest's steps, their order, and a real workflow run on the engine.

The probe_flow app (tests/conftest.py) runs prepare, then left and right side by side (each waits
for the other to start, so they pass only when run at once), then finish, which reports what
the shared work folder holds.
"""

import asyncio
import json
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from cure.apps.schemas import AppManifest, AppStep
from cure.auth.principals import Principal
from cure.containers.runner import ContainerOutcome
from cure.orders import service as order_service
from cure.orders.event_consumer import OrderEventConsumer
from cure.orders.models import Order, OrderEvent
from cure.orders.schemas import OrderCreate
from cure.storage.service import make_storage
from cure.workers import pipeline, workflow
from tests.conftest import PROBE_FLOW_MANIFEST, write_apps_dir
from tests.factories import customer_with_token, order_body

# -- the manifest ---------------------------------------------------------------------------------


def manifest_with(steps: list[dict]) -> dict:
    return {**PROBE_FLOW_MANIFEST, "steps": steps}


def test_the_probe_flow_manifest_is_a_dag_in_order() -> None:
    order = AppManifest.model_validate(PROBE_FLOW_MANIFEST).step_order()
    assert order[0] == "prepare" and order[-1] == "finish"
    assert set(order[1:3]) == {"left", "right"}


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        (
            [{"name": "a", "needs": ["b"]}, {"name": "b", "needs": ["a"]}],
            "the steps' needs form a cycle",
        ),
        ([{"name": "a", "needs": ["nowhere"]}], "step a needs unknown step(s): nowhere"),
        ([{"name": "a"}, {"name": "a"}], "step names must differ"),
        ([{"name": "a", "needs": ["a"]}], "step a: needs must differ and not name the step"),
        ([{"name": "Bad Name"}], "a step name must match"),
        ([{"name": "a", "limits": {"memory_mb": 0}}], "greater than 0"),
        ([{"name": "a", "privileged": True}], "Extra inputs are not permitted"),
    ],
)
def test_a_manifest_with_broken_steps_is_refused_naming_why(steps, reason) -> None:
    with pytest.raises(ValidationError) as error:
        AppManifest.model_validate(manifest_with(steps))
    assert reason in str(error.value)


# -- the scheduler (plain functions for steps: what runs when) ----------------------------------


def steps_of(**needs: list[str]) -> list[AppStep]:
    return [AppStep(name=name, needs=wanted) for name, wanted in needs.items()]


def done(code: int = 0) -> ContainerOutcome:
    return ContainerOutcome(exit_code=code, timed_out=False, logs=[f"exit {code}"])


async def test_steps_run_after_what_they_need_and_no_more_at_once_than_allowed() -> None:
    started: list[str] = []
    running: set[str] = set()
    most = 0
    lock = threading.Lock()

    def run_one(step: AppStep, abort: threading.Event) -> ContainerOutcome:
        nonlocal most
        with lock:
            assert all(need in started and need not in running for need in step.needs)
            started.append(step.name)
            running.add(step.name)
            most = max(most, len(running))
        threading.Event().wait(0.05)
        with lock:
            running.discard(step.name)
        return done()

    steps = steps_of(a=[], b=["a"], c=["a"], d=["a"], e=["b", "c", "d"])
    failed, last = await workflow.run_steps(
        steps, run_one, parallel=2, succeeded=lambda s, o: o.exit_code == 0
    )
    assert failed is None and last is not None and last.step.name == "e"
    assert started[0] == "a" and started[-1] == "e" and sorted(started) == list("abcde")
    assert most <= 2


async def test_a_failed_step_stops_its_siblings_and_nothing_after_it_starts() -> None:
    started: list[str] = []
    stopped: list[str] = []

    def run_one(step: AppStep, abort: threading.Event) -> ContainerOutcome:
        started.append(step.name)
        if step.name == "broken":
            return done(5)
        if step.name == "long":  # runs until told to stop, as a container is
            assert abort.wait(30), "the sibling was never stopped"
            stopped.append(step.name)
            return ContainerOutcome(exit_code=None, timed_out=False, logs=[], stopped=True)
        return done()

    steps = steps_of(first=[], broken=["first"], long=["first"], after=["broken", "long"])
    failed, _ = await workflow.run_steps(
        steps, run_one, parallel=3, succeeded=lambda s, o: o.exit_code == 0
    )
    assert failed is not None and failed.step.name == "broken"
    assert failed.outcome.exit_code == 5
    assert stopped == ["long"]
    assert "after" not in started


async def test_a_step_that_raises_stops_the_others_and_the_error_comes_through() -> None:
    def run_one(step: AppStep, abort: threading.Event) -> ContainerOutcome:
        if step.name == "lost":
            raise ConnectionError("the engine went away")
        assert abort.wait(30)
        return ContainerOutcome(exit_code=None, timed_out=False, logs=[], stopped=True)

    with pytest.raises(ConnectionError, match="the engine went away"):
        await workflow.run_steps(
            steps_of(lost=[], other=[]), run_one, parallel=2, succeeded=lambda s, o: True
        )


# -- a workflow run on the engine ---------------------------------------------------------------


@pytest.fixture
def flow_settings(settings, tmp_path: Path):
    return settings.model_copy(
        update={
            "apps_dir": write_apps_dir(tmp_path, workflow=True),
            "events_queue": f"cure.events-{uuid.uuid4().hex[:8]}",
            "work_dir": tmp_path / "work",
        }
    )


@pytest.fixture
async def status_manager(flow_settings, sessionmaker):
    task = asyncio.create_task(OrderEventConsumer(flow_settings, sessionmaker).run())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def run_flow(client, sessionmaker, settings, **params) -> tuple[Order, list[str]]:
    """A probe_flow order run once by the pipeline: the order as stored, and its events' messages."""
    customer, _ = await customer_with_token(client)
    principal = Principal(
        uuid.UUID(customer["customer_id"]),
        customer["client_id"],
        frozenset({"app:probe_flow"}),
        False,
    )
    async with sessionmaker() as session:
        order, _ = await order_service.submit(
            session,
            settings,
            principal,
            app_id="probe_flow",
            data=OrderCreate(**order_body(params=params)),
        )
        await session.commit()
    await pipeline.run_order(settings, order.id)
    for _ in range(100):
        async with sessionmaker() as session:
            stored = await session.get(Order, order.id)
            if stored.status in {"SUCCESS", "FAILED", "INVALID"}:
                events = await session.scalars(
                    select(OrderEvent.message)
                    .where(OrderEvent.order_id == order.id)
                    .order_by(OrderEvent.id)
                )
                return stored, [m for m in events if m]
        await asyncio.sleep(0.1)
    pytest.fail(f"order stayed {stored.status}")


def left_behind(engine, order_id: uuid.UUID) -> tuple[list, list]:
    """The order's containers and volumes still on the engine."""
    label = {"label": f"cure.order_id={order_id}"}
    return (
        engine.containers.list(all=True, ignore_removed=True, filters=label),
        engine.volumes.list(filters=label),
    )


async def test_a_workflow_runs_its_steps_on_one_shared_folder_and_leaves_nothing(
    committing_client, sessionmaker, engine, flow_settings, status_manager
) -> None:
    order, messages = await run_flow(committing_client, sessionmaker, flow_settings)
    assert order.status == "SUCCESS", order.message
    url = await make_storage(flow_settings).presigned_url(order.result_key, expires_in=60)
    async with httpx.AsyncClient() as http:
        report = json.loads((await http.get(url)).content)
    # each step saw what the ones before it left in /job/work; left and right ran side by side
    assert report["work"] == {
        "left.started": "",
        "left.txt": "prepared then left",
        "prepare.txt": "prepared",
        "right.started": "",
        "right.txt": "prepared then right",
    }
    assert report["inputs_writable"] is False  # the staged inputs are read only to every step
    assert report["params_writable"] is False
    assert report["argv"][:2] == ["step", "finish"]  # the step's command, then the parameters
    assert "--fail_step=" in report["argv"]
    # each step's end is a progress event naming it, in the order the steps ended
    ended = [m for m in messages if m.endswith(": done")]
    assert ended[0] == "step prepare: done" and ended[-1] == "step finish: done"
    assert sorted(ended[1:3]) == ["step left: done", "step right: done"]
    assert left_behind(engine, order.id) == ([], [])  # no container, no job volume
    assert list((flow_settings.work_dir).iterdir()) == []  # nor the worker's work folder


async def test_a_failing_middle_step_fails_the_order_naming_it_and_leaves_nothing(
    committing_client, sessionmaker, engine, flow_settings, status_manager
) -> None:
    order, messages = await run_flow(
        committing_client, sessionmaker, flow_settings, fail_step="left"
    )
    assert order.status == "FAILED"
    assert order.message == "step left exited with code 7: step left broke"
    assert order.result_key is None
    assert "step prepare: done" in messages
    assert "step finish: done" not in messages  # nothing after the failed step ran
    assert left_behind(engine, order.id) == ([], [])
    assert list((flow_settings.work_dir).iterdir()) == []


class SlowToOpen:
    """The engine's runner, but a job folder takes a while to make (as a large upload does)."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.opened = threading.Event()

    def open_job(self, **kwargs):  # type: ignore[no-untyped-def]
        job = self.inner.open_job(**kwargs)
        self.opened.set()
        threading.Event().wait(1.0)
        return job

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


async def test_a_run_cancelled_while_its_job_folder_is_made_leaves_nothing(
    engine, flow_settings, tmp_path
) -> None:
    from cure.apps.registry import get_registry
    from cure.containers.runner import open_runner

    app = get_registry(flow_settings).get("probe_flow")
    inner = open_runner(flow_settings)
    runner = SlowToOpen(inner)
    order_id = uuid.uuid4()
    labels = pipeline.run_labels(flow_settings, order_id, 1)
    job = {"order_id": str(order_id), "params": app.validate_params({})}

    class Unwatched:
        def for_step(self, step, abort):  # type: ignore[no-untyped-def]
            raise AssertionError("no step may start")

        def step_done(self, step: str) -> None:
            raise AssertionError("no step may start")

    try:
        run = asyncio.create_task(
            pipeline.run_workflow(
                flow_settings, app, job=job, files={}, work_dir=tmp_path, labels=labels,
                watch=Unwatched(), runner=runner,
            )
        )  # fmt: skip
        assert await asyncio.to_thread(runner.opened.wait, 30)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert left_behind(engine, order_id) == ([], [])  # the holder and the volume went
    finally:
        inner.close()


async def test_steps_run_in_the_runs_context() -> None:
    """A step's thread sees the run's context variables: its log records name the order."""
    import contextvars

    order = contextvars.ContextVar("order", default=None)
    order.set("order-1")
    seen: list[str | None] = []

    def run_one(step: AppStep, abort: threading.Event) -> ContainerOutcome:
        seen.append(order.get())
        return done()

    await workflow.run_steps(
        steps_of(a=[], b=["a"]), run_one, parallel=2, succeeded=lambda s, o: True
    )
    assert seen == ["order-1", "order-1"]
