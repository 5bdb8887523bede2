"""The sweeper removes app containers no live run owns, and only those of its own deployment."""

import asyncio
import uuid

import asyncpg

from cure.workers.pipeline import run_labels
from cure.workers.sweeper import sweep
from tests.conftest import PROBE_IMAGE, TEST_DB


def labelled_container(engine, labels: dict[str, str]):
    return engine.containers.run(
        PROBE_IMAGE,
        entrypoint=["sleep", "300"],
        detach=True,
        network_mode="none",
        labels={**labels, "cure.role": "app-run"},
    )


def exists(engine, order_id: str) -> bool:
    label = {"label": f"cure.order_id={order_id}"}
    return bool(engine.containers.list(all=True, ignore_removed=True, filters=label))


async def test_orphans_go_and_owned_containers_stay(engine, settings) -> None:
    orphan, owned, theirs = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    labelled_container(engine, run_labels(settings, orphan, 1))
    labelled_container(engine, run_labels(settings, owned, 2))
    # an orphan of another deployment sharing the engine (another database): never ours to judge
    other = settings.model_copy(update={"deployment_id": f"other-{uuid.uuid4().hex[:8]}"})
    labelled_container(engine, run_labels(other, theirs, 1))
    run = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{TEST_DB}")
    try:  # a live run of ``owned``'s attempt 2 holds its lock, as pipeline._exclusive_run does
        key = f"cure:run:{owned}:2"
        assert await run.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key)
        await asyncio.to_thread(sweep, settings)
        assert not exists(engine, orphan)
        assert exists(engine, owned)
        assert exists(engine, theirs)
        await run.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)
        await asyncio.to_thread(sweep, settings)
        assert not exists(engine, owned)  # its run is gone: so is the container
        assert exists(engine, theirs)
        await asyncio.to_thread(sweep, other)  # its own deployment's sweep does remove it
        assert not exists(engine, theirs)
    finally:
        await run.close()
        for order_id in (orphan, owned, theirs):
            for container in engine.containers.list(
                all=True, filters={"label": f"cure.order_id={order_id}"}
            ):
                container.remove(force=True)
