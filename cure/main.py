"""The API process: every domain's router, error handlers, and the consumers in its lifespan."""

import asyncio
import contextlib
import gc
import logging
import re
import signal
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy import text

from cure import runtime
from cure.apps.router import router as apps_router
from cure.auth.dependencies import PASSWORD_HASHER, PRINCIPALS
from cure.auth.passwords import PasswordHasher
from cure.auth.principals import PrincipalCache
from cure.auth.router import router as auth_router
from cure.ccsi.dependencies import FEDERATION
from cure.ccsi.federation import Federation
from cure.ccsi.router import router as ccsi_router
from cure.ccsi.sources.dependencies import SOURCES
from cure.ccsi.sources.router import router as sources_router
from cure.ccsi.sources.service import SourceRegistry
from cure.config import Settings, get_settings
from cure.crm.router import router as crm_router
from cure.kit.body_limit import BodyLimit
from cure.kit.dependencies import SessionDep
from cure.kit.error_handlers import declare_unavailable, install_error_handlers
from cure.kit.leader import Leadership
from cure.kit.listen import Listener
from cure.kit.metrics import HttpMetrics
from cure.kit.resources import build_resources
from cure.kit.state import AppState, state_of
from cure.kit.stopping import CANCEL_SECONDS, exit_by, on_stop_signal, within
from cure.logs.dependencies import LOG_PUBLISHER, LOG_WAITERS
from cure.logs.publisher import LogPublisher
from cure.logs.router import router as logs_router
from cure.logs.waiters import OrderLogWaiters
from cure.notifications.router import router as notifications_router
from cure.ogc.router import router as ogc_router
from cure.ops.router import router as ops_router
from cure.orders.dependencies import RELAY
from cure.orders.router import router as orders_router
from cure.outbox.relay import OutboxRelay
from cure.portal.router import router as portal_router
from cure.runtime import make_relay, relay_wakeup
from cure.stac.router import router as stac_router
from cure.storage.dependencies import STORAGE
from cure.storage.router import router as storage_router
from cure.storage.service import S3Storage, make_storage

log = logging.getLogger(__name__)


# Where an order and its region come in: our own submit, and OGC API - Processes' execution.
ORDER_SUBMIT = re.compile(r"^(/v1/apps/[^/]+/orders|/ogc/processes/[^/]+/execution)/?$")
# The collector's thresholds once the process serves (generation 0's new objects, then passes of
# the younger generation between two of the next): CPython's are (700, 10, 10).
GC_THRESHOLDS = (20_000, 20, 20)
SMALL_BODIES = ("/v1/auth/", "/v1/crm/", "/v1/portal/session")


def _arm_backstop(settings: Settings, sig: signal.Signals) -> None:
    """On SIGTERM (what compose, Kubernetes and scripts/run send), in the signal handler: the
    process ends by shutdown_seconds whatever still runs (not on a terminal's Ctrl-C)."""
    if sig == signal.SIGTERM:
        exit_by(settings.shutdown_seconds, "the API process")


def body_limits(settings: Settings) -> Callable[[str, str], int]:
    """Per route: small bodies for credentials and profiles, a region's worth for orders."""

    def limit_for(method: str, path: str) -> int:
        if path == "/v1/logs":
            return settings.log_post_max_bytes
        if path.startswith(SMALL_BODIES):
            return settings.max_small_body_bytes
        if method == "POST" and ORDER_SUBMIT.match(path):
            return settings.max_order_body_bytes
        return settings.max_body_bytes

    return limit_for


ROUTERS = (
    # First the routes asked most: routing tries each route in turn (FastAPI's included
    # routers, a few microseconds each), so an order's status, then the catalogue's searches
    # (OpenSearch and STAC) come before the rest (BENCHMARKS.md, row 8).
    orders_router,
    sources_router,  # before ccsi_router: /v1/ccsi/{collection}/... would take its paths
    ccsi_router,
    stac_router,
    auth_router,
    crm_router,
    apps_router,
    notifications_router,
    storage_router,
    ogc_router,
    logs_router,
    ops_router,
    portal_router,
)
DESCRIPTION = (
    "Copernicus geo-processing as a service. Register (POST /v1/crm/customers), get a token "
    "(POST /v1/auth/token), order an app (POST /v1/apps/{app_id}/orders), follow the order "
    "(GET /v1/orders/{order_id}) and download its result (GET /v1/orders/{order_id}/result)."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The HTTP application: routers, middleware and error handlers; what the process holds is
    made in its lifespan (``lifespan``), its services started from the runtime table."""
    settings = settings or get_settings()
    # Swagger UI and ReDoc are served from the fastapi-offline package, never from a CDN, so
    # /docs works on a closed network.
    app = FastAPIOffline(
        static_url="/static/docs",
        title="CURE",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # CURE's metrics are Prometheus's (cure.kit.metrics), its logs its own: FastAPI's
        # OpenTelemetry hooks would only ask, on every request, whether a provider is set.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.cure = AppState(settings)
    app.add_middleware(BodyLimit, limit_for=body_limits(settings))
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    declare_unavailable(app, ROUTERS)
    app.add_middleware(HttpMetrics)
    app.add_api_route("/health", health, methods=["GET"], tags=["health"])
    return app


async def health(session: SessionDep) -> dict[str, str]:
    """Liveness and database reachability."""
    await session.execute(text("SELECT 1"))
    return {"status": "ok"}


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = state_of(app)
    settings = state.settings
    relay = _make_parts(state)
    # SIGTERM: long polls and event streams end at once (uvicorn then waits for the other
    # requests up to half of shutdown_seconds), and the backstop is armed (cure.kit.stopping).
    waiters = state.need(LOG_WAITERS)
    restore_signals = on_stop_signal(
        lambda _sig: waiters.stop(), at_once=lambda sig: _arm_backstop(settings, sig)
    )
    tasks: list[asyncio.Task[None]] = []
    thresholds = gc.get_threshold()
    try:
        tasks.extend(await _start(state, relay))
        # What is loaded now (routes, schemas, mappers) lives as long as the process: keep
        # it out of the collector's full passes, which otherwise stall a request for tens
        # of milliseconds every few thousand requests (the p99 of BENCHMARKS.md row 1).
        gc.collect()
        gc.freeze()
        # And fewer passes over what requests leave behind: at CPython's thresholds (a pass
        # per 700 new objects) the passes stalled about one request in a hundred by several
        # milliseconds (BENCHMARKS.md, row 1: p99 5.9-7.6 ms at the defaults, 3.3-3.5 ms with
        # these, and 5 % more requests a second). Cycles are still collected, a little later.
        gc.set_threshold(*GC_THRESHOLDS)
        yield
    finally:
        await _stop(state, tasks, relay)
        restore_signals()
        gc.set_threshold(*thresholds)


def _make_parts(state: AppState) -> OutboxRelay:
    """What the process holds while it runs; the relay is made in every process (its wake-ups
    are heard by each) and run by the leader."""
    settings = state.settings
    resources = state.resources = build_resources(settings)
    state.put(PASSWORD_HASHER, PasswordHasher(settings))
    # One S3 client kept on this process's loop (closed in _stop), not one per call.
    state.put(STORAGE, make_storage(settings, kept=True))
    state.put(LOG_PUBLISHER, LogPublisher(settings))
    # One connection per process hears the database's change notices (cure.kit.listen).
    listener = state.listener = Listener(settings.database_url)
    # Long polls and event streams of order logs wait for notices, within caps.
    waiters = state.put(
        LOG_WAITERS,
        OrderLogWaiters(
            per_customer=settings.log_waits_per_customer, per_process=settings.log_waits_per_process
        ),
    )
    listener.subscribe(waiters.subscription())
    # The enabled catalogue sources, read again on each cure_sources notice (cure.ccsi.sources),
    # and the federated search over them: their clients, limits and cached answers.
    sources = state.put(SOURCES, SourceRegistry(settings, resources.reads))
    listener.subscribe(sources.subscription())
    state.put(FEDERATION, Federation(settings, sources=sources))
    if settings.principal_cache:
        principals = state.put(
            PRINCIPALS, PrincipalCache(ttl_seconds=settings.principal_cache_seconds)
        )
        listener.subscribe(principals.subscription())
        # This process's sessions drop what they change from its cache at commit, on every
        # pool: a reused refresh token's family is revoked on the side pool, apart from the
        # failing request, and must be refused here before the response goes out.
        for sessionmaker in {resources.sessionmaker, resources.side, resources.reads}:
            sessionmaker.configure(info={"principals": principals})
    return make_relay(resources)


async def _start(state: AppState, relay: OutboxRelay) -> list[asyncio.Task[None]]:
    """The bucket, then the notice listener and (with several API processes, in one of them:
    cure.kit.leader) the runtime table's services."""
    settings, tasks = state.settings, []
    storage = state.need(STORAGE)
    if isinstance(storage, S3Storage):
        await storage.ensure_bucket()
    if settings.run_background_services:
        state.put(RELAY, relay)
        state.notices.subscribe(relay_wakeup(relay))
        parts = runtime.Parts(state.db, relay)
        leadership = Leadership(
            settings.database_url, "services", lambda: runtime.start(parts, runtime.services())
        )
        tasks.append(asyncio.create_task(leadership.run(), name="leadership"))
    tasks.append(asyncio.create_task(state.notices.run(), name="notice-listener"))
    return tasks


async def _stop(state: AppState, tasks: list[asyncio.Task[None]], relay: OutboxRelay) -> None:
    """Each step bounded: the services (their loops hold nothing that is not in the database),
    then the connections. One deadline for all of it: uvicorn's grace took at most half of
    shutdown_seconds, this takes at most the other half less a second (each step's cancellation
    wait included), well before the backstop."""
    state.need(LOG_WAITERS).stop()
    clock = asyncio.get_running_loop()
    deadline = clock.time() + state.settings.shutdown_seconds / 2 - 1 - 5 * CANCEL_SECONDS
    for task in tasks:
        task.cancel()
    steps = (
        (asyncio.gather(*tasks, return_exceptions=True), "the services"),
        (relay.close(), "the relay's connection"),
        (state.need(LOG_PUBLISHER).close(), "the log publisher"),
        (state.need(FEDERATION).aclose(), "the catalogue sources' clients"),
        (state.need(STORAGE).close(), "the storage's client"),
        (state.db.dispose(), "the database pools"),
    )
    for step, what in steps:
        await within(deadline - clock.time(), step, what)
    state.need(PASSWORD_HASHER).close()
