"""The sweeper removes app containers no live run owns, and only those."""

import asyncio
import uuid

import asyncpg

from cure.workers.sweeper import sweep
from tests.conftest import PROBE_IMAGE, TEST_DB


def labelled_container(engine, order_id: str):
    return engine.containers.run(
        PROBE_IMAGE,
        entrypoint=["sleep", "300"],
        detach=True,
        network_mode="none",
        labels={"cure.order_id": order_id, "cure.role": "app-run"},
    )


def exists(engine, order_id: str) -> bool:
    label = {"label": f"cure.order_id={order_id}"}
    return bool(engine.containers.list(all=True, filters=label))


async def test_orphans_go_and_owned_containers_stay(engine, settings) -> None:
    orphan, owned = str(uuid.uuid4()), str(uuid.uuid4())
    labelled_container(engine, orphan)
    labelled_container(engine, owned)
    run = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{TEST_DB}")
    try:  # a live run of ``owned`` holds its lock, as pipeline._exclusive_run does
        key = f"cure:run:{owned}"
        assert await run.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key)
        await asyncio.to_thread(sweep, settings)
        assert not exists(engine, orphan)
        assert exists(engine, owned)
        await run.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)
        await asyncio.to_thread(sweep, settings)
        assert not exists(engine, owned)  # its run is gone: so is the container
    finally:
        await run.close()
        for order_id in (orphan, owned):
            for container in engine.containers.list(
                all=True, filters={"label": f"cure.order_id={order_id}"}
            ):
                container.remove(force=True)
