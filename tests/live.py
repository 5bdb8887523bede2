"""Helpers for tests against a live stack (real API and worker processes): submit probe orders,
wait on them, and look at their containers and stored files."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable

import aioboto3
import docker

from tests.conftest import Stack
from tests.factories import order_body


async def submit(http, headers, app: str = "probe", **params) -> str:  # type: ignore[no-untyped-def]
    response = await http.post(
        f"/v1/apps/{app}/orders", json=order_body(params=params), headers=headers
    )
    assert response.status_code == 202, response.text
    return str(response.json()["order_id"])


async def wait_for(http, headers, order_id: str, predicate, seconds: float = 30) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    body: dict = {}
    while time.monotonic() < deadline:
        response = await http.get(f"/v1/orders/{order_id}", headers=headers)
        if response.status_code == 200:
            body = response.json()
            if predicate(body):
                return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"order {order_id} never got there: {body}")


def statuses(order: dict) -> list[str]:
    return [event["status"] for event in order["history"]]


def containers_of(order_id: str) -> list:
    client = docker.from_env()
    try:
        return client.containers.list(
            all=True, ignore_removed=True, filters={"label": f"cure.order_id={order_id}"}
        )
    finally:
        client.close()


def volumes_of(order_id: str) -> list:
    client = docker.from_env()
    try:
        return client.volumes.list(filters={"label": f"cure.order_id={order_id}"})
    finally:
        client.close()


RELEASE = "/tmp/cure-release"  # noqa: S108 (inside the app's container: see the probe's hold)


def _release_new(order_ids: list[str], spare: set[str], released: set[str]) -> None:
    client = docker.from_env()
    try:
        for order_id in order_ids:
            for container in client.containers.list(
                ignore_removed=True,
                filters={"label": f"cure.order_id={order_id}", "status": "running"},
            ):
                if container.id in spare or container.id in released:
                    continue
                try:
                    done = container.exec_run(["touch", RELEASE])
                except docker.errors.APIError:  # it ended (or went) meanwhile: nothing to hold
                    continue
                if done.exit_code == 0:
                    released.add(container.id)
    finally:
        client.close()


@contextlib.asynccontextmanager
async def releasing(
    order_ids: str | Iterable[str], *, spare: Iterable[str] = ()
) -> AsyncIterator[set[str]]:
    """While the block runs, release each held probe app (mode hold, or a workflow's hold_step)
    of the orders once its container runs: one that is not released waits (tests/probe_app), so
    the test acts on a run that is still there, however late it comes. Containers in ``spare``
    (ids) are left held: the run the test broke, which the product has to remove by itself. A
    retried run's new container is released like any other. Yields the ids released so far."""
    wanted = [order_ids] if isinstance(order_ids, str) else list(order_ids)
    kept, released = set(spare), set[str]()

    async def loop() -> None:
        while True:
            try:
                await asyncio.to_thread(_release_new, wanted, kept, released)
            except Exception as exc:  # the engine busy or a container gone: the next pass
                print(f"releasing: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.2)

    task = asyncio.create_task(loop())
    try:
        yield released
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def container_ids(order_id: str) -> set[str]:
    return {c.id for c in containers_of(order_id)}


async def eventually_no_containers(order_ids: str | list[str], seconds: float = 15) -> None:
    wanted = [order_ids] if isinstance(order_ids, str) else order_ids
    deadline = time.monotonic() + seconds
    while left := [o for o in wanted if containers_of(o)]:
        assert time.monotonic() < deadline, f"containers of {left} are still there"
        await asyncio.sleep(0.3)


async def stored_keys(stack: Stack, order_id: str) -> list[str]:
    """The objects stored under the order's results in the stack's S3 bucket."""
    async with aioboto3.Session().client(
        "s3",
        endpoint_url=stack.env["CURE_S3_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ) as s3:
        listed = await s3.list_objects_v2(
            Bucket=stack.env["CURE_S3_BUCKET"], Prefix=f"results/{order_id}/"
        )
        return sorted(item["Key"] for item in listed.get("Contents", []))
