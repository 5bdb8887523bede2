import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from cure.logs.models import LogRecord
from cure.logs.saver import LogSaver


@pytest.fixture
async def saver(settings, sessionmaker) -> AsyncIterator[LogSaver]:
    """A log saver consuming the run's logs queue into the (committed) table."""
    running = LogSaver(settings, sessionmaker)
    task = asyncio.create_task(running.run())
    yield running
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def saved(sessionmaker, *where, count: int, seconds: float = 15) -> list[LogRecord]:
    """The saved records matching ``where`` once there are ``count`` of them."""
    deadline = time.monotonic() + seconds
    rows: list[LogRecord] = []
    while time.monotonic() < deadline:
        async with sessionmaker() as session:
            rows = list((await session.scalars(select(LogRecord).where(*where))).all())
        if len(rows) >= count:
            return sorted(rows, key=lambda r: r.seq)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(rows)} of {count} records saved within {seconds}s")
