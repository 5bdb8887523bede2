"""Prometheus metrics: every instrument CURE exports, the HTTP middleware and the exposition.

One registry module so that operators, the Grafana dashboard and its test find every name in one
place. It names what is counted (orders, containers, emails) but imports no domain: each domain
increments the instruments it owns where the thing happens.

Processes with several workers (a Celery worker's pool) write their samples to files under
``PROMETHEUS_MULTIPROC_DIR``, which must be set before ``prometheus_client`` is first imported
(``cure worker`` does); the process serving /metrics then adds them up.
"""

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client import multiprocess as _multiprocess

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LONG_SECONDS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

# HTTP (the API).
HTTP_REQUESTS = Counter(
    "cure_http_requests_total", "HTTP requests by route template", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "cure_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=_SECONDS,
)

# Orders (state gauges are refreshed from the database when /metrics is scraped).
ORDERS = Gauge(
    "cure_orders", "Orders by state and app", ["state", "app"], multiprocess_mode="mostrecent"
)
ORDERS_FINISHED = Counter(
    "cure_orders_finished_total", "Orders that reached a final state", ["app", "state"]
)
ORDER_DURATION = Histogram(
    "cure_order_duration_seconds",
    "Time from submit to a final state, per app",
    ["app", "state"],
    buckets=_LONG_SECONDS,
)
PIPELINE_STEP = Histogram(
    "cure_pipeline_step_duration_seconds",
    "Duration of each step of an order's pipeline on a worker",
    ["app", "step"],
    buckets=_LONG_SECONDS,
)

# Containers (workers).
CONTAINER_RUN = Histogram(
    "cure_container_run_duration_seconds",
    "Wall-clock time of app container runs",
    ["app"],
    buckets=_LONG_SECONDS,
)
CONTAINER_EXITS = Counter(
    "cure_container_exits_total",
    "App container runs by exit code (timeout, stopped: no code)",
    ["app", "exit_code"],
)

# Queues and the outbox (refreshed when /metrics is scraped).
QUEUE_DEPTH = Gauge(
    "cure_queue_messages",
    "Messages ready in a RabbitMQ queue",
    ["queue"],
    multiprocess_mode="mostrecent",
)
QUEUE_CONSUMERS = Gauge(
    "cure_queue_consumers",
    "Consumers of a RabbitMQ queue",
    ["queue"],
    multiprocess_mode="mostrecent",
)
OUTBOX_BACKLOG = Gauge(
    "cure_outbox_backlog",
    "Outbox rows not yet sent, by kind",
    ["kind"],
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST = Gauge(
    "cure_outbox_oldest_seconds",
    "Age of the oldest unsent outbox row",
    multiprocess_mode="mostrecent",
)

# Notifications.
NOTIFICATIONS = Counter(
    "cure_notifications_total",
    "Emails and callbacks by outcome (sent, failed, abandoned)",
    ["kind", "outcome"],
)

# Logs.
LOG_RECORDS_DROPPED = Counter(
    "cure_log_records_dropped_total",
    "Log records a process dropped because its buffer to the broker was full",
    ["service"],
)
LOG_RECORDS_SAVED = Counter(
    "cure_log_records_saved_total", "Log records written to the table", ["service", "level"]
)
LOG_RECORDS_REJECTED = Counter(
    "cure_log_records_rejected_total", "Log messages the saver could not read", ["reason"]
)

# Readiness (refreshed by /health/ready and when /metrics is scraped).
DEPENDENCY_UP = Gauge(
    "cure_dependency_up",
    "1 when a dependency answered the readiness check, else 0",
    ["dependency"],
    multiprocess_mode="mostrecent",
)
# What /health/ready and /metrics really ran: a round of readiness checks, a read of the gauges
# from the database and the broker (each at most once per interval, however often asked).
REFRESHES = Counter(
    "cure_refreshes_total", "Rounds of readiness checks and of gauge reads, by kind", ["kind"]
)

# Quicklooks: renders done, and requests refused because every render slot stayed taken.
QUICKLOOK_RENDERS = Counter(
    "cure_quicklook_renders_total", "Quicklook renders by outcome (rendered, busy)", ["outcome"]
)
# Anonymous catalogue and STAC reads refused by the per-address limit.
READS_LIMITED = Counter(
    "cure_anonymous_reads_limited_total", "Anonymous reads answered 429 by the per-address limit"
)


def registry() -> CollectorRegistry:
    """The registry to expose: the process's own, or the sum of a multiprocess directory's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        combined = CollectorRegistry()
        _multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
        return combined
    return REGISTRY


def exposition() -> tuple[bytes, str]:
    """The text format and its content type."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on ``port`` in a thread (standalone processes: worker, consumers)."""
    start_http_server(port, addr=host, registry=registry())


def mark_process_dead(pid: int) -> None:
    """Forget a dead pool process's live gauges (multiprocess mode only)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class HttpMetrics:
    """ASGI middleware: counts requests and times them per route template (``/v1/orders/{order_id}``,
    never the raw path, so ids do not multiply the series); unmatched paths share one label."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)
