"""What /health/ready and /metrics run, at most once per interval for each API app: a flood of
probes or scrapes costs one round of readiness checks per ``health_cache_seconds`` and one read
of the database and broker gauges per ``metrics_cache_seconds``; callers that ask while a round
runs await that round (single flight)."""

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit.flight import Recent
from cure.kit.metrics import REFRESHES
from cure.kit.state import StateKey, state_of
from cure.ops import health, state

Readiness = dict[str, health.CheckResult | None]


class Scrapes:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.readiness: Recent[Readiness] = Recent(settings.health_cache_seconds)
        self.gauges: Recent[None] = Recent(settings.metrics_cache_seconds)

    async def ready(self, engine: AsyncEngine) -> Readiness:
        """Each dependency's check, from a round at most ``health_cache_seconds`` old."""
        return await self.readiness.get(lambda: self._check(engine))

    async def refresh_gauges(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """The gauges of orders, queues and the outbox, read at most once per interval."""
        await self.gauges.get(lambda: self._read_gauges(sessionmaker))

    async def _check(self, engine: AsyncEngine) -> Readiness:
        REFRESHES.labels("readiness").inc()
        return await health.readiness(self.settings, engine)

    async def _read_gauges(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        REFRESHES.labels("gauges").inc()
        await state.refresh(self.settings, sessionmaker)


SCRAPES = StateKey[Scrapes]("scrapes")


async def get_scrapes(request: Request) -> Scrapes:
    """The app's scrapes, made at first use from its settings."""
    state = state_of(request.app)
    return state.made(SCRAPES, lambda: Scrapes(state.settings))
