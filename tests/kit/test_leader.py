"""Leadership (cure.kit.leader): of several processes of a deployment, one runs the services; when
it goes, another takes over."""

import asyncio

from cure.kit.leader import Leadership
from tests.conftest import TEST_DATABASE_URL


def _leadership(name: str, started: list[str]) -> Leadership:
    def start() -> list[asyncio.Task[None]]:
        started.append(name)
        return [asyncio.create_task(asyncio.sleep(3600))]

    return Leadership(TEST_DATABASE_URL, "test-leader", start, follow_seconds=0.2)


async def test_one_of_several_processes_leads_and_another_takes_over() -> None:
    started: list[str] = []
    first, second = _leadership("first", started), _leadership("second", started)
    running = {"first": asyncio.create_task(first.run())}
    await asyncio.wait_for(first.leading.wait(), 10)
    running["second"] = asyncio.create_task(second.run())
    await asyncio.sleep(1)  # five of the follower's tries
    assert started == ["first"]
    assert not second.leading.is_set()

    running["first"].cancel()  # the leader's process ends: its lock goes with its connection
    await asyncio.gather(running["first"], return_exceptions=True)
    assert first.tasks == [] and not first.leading.is_set()
    await asyncio.wait_for(second.leading.wait(), 10)
    assert started == ["first", "second"]
    running["second"].cancel()
    await asyncio.gather(running["second"], return_exceptions=True)
