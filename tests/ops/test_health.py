"""Liveness and readiness: each dependency reported, 503 while one is down, 200 again after.

"Down" is a TCP relay of the test's own between the app and the real server, closed and opened
again, so the shared PostgreSQL and RabbitMQ are never stopped.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from cure.kit.state import state_of
from tests.ccsi.test_bounds import statements
from tests.conftest import TEST_VHOST, free_port, started_app


class Relay:
    """Forwards 127.0.0.1:<port> to a target port while open; closing it cuts every link."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.links):
            writer.close()
        await self.server.wait_closed()
        self.server = None

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target
            )
        except OSError:
            writer.close()
            return
        self.links |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self.links -= {writer, upstream_writer}


@contextlib.asynccontextmanager
async def relayed_app(settings) -> AsyncIterator[tuple[httpx.AsyncClient, Relay, Relay]]:
    database, broker = Relay(5432), Relay(5672)
    await database.open()
    await broker.open()
    ours = settings.model_copy(
        update={
            "database_url": settings.database_url.replace(":5432/", f":{database.port}/"),
            "broker_url": f"amqp://guest:guest@127.0.0.1:{broker.port}/{TEST_VHOST}",
            # Roomy: a check that must pass (a Docker ping, an AMQP handshake, S3, SELECT 1) may
            # be slow under load. A dependency "down" here fails at once (its connection is
            # refused or cut), not by this limit.
            "health_timeout_seconds": 30,
            # Every probe runs its checks: the test follows each change at once.
            "health_cache_seconds": 0,
            "metrics_cache_seconds": 0,
        }
    )
    async with started_app(ours) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
            yield http, database, broker
    for relay in (database, broker):
        if relay.server is not None:
            await relay.close()


async def _ready(http: httpx.AsyncClient) -> tuple[int, dict]:
    response = await http.get("/health/ready")
    return response.status_code, response.json()["checks"]


async def test_readiness_fails_while_a_dependency_is_down_and_recovers(settings) -> None:
    async with relayed_app(settings) as (http, database, broker):
        assert (await http.get("/health/live")).json() == {"status": "live"}
        status, checks = await _ready(http)
        assert status == 200, checks
        assert set(checks) == {"database", "broker", "storage", "docker"}
        assert all(check["ok"] for check in checks.values())

        await broker.close()
        response = await http.get("/health/ready")
        assert response.status_code == 503 and response.headers["Retry-After"]
        checks = response.json()["checks"]
        assert response.json()["status"] == "unavailable"
        assert not checks["broker"]["ok"] and checks["database"]["ok"] and checks["docker"]["ok"]
        assert (await http.get("/health/live")).status_code == 200  # alive all the same

        await broker.open()
        assert (await _ready(http))[0] == 200

        await database.close()
        status, checks = await _ready(http)
        assert status == 503 and not checks["database"]["ok"] and checks["broker"]["ok"]
        metrics = (await http.get("/metrics")).text  # still answers, saying what is down
        assert 'cure_dependency_up{dependency="database"} 0.0' in metrics

        await database.open()
        status, checks = await _ready(http)
        assert status == 200, checks


async def test_a_dependency_left_out_of_the_checks_is_reported_as_not_checked(settings) -> None:
    ours = settings.model_copy(update={"health_checks": ["database", "broker", "storage"]})
    async with started_app(ours) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
            status, checks = await _ready(http)
    assert status == 200 and checks["docker"] is None


async def test_a_flood_of_probes_and_scrapes_costs_one_round_per_interval(settings) -> None:
    """Readiness is checked at most once per CURE_HEALTH_CACHE_SECONDS, the gauges read from the
    database at most once per CURE_METRICS_CACHE_SECONDS, however many ask meanwhile (at the
    same time or one after another): counted in the SQL the app sends."""
    ours = settings.model_copy(update={"health_cache_seconds": 60, "metrics_cache_seconds": 60})
    async with started_app(ours) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
            with statements(state_of(app).db.engine) as seen:
                probes = await asyncio.gather(*(http.get("/health/ready") for _ in range(10)))
                probes += [await http.get("/health/ready") for _ in range(5)]
                scrapes = [await http.get("/metrics") for _ in range(5)]
    assert sum(1 for s in seen if s.strip() == "SELECT 1") == 1  # the database check
    assert sum(1 for s in seen if "FROM orders" in s) == 1  # the order gauges
    assert all(r.status_code == 200 for r in probes + scrapes)
    assert all(r.json() == probes[0].json() for r in probes)  # the same round's answer
    assert "cure_dependency_up" in scrapes[-1].text and "cure_orders" in scrapes[-1].text
