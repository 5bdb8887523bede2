"""Readiness: can this process reach the database, the broker, storage and the container engine?

Each check is bounded by ``health_timeout_seconds`` and they run side by side, so a dependency
that hangs makes the answer slow by at most that, never stuck.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cure.config import Settings
from cure.containers.runner import open_runner
from cure.kit import broker
from cure.kit.metrics import DEPENDENCY_UP
from cure.storage.service import make_storage

DEPENDENCIES = ("database", "broker", "storage", "docker")


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    seconds: float


async def _database(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def _docker_ping(settings: Settings) -> None:
    runner = open_runner(settings, timeout=60)
    try:
        runner.ping()
    finally:
        runner.close()


async def _run(check: Callable[[], Awaitable[None]], limit: float) -> CheckResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            await check()
    except Exception as exc:  # whatever went wrong, the dependency is not usable now
        detail = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
        return CheckResult(False, detail, time.perf_counter() - started)
    return CheckResult(True, "ok", time.perf_counter() - started)


async def readiness(settings: Settings, engine: AsyncEngine) -> dict[str, CheckResult | None]:
    """Each dependency's check; None for one this deployment does not check (settings)."""
    timeout = settings.health_timeout_seconds
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "database": lambda: _database(engine),
        "broker": lambda: broker.ping(settings.broker_url, connect_timeout=timeout),
        "storage": lambda: make_storage(settings).check(),
        "docker": lambda: asyncio.to_thread(_docker_ping, settings),
    }
    wanted = [name for name in DEPENDENCIES if name in settings.health_checks]
    results = await asyncio.gather(*(_run(checks[name], timeout) for name in wanted))
    outcome: dict[str, CheckResult | None] = dict.fromkeys(DEPENDENCIES)
    for name, result in zip(wanted, results, strict=True):
        outcome[name] = result
        DEPENDENCY_UP.labels(name).set(1 if result.ok else 0)
    return outcome
